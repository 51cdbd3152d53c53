"""``flowcourse check NOTEBOOK``: run a notebook's visible cells and summarise its self-checks.

For students, on their own machine: no answer key is needed. Each code cell runs in order (cells tagged
``demo`` are skipped unless asked for); every :mod:`~flowcourse.selfcheck` line is collected, and
cells that raised are listed. Hidden tests are not in the student's copy, so nothing here is a grade.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

from flowcourse.selfcheck import MIME

__all__ = ["run_visible", "check_notebook"]


def run_visible(path: str | os.PathLike, *, with_demos: bool = False, timeout: int = 300) -> nbformat.NotebookNode:
    """Execute a copy of the notebook (errors do not stop it) and return the executed copy."""
    from nbclient import NotebookClient

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and not with_demos and "demo" in cell.metadata.get("tags", []):
            cell.source = "# demo cell skipped by flowcourse check"
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def check_notebook(path: str | os.PathLike, *, with_demos: bool = False, timeout: int = 300,
                   out: callable = print) -> int:
    """Print every self-check result and failing cell of the notebook; exit status 0 when all passed."""
    nb = run_visible(path, with_demos=with_demos, timeout=timeout)
    passed = failed = 0
    errors = []
    for index, cell in enumerate(nb.cells):
        name = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or str(index)
        for output in cell.get("outputs", []):
            record = output.get("data", {}).get(MIME)
            if isinstance(record, dict):
                ok = bool(record.get("passed"))
                passed, failed = passed + ok, failed + (not ok)
                out(f"{'✓' if ok else '✗'} {record.get('label')}: {record.get('detail')}")
            if output.get("output_type") == "error":
                errors.append(f"cell {name}: {output.get('ename')}: {output.get('evalue', '')[:160]}")
    out(f"\nself-checks: {passed}/{passed + failed} passed")
    for e in errors:
        out(f"✗ {e}")
    if errors:
        out(f"{len(errors)} cell(s) raised an error (an unfinished exercise raises NotImplementedError)")
    return 0 if failed == 0 and not errors else 1


def main(argv: list[str] | None = None) -> int:
    """``flowcourse-check NOTEBOOK [--with-demos] [--timeout S]`` (the student wheel's command)."""
    import argparse

    parser = argparse.ArgumentParser(prog="flowcourse-check", description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--with-demos", action="store_true", help="also run cells tagged demo")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    return check_notebook(args.notebook, with_demos=args.with_demos, timeout=args.timeout)
