r"""Lesson run times: every ``solutions/*/*.ipynb`` executed end to end, one after another.

``python -m benchmarks.lessons [--lesson NAME]`` copies each lesson's folder to a temporary directory, runs
the notebook there with nbclient (kernel ``python3`` of this interpreter's environment, cwd = the copied
lesson folder, **all** cells, ``demo`` ones included), and prints one row per lesson:

* **wall s** — from the kernel's start to the last cell's end, as a student waits for it;
* **kernel CPU s** — user + system time of the kernel process and its children, read inside the kernel by
  an appended last cell (``resource.getrusage``). Unlike wall time it hardly moves when other jobs share the
  machine, so it is the figure to compare between runs;
* the verdict against the issue's goals: each lesson :math:`\le 30` s, the whole course :math:`\le 3` min.

Wall time is inflated on a loaded machine, so the machine (cores, load averages at start and end) is
printed with the table. Nothing here asserts a time: it is a report, not a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from benchmarks.timing import load, machine

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
LESSON_GOAL_S = 30.0
COURSE_GOAL_S = 180.0
CELL_TIMEOUT_S = 600
_MARK = "FLOWCOURSE_BENCH_CPU "

# Appended as the notebook's last cell: the kernel's own CPU time, and its children's (e.g. a subprocess).
CPU_CELL = f"""\
import resource as _resource
_self, _kids = _resource.getrusage(_resource.RUSAGE_SELF), _resource.getrusage(_resource.RUSAGE_CHILDREN)
print("{_MARK}" + str(_self.ru_utime + _self.ru_stime + _kids.ru_utime + _kids.ru_stime))
"""


@dataclass(frozen=True)
class LessonTime:
    """One executed lesson: its name, wall seconds, kernel CPU seconds and the first error, if any."""

    name: str
    wall_s: float
    cpu_s: float
    error: str | None = None


def lesson_notebooks(only: str | None = None) -> list[Path]:
    """The solutions notebooks in course order; ``only`` keeps those whose folder name contains it."""
    notebooks = sorted(SOLUTIONS.glob("*/*.ipynb"))
    if only is not None:
        notebooks = [nb for nb in notebooks if only in nb.parent.name]
        if not notebooks:
            names = ", ".join(p.parent.name for p in sorted(SOLUTIONS.glob("*/*.ipynb")))
            raise SystemExit(f"no lesson matches {only!r}; lessons: {names}")
    return notebooks


def _first_error(nb: nbformat.NotebookNode) -> str | None:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name = cell.metadata.get("nbgrader", {}).get("grade_id") or str(index)
                return f"cell {name}: {output.get('ename')}: {output.get('evalue', '')[:120]}"
    return None


def _kernel_cpu(nb: nbformat.NotebookNode) -> float:
    for output in nb.cells[-1].get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith(_MARK):
                return float(line[len(_MARK):])
    return float("nan")


def run_lesson(notebook: Path, save_to: Path | None = None) -> LessonTime:
    """Execute a copy of ``notebook`` in a temporary copy of its folder and time it; optionally save the result."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="flowcourse-bench-") as tmp:
        folder = Path(tmp) / notebook.parent.name
        shutil.copytree(notebook.parent, folder)
        nb = nbformat.read(folder / notebook.name, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
        client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, allow_errors=True, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}},
                                extra_arguments=["--IPKernelApp.log_level=ERROR"])  # the kernel's own log: noise
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save_to / notebook.name)
    return LessonTime(notebook.parent.name, wall, _kernel_cpu(nb), _first_error(nb))


def verdict(seconds: float, goal: float) -> str:
    """``PASS`` when ``seconds <= goal``, else how far over."""
    return "PASS" if seconds <= goal else f"over by {seconds - goal:.0f} s"


def table(rows: list[LessonTime]) -> str:
    """The markdown table of lessons and the total, with the goals' verdicts on wall and CPU time."""
    lines = [f"| lesson | wall s | kernel CPU s | goal ≤ {LESSON_GOAL_S:.0f} s (wall) | goal (CPU) |",
             "|---|---:|---:|---|---|"]
    for r in rows:
        note = f" — ERROR {r.error}" if r.error else ""
        lines.append(f"| {r.name} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {verdict(r.wall_s, LESSON_GOAL_S)}{note} "
                     f"| {verdict(r.cpu_s, LESSON_GOAL_S)} |")
    wall, cpu = sum(r.wall_s for r in rows), sum(r.cpu_s for r in rows)
    lines.append(f"| **total** (goal ≤ {COURSE_GOAL_S:.0f} s) | {wall:.1f} | {cpu:.1f} "
                 f"| {verdict(wall, COURSE_GOAL_S)} | {verdict(cpu, COURSE_GOAL_S)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lessons", description=__doc__.split("\n")[0])
    parser.add_argument("--lesson", help="run only the lessons whose folder name contains this")
    parser.add_argument("--json", type=Path, help="also write the measurements to this JSON file")
    parser.add_argument("--save-executed", type=Path, metavar="DIR",
                        help="write each executed notebook (with its outputs) to DIR, e.g. to read the demos' figures")
    args = parser.parse_args(argv)
    notebooks = lesson_notebooks(args.lesson)
    print(f"machine: {machine()}")
    print(f"load average at start: {load()}")
    rows = []
    for notebook in notebooks:
        row = run_lesson(notebook, args.save_executed)
        print(f"  {row.name}: {row.wall_s:.1f} s wall, {row.cpu_s:.1f} s kernel CPU"
              + (f"  ERROR {row.error}" if row.error else ""), flush=True)
        rows.append(row)
    print(f"load average at end:   {load()}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
