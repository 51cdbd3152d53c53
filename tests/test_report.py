"""`flowcourse report`: the class at a glance, from a real nbgrader gradebook and the judge's own records.

The course root is built here without running a notebook: nbgrader's ``Gradebook`` API holds the lesson,
its test cells and the students' scores; each autograded notebook carries the grading record the
:class:`~flowcourse_instructor.grading.preprocessors.Judge` writes, made by the judge's own functions
(``judge_check`` on evidence, then ``cell_record``), so these tests fail when that format drifts.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from PIL import Image

from flowcourse_instructor import report
from flowcourse_instructor.grading.evidence import encode
from flowcourse_instructor.grading.judge import judge_check
from flowcourse_instructor.grading.preprocessors import META, cell_record
from flowcourse_instructor.grading.spec import Case, Check, Mistake, tensor

# nbgrader's add_submission trips SQLAlchemy's autoflush warning on its own objects
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

LESSON, NOTEBOOK, EMPTY, UNRELEASED = "report-toy", "toy", "report-empty", "report-unreleased"

# three graded test cells, in notebook order b, a, c (not alphabetical: the page keeps the notebook's order)
DOUBLE = Check("double", cases=[Case("z = (1, 2)", lambda: {"z": tensor([1.0, 2.0])}),
                                Case("z = (3,)", lambda: {"z": tensor([3.0])})],
               mistakes=[Mistake("forgot the factor", "double it: 2·z", lambda ref, kw: kw["z"])])
INC = Check("inc", cases=[Case("z = (1, 2)", lambda: {"z": tensor([1.0, 2.0])})],
            mistakes=[Mistake("off by two", "add one, not two", lambda ref, kw: kw["z"] + 2)])
QUIZ = Check("quiz_q1")
KEY = {"double": lambda z: 2 * z, "inc": lambda z: z + 1, "quiz_q1": "b"}
CELLS = [("test-b", INC, 1.0), ("test-a", DOUBLE, 2.0), ("test-c", QUIZ, 1.0)]

RIGHT = {"double": lambda z: 2 * z, "inc": lambda z: z + 1, "quiz_q1": "b"}
ANSWERS = {  # what each student's code returns; the judge turns it into verdicts and named mistakes
    "ann": RIGHT,
    "bob": {**RIGHT, "double": lambda z: z, "inc": lambda z: z + 2},                  # both mistakes, on every case
    "cy": {**RIGHT, "double": lambda z: z if len(z) == 1 else 2 * z, "inc": lambda z: z + 2},  # one case of double
    "dee": {"double": lambda z: -2 * z, "inc": lambda z: z + 2, "quiz_q1": "c"},      # a generic sign flip: unnamed
    "gil": RIGHT,                                                                     # graded before names were kept
}
KNOWN_ONLY, PENDING = "eve", "fay"  # in the gradebook: eve never handed in, fay's submission is not graded yet


def _evidence(spec: Check, answer) -> list[dict]:
    if spec.is_value:
        return [{"label": "answer", "status": "ok", "output": encode(answer)}]
    return [{"label": c.label, "status": "ok", "output": encode(answer(**c.inputs()))} for c in spec.cases]


def _judged(student: str) -> list[dict]:
    """The grading record's ``cells`` for ``student``, as the Judge makes them."""
    cells = []
    for name, spec, points in CELLS:
        result = judge_check(spec, _evidence(spec, ANSWERS[student][spec.name]), reference=KEY[spec.name])
        passed, total = result.passed, result.total
        score = points if passed == total else points * passed / total
        cells.append(cell_record(name, points, score, [result], []))
    return cells


def _source_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for name, _, points in CELLS:
        nb.cells.append(nbformat.v4.new_markdown_cell(f"Exercise {name}"))
        nb.cells.append(nbformat.v4.new_code_cell(f'check("{name}")', metadata={"nbgrader": {
            "grade": True, "solution": False, "locked": True, "points": points, "grade_id": name,
            "schema_version": 3}}))
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course root: config, source notebook, gradebook with scores, autograded notebooks with records."""
    root = tmp_path_factory.mktemp("course")
    (root / "nbgrader_config.py").write_text(
        "from pathlib import Path\nfrom flowcourse_instructor.grading.config import configure\n"
        "configure(get_config(), Path(__file__).parent, course_id='report-toy')  # noqa: F821\n")
    for lesson in (LESSON, UNRELEASED):
        (root / "solutions" / lesson).mkdir(parents=True)
        nbformat.write(_source_notebook(), root / "solutions" / lesson / f"{NOTEBOOK}.ipynb")
    with pytest.MonkeyPatch.context() as mp:  # creating a gradebook runs `alembic` from PATH
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            for lesson in (LESSON, EMPTY):
                gb.add_assignment(lesson)
                gb.add_notebook(NOTEBOOK, lesson)
                for name, _, points in sorted(CELLS):  # the gradebook's own order is not the notebook's
                    gb.add_grade_cell(name, NOTEBOOK, lesson, max_score=points, cell_type="code")
            for student in [*ANSWERS, KNOWN_ONLY, PENDING]:
                gb.add_student(student)
            gb.add_submission(LESSON, PENDING)
            for student in ANSWERS:
                cells = _judged(student)
                submission = gb.add_submission(LESSON, student)
                scores = {c["cell"]: c["score"] for c in cells}
                for grade in submission.notebooks[0].grades:
                    grade.auto_score, grade.needs_manual_grade = scores[grade.name], False
                gb.db.commit()
                if student == "gil":
                    for cell in cells:
                        for check in cell["checks"]:
                            del check["mistakes"]
                nb = _source_notebook()
                nb.metadata[META] = {"events": [], "flags": [], "sandbox": "limits", "cells": cells}
                nb.cells.append(nbformat.v4.new_code_cell("print('x' * 10)", outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text='"metadata": {}\n' * 50)]))
                path = root / "autograded" / student / LESSON / f"{NOTEBOOK}.ipynb"
                path.parent.mkdir(parents=True)
                if student == "dee":  # not as nbformat writes it: the whole file is read instead
                    path.write_text(json.dumps(nb))
                else:
                    nbformat.write(nb, path)
    return root


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    """Reading a course's config points the environment at it (``configure``): undone after each test."""
    for name in ("FLOWCOURSE_COURSE_ROOT", "PATH"):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)


class _Page(HTMLParser):
    """The tables (id → rows of cell texts), the images (id → src) and the element texts by id of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: dict[str, str] = {}
        self.by_id: dict[str, str] = {}
        self._table = self._cell = None
        self._open: list[tuple[str, str | None]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images[attrs.get("id")] = attrs.get("src", "")
            return
        if tag in ("meta", "br"):
            return
        self._open.append((tag, attrs.get("id")))
        if attrs.get("id"):
            self.by_id[attrs["id"]] = ""
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        if self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        for _, ident in self._open:
            if ident:
                self.by_id[ident] += data


def _body(page: _Page, table: str) -> list[list[str]]:
    return page.tables[table][1:]


def _png(src: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    data = base64.b64decode(src[len(prefix):], validate=True)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and image.width > 300 and image.height > 100
    return image


# -------------------------------------------------------------------------------------- the judge's record

def test_the_judge_names_the_mistake_each_failed_case_matched():
    result = judge_check(DOUBLE, _evidence(DOUBLE, ANSWERS["cy"]["double"]), reference=KEY["double"])
    assert [(c.passed, c.mistake) for c in result.cases] == [(True, ""), (False, "forgot the factor")]
    assert result.cases[1].hint.startswith("forgot the factor: ")  # the student's message is unchanged
    flipped = judge_check(DOUBLE, _evidence(DOUBLE, ANSWERS["dee"]["double"]), reference=KEY["double"])
    assert [c.mistake for c in flipped.cases] == ["", ""] and "sign is flipped" in flipped.cases[0].hint
    record = cell_record("test-a", 2.0, 1.0, [result], [])
    check = record["checks"][0]
    assert check["mistakes"] == ["forgot the factor"] and len(check["problems"]) == 1
    assert "forgot the factor: double it" in check["problems"][0]
    assert (record["passed"], record["total"], record["score"]) == (1, 2, 1.0)


# -------------------------------------------------------------------------------------- the numbers

def test_summary_counts_students_cells_and_mistakes(course):
    s = report.summarize(course, LESSON)
    assert (s.graded, s.pending, s.not_handed_in, s.max_points) == (5, 1, 1, 4.0)
    assert sorted(s.totals) == [0.0, 1.0, 2.0, 4.0, 4.0]  # dee, bob, cy (1 of 2 cases of double), ann, gil
    assert [(c.name, c.full, c.partial, c.zero) for c in s.cells] == [
        ("test-b", 2, 0, 3), ("test-a", 2, 1, 2), ("test-c", 4, 0, 1)]
    assert [c.checks for c in s.cells] == [["inc"], ["double"], ["quiz_q1"]]
    # ranked by students; bob's mistake on two cases of one check counts once; dee's sign flip is not named;
    # gil's notebook was graded before mistake names were recorded: counted apart
    assert [(m.name, m.check, m.cell, m.students) for m in s.mistakes] == [
        ("off by two", "inc", "test-b", 3), ("forgot the factor", "double", "test-a", 2)]
    assert s.unrecorded == 1
    assert "add one, not two" in s.mistakes[0].example and "z = (1, 2)" in s.mistakes[0].example


def test_the_page_shows_the_numbers_and_embedded_figures(course, tmp_path):
    path = report.write_report(course, LESSON, out=tmp_path)
    assert path == tmp_path / f"{LESSON}.html"
    text = path.read_text(encoding="utf-8")
    assert '<meta name="viewport"' in text and "max-width" in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched: works offline
    page = _Page(text)
    assert page.by_id["graded"].split() == ["5", "students", "graded"]
    assert page.by_id["not-handed-in"].split()[0] == "1" and page.by_id["pending"].split()[0] == "1"
    assert page.by_id["mean"].split()[0] == "2.2"  # (0 + 1 + 2 + 4 + 4) / 5
    assert [row[:6] for row in _body(page, "cells")] == [
        ["test-b", "inc", "1", "2", "0", "3"], ["test-a", "double", "2", "2", "1", "2"],
        ["test-c", "quiz_q1", "1", "4", "0", "1"]]
    rows = _body(page, "mistakes")  # each mistake, then one example message on a row of its own
    assert rows[0::2] == [["off by two", "inc (test-b)", "3"], ["forgot the factor", "double (test-a)", "2"]]
    assert len(rows[1]) == 1 and "off by two: add one, not two" in rows[1][0]
    assert "forgot the factor: double it" in rows[3][0]
    assert "unrecorded" in page.by_id
    assert set(page.images) == {"fig-scores", "fig-cells", "fig-mistakes"}
    for src in page.images.values():
        _png(src)


def test_an_empty_lesson_gets_a_page_saying_so(course, tmp_path):
    for lesson, says in ((EMPTY, "Nothing graded yet"), (UNRELEASED, "not released")):
        page = _Page(report.write_report(course, lesson, out=tmp_path).read_text(encoding="utf-8"))
        assert says in page.by_id["empty"] and not page.images and not page.tables
        assert page.by_id["graded"].split()[0] == "0"
    assert report.summarize(course, EMPTY).not_handed_in == 7  # every student the gradebook knows


def test_write_reports_writes_every_lesson_atomically(course):
    folder = course / "reports"
    old = folder / f"{LESSON}.html"
    folder.mkdir(exist_ok=True)
    old.write_text("the page an instructor has open")
    reader = old.open(encoding="utf-8")
    paths = report.write_reports(course)
    assert sorted(p.name for p in paths) == sorted(f"{x}.html" for x in (LESSON, EMPTY, UNRELEASED))
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no temporary file left
    assert reader.read() == "the page an instructor has open"  # replaced, not rewritten in place
    reader.close()
    assert "students graded" in old.read_text(encoding="utf-8")
    assert stat.S_IMODE(old.stat().st_mode) == 0o644
    assert [p.name for p in report.write_reports(course, [EMPTY], out=course / "elsewhere")] == [f"{EMPTY}.html"]


def test_no_gradebook_yet_says_what_to_run_first(tmp_path):
    from flowcourse_instructor.grading.pipeline import OrderError

    (tmp_path / "nbgrader_config.py").write_text(
        "from pathlib import Path\nfrom flowcourse_instructor.grading.config import configure\n"
        "configure(get_config(), Path(__file__).parent)  # noqa: F821\n")
    with pytest.raises(OrderError, match="flowcourse release"):
        report.write_reports(tmp_path)
    assert not (tmp_path / "gradebook.db").exists()  # reading never creates a gradebook
    page = _Page(report.write_report(tmp_path, LESSON).read_text(encoding="utf-8"))  # the service's call: a page
    assert "not released" in page.by_id["empty"]
