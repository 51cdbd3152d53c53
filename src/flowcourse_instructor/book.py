r"""The self-study book: the lesson notebooks prepared for reading, then built offline with Sphinx.

``flowcourse book [--out DIR]`` (and ``make book``) runs :func:`build`:

1. :func:`prepare_lessons` turns each ``solutions/NN-topic/NN-topic.ipynb`` into ``book/_pages/NN-topic.ipynb``
   (an ignored folder): hidden tests removed with nbgrader's ``ClearHiddenTests`` and the emptied test cells
   dropped, solution code cells tagged ``hide-input`` (myst-nb puts them behind a closed "Show solution"
   toggle), written answers moved into a closed ``{dropdown}``, every nbgrader marker gone;
2. ``python -m sphinx -W --keep-going -b html book OUT``: myst-nb executes every page (cached in
   ``book/_build/.jupyter_cache``), so the book doubles as a check that every lesson runs;
3. :func:`copy_mathjax` copies MathJax 3 from the ``sphinx-mathjax-offline`` wheel into ``OUT/_static/mathjax``,
   so no page asks anything of a CDN.

The package is used as a file source only: enabled as a Sphinx extension it breaks ``-j N -W`` builds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import distribution
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests

from flowcourse_instructor.grading.config import GRADING_SIDE

__all__ = ["MARKERS", "prepare_lesson", "prepare_lessons", "copy_mathjax", "build"]

#: Text that must never reach the site: nbgrader's region markers and the hidden tests' calls.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "MARK SCHEME", 'check("')

_MARKER_LINE = re.compile(r"^[ \t]*### (?:BEGIN|END) SOLUTION[ \t]*\n?", re.MULTILINE)
_ANSWER = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)^[ \t]*### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)
_MARK_SCHEME = re.compile(r"^[ \t]*=== BEGIN MARK SCHEME ===[ \t]*\n(.*?)^[ \t]*=== END MARK SCHEME ===[ \t]*$",
                          re.MULTILINE | re.DOTALL)
# What a reader's browser needs of MathJax: the TeX-to-HTML bundle and the parts it loads on demand
# (TeX extensions, fonts, the menu's accessibility tools); the other bundles are left out.
_MATHJAX_PARTS = ("tex-chtml.js", "input", "output", "a11y", "ui", "adaptors", "sre")


def _dropdown(title: str) -> Callable[[re.Match[str]], str]:
    # four colons, so that a ``:::`` fence inside an answer cannot close the dropdown
    return lambda m: f"\n::::{{dropdown}} {title}\n{m.group(1).strip()}\n::::\n"


def _only_comments(source: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in source.splitlines())


def prepare_lesson(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    r"""A source notebook made into a book page (in place; returned for convenience).

    Hidden tests are cut and test cells left with nothing but comments dropped; solution code cells lose
    their marker lines and get the ``hide-input`` tag; a written answer's solution (and mark scheme) becomes
    a ``{dropdown}``. Outputs and nbgrader metadata are cleared. Raises ``ValueError`` if a marker survives.

    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
    ...     metadata={"nbgrader": {"solution": True, "grade": False, "grade_id": "f"}})])
    >>> cell = prepare_lesson(nb).cells[0]
    >>> cell.source, cell.metadata["tags"]
    ('def f():\n    return 1', ['hide-input'])
    """
    ClearHiddenTests().preprocess(nb, {})
    cells = []
    for cell in nb.cells:
        grading = cell.metadata.pop("nbgrader", {})
        for key in ("deletable", "editable"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if grading.get("grade") and not grading.get("solution") and _only_comments(cell.source):
                continue  # an autograder test cell, empty once its hidden tests are gone
            if grading.get("solution"):
                cell.source = _MARKER_LINE.sub("", cell.source).rstrip()
                cell.metadata["tags"] = [*cell.metadata.get("tags", []), "hide-input"]
        elif cell.cell_type == "markdown":
            cell.source = _ANSWER.sub(_dropdown("Model answer"), cell.source)
            cell.source = _MARK_SCHEME.sub(_dropdown("Mark scheme"), cell.source)
        leaked = [m for m in MARKERS if m in cell.source]
        if leaked:
            raise ValueError(f"cell {grading.get('grade_id') or cell.get('id')!r} still contains {leaked} "
                             "after preparation; expected nbgrader markers only in their own lines")
        cells.append(cell)
    nb.cells = cells
    return nb


def prepare_lessons(root: Path, pages: Path) -> list[Path]:
    """Write the book page of every lesson in ``root/solutions`` to ``pages``; return the pages in order.

    A page whose content is unchanged is not rewritten, so Sphinx does not re-read it; stale pages are removed.
    """
    pages.mkdir(parents=True, exist_ok=True)
    written, released = [], []
    for source in sorted((root / "solutions").glob("[0-9][0-9]-*/[0-9][0-9]-*.ipynb")):
        page = pages / source.name
        text = nbformat.writes(prepare_lesson(nbformat.read(source, as_version=4))) + "\n"
        if not page.exists() or page.read_text(encoding="utf-8") != text:
            page.write_text(text, encoding="utf-8")
        written.append(page)
        for module in sorted(source.parent.glob("*.py")):  # what the lesson releases with it, which its demos import
            if module.name not in GRADING_SIDE:
                if pages / module.name in released:
                    raise ValueError(f"two lessons release a file named {module.name}: rename one")
                shutil.copy2(module, pages / module.name)
                released.append(pages / module.name)
    for stale in {*pages.glob("*.ipynb"), *pages.glob("*.py")} - {*written, *released}:
        stale.unlink()
    return written


def copy_mathjax(site: Path) -> Path:
    """Copy MathJax 3 from the ``sphinx-mathjax-offline`` wheel to ``site/_static/mathjax``; return that folder."""
    source = Path(distribution("sphinx-mathjax-offline").locate_file("sphinx-mathjax-offline/static/mathjax"))
    if not (source / "tex-chtml.js").is_file():
        raise FileNotFoundError(f"expected MathJax's tex-chtml.js in {source}; install the 'book' extra")
    target = site / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    for part in _MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            shutil.copy2(source / part, target / part)
    return target


def build(root: Path | str = ".", out: Path | str | None = None) -> Path:
    """Prepare the pages, build the site with warnings as errors, add MathJax; return the site folder.

    The default site is ``book/_build/html``; doctrees and the execution cache stay in ``book/_build``.
    Raises ``subprocess.CalledProcessError`` if Sphinx fails (a warning, or a lesson that does not run).
    """
    book = Path(root).resolve() / "book"
    site = Path(out).resolve() if out is not None else book / "_build" / "html"
    prepare_lessons(book.parent, book / "_pages")
    # the kernels inherit this: one torch thread is several times faster on the course's 2-core machines
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                    "-d", str(book / "_build" / "doctrees"), str(book), str(site)], check=True, env=env)
    copy_mathjax(site)
    return site
