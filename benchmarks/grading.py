"""Grading throughput: a synthetic class of one lesson, ``flowcourse grade`` against plain ``nbgrader autograde``.

``python -m benchmarks.grading [--size 200] [--plain-size 50] [--lesson 01-change-of-variables]``

The class holds every sample-class student of the lesson once (the full solution, the blank release, each
classic mistake, and the robustness set: an exception, an infinite loop, a memory bomb, a killed kernel,
cheats, deleted and edited tests, a renamed and a corrupt file), then ordinary submissions (full, blank,
classic mistakes, exceptions, warnings, edited or deleted tests) drawn with a fixed seed up to ``--size``.

* **flowcourse** — :func:`flowcourse_instructor.grading.pipeline.grade` (what ``flowcourse grade --workers N`` runs):
  worker processes, kernels forked from a warm fork server. Every grade is checked against the student's
  expectation, so a fast but wrong grader cannot pass.
* **plain nbgrader** — ``nbgrader autograde LESSON --force`` on the same configuration in a copy of the
  course, one notebook after another, each kernel a fresh interpreter. ``--plain-size`` grades an even
  stride through the class (every kind stays in proportion) and the table projects the whole class from
  its rate; ``--plain-size`` equal to ``--size`` measures it all. Both runs' scores are compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.timing import load, print_table
from flowcourse_instructor.grading.pipeline import grade, prepare_workspace, release, verify
from flowcourse_instructor.grading.sampleclass import Student, load_sample_class, materialize

ROOT = Path(__file__).resolve().parents[1]
ORDINARY = ("full", "blank", "raises", "warnings", "deleted-test", "edited-test")  # plus the lesson's mistakes


def synthetic_class(course: Path, lesson: str, size: int, seed: int = 0) -> list[Student]:
    """Every sample-class student of ``lesson`` once, then ordinary kinds drawn with ``seed`` up to ``size``."""
    kinds = [s for s in load_sample_class(ROOT, course) if s.lesson == lesson]
    if not kinds:
        raise SystemExit(f"no sample-class students for lesson {lesson!r}")
    ordinary = [s for s in kinds if s.id in ORDINARY or s.id.startswith("l")]
    rng = random.Random(seed)
    picks = kinds + [rng.choice(ordinary) for _ in range(max(0, size - len(kinds)))]
    return [dataclasses.replace(s, id=f"s{n:03d}-{s.id}") for n, s in enumerate(picks[:size])]


def _stride(students: list[Student], k: int) -> list[Student]:
    if k >= len(students):
        return list(students)
    step = len(students) / k
    return [students[int(i * step)] for i in range(k)]


def _totals(root: Path, lesson: str, students: list[Student]) -> dict[str, float]:
    from nbgrader.api import Gradebook, MissingEntry

    from flowcourse_instructor.grading.pipeline import load_config

    out = {}
    with Gradebook(load_config(root).CourseDirectory.db_url) as gb:
        for s in students:
            try:
                out[s.id] = float(gb.find_submission(lesson, s.id).score)
            except MissingEntry:
                out[s.id] = float("nan")
    return out


def _machine() -> str:
    return f"{os.cpu_count()} cores, load average {load()}"


def run(lesson: str, size: int, plain_size: int, workers: int) -> int:
    with tempfile.TemporaryDirectory(prefix="flowcourse-bench-") as tmp:
        course = prepare_workspace(ROOT, Path(tmp) / "flowcourse")
        release(course)
        students = synthetic_class(course, lesson, size)
        plain_students = _stride(students, plain_size)
        plain = Path(tmp) / "plain"
        shutil.copytree(course, plain)
        materialize(students, course)
        materialize(plain_students, plain)
        print(f"{len(students)} submissions of {lesson}; {_machine()}", flush=True)

        start = time.perf_counter()
        rows = grade(course, workers=workers, lessons_only=[lesson], progress=False)
        ours = time.perf_counter() - start
        isolated = any(r.mode in ("root", "userns") for r in rows)
        wrong = [s.id for s in students if verify(course, s, rows, isolated)]
        print(f"flowcourse grade --workers {workers}: {ours:.1f} s; {_machine()}", flush=True)

        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        start = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", lesson, "--force"],
                              cwd=plain, env=env, capture_output=True, text=True)
        base = time.perf_counter() - start
        # nbgrader exits 1 when any submission could not be graded (the corrupt file): expected here
        print(f"nbgrader autograde: {base:.1f} s for {len(plain_students)} (exit {done.returncode}); {_machine()}",
              flush=True)
        a, b = _totals(course, lesson, plain_students), _totals(plain, lesson, plain_students)
        differ = [k for k in a if not abs(a[k] - b[k]) <= 1e-6 and not (a[k] != a[k] and b[k] != b[k])]

    ours_rate, plain_rate = len(students) / ours * 60, len(plain_students) / base * 60
    projected = len(students) / plain_rate * 60
    print_table(
        f"Grading throughput — {lesson}, {len(students)} submissions",
        ["grader", "graded", "seconds", "per minute", f"{len(students)} would take"],
        [[f"flowcourse grade --workers {workers}", len(students), f"{ours:.1f}", f"{ours_rate:.1f}",
          f"{ours / 60:.1f} min"],
         ["nbgrader autograde (sequential)", len(plain_students), f"{base:.1f}", f"{plain_rate:.1f}",
          f"{projected / 60:.1f} min" + ("" if len(plain_students) == len(students) else " (projected)")]],
        note=(f"speed-up {ours_rate / plain_rate:.2f}x (goal >= 2x); whole class {ours / 60:.1f} min (goal <= 5 min)\n"
              f"grades as each student's expectation: {len(students) - len(wrong)}/{len(students)}"
              + (f" (not: {', '.join(wrong[:5])})" if wrong else "") + "\n"
              f"same scores from both graders: {len(plain_students) - len(differ)}/{len(plain_students)}"
              + (f" (differ: {', '.join(differ[:5])})" if differ else "")))
    return 1 if wrong or differ else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lesson", default="01-change-of-variables")
    parser.add_argument("--size", type=int, default=200, help="submissions in the class")
    parser.add_argument("--plain-size", type=int, default=50, help="submissions plain nbgrader grades")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    return run(args.lesson, args.size, min(args.plain_size, args.size), args.workers)


if __name__ == "__main__":
    sys.exit(main())
