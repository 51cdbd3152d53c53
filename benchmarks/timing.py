"""Shared helpers for the benchmarks: the machine description, interleaved repeated timing, plain-text tables.

Timing is interleaved: every repetition runs each candidate once, in an order that rotates from one
repetition to the next, so a load spike on the shared machine hits all candidates alike; medians, and
ratios paired round by round, are reported. Nothing here asserts a wall time.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

__all__ = ["machine", "load", "calibrate", "interleaved_samples", "paired_ratio",
           "format_table", "print_table", "fmt_ms"]


def machine() -> str:
    """One line about the machine: CPU model, logical cores, memory, OS, Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    mem_kb = 0
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
        mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")), 0)
    except OSError:
        pass
    memory = f"{mem_kb / 2**20:.0f} GiB, " if mem_kb else ""
    return (f"{cpu}, {os.cpu_count()} logical cores, {memory}{platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def load() -> str:
    """The 1-, 5- and 15-minute load averages (the machine is shared: say how busy it was)."""
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def calibrate(fn: Callable[[], object], min_seconds: float = 2e-3, max_number: int = 10_000) -> int:
    """How many calls of ``fn`` make one timing sample last at least ``min_seconds`` (for µs-scale work)."""
    number = 1
    while number < max_number:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_seconds:
            break
        number *= 2
    return number


def interleaved_samples(
    fns: Mapping[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    numbers: Mapping[str, int] | None = None,
) -> dict[str, list[float]]:
    """Milliseconds per call of each function in each of ``repeats`` rounds, timed round-robin.

    Each round calls every function (``numbers[name]`` times in a row, default 1, and divides), starting
    at a different function each time. ``warmup`` untimed rounds come first.
    """
    names = list(fns)
    numbers = {name: (numbers or {}).get(name, 1) for name in names}
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            fn, number = fns[name], numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number * 1e3)
    return samples


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``: a load spike in one round hits both."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def fmt_ms(value: float | str | None) -> str:
    """A table cell: a time in ms with 3 significant digits, a string unchanged, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if value >= 0.001 else f"{value:.2e}"


def format_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], note: str = "") -> str:
    """A plain-text table: a title line, the header, a rule and the rows, columns right-aligned.

    Cells are formatted with :func:`fmt_ms` (floats) or ``str``; the first column is left-aligned.

    >>> print(format_table("demo", ["case", "ms"], [["a", 1.23456], ["bb", None]]))
    demo
    case    ms
    ----  ----
    a     1.23
    bb       -
    """
    cells = [[str(h) for h in header]] + [
        [c if isinstance(c, str) else fmt_ms(c) if isinstance(c, (float, int)) or c is None else str(c)
         for c in row]
        for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))])

    out = [title, line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    if note:
        out.append(note)
    return "\n".join(out)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]], note: str = "") -> None:
    """Print :func:`format_table` followed by a blank line (flushed, so progress shows during long runs)."""
    print(format_table(title, header, rows, note), end="\n\n", flush=True)
