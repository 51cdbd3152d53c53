"""Every hint proven: a mistaken implementation, written as a student would write it, is named by the judge.

Each lesson's ``students.py`` holds ``MISTAKEN``: for every named :class:`~flowcourse_instructor.grading.spec.Mistake`
of its checks, the source of a student's answer that makes exactly that mistake::

    MISTAKEN = {
        "planar_logdet": {
            "tanh instead of its derivative": '''
    def planar_logdet(z, u, w, b):
        return torch.log(torch.abs(1 + torch.tanh(z @ w + b) * (w @ u)))
    ''',
        },
    }

:func:`judge_source` grades such a source the way a submission is graded, without a notebook run: the
lesson's solution notebook is executed once (its answer cells and the plain cells between them; demo cells,
self-checks' failures and test cells aside), the mistaken source is executed on top of it — so later
functions that call the mistaken one use it, as in a student's notebook — and the object that the hidden
test cell hands to ``check`` is run on the check's cases in this process and judged by the real judge.
``tests/test_hints_proven.py`` fails when a named mistake has no mistaken implementation, when its
implementation is not named, or when a correct answer is.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import nbformat

import flowcourse_lessons
from flowcourse_instructor.grading.checks import all_checks
from flowcourse_instructor.grading.judge import CheckResult, judge_check
from flowcourse_instructor.grading.kernel import run_cases
from flowcourse_instructor.grading.sampleclass import student_solution_source

__all__ = ["solution_namespace", "judge_source", "judge_object", "named_mistakes", "test_objects"]


def _cells(assignment: str) -> list[nbformat.NotebookNode]:
    folder = flowcourse_lessons.lessons()[flowcourse_lessons.package_of(assignment).rpartition(".")[2]]
    cells: list[nbformat.NotebookNode] = []
    for path in sorted(Path(folder).glob("*.ipynb")):
        cells += [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
    return cells


def _is_test(cell: nbformat.NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _is_demo(cell: nbformat.NotebookNode) -> bool:
    return "demo" in cell.metadata.get("tags", [])


def test_objects(assignment: str) -> dict[str, str]:
    """Check name → the expression its hidden test cell hands to ``check`` (``check("Planar", Planar)``)."""
    found = {}
    for cell in _cells(assignment):
        if not _is_test(cell):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and len(node.args) > 1:
                found[node.args[0].value] = ast.unparse(node.args[1])
    return found


@cache
def _solution_state(assignment: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    namespace: dict[str, Any] = {"__name__": "__student__"}
    failed = []
    os.environ.setdefault("MPLBACKEND", "Agg")
    for cell in _cells(assignment):
        if _is_test(cell) or _is_demo(cell):
            continue
        source = student_solution_source(cell.source)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(compile(source, f"<{cell.metadata.get('nbgrader', {}).get('grade_id', cell.get('id'))}>",
                             "exec"), namespace)
        except Exception as exc:  # a self-check that needs a demo's variable: the answers stay defined
            failed.append(f"{cell.get('id')}: {type(exc).__name__}: {exc}")
    return namespace, tuple(failed)


def solution_namespace(assignment: str) -> dict[str, Any]:
    """A fresh copy of the globals of the lesson's solution notebook, run once (no demos, no tests)."""
    return dict(_solution_state(assignment)[0])


def judge_object(check_name: str, obj: Any) -> CheckResult:
    """Run ``obj`` on the check's cases in this process and judge the evidence, as grading does."""
    spec = all_checks()[check_name]
    return judge_check(spec, run_cases(spec, obj))


def judge_source(assignment: str, check_name: str, source: str) -> CheckResult:
    """Judge check ``check_name`` on the lesson's solution with ``source`` (a student's cell) run on top."""
    namespace = solution_namespace(assignment)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(textwrap.dedent(source), "<mistaken answer>", "exec"), namespace)
    return judge_object(check_name, eval(test_objects(assignment)[check_name], namespace))


def named_mistakes(result: CheckResult) -> set[str]:
    """The names of the spec's mistakes that the judge's messages in ``result`` name."""
    return {case.hint.partition(":")[0] for case in result.cases if not case.passed and case.hint}
