"""The real course: every lesson's solution gets full automatic marks, its blank release 0, and every
lesson-specific sample student (``autograder/sample_class/``) its expected score and message.

Graded exactly as students are (release, nbgrader autograde in the sandbox, the judge) in a throwaway copy
of the course root. The generic robustness students are exercised on the fixture course
(``test_grading_pipeline.py``); ``flowcourse demo`` runs them on the real course too. Written answers are
graded by hand and are not part of the automatic marks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowcourse_instructor.cli import main
from flowcourse_instructor.grading import pipeline
from flowcourse_instructor.grading.sampleclass import lessons, load_sample_class, materialize

REPO = Path(__file__).resolve().parents[1]
LESSONS = lessons(REPO)
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not LESSONS, reason="no lesson in solutions/ yet")]


STUDENTS = [(s.id, s.lesson) for s in load_sample_class(REPO, REPO, robustness=False)] if LESSONS else []


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    work = pipeline.prepare_workspace(REPO, tmp_path_factory.mktemp("course"))
    pipeline.release(work)
    students = load_sample_class(REPO, work, robustness=False)
    materialize(students, work)
    rows = pipeline.grade(work, workers=2, progress=False)
    return work, rows, {(s.id, s.lesson): s for s in students}


@pytest.mark.parametrize("who, lesson", STUDENTS)
def test_each_student_gets_the_expected_grade(graded, who, lesson):
    work, rows, students = graded
    student = students[(who, lesson)]
    mine = [r for r in rows if r.student == who and r.lesson == lesson]
    problems = pipeline.verify(work, student, rows, isolated=any(r.mode != "limits" for r in rows))
    if problems[:1] and problems[0].startswith(pipeline.NOT_CHECKED):
        pytest.skip(problems[0])
    assert problems == [], "\n".join(problems + [m for r in mine for m in r.messages])
    if who in ("full", "blank"):
        assert all(not r.error for r in mine), [r.error for r in mine]


def test_committed_release_is_in_sync_with_solutions(capsys):
    status = main(["--root", str(REPO), "release", "--check"])
    assert status == 0, capsys.readouterr().out
