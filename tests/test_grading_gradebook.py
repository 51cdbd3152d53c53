"""SQLite is single-writer: parallel grading is safe because writers wait (busy timeout) and never collide.

``flowcourse grade --workers N`` runs one nbgrader autograde per (student, lesson) in N processes sharing
``gradebook.db``. The course's ``db_url`` carries ``?timeout=60``; students are created up front by one
process; each worker writes only its own submission's rows. These tests show that a locked database makes
a writer without the timeout fail, the same writer with it wait and succeed, and that many processes
writing submissions the way ``SaveAutoGrades`` does leave a complete, consistent gradebook.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook, InvalidEntry
from sqlalchemy.exc import OperationalError

CELLS = ("c1", "c2", "c3")


@pytest.fixture(autouse=True, scope="module")
def _alembic_on_path():
    """nbgrader runs `alembic` from PATH when it creates a gradebook (the course config does the same)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """An empty gradebook with one assignment (creating one runs alembic: seconds, so only once)."""
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    with Gradebook(f"sqlite:///{path}") as gb:
        gb.add_assignment("a1")
        gb.add_notebook("nb", "a1")
        for cell in CELLS:
            gb.add_grade_cell(cell, "nb", "a1", max_score=2, cell_type="code")
    return path


def _setup(template, path, students):
    shutil.copy(template, path)
    with Gradebook(f"sqlite:///{path}") as gb:
        for s in students:  # like `flowcourse grade`: one process creates every student first
            gb.update_or_create_student(s)


def _hold_lock(path, ready, seconds):
    db = sqlite3.connect(path, timeout=0)
    db.execute("BEGIN IMMEDIATE")  # a writer in the middle of a transaction
    db.execute("insert into student (id) values ('holder')")
    ready.set()
    time.sleep(seconds)
    db.commit()


@pytest.mark.parametrize("timeout, should_fail", [(0, True), (30, False)])
def test_a_locked_gradebook_fails_without_busy_timeout_and_waits_with_it(template, tmp_path, timeout, should_fail):
    path = tmp_path / "gradebook.db"
    _setup(template, path, [])
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(path), ready, 1.5))
    holder.start()
    assert ready.wait(30)
    try:
        start = time.monotonic()
        if should_fail:
            with pytest.raises((OperationalError, InvalidEntry), match="database is locked"):
                with Gradebook(f"sqlite:///{path}?timeout={timeout}") as gb:
                    gb.update_or_create_student("bob")
        else:
            with Gradebook(f"sqlite:///{path}?timeout={timeout}") as gb:
                gb.update_or_create_student("bob")
            assert time.monotonic() - start > 0.5  # it waited for the holder to commit
    finally:
        holder.join(30)


def _grade_students(path, students, score):
    with Gradebook(f"sqlite:///{path}?timeout=60") as gb:
        for student in students:
            gb.update_or_create_submission("a1", student)
            for cell in CELLS:  # exactly how SaveAutoGrades records a score: find, set, commit per cell
                grade = gb.find_grade(cell, "nb", "a1", student)
                grade.auto_score = score(student, cell)
                grade.needs_manual_grade = False
                gb.db.commit()


def _score(student: str, cell: str) -> float:
    return float((int(student[1:]) + CELLS.index(cell)) % 3)


def test_parallel_workers_leave_a_complete_consistent_gradebook(template, tmp_path):
    path = tmp_path / "gradebook.db"
    students = [f"s{i:03d}" for i in range(48)]
    _setup(template, path, students)
    ctx = multiprocessing.get_context("fork")
    shares = [students[i::4] for i in range(4)]
    workers = [ctx.Process(target=_grade_students, args=(str(path), share, _score)) for share in shares]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    with Gradebook(f"sqlite:///{path}") as gb:
        for student in students:
            grades = {g.name: g.auto_score for g in gb.find_submission_notebook("nb", "a1", student).grades}
            assert grades == {cell: _score(student, cell) for cell in CELLS}
