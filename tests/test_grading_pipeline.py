"""End to end on the fixture course: release, the whole sample class graded, feedback, export, re-grading.

Every sample student (full solution, blank release, each classic mistake, crash, infinite loop, memory
bomb, warnings, each cheat of issue 3, deleted/edited test cells, a renamed notebook, a corrupt file)
must get exactly its expected score and message, in whatever isolation mode this machine supports.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from flowcourse_instructor.cli import main
from flowcourse_instructor.grading import pipeline
from flowcourse_instructor.grading.sampleclass import expected_points

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"
pytestmark = pytest.mark.slow


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    work = tmp_path_factory.mktemp("toycourse")
    lines: list[str] = []
    rows, students, mismatches = pipeline.demo(FIXTURE, work, workers=2, progress=False, out=lines.append)
    return work, rows, students, mismatches, "\n".join(lines)


def test_every_sample_student_is_graded_as_expected(graded):
    work, rows, students, mismatches, table = graded
    assert mismatches == 0, table
    isolated = any(r.mode in ("root", "userns") for r in rows)
    skipped = []
    for student in students:
        problems = pipeline.verify(work, student, rows, isolated)
        if problems[:1] and problems[0].startswith(pipeline.NOT_CHECKED):
            skipped.append(problems[0])
            continue
        assert problems == [], (student.id, table)
    if skipped:
        pytest.skip("; ".join(skipped))
    assert len({(r.student, r.lesson) for r in rows}) == len(students)
    assert f"{len(rows)}/{len(rows)} notebooks graded as expected" in table
    assert "kernel isolation:" in table and "flagged for review" in table


def test_the_verdicts_can_fail(graded):
    """The expectations are not vacuous: a wrong expectation is reported."""
    work, rows, students, _, _ = graded
    full = next(s for s in students if s.id == "full")
    full.expect_points = {cell: 0.0 for cell in expected_points(work, full)}
    assert pipeline.verify(work, full, rows, True)


def test_standard_nbgrader_commands_work_from_the_course_root(graded):
    work, rows, *_ = graded
    before = {(r.student, r.cells.get("test_gauss")) for r in rows if r.student == "mistake-not-summed"}
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    result = subprocess.run(["nbgrader", "autograde", "00-toy", "--student", "mistake-not-summed", "--force"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    again = pipeline.grade(work, students=["mistake-not-summed"], workers=1, progress=False)
    assert {(r.student, r.cells.get("test_gauss")) for r in again} == before == {("mistake-not-summed", 0.0)}


def test_regrading_is_idempotent_and_never_touches_submissions(graded):
    work, rows, *_ = graded
    submitted = _hashes(work / "submitted")
    some = ["full", "mistake-sign", "unreadable", "renamed", "cheat-rewrite-gradebook"]
    again = pipeline.grade(work, students=some, workers=2, progress=False)
    first = {(r.student, r.notebook): (r.score, r.cells) for r in rows if r.student in some}
    assert {(r.student, r.notebook): (r.score, r.cells) for r in again} == first
    assert _hashes(work / "submitted") == submitted


def test_feedback_shows_verdicts_never_hidden_tests(graded):
    work, rows, *_ = graded
    html = (work / "feedback" / "mistake-sign" / "00-toy" / "toy.html").read_text()
    assert "the sign is flipped" in html and "0 / 3" in html
    assert "BEGIN HIDDEN TESTS" not in html and 'class="n">check</span>' not in html
    assert "hidden test: its source is not shown" in html
    assert "demo cell: not run during grading" in html
    assert not (work / "feedback" / "renamed").exists()
    assert next(r for r in rows if r.student == "renamed").error.startswith("no notebook named toy.ipynb")


def test_autograded_notebooks_record_mode_flags_and_verdicts(graded):
    work, rows, *_ = graded
    nb = nbformat.read(work / "autograded" / "cheat-allclose" / "00-toy" / "toy.ipynb", 4)
    record = nb.metadata["flowcourse"]
    assert record["sandbox"] in ("root", "userns", "limits")
    assert any("torch.allclose" in f for f in record["flags"])
    cells = {c["cell"]: c for c in record["cells"]}
    assert cells["test_gauss"]["score"] == 0 and cells["test_affine_forward"]["score"] == 3
    warn = nbformat.read(work / "autograded" / "warnings" / "00-toy" / "toy.ipynb", 4)
    assert all(c["score"] == c["points"] for c in warn.metadata["flowcourse"]["cells"])
    if record["sandbox"] != "limits":  # the kernel ran in its own folder and saw no course file around it
        reader = nbformat.read(work / "autograded" / "cheat-read-files" / "00-toy" / "toy.ipynb", 4)
        printed = "".join(o.get("text", "") for c in reader.cells for o in c.get("outputs", []))
        assert "no gradebook: unable to open database file" in printed


def test_export_lists_every_student(graded):
    work, rows, *_ = graded
    exported = pipeline.read_csv(work / "grades.csv")
    by_student = {r["student_id"]: float(r["raw_score"]) for r in exported}
    assert by_student["full"] == 9.0 and by_student["blank"] == 0.0 and by_student["renamed"] == 0.0
    assert set(by_student) == {r.student for r in rows}


def test_release_check_detects_an_out_of_sync_course(graded, capsys):
    work, *_ = graded
    assert main(["--root", str(work), "release", "--check"]) == 0
    release = work / "course" / "00-toy" / "toy.ipynb"
    nb = nbformat.read(release, 4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert [c.id for c in nb.cells] == [c.id for c in nbformat.read(FIXTURE / "solutions" / "00-toy" / "toy.ipynb",
                                                                      4).cells]  # stable ids
    assert "BEGIN HIDDEN TESTS" not in release.read_text() and "BEGIN SOLUTION" not in release.read_text()
    original = release.read_text()
    try:
        release.write_text(original.replace("Toy lesson", "Toy lesson (edited by hand)"))
        assert main(["--root", str(work), "release", "--check"]) == 1
        assert "out of date: course/00-toy/toy.ipynb" in capsys.readouterr().out
    finally:
        release.write_text(original)
