"""``flowcourse``: the instructor's pipeline (thin over nbgrader) and the student's self-check.

    flowcourse release [--check]      generate course/ from solutions/ (ids stable; --check: fail if out of sync)
    flowcourse grade [--workers N]    autograde submitted/ on the grading engine (Dask), print the grade table
    flowcourse serve                  grade on submit: watch the exchange, grade, release feedback (a hub service)
    flowcourse report [--lesson L]    one HTML page per lesson: scores, pass rates, the most common mistakes
    flowcourse feedback               generate feedback/ for every graded submission
    flowcourse export [--to FILE]     nbgrader's CSV export of the gradebook
    flowcourse demo [--workers N]     the whole pipeline on the bundled sample class (autograder/work/)
    flowcourse check NOTEBOOK         run a notebook's visible cells and summarise its self-checks
    flowcourse book [--out DIR]       build the self-study book (runs every lesson; default book/_build/html)

Run from the course root (the repository root), or pass ``--root``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``flowcourse`` command."""
    parser = argparse.ArgumentParser(prog="flowcourse", description="Normalizing-flows course: grading pipeline.")
    parser.add_argument("--root", default=".", help="course root (default: the current directory)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="generate course/ from solutions/ (nbgrader generate_assignment)")
    p.add_argument("--check", action="store_true", help="only check that course/ is in sync; change nothing")
    p = sub.add_parser("grade", help="autograde every submission in submitted/")
    p.add_argument("--workers", type=int, default=2, help="parallel grading processes (default 2)")
    p.add_argument("--lesson", action="append", help="grade only this lesson (repeatable)")
    p.add_argument("--scheduler", default=None, help="a Dask scheduler address (default: local worker processes)")
    p = sub.add_parser("serve", help="grade each submission as it reaches the exchange and release its feedback")
    p.add_argument("--until-idle", action="store_true", help="stop once nothing is waiting (scripts, tests)")
    p.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    p = sub.add_parser("report", help="write reports/<lesson>.html: the class at a glance")
    p.add_argument("--lesson", action="append", help="only this lesson (repeatable)")
    p.add_argument("--out", default=None, help="folder (default reports/ under the root)")
    sub.add_parser("feedback", help="generate feedback for every graded submission")
    p = sub.add_parser("export", help="export the gradebook to CSV")
    p.add_argument("--to", default="grades.csv", help="output file, relative to the root (default grades.csv)")
    p = sub.add_parser("demo", help="release, grade and give feedback to the bundled sample class")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--work", default=None, help="demo course root (default autograder/work)")
    p = sub.add_parser("check", help="run a notebook's visible cells and print its self-check summary")
    p.add_argument("notebook")
    p.add_argument("--with-demos", action="store_true", help="also run cells tagged demo")
    p.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    p = sub.add_parser("book", help="build the self-study book (Sphinx; executes every lesson)")
    p.add_argument("--out", default=None, help="site folder (default book/_build/html under the root)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``flowcourse``; returns the exit status (2: a step is missing, and the message says which)."""
    from flowcourse_instructor.grading.pipeline import OrderError

    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except OrderError as error:
        print(f"flowcourse {args.command}: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    root = Path(args.root).resolve()
    if args.command == "check":
        from flowcourse.studentcheck import check_notebook

        return check_notebook(args.notebook, with_demos=args.with_demos, timeout=args.timeout)
    if args.command == "book":
        import subprocess

        from flowcourse_instructor.book import build

        try:
            print(f"built {build(root, args.out)}")
        except subprocess.CalledProcessError as error:  # Sphinx has printed why
            return error.returncode
        return 0
    from flowcourse_instructor.grading import pipeline

    if args.command == "release":
        if args.check:
            problems = pipeline.release(root, check=True)
            for p in problems:
                print(p)
            print("course/ is in sync with solutions/" if not problems else
                  f"{len(problems)} difference(s): run `flowcourse release` and commit course/")
            return 1 if problems else 0
        for lesson in pipeline.release(root):
            print(f"released {lesson} -> course/{lesson}")
        return 0
    if args.command == "grade":
        rows = pipeline.grade(root, workers=args.workers, lessons_only=args.lesson, scheduler=args.scheduler)
        pipeline.print_table(rows)
        return 0
    if args.command == "feedback":
        from flowcourse_instructor.grading.sampleclass import lessons

        rows = [pipeline.Row(s.name, lesson.name, nb.stem)
                for s in sorted((root / "autograded").glob("*")) for lesson in sorted(s.glob("*"))
                if lesson.name in lessons(root) for nb in sorted(lesson.glob("*.ipynb"))]
        for r in pipeline.feedback(root, rows):
            print(f"{r.student:<20} {r.lesson:<28} {r.feedback or '(none)'}")
        return 0
    if args.command == "export":
        print(f"wrote {pipeline.export(root, args.to)}")
        return 0
    if args.command == "serve":
        import logging

        from flowcourse_instructor.grading.service import serve

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        serve(root, until_idle=args.until_idle, timeout=args.timeout)
        return 0
    if args.command == "report":
        from flowcourse_instructor.report import write_reports

        for path in write_reports(root, lessons=args.lesson, out=args.out):
            print(f"wrote {path}")
        return 0
    if args.command == "demo":
        _, _, mismatches = pipeline.demo(root, args.work, workers=args.workers)
        return 1 if mismatches else 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
