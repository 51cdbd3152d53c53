"""The self-study book: page preparation (fast), the built site (static checks) and the site in a real browser.

The site is built once per module (``flowcourse_instructor.book.build``, which executes all eight lessons unless
``book/_build/.jupyter_cache`` already holds them), served from a local ``http.server`` thread on 127.0.0.1
and read by Playwright driving Debian's ``/usr/bin/chromium``. Every request is intercepted; one that leaves
the site fails the test. Screenshots go to ``book/_build/screenshots/``.

Without the ``book`` extra or without ``/usr/bin/chromium`` these tests skip, unless
``FLOWCOURSE_REQUIRE_BROWSER=1`` (CI), where they fail. Set up with ``make browser``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from flowcourse_instructor.book import MARKERS, prepare_lesson, prepare_lessons

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "book" / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("FLOWCOURSE_REQUIRE_BROWSER") == "1"
LESSONS = sorted(p.name for p in (ROOT / "solutions").glob("[0-9][0-9]-*") if p.is_dir())
# what must never be published: nbgrader's markers and metadata, the hidden tests' calls and import
FORBIDDEN = [*MARKERS, "from flowcourse_instructor.grading import check", "grade_id"]


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (FLOWCOURSE_REQUIRE_BROWSER=1); run `make browser`")
    pytest.skip(f"{reason}; run `make browser` to install it")


# ---------------------------------------------------------------------------------------------- preparation
def _cell(kind: str, source: str, **nbgrader: object) -> nbformat.NotebookNode:
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata={"nbgrader": {"grade_id": f"id-{abs(hash(source))}", **nbgrader}} if nbgrader else {})


def _toy_notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        _cell("markdown", "# Lesson\nThe prose, with $x = f(z)$."),
        _cell("code", "def f(z):\n    ### BEGIN SOLUTION\n    return 2 * z\n    ### END SOLUTION",
              solution=True, grade=False),
        _cell("code", "# self-check\nassert f(1) == 2"),
        _cell("code", "# Hidden test: graded later.\n### BEGIN HIDDEN TESTS\n"
                      'from flowcourse_instructor.grading import check\ncheck("f", f)\n### END HIDDEN TESTS',
              grade=True, solution=False, points=1),
        _cell("code", 'assert f(0) == 0  # a visible test\n### BEGIN HIDDEN TESTS\ncheck("f", f)\n'
                      "### END HIDDEN TESTS",
              grade=True, solution=False, points=1),
        _cell("markdown", "**Question.** Why?\n\n### BEGIN SOLUTION\n*Model answer.* Because $a$.\n### END SOLUTION\n\n"
                          "=== BEGIN MARK SCHEME ===\nOne point for $a$.\n=== END MARK SCHEME ===",
              solution=True, grade=True, points=1),
    ])


def test_prepare_lesson_strips_tests_and_markers_and_folds_solutions():
    nb = prepare_lesson(_toy_notebook())
    sources = [c.source for c in nb.cells]
    assert len(nb.cells) == 5  # the test cell with nothing but hidden tests is gone
    assert sources[1] == "def f(z):\n    return 2 * z"
    assert nb.cells[1].metadata["tags"] == ["hide-input"]
    assert "tags" not in nb.cells[2].metadata  # self-checks stay in view
    assert sources[3].strip() == "assert f(0) == 0  # a visible test"  # visible part of a test cell stays
    assert "::::{dropdown} Model answer\n*Model answer.* Because $a$.\n::::" in sources[4]
    assert "::::{dropdown} Mark scheme\nOne point for $a$.\n::::" in sources[4]
    assert sources[4].startswith("**Question.** Why?")
    text = nbformat.writes(nb)
    assert not [m for m in FORBIDDEN if m in text]


def test_prepare_lesson_refuses_a_marker_it_cannot_place():
    nb = nbformat.v4.new_notebook(cells=[_cell("code", "x = 1  ### BEGIN SOLUTION inline", solution=True, grade=False)])
    with pytest.raises(ValueError, match="BEGIN SOLUTION"):
        prepare_lesson(nb)


def test_prepared_lessons_keep_every_cell_a_reader_needs(tmp_path):
    pages = prepare_lessons(ROOT, tmp_path)
    assert [p.stem for p in pages] == LESSONS
    for source, page in zip(sorted((ROOT / "solutions").glob("*/*.ipynb")), pages, strict=True):
        original, prepared = nbformat.read(source, 4), nbformat.read(page, 4)
        tests_only = [c for c in original.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
                      and not c.metadata["nbgrader"].get("solution") and not re.sub(
                          r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS|#[^\n]*", "", c.source, flags=re.S).strip()]
        kept = [c for c in original.cells if all(c is not t for t in tests_only)]
        assert len(prepared.cells) == len(kept), page.name
        solutions = sum(c.cell_type == "code" and bool(c.metadata.get("nbgrader", {}).get("solution"))
                        for c in original.cells)
        assert sum("hide-input" in c.metadata.get("tags", []) for c in prepared.cells) == solutions
        text = page.read_text()
        assert not [m for m in FORBIDDEN if m in text], page.name
    assert prepare_lessons(ROOT, tmp_path) == pages  # idempotent, and deterministic byte for byte
    assert [p.read_text() for p in pages] == [p.read_text() for p in prepare_lessons(ROOT, tmp_path)]


# ------------------------------------------------------------------------------------------------ the site
@pytest.fixture(scope="module")
def site() -> Path:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "sphinx_design"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"the 'book' extra is not installed (no {module})")
    from flowcourse_instructor.book import build

    return build(ROOT)


@pytest.mark.slow
def test_every_lesson_is_a_page_in_order(site):
    index = (site / "index.html").read_text()
    assert all((site / "_pages" / f"{name}.html").is_file() for name in LESSONS)
    positions = [index.find(f"_pages/{name}.html") for name in LESSONS]
    assert -1 not in positions and positions == sorted(positions)
    for page in ("how-to-use", "glossary", "references", "search"):
        assert (site / f"{page}.html").is_file()


@pytest.mark.slow
def test_no_file_in_the_site_carries_tests_or_markers(site):
    leaks = [(str(path.relative_to(site)), m) for path in site.rglob("*") if path.is_file()
             for m in FORBIDDEN if m.encode() in path.read_bytes()]
    assert not leaks


@pytest.mark.slow
def test_solutions_are_on_the_page_behind_closed_toggles(site):
    html = (site / "_pages" / "01-change-of-variables.html").read_text()
    text = unescape(re.sub(r"<[^>]+>", "", html))
    assert "0.5 * d * math.log(2 * math.pi)" in text  # the solution of standard_normal_log_prob
    toggles = re.findall(r"<details[^>]*>", html)
    assert len([t for t in toggles if "above-input" in t]) >= 10
    assert len([t for t in toggles if "sd-dropdown" in t]) >= 3
    assert not [t for t in toggles if re.search(r"\bopen\b", t)]


class _Assets(HTMLParser):
    """Every URL an HTML page makes the browser load by itself (scripts, styles, images, frames, media)."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") and attrs.get("src"):
            self.urls.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


@pytest.mark.slow
def test_every_asset_comes_from_the_site(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    external = []
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text())
        external += [(page.name, url) for url in parser.urls if re.match(r"(?i)([a-z]+:)?//", url)]
    assert not external
    lesson = (site / "_pages" / "01-change-of-variables.html").read_text()
    assert re.search(r'<script[^>]* src="\.\./_static/mathjax/tex-chtml\.js(\?[^"]*)?"', lesson)
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert list((site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


# ------------------------------------------------------------------------------------------ in a browser
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin(site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright (the 'book' extra) is not installed")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield chromium
        chromium.close()


class Visit:
    """A browser tab on the site that records JavaScript errors and every request that leaves the site."""

    def __init__(self, browser, origin: str, **context):
        self.origin, self.errors, self.outside = origin, [], []
        self.context = browser.new_context(**context)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)

    def _route(self, route):
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, path: str):
        self.page.goto(f"{self.origin}/{path}", wait_until="load")
        if self.page.locator("script[src*='mathjax']").count():  # pages without math do not load MathJax
            self.page.wait_for_function("window.MathJax?.startup?.promise", timeout=20_000)
            self.page.evaluate("MathJax.startup.promise")
        return self.page

    def __enter__(self) -> Visit:
        return self

    def __exit__(self, *exc) -> None:
        self.context.close()


# Text outside code that still looks like TeX: MathJax left it untypeset.
_RAW_TEX = r"""() => {
  const walk = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: n => n.parentElement.closest('pre, code, script, style, mjx-container, .highlight')
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const found = [];
  while (walk.nextNode()) {
    const t = walk.currentNode.textContent;
    if (/\\\(|\\\)|\\\[|\\\]|\$\$|\\frac|\\mathbb|\\begin/.test(t)) found.push(t.trim().slice(0, 80));
  }
  return found;
}"""


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_page_typesets_math_shows_plots_and_stays_offline(browser, origin, lesson):
    with Visit(browser, origin, viewport={"width": 1280, "height": 900}) as visit:
        page = visit.open(f"_pages/{lesson}.html")
        math = page.locator("main .math")
        assert math.count() > 10
        assert page.locator("main .math:not(:has(mjx-container))").count() == 0
        assert page.evaluate(_RAW_TEX) == []
        plots = page.locator("main img[src*='_images/']")
        assert plots.count() >= 1
        widths = plots.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert min(widths) > 100, widths
        assert visit.errors == [] and visit.outside == []


@pytest.mark.slow
def test_solution_toggles_start_closed_and_open_on_click(browser, origin):
    with Visit(browser, origin, viewport={"width": 1280, "height": 900}) as visit:
        page = visit.open("_pages/01-change-of-variables.html")
        assert page.locator("details.above-input summary").first.inner_text().strip() == "Show solution"
        for selector, inside in (("details.above-input", "standard_normal_log_prob"),
                                 ("details.sd-dropdown", "Model answer")):
            toggles = page.locator(selector)
            assert toggles.count() >= 3
            assert toggles.evaluate_all("ds => ds.filter(d => d.open).length") == 0
            first = toggles.first
            body = first.locator(":scope > :not(summary)").first
            assert not body.is_visible()
            first.locator("summary").click()
            assert first.evaluate("d => d.open")
            assert body.is_visible()
            assert inside in first.inner_text()
        assert visit.errors == [] and visit.outside == []


@pytest.mark.slow
def test_search_works_offline(browser, origin):
    with Visit(browser, origin, viewport={"width": 1280, "height": 900}) as visit:
        page = visit.open("search.html?q=Householder")
        results = page.locator("#search-results ul.search li")
        results.first.wait_for(timeout=20_000)
        links = results.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
        assert any("06-sylvester-householder" in href for href in links), links
        assert visit.errors == [] and visit.outside == []


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("lesson-01", {"width": 1280, "height": 900}),
                                        ("lesson-01-phone", {"width": 390, "height": 844})])
def test_screenshot_and_no_sideways_scrolling(browser, origin, name, size):
    phone = size["width"] < 600
    with Visit(browser, origin, viewport=size, is_mobile=phone, has_touch=phone,
               device_scale_factor=2 if phone else 1) as visit:
        page = visit.open("_pages/01-change-of-variables.html")
        page.locator("details.above-input").first.scroll_into_view_if_needed()  # a closed solution in view
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / f"{name}.png")
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
        # readable on a phone: the page itself never scrolls sideways (wide equations scroll in their box)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page is {overflow}px wider than the {size['width']}px viewport"
        assert visit.errors == [] and visit.outside == []
