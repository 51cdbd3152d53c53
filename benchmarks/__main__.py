"""``python -m benchmarks [--out FILE] [--only PART ...]``: every benchmark, one after another, into one report.

Each part runs in its own process (as ``python -m benchmarks.PART``) so that none inherits another's threads
or caches; its output is shown as it comes and written, with a description of the machine, to ``--out``
(``make bench`` writes ``benchmarks/RESULTS.md``). Nothing here judges a figure: the tables say the goals.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
from pathlib import Path

from benchmarks.timing import load, machine

PARTS = {
    "peers": "Reference vs the public flow libraries (ms per call, 1 thread, interleaved)",
    "lessons": "Lesson run times (every solutions notebook, end to end)",
    "grading": "Grading throughput (a synthetic class of 200)",
    "service": "Grade on submit (latency to an idle service, a deadline burst of 200, engine scaling)",
    "quality": "Model quality (test bits/dim on digits, nats per dimension on two moons)",
}


def run_part(name: str) -> tuple[str, int, float]:
    """Run ``python -m benchmarks.NAME``, echoing its output; return (output, exit code, seconds)."""
    start = datetime.datetime.now()
    process = subprocess.Popen([sys.executable, "-m", f"benchmarks.{name}"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).resolve().parents[1])
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = process.wait()
    return "".join(lines), code, (datetime.datetime.now() - start).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="write the report here (markdown)")
    parser.add_argument("--only", nargs="*", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args(argv)
    report = [f"# Benchmark results\n\nMeasured {datetime.date.today()} with `make bench` "
              f"(`python -m benchmarks`), on: {machine()}, load average {load()}.\n"]
    failed = 0
    for name in args.only:
        print(f"\n=== {name}: {PARTS[name]}\n", flush=True)
        output, code, seconds = run_part(name)
        failed += code != 0
        status = "" if code == 0 else f" — exited {code}"
        report.append(f"## {PARTS[name]}\n\n`python -m benchmarks.{name}` ({seconds:.0f} s{status})\n\n"
                      f"```\n{output.rstrip()}\n```\n")
    if args.out:
        report.append(f"Load average at the end: {load()}.\n")
        Path(args.out).write_text("\n".join(report))
        print(f"\nwrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
