"""The grading policy: everything a grading task needs besides the submission, as one explicit value.

A task may run in another process or on another machine (:mod:`.engine` runs tasks on Dask workers), so
nothing about *how* to grade may live in module globals or environment variables of the process that asked.
:class:`GradingPolicy` carries it instead, built once by the grader (``flowcourse grade`` or the grading
service) before any student code runs:

``course_root``     the course being graded (its lesson folders are registered from there);
``sandbox_mode``    the isolation every kernel gets (``root``, ``userns``, ``limits``; ``auto`` is resolved
                    once by :meth:`GradingPolicy.resolved`, not per notebook);
limits              ``cell_timeout`` and ``notebook_budget`` (seconds), ``memory_mb``, ``file_mb``, ``nproc``;
``fork_kernels``    start kernels from a warm fork server (:mod:`.forkserver`);
``trusted``         each notebook's hidden-test sources as the gradebook held them when the policy was made:
                    a kernel that rewrote the gradebook (possible only without a sandbox) changes nothing later;
``fingerprints``    a hash of each lesson's ``checks.py`` as the grader read it: a kernel running other specs
                    (edited while a class is graded) is reported as a grading error, not as a wrong answer.

The value travels as JSON (:meth:`to_json`): inside ``nbgrader_config.py`` (``c.GradingPolicy.json``, read by
the preprocessors with :meth:`from_config`) and with every task.

>>> p = GradingPolicy(course_root="/course", sandbox_mode="limits", trusted={"01-x/01-x": {"t1": "check('a', a)"}})
>>> GradingPolicy.from_json(p.to_json()) == p
True
>>> p.trusted_sources("01-x", "01-x")
{'t1': "check('a', a)"}
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GradingPolicy", "checks_fingerprint", "lesson_gradebook"]


def checks_fingerprint(checks_file: str | os.PathLike) -> str:
    """A short hash of a lesson's ``checks.py`` (the kernel sends its own with the evidence)."""
    path = Path(checks_file)
    data = path.read_bytes() if path.is_file() else str(path).encode()
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class GradingPolicy:
    """How to grade: isolation, limits, and the trusted snapshot of tests and specs (see the module docstring)."""

    course_root: str
    sandbox_mode: str = "auto"
    cell_timeout: int = 30
    notebook_budget: int = 600
    memory_mb: int = 4096
    file_mb: int = 64
    nproc: int = 512
    fork_kernels: bool = True
    trusted: dict[str, dict[str, str]] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def for_course(cls, root: str | os.PathLike, **settings: Any) -> GradingPolicy:
        """The policy for grading the course at ``root`` now: sandbox mode resolved, tests and specs snapshotted.

        Call it before any student code runs (it reads the gradebook and the lessons' ``checks.py``).
        """
        import flowcourse_lessons

        root = Path(root).resolve()
        found = flowcourse_lessons.register(root)
        policy = cls(course_root=str(root), **settings).resolved()
        trusted: dict[str, dict[str, str]] = {}
        db = root / "gradebook.db"
        if db.exists():
            from nbgrader.api import Gradebook

            with Gradebook(f"sqlite:///{db}?timeout=60") as gb:
                for assignment in gb.assignments:
                    for nb in assignment.notebooks:
                        graded = {g.name for g in nb.grade_cells}
                        trusted[f"{assignment.name}/{nb.name}"] = {
                            c.name: c.source for c in nb.source_cells if c.name in graded}
        fingerprints = {folder.name: checks_fingerprint(folder / "checks.py") for folder in found.values()
                        if (folder / "checks.py").is_file()}
        return dataclasses.replace(policy, trusted=trusted, fingerprints=fingerprints)

    def resolved(self) -> GradingPolicy:
        """This policy with ``sandbox_mode="auto"`` replaced by the strongest mode this machine offers."""
        from flowcourse_instructor.grading import sandbox

        return dataclasses.replace(self, sandbox_mode=sandbox.detect_mode(self.sandbox_mode))

    # ------------------------------------------------------------------------------------ reading
    def trusted_sources(self, assignment: str, notebook: str) -> dict[str, str] | None:
        """The snapshot of a notebook's test-cell sources (``None``: not snapshotted, read the gradebook)."""
        return self.trusted.get(f"{assignment}/{notebook}")

    def fingerprint(self, lesson_folder: str) -> str | None:
        """The snapshot of a lesson's ``checks.py`` hash, by folder name (``None``: not snapshotted)."""
        return self.fingerprints.get(lesson_folder)

    # ------------------------------------------------------------------------------------ transport
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GradingPolicy:
        return cls(**json.loads(text))

    @classmethod
    def from_config(cls, config: Any) -> GradingPolicy:
        """The policy ``nbgrader_config.py`` carries (``c.GradingPolicy.json``); else the working folder's defaults."""
        text = ""
        with contextlib.suppress(Exception):
            text = config.GradingPolicy.json if "GradingPolicy" in config else ""
        return cls.from_json(text) if isinstance(text, str) and text else cls(course_root=os.getcwd())


def lesson_gradebook(db_url_or_path: str | os.PathLike, lesson: str) -> bytes:
    """A gradebook holding only ``lesson``'s definitions (notebooks, cells, due date), as SQLite bytes.

    What a grading task needs from the course gradebook to run nbgrader's ``autograde`` on another machine: no
    student, no other lesson. Built with nbgrader's own API from the course gradebook (the one truth).
    """
    from nbgrader.api import Gradebook

    path = str(db_url_or_path)
    url = path if path.startswith("sqlite:") else f"sqlite:///{Path(path).resolve()}"
    scratch = Path(tempfile.mkdtemp(prefix="flowcourse-lessondb-"))
    try:
        with Gradebook(url) as source, Gradebook(f"sqlite:///{scratch / 'gradebook.db'}") as dest:
            assignment = source.find_assignment(lesson)
            dest.update_or_create_assignment(lesson, duedate=assignment.duedate)
            for nb in assignment.notebooks:
                dest.update_or_create_notebook(nb.name, lesson)
                for c in nb.grade_cells:
                    dest.update_or_create_grade_cell(c.name, nb.name, lesson, max_score=c.max_score,
                                                     cell_type=c.cell_type)
                for c in nb.solution_cells:
                    dest.update_or_create_solution_cell(c.name, nb.name, lesson)
                for c in nb.task_cells:
                    dest.update_or_create_task_cell(c.name, nb.name, lesson, max_score=c.max_score,
                                                    cell_type=c.cell_type)
                for c in nb.source_cells:
                    dest.update_or_create_source_cell(c.name, nb.name, lesson, source=c.source, checksum=c.checksum,
                                                      cell_type=c.cell_type, locked=c.locked)
        with sqlite3.connect(scratch / "gradebook.db") as con:
            con.execute("VACUUM")
        return (scratch / "gradebook.db").read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
