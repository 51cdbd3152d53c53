"""Instructor commands run in the wrong order say what to run first, exit 2, and leave nothing half written."""

from __future__ import annotations

import shutil
from pathlib import Path

from flowcourse_instructor.cli import main
from flowcourse_instructor.grading import pipeline

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"


def _course(tmp_path: Path, *, submitted: bool = True) -> Path:
    root = pipeline.prepare_workspace(FIXTURE, tmp_path / "course")
    if submitted:
        folder = root / "submitted" / "alice" / "00-toy"
        folder.mkdir(parents=True)
        shutil.copy(FIXTURE / "solutions" / "00-toy" / "toy.ipynb", folder / "toy.ipynb")
    return root


def test_grade_before_release_says_to_release_and_writes_no_gradebook(tmp_path, capsys):
    root = _course(tmp_path)
    assert main(["--root", str(root), "grade"]) == 2
    err = capsys.readouterr().err
    assert "run `flowcourse release` first" in err and "Traceback" not in err
    assert not (root / "gradebook.db").exists() and not (root / "autograded").exists()


def test_grade_a_lesson_missing_from_the_gradebook_names_it(tmp_path, capsys):
    root = _course(tmp_path)
    (root / "gradebook.db").write_bytes(b"")  # a gradebook of another release: no 00-toy in it
    assert main(["--root", str(root), "grade"]) == 2
    assert "not released yet: 00-toy" in capsys.readouterr().err


def test_grade_with_nothing_submitted_says_to_collect(tmp_path, capsys):
    root = _course(tmp_path, submitted=False)
    assert main(["--root", str(root), "grade"]) == 2
    assert "nbgrader collect" in capsys.readouterr().err


def test_feedback_and_export_before_grading_say_what_to_run(tmp_path, capsys):
    root = _course(tmp_path)
    assert main(["--root", str(root), "feedback"]) == 2
    assert "run `flowcourse grade` first" in capsys.readouterr().err
    assert main(["--root", str(root), "export"]) == 2
    assert "run `flowcourse release`" in capsys.readouterr().err
    assert not (root / "grades.csv").exists() and not (root / "gradebook.db").exists()
