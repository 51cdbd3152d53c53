"""Sphinx configuration of the flowcourse book: the lesson notebooks as a static, offline website.

Build it with ``make book`` (or ``flowcourse book``): that first writes the prepared lesson pages to
``_pages/`` (see ``flowcourse_instructor.book``), then runs Sphinx with warnings as errors and copies MathJax into the site.
"""

from pathlib import Path

HERE = Path(__file__).parent

project = "Normalizing flows: a course"
author = "the flowcourse authors"
copyright = "the flowcourse authors"  # no year: the build must not depend on the date  # noqa: A001
html_title = "Normalizing flows"

extensions = ["myst_nb", "sphinx_design"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
# The lessons put $$…$$ inside paragraphs too (as Jupyter allows); without this, one such display
# shifts every later $ of the paragraph and leaves raw TeX on the page.
myst_dmath_double_inline = True

# Every lesson runs at build time; a cell that raises fails the build. Results are cached by cell source.
nb_execution_mode = "cache"
nb_execution_cache_path = str(HERE / "_build" / ".jupyter_cache")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_output_stderr = "remove"  # training progress bars; a lesson that truly fails raises instead
nb_code_prompt_show = "Show solution"  # only solution cells carry the hide-input tag
nb_code_prompt_hide = "Hide solution"
# Self-checks display a record for `flowcourse check` (its own MIME type) next to the text/plain line
# the page shows; the record has no HTML form, so myst-nb would warn once per check.
suppress_warnings = ["mystnb.unknown_mime_type"]

# MathJax 3 is served from the site itself (copied into _static/mathjax after the build): no CDN.
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_context = {"default_mode": "auto"}  # follow the reader's light/dark setting (unset, the theme logs an error)
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
