"""The sample class fails loudly: a student of an unknown lesson or cell is an error, never dropped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flowcourse_instructor.grading import pipeline
from flowcourse_instructor.grading.sampleclass import Student, load_sample_class, materialize, resolve_names

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE, root)
    pipeline.release(root)
    return root


def _students_file(root: Path, text: str) -> None:
    (root / "solutions" / "00-toy" / "students.py").write_text(text)


def test_a_student_of_an_unknown_lesson_is_an_error(course):
    _students_file(course, 'STUDENTS = [{"id": "lost", "lesson": "99-nowhere", "patches": {}}]\n')
    with pytest.raises(ValueError, match="99-nowhere"):
        load_sample_class(course, course)


def test_a_student_patching_an_unknown_cell_is_an_error(course):
    _students_file(course, 'STUDENTS = [{"id": "typo", "patches": {"no_such_function": "x = 1"}}]\n')
    students = [s for s in load_sample_class(course, course) if s.id == "typo"]
    assert students and students[0].lesson == "00-toy"  # the lesson is the folder's
    with pytest.raises(ValueError, match="no cell 'no_such_function'"):
        materialize(students, course)


def test_graded_names_resolve_to_the_answer_and_the_test_cells(course):
    student = resolve_names(course, Student("s", "00-toy", patches={"affine_forward": "x"},
                                            expect_points={"toy_affine_forward": 0}))
    assert student.patches == {"affine_forward_answer": "x"}
    assert student.expect_points == {"test_affine_forward": 0}


def test_an_expectation_that_needs_isolation_is_reported_not_checked_without_it():
    student = Student("cheat-copy-key", "00-toy", needs_isolation=True)
    rows = [pipeline.Row("cheat-copy-key", "00-toy", "toy")]
    problems = pipeline.verify(FIXTURE, student, rows, isolated=False)
    assert len(problems) == 1 and problems[0].startswith(pipeline.NOT_CHECKED) and "isolation" in problems[0]
    lines: list[str] = []
    assert pipeline.print_table(rows, [student], FIXTURE, out=lines.append) == 0
    assert any(" skip " in line for line in lines) and any("not checked" in line for line in lines)
