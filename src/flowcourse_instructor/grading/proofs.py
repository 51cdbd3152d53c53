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
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import nbformat
import torch

import flowcourse_lessons
from flowcourse.training import default_dtype
from flowcourse_instructor.grading.checks import all_checks
from flowcourse_instructor.grading.judge import CheckResult, judge_check
from flowcourse_instructor.grading.kernel import run_cases
from flowcourse_instructor.grading.sampleclass import student_solution_source
from flowcourse_instructor.grading.spec import Check

__all__ = ["solution_namespace", "judge_source", "judge_object", "named_mistakes", "test_objects"]


def _folder(assignment: str) -> Path:
    return Path(flowcourse_lessons.lessons()[flowcourse_lessons.package_of(assignment).rpartition(".")[2]])


@contextlib.contextmanager
def _beside_the_notebook(assignment: str) -> Any:
    """The lesson folder first on ``sys.path`` while its cells run: a kernel runs there, and imports the lesson's
    released files (``from made import MADE``) from it."""
    folder = str(_folder(assignment))
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _cells(assignment: str) -> list[nbformat.NotebookNode]:
    folder = _folder(assignment)
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
def _solution_state(assignment: str) -> tuple[dict[str, Any], torch.dtype, tuple[str, ...]]:
    namespace: dict[str, Any] = {"__name__": "__student__"}
    failed = []
    os.environ.setdefault("MPLBACKEND", "Agg")
    with default_dtype(torch.get_default_dtype()), _beside_the_notebook(assignment):
        for cell in _cells(assignment):
            _run_cell(cell, namespace, failed)
        dtype = torch.get_default_dtype()  # what the notebook left set: its functions run under it
    return namespace, dtype, tuple(failed)


def _run_cell(cell: nbformat.NotebookNode, namespace: dict[str, Any], failed: list[str]) -> None:
    if _is_test(cell) or _is_demo(cell):
        return
    name = cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id"))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(student_solution_source(cell.source), f"<{name}>", "exec"), namespace)
    except Exception as exc:  # a self-check that needs a demo's variable: the answers stay defined
        failed.append(f"{name}: {type(exc).__name__}: {exc}")


def solution_namespace(assignment: str) -> dict[str, Any]:
    """A fresh copy of the globals of the lesson's solution notebook, run once (no demos, no tests)."""
    return dict(_solution_state(assignment)[0])


def judge_object(check_name: str, obj: Any, namespace: dict[str, Any] | None = None) -> CheckResult:
    """Run ``obj`` on the check's cases in this process and judge the evidence, as grading does.

    ``namespace``: the notebook's globals, whose other graded functions ``obj`` calls (recorded, as in a
    kernel). It runs under the default dtype the lesson's notebook sets, and leaves the caller's unchanged.
    """
    spec = all_checks()[check_name]
    dtype = _solution_state(flowcourse_lessons.assignment_of(spec.lesson))[1]
    with default_dtype(dtype):
        return judge_check(spec, run_cases(spec, obj, namespace=namespace))


def judge_source(assignment: str, check_name: str, source: str) -> CheckResult:
    """Judge check ``check_name`` on the lesson's solution with ``source`` (a student's cell) in it.

    The answer cells run again in a copy of the solution's globals, in order, with ``source`` in place of
    the answer cell that defines what it defines (at the end when none does): every later function and value
    of the notebook that uses the mistaken one gets it, as in the student's own notebook.
    """
    source = textwrap.dedent(source)
    names = _defines(source)
    namespace = solution_namespace(assignment)
    failed: list[str] = []
    placed = False
    with default_dtype(_solution_state(assignment)[1]), _beside_the_notebook(assignment):
        for cell in _cells(assignment):
            if not cell.metadata.get("nbgrader", {}).get("solution"):
                continue
            if not placed and _defines(student_solution_source(cell.source)) & names:
                cell = nbformat.v4.new_code_cell(source)
                placed = True
            _run_cell(cell, namespace, failed)
        if not placed:
            _run_cell(nbformat.v4.new_code_cell(source), namespace, failed)
        obj = eval(test_objects(assignment)[check_name], namespace)
    return judge_object(check_name, obj, namespace)


def _defines(source: str) -> set[str]:
    """Top-level names a cell defines: functions, classes and assigned variables."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def named_mistakes(result: CheckResult, spec: Check) -> set[str]:
    """The names of ``spec``'s mistakes that the judge's messages in ``result`` name."""
    hints = [case.hint for case in result.cases if not case.passed and case.hint]
    return {m.name for m in spec.mistakes if any(h.startswith(f"{m.name}: ") for h in hints)}
