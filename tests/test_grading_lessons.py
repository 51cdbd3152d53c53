"""Every lesson present: its solution gets full automatic marks, its blank release 0, course/ is in sync.

Graded exactly as students are (release, nbgrader autograde in the sandbox, the judge) in a throwaway copy of
the course root. Manually graded written answers are not part of the automatic marks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcourse.cli import main
from flowcourse.grading import pipeline
from flowcourse.grading.sampleclass import Student, lessons, materialize

REPO = Path(__file__).resolve().parents[1]
LESSONS = lessons(REPO)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not LESSONS, reason="no lesson in solutions/ yet")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    work = pipeline.prepare_workspace(REPO, tmp_path_factory.mktemp("course"))
    pipeline.release(work)
    students = [Student(name, lesson, base=base) for lesson in LESSONS
                for name, base in (("full", "solution"), ("blank", "release"))]
    materialize(students, work)
    rows = pipeline.grade(work, workers=2, progress=False)
    return work, rows, {(s.id, s.lesson): s for s in students}


@pytest.mark.parametrize("lesson", LESSONS)
@pytest.mark.parametrize("who", ["full", "blank"])
def test_solution_scores_full_marks_and_blank_release_zero(graded, lesson, who):
    work, rows, students = graded
    mine = [r for r in rows if r.student == who and r.lesson == lesson]
    problems = pipeline.verify(work, students[(who, lesson)], rows, isolated=True)
    assert problems == [], "\n".join(problems + [m for r in mine for m in r.messages])
    assert all(not r.error for r in mine), [r.error for r in mine]


def test_committed_release_is_in_sync_with_solutions(capsys):
    status = main(["--root", str(REPO), "release", "--check"])
    assert status == 0, capsys.readouterr().out
