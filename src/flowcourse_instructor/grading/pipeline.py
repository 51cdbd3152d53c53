"""The instructor's pipeline, thin over nbgrader's API: release, grade (in parallel), feedback, export, demo.

Every step reads the course root's ``nbgrader_config.py`` (see :mod:`flowcourse_instructor.grading.config`), so what
the CLI does is exactly what ``nbgrader generate_assignment | autograde | generate_feedback | export`` do
from that root. Grading runs one nbgrader ``autograde`` per (student, lesson) in worker processes; they
share the SQLite gradebook safely because (1) every student row is created up front by this process, so
workers never insert the same row, (2) each worker writes only its own submission's rows, in short
transactions, and (3) the database URL carries a 60 s busy timeout, so a writer waits for the lock
instead of failing (``tests/test_grading_gradebook.py`` hammers this).
"""

from __future__ import annotations

import contextlib
import csv
import filecmp
import io
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from tqdm.auto import tqdm

from flowcourse_instructor.grading.policy import GradingPolicy
from flowcourse_instructor.grading.sampleclass import Student, expected_points, lessons, load_sample_class, materialize

__all__ = ["Row", "load_config", "release", "grade", "feedback", "export", "demo", "verify", "print_table",
           "prepare_workspace"]

_WORKING = ("submitted", "autograded", "feedback", "course", "gradebook.db", "grades.csv")


@dataclass
class Row:
    """The grade of one notebook of one student, with everything the report prints."""

    student: str
    lesson: str
    notebook: str
    score: float = 0.0
    max_score: float = 0.0
    auto_max: float = 0.0
    mode: str = ""
    kernel_env: str = ""
    flags: list[str] = field(default_factory=list)
    cells: dict[str, float] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    feedback: str = ""
    error: str = ""


def load_config(root: str | os.PathLike, **overrides: Any) -> Any:
    """The nbgrader ``Config`` of the course at ``root`` (``CourseDirectory`` overrides as keywords)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(Path(root).resolve())).load_config()
    for name, value in overrides.items():
        setattr(config.CourseDirectory, name, value)
    return config


def _api(root: str | os.PathLike, **overrides: Any) -> Any:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = load_config(root, **overrides)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _quiet(call: Callable[[], dict]) -> dict:
    with contextlib.redirect_stderr(io.StringIO()):
        return call()


# --------------------------------------------------------------------------------------------- release

def release(root: str | os.PathLike, *, check: bool = False) -> list[str]:
    """Generate ``course/`` from ``solutions/`` for every lesson (nbgrader ``generate_assignment``).

    With ``check=True`` nothing at ``root`` changes: the release is generated into a temporary folder (with
    a throwaway gradebook) and compared byte for byte with ``course/``; the differences are returned
    (empty: in sync). Without it, returns the lessons released; raises ``RuntimeError`` on failure.
    """
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {"release_directory": f"{tmp}/course", "db_url": f"sqlite:///{tmp}/gradebook.db"} if check else {}
        api = _api(root, **overrides)
        for lesson in lessons(root):
            result = _quiet(lambda lesson=lesson: api.generate_assignment(lesson, force=True, create=True))
            if not result["success"]:
                raise RuntimeError(f"generate_assignment {lesson} failed:\n{result.get('log')}\n{result.get('error')}")
        if not check:
            return lessons(root)
        return _differences(Path(tmp) / "course", root / "course")


def _differences(fresh: Path, committed: Path) -> list[str]:
    def files(base: Path) -> set[str]:
        if not base.is_dir():
            return set()
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()
                and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts}

    new, old = files(fresh), files(committed)
    out = [f"missing from course/: {p}" for p in sorted(new - old)]
    out += [f"not generated from solutions/: course/{p}" for p in sorted(old - new)]
    out += [f"out of date: course/{p}" for p in sorted(new & old)
            if not filecmp.cmp(fresh / p, committed / p, shallow=False)]
    return out


# --------------------------------------------------------------------------------------------- grade

_worker_api: Any = None


def _init_feedback_worker(root: str) -> None:
    global _worker_api
    _worker_api = _api(root)


def _feedback(task: tuple[str, str]) -> tuple[str, str, bool, str]:
    lesson, student = task
    result = _quiet(lambda: _worker_api.generate_feedback(lesson, student, force=True))
    return lesson, student, bool(result["success"]), result.get("error") or ""


def _run(fn: Callable, tasks: list, root: Path, workers: int, desc: str, progress: bool) -> list:
    """Feedback pages in ``workers`` processes (they only read the gradebook; grading itself runs on the engine)."""
    bar = tqdm(total=len(tasks), desc=desc, unit="notebook", disable=not progress)
    results = []
    if workers <= 1 or len(tasks) <= 1:
        _init_feedback_worker(str(root))
        for task in tasks:
            results.append(fn(task))
            bar.update()
    else:  # spawn, not fork: a forked child of a process that already ran torch (OpenMP) can hang
        with multiprocessing.get_context("spawn").Pool(workers, _init_feedback_worker, (str(root),)) as pool:
            for result in pool.imap_unordered(fn, tasks):
                results.append(result)
                bar.update()
    bar.close()
    return results


def _submissions(root: Path, only: Iterable[str] | None, students: Iterable[str] | None) -> list[tuple[str, str]]:
    known = set(lessons(root))
    tasks = []
    for student in sorted(p for p in (root / "submitted").glob("*") if p.is_dir()):
        if students is not None and student.name not in students:
            continue
        for lesson in sorted(p.name for p in student.iterdir() if p.is_dir() and p.name in known):
            if only is None or lesson in only:
                tasks.append((lesson, student.name))
    return tasks


def _db_url(root: Path) -> str:
    return load_config(root).CourseDirectory.db_url


class OrderError(RuntimeError):
    """An instructor command run before the step it needs; the message says what to run first."""


def _require_released(root: Path, lessons: Sequence[str]) -> None:
    """Raise :class:`OrderError` unless every lesson in ``lessons`` is in the gradebook (opening none)."""
    from nbgrader.api import Gradebook, MissingEntry

    if not lessons:
        raise OrderError(f"nothing to grade: no submissions in {root / 'submitted'} "
                         "(collect them first: `nbgrader collect LESSON`)")
    if not (root / "gradebook.db").exists():
        raise OrderError("no gradebook yet: run `flowcourse release` first (it records each lesson's hidden "
                         "tests, which grading compares against)")
    missing = []
    with Gradebook(_db_url(root)) as gb:
        for lesson in lessons:
            try:
                gb.find_assignment(lesson)
            except MissingEntry:
                missing.append(lesson)
    if missing:
        raise OrderError(f"not released yet: {', '.join(missing)} — run `flowcourse release` (or `nbgrader "
                         f"generate_assignment {missing[0]}`) first")


def grade(root: str | os.PathLike, *, workers: int = 2, lessons_only: Sequence[str] | None = None,
          students: Sequence[str] | None = None, progress: bool = True, fork_kernels: bool = True,
          scheduler: str | None = None, policy: GradingPolicy | None = None) -> list[Row]:
    """Autograde every submission in ``submitted/`` on the grading engine (:mod:`.engine`), ``workers`` at a time.

    Each submission is a task (nbgrader ``autograde`` in the sandbox, on a Dask worker); this process alone
    writes the results into ``autograded/`` and the gradebook. A submission nbgrader cannot grade at all (e.g.
    the notebook was renamed) gets 0 for every test of the missing notebook, recorded with the reason.
    Re-grading replaces earlier results. ``scheduler``: a Dask scheduler address (default: a local cluster of
    ``workers`` processes). ``fork_kernels``: start kernels from a warm fork server (:mod:`.forkserver`).
    ``policy``: how to grade (default: :meth:`GradingPolicy.for_course`, taken now, before any student code runs).
    """
    from nbgrader.api import Gradebook

    from flowcourse_instructor.grading.engine import GradingEngine, read_submission, record

    root = Path(root).resolve()
    tasks = _submissions(root, lessons_only, students)
    _require_released(root, sorted({lesson for lesson, _ in tasks}))
    db_url = _db_url(root)
    policy = policy or GradingPolicy.for_course(root, fork_kernels=fork_kernels)
    failed = {}
    bar = tqdm(total=len(tasks), desc="grading", unit="notebook", disable=not progress)
    with GradingEngine(policy, workers=workers, scheduler=scheduler) as engine:
        submissions = [read_submission(root / "submitted" / student / lesson, lesson, student)
                       for lesson, student in tasks]
        for submission, graded in engine.grade(submissions):
            record(root, graded, submission, db_url)
            if not graded.ok:
                failed[(graded.lesson, graded.student)] = graded.error
            bar.update()
    bar.close()
    rows = []
    with Gradebook(db_url) as gb:
        for lesson, student in tasks:
            for nb in sorted((root / "solutions" / lesson).glob("*.ipynb")):
                rows.append(_row(root, gb, lesson, student, nb.stem, failed.get((lesson, student), "")))
    return rows


def _row(root: Path, gb: Any, lesson: str, student: str, notebook: str, error: str) -> Row:
    from flowcourse_instructor.grading.preprocessors import grading_record

    row = Row(student, lesson, notebook)
    path = root / "autograded" / student / lesson / f"{notebook}.ipynb"
    if not path.exists():
        submitted = sorted(p.name for p in (root / "submitted" / student / lesson).glob("*"))
        row.error = (f"no notebook named {notebook}.ipynb was handed in (found: {', '.join(submitted) or 'nothing'})"
                     if f"{notebook}.ipynb" not in submitted else f"grading failed: {error.strip()[-300:]}")
        _zero(gb, lesson, student, notebook)
        row.messages = [row.error]
    else:
        nb = nbformat.read(path, 4)
        record = grading_record(nb)
        row.mode, row.flags = record.get("sandbox", ""), list(record.get("flags", []))
        row.kernel_env = record.get("kernel_env", "")
        row.auto_max = sum(float(c.get("points", 0)) for c in record.get("cells", []))
        for cell in nb.cells:
            if any(o.get("output_type") == "display_data" and "flowcourse-verdict" in str(o.get("data", {}))
                   for o in cell.get("outputs", [])):
                row.messages.append(cell.outputs[0]["data"]["text/plain"])
        if record.get("kernel_error"):
            row.error = f"kernel: {record['kernel_error']}"
        if record.get("internal_errors"):
            row.error = "internal grading error, re-grade: " + "; ".join(record["internal_errors"])
    submission = gb.find_submission_notebook(notebook, lesson, student)
    row.score, row.max_score = float(submission.score), float(submission.max_score)
    if not row.auto_max:  # nothing was judged (e.g. no notebook): the automatic part is every code grade cell
        row.auto_max = sum(float(c.max_score) for c in gb.find_notebook(notebook, lesson).grade_cells
                           if c.cell_type == "code")
    row.cells = {g.name: float(g.score) for g in submission.grades if g.cell_type == "code"}
    return row


def _zero(gb: Any, lesson: str, student: str, notebook: str) -> None:
    gb.update_or_create_submission(lesson, student)
    for grade in gb.find_submission_notebook(notebook, lesson, student).grades:
        if grade.auto_score is None and grade.manual_score is None:
            grade.auto_score, grade.needs_manual_grade = 0.0, False
    gb.db.commit()


# --------------------------------------------------------------------------------------------- feedback

def feedback(root: str | os.PathLike, rows: list[Row], *, workers: int = 2, progress: bool = True) -> list[Row]:
    """nbgrader ``generate_feedback`` for every graded submission; fills each row's ``feedback`` path."""
    root = Path(root).resolve()
    tasks = sorted({(r.lesson, r.student) for r in rows if (root / "autograded" / r.student / r.lesson).is_dir()})
    if not tasks:
        raise OrderError("nothing graded yet: run `flowcourse grade` first")
    _run(_feedback, tasks, root, workers, "feedback", progress)
    for r in rows:
        path = root / "feedback" / r.student / r.lesson / f"{r.notebook}.html"
        r.feedback = str(path.relative_to(root)) if path.exists() else ""
    return rows


def export(root: str | os.PathLike, path: str = "grades.csv") -> Path:
    """nbgrader's CSV export of the gradebook (``nbgrader export``) into ``root/path``."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    root = Path(root).resolve()
    out = root / path
    if not (root / "gradebook.db").exists():
        raise OrderError("no gradebook yet: run `flowcourse release` and `flowcourse grade` first")
    with Gradebook(_db_url(root)) as gb:
        CsvExportPlugin(to=str(out)).export(gb)
    return out


# --------------------------------------------------------------------------------------------- demo

def prepare_workspace(source_root: str | os.PathLike, work: str | os.PathLike) -> Path:
    """A fresh course root at ``work`` with the source's ``solutions/`` and ``nbgrader_config.py``.

    The instructor's own gradebook and submissions are never touched by the demo.
    """
    source_root, work = Path(source_root).resolve(), Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for name in (*_WORKING, "solutions"):
        target = work / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    shutil.copytree(source_root / "solutions", work / "solutions")
    shutil.copy(source_root / "nbgrader_config.py", work / "nbgrader_config.py")
    return work


NOT_CHECKED = "not checked"
KERNEL_ENVS = {"student": "the student environment (no answer key installed)",
               "grader": "the grader's own environment (`make student-env` not run: only the sandbox hides the key)"}


def verify(root: Path, student: Student, rows: list[Row], isolated: bool) -> list[str]:
    """How the graded ``rows`` of ``student`` differ from its expectations (empty: as expected).

    A student whose expectation needs kernel isolation, graded where none ran, gets one line starting with
    :data:`NOT_CHECKED` that says why: a visible skip, never a pass.
    """
    mine = [r for r in rows if r.student == student.id and r.lesson == student.lesson]
    if not mine:
        return ["not graded"]
    problems = []
    if student.needs_isolation and not isolated:
        return [f"{NOT_CHECKED}: this machine has no kernel isolation (root or user namespaces), which "
                f"{student.id!r} needs"]
    if student.expect_total is not None:
        total = sum(r.score for r in mine)
        if not abs(total - student.expect_total) <= 5e-4:
            problems.append(f"total {total:g}, expected {student.expect_total:g}")
    else:
        got = {cell: score for r in mine for cell, score in r.cells.items()}
        for cell, points in expected_points(root, student).items():
            if not abs(got.get(cell, float("nan")) - points) <= 5e-4:  # expectations may be written 1.4286
                problems.append(f"{cell}: {got.get(cell)} points, expected {points:g}")
    text = "\n".join(m for r in mine for m in r.messages)
    problems += [f"feedback lacks {frag!r}" for frag in student.expect_message if frag not in text]
    flags = "\n".join(f for r in mine for f in r.flags)
    problems += [f"no flag {frag!r}" for frag in student.expect_flags if frag not in flags]
    return problems


def print_table(rows: list[Row], students: list[Student] | None = None, root: Path | None = None,
                out: Callable[[str], None] = print) -> int:
    """Print the grade table, flagged submissions and feedback paths; return the number of mismatches."""
    about = {(s.id, s.lesson): s for s in students or []}
    isolated = any(r.mode in ("root", "userns") for r in rows)
    width = max([len(r.student) for r in rows] + [7])
    out(f"{'student':<{width}}  {'lesson':<26} {'auto score':>11} {'manual':>6}  {'flags':>5}  {'check':<5} feedback")
    mismatches = not_checked = 0
    for r in sorted(rows, key=lambda r: (r.lesson, r.student)):
        student = about.get((r.student, r.lesson))
        status = ""
        if student is not None and root is not None:
            problems = verify(root, student, rows, isolated)
            skipped = problems[:1] and problems[0].startswith(NOT_CHECKED)
            status = "ok" if not problems else "skip" if skipped else "FAIL"
            mismatches += bool(problems) and not skipped
            not_checked += bool(skipped)
        manual = f"+{r.max_score - r.auto_max:g}" if r.max_score > r.auto_max else ""
        out(f"{r.student:<{width}}  {r.lesson[:26]:<26} {r.score:>5g}/{r.auto_max:<5g} {manual:>6}  {len(r.flags):>5}  "
            f"{status:<5} {r.feedback or r.error[:60]}")
        if student is not None and status in ("FAIL", "skip"):
            for p in verify(root, student, rows, isolated):
                out(f"{'':<{width}}    ✗ {p}")
    flagged = [r for r in rows if r.flags]
    if flagged:
        out("\nflagged for review (static scan):")
        for r in flagged:
            out(f"  {r.student} / {r.lesson}:")
            for f in r.flags[:6]:
                out(f"      {f}")
    modes = sorted({r.mode for r in rows if r.mode})
    envs = sorted({r.kernel_env for r in rows if r.kernel_env})
    out("kernels ran in " + (" and ".join(KERNEL_ENVS[e] for e in envs) or "no environment (none ran)"))
    out(f"kernel isolation: {', '.join(modes) or 'none ran'}"
        + ("" if isolated else " (limits only: the kernel could read files the grader can read)"))
    if any(r.max_score > r.auto_max for r in rows):
        out("manual: points of written answers, left for a human grader (nbgrader formgrader)")
    if students is not None:
        out(f"{len(rows) - mismatches - not_checked}/{len(rows)} notebooks graded as expected"
            + (f", {not_checked} not checked (see above)" if not_checked else ""))
    return mismatches


def demo(source_root: str | os.PathLike, work: str | os.PathLike | None = None, *, workers: int = 2,
         progress: bool = True, out: Callable[[str], None] = print) -> tuple[list[Row], list[Student], int]:
    """Release → sample class into ``submitted/`` → autograde → feedback → export → grade table.

    Runs in ``work`` (default ``autograder/work`` of the source root), a throwaway copy of the course root.
    Returns the rows, the students and the number of students not graded as expected.
    """
    source_root = Path(source_root).resolve()
    root = prepare_workspace(source_root, work or source_root / "autograder" / "work")
    out(f"demo course root: {root}")
    release(root)
    students = load_sample_class(source_root, root)
    materialize(students, root)
    out(f"sample class: {len(students)} submissions in {root / 'submitted'}")
    rows = grade(root, workers=workers, progress=progress)
    feedback(root, rows, workers=workers, progress=progress)
    csv_path = export(root)
    out(f"grades exported to {csv_path}\n")
    mismatches = print_table(rows, students, root, out)
    return rows, students, mismatches


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of an exported grades CSV."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
