"""nbgrader preprocessors: the grading pipeline that runs the student's notebook and judges it from outside.

Sanitize stage (before any student code runs), replacing nbgrader's defaults in ``nbgrader_config.py``:
:class:`StartRecord`, nbgrader's ``ClearOutput``, ``DeduplicateIds``, ``OverwriteKernelspec``, then
:class:`RestoreTestCells` (nbgrader's ``OverwriteCells`` with a working "add missing cells" and a
per-process snapshot of the test sources), :class:`BlankDemoCells`, :class:`ScanSubmission` (static scan
of the cells that will run as the student wrote them).

Autograde stage: :class:`GuardedExecute` (nbgrader's ``Execute`` in the sandbox, with a per-notebook time
budget, surviving a dead kernel), :class:`Judge` (replaces each test cell's outputs by the verdict and the
score), then nbgrader's ``SaveAutoGrades`` and friends. Feedback: :class:`HideTestSource`.

What each stage learns is kept in the notebook's metadata under ``flowcourse`` (overwritten at the start, so
a student cannot pre-fill it); :func:`grading_record` reads it back for reports.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import time
import uuid
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbconvert.exporters import NotebookExporter
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import common as nbgrader_common
from nbgrader.preprocessors import Execute, NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Integer, Unicode

from flowcourse_instructor.grading import forkserver, sandbox
from flowcourse_instructor.grading.checks import UnknownCheck, all_checks, find_check, spec_fingerprint
from flowcourse_instructor.grading.evidence import MIME
from flowcourse_instructor.grading.judge import CheckResult, judge_check, render_html, render_text
from flowcourse_instructor.grading.kernelside import kernel_environment, kernel_side
from flowcourse_instructor.grading.policy import GradingPolicy
from flowcourse_instructor.grading.sandbox import reference_package
from flowcourse_instructor.grading.scan import scan_notebook
from flowcourse_instructor.grading.spec import KeyRef

__all__ = [
    "StartRecord", "ScanSubmission", "RestoreTestCells", "BlankDemoCells", "GuardedExecute", "Judge", "HideTestSource",
    "TolerantNotebookExporter", "SandboxKernelManager", "grading_record", "cell_record", "checks_in",
    "reference_package",
]

META = "flowcourse"
DEMO_TAG = "demo"
DEMO_NOTE = "# demo cell: not run during grading (it carries no points and may need the answer key)"
HIDDEN_NOTE = "# hidden test: its source is not shown; its result is below"


def grading_record(nb: NotebookNode) -> dict[str, Any]:
    """The ``flowcourse`` metadata the pipeline wrote into a notebook (empty dict when absent)."""
    return nb.get("metadata", {}).get(META, {})


def policy_of(preprocessor: Any) -> GradingPolicy:
    """The :class:`~.policy.GradingPolicy` in the configuration a preprocessor was given (read once per instance)."""
    if getattr(preprocessor, "_grading_policy", None) is None:
        preprocessor._grading_policy = GradingPolicy.from_config(preprocessor.config)
    return preprocessor._grading_policy


def _record(nb: NotebookNode) -> dict[str, Any]:
    return nb.metadata.setdefault(META, {})


def _event(nb: NotebookNode, cell: str, what: str) -> None:
    _record(nb).setdefault("events", []).append({"cell": cell, "event": what})


def _is_test_cell(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def _cell_name(cell: NotebookNode, index: int) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or f"#{index}"


def checks_in(source: str) -> list[str]:
    """Names of the checks a test cell's source runs: ``check("name", …)`` calls with a literal name.

    >>> checks_in('### BEGIN HIDDEN TESTS\\nfrom flowcourse_instructor.grading import check; check("planar_logdet", f)')
    ['planar_logdet']
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                names.append(node.args[0].value)
    return names


# ----------------------------------------------------------------------------------------- nbgrader's metadata check

class _SchemaOnce:
    """``jsonschema`` as nbgrader's metadata check uses it, with each schema's validator built once.

    nbgrader checks every cell with ``jsonschema.validate``, which first validates the *schema* against its
    meta-schema: 0.4 s of the ~3 s it takes to grade a short notebook. Same checks, same first error.
    """

    def __init__(self, module: Any) -> None:
        self._module, self._validators = module, {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def validate(self, instance: Any, schema: dict) -> None:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            cls = self._module.validators.validator_for(schema)
            cls.check_schema(schema)
            self._validators[key] = cls(schema)
        error = self._module.exceptions.best_match(self._validators[key].iter_errors(instance))
        if error is not None:
            raise error


if not isinstance(nbgrader_common.jsonschema, _SchemaOnce):
    nbgrader_common.jsonschema = _SchemaOnce(nbgrader_common.jsonschema)


# ----------------------------------------------------------------------------------------- exporter

class TolerantNotebookExporter(NotebookExporter):
    """Reads an unreadable submission (not JSON, not a notebook, bad bytes) as an empty notebook.

    The missing test cells are then restored and run, so the submission is graded (0) with a reason
    instead of failing the whole batch.
    """

    def from_filename(self, filename: str, resources: dict | None = None, **kw: Any) -> tuple[str, dict]:
        resources = ResourcesDict() if resources is None else resources
        if not resources.get("metadata"):
            resources["metadata"] = ResourcesDict()
        folder, name = os.path.split(filename)
        # as nbconvert does: the kernel then runs in the notebook's own folder, not in the course root
        resources["metadata"]["name"], resources["metadata"]["path"] = os.path.splitext(name)[0], folder
        try:
            with open(filename, encoding="utf-8") as f:
                nb = nbformat.read(f, as_version=4)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the student's file, not the batch
            nb = nbformat.v4.new_notebook()
            resources["flowcourse_unreadable"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return self.from_notebook_node(nb, resources, **kw)


# ----------------------------------------------------------------------------------------- sanitize

def preload_answer_key() -> None:
    """Import every check's answer-key object now, before any student kernel has run in this process.

    In ``limits`` mode a kernel can write the files the grader can; what the judge compares against is
    then already in memory. Cheap after the first call (modules are imported once).
    """
    for spec in all_checks().values():
        with contextlib.suppress(Exception):  # a broken reference is reported when that check is judged
            KeyRef(spec.lesson).resolve(spec)


class StartRecord(NbGraderPreprocessor):
    """Start a fresh ``flowcourse`` record in the notebook's metadata (whatever the student put there goes).

    Runs before any student code: also loads the answer key into this process (:func:`preload_answer_key`).
    """

    enabled = Bool(True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        preload_answer_key()
        nb.metadata[META] = {"events": [], "flags": []}
        if resources.get("flowcourse_unreadable"):
            nb.metadata[META]["unreadable"] = resources["flowcourse_unreadable"]
        return nb, resources


class ScanSubmission(NbGraderPreprocessor):
    """Static scan (:mod:`flowcourse_instructor.grading.scan`) of the cells that will run as the student wrote them.

    Runs after the read-only cells were restored, so the course's own cells (demo cells may import the
    answer key) are not flagged; findings go to the record's ``flags`` for the grade report.
    """

    enabled = Bool(True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        trusted = {_cell_name(c, i) for i, c in enumerate(nb.cells) if utils.is_locked(c)}
        flags = scan_notebook(nb, reference_package(), skip=trusted)
        _record(nb)["flags"] = [str(f) for f in flags]
        return nb, resources


def _release_form(source: str) -> str:
    """A cell's source as released: nbgrader's hidden-test regions removed (as ``ClearHiddenTests`` does)."""
    lines, hidden = [], False
    for line in source.split("\n"):
        if "### BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "### END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            lines.append(line)
    return "\n".join(lines).strip()


def trusted_sources(db_url: str, assignment: str, notebook: str, policy: GradingPolicy | None = None) -> dict[str, str]:
    """Test-cell sources of a notebook: the policy's snapshot (taken before any student code ran), else the gradebook.

    With the snapshot, a kernel that rewrote a test in the gradebook (possible only without a sandbox) cannot
    change what later notebooks run.
    """
    snapshot = policy.trusted_sources(assignment, notebook) if policy is not None else None
    if snapshot is not None:
        return snapshot
    with Gradebook(db_url) as gb:
        nbrecord = gb.find_notebook(notebook, assignment)
        return {c.name: c.source for c in nbrecord.source_cells if c.name in {g.name for g in nbrecord.grade_cells}}


class RestoreTestCells(OverwriteCells):
    """nbgrader's ``OverwriteCells`` that also restores deleted test cells where they belong.

    nbgrader 0.9.6's ``add_missing_cells`` raises ``KeyError`` when the cell before a deleted test cell is
    an ordinary read-only cell; here a missing cell goes after the nearest earlier cell that is still there,
    with exactly its trusted source. Every change is recorded for the student's feedback.
    """

    add_missing_cells = Bool(True).tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        self._submitted_source = cell.source
        return super().preprocess_cell(cell, resources, index)

    def report_change(self, name: str, attr: str, old: Any, new: Any) -> None:
        if attr == "checksum":
            trusted = self.gradebook.find_source_cell(name, self.notebook_id, self.assignment_id).source
            if _release_form(trusted) == _release_form(self._submitted_source):
                return  # the release copy differs only by its hidden tests, which are now back
        super().report_change(name, attr, old, new)
        self._changes.append((name, attr))

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        self._changes: list[tuple[str, str]] = []
        nb, resources = super().preprocess(nb, resources)
        for name, attr in self._changes:
            if attr == "checksum":
                _event(nb, name, "this read-only cell was edited; the original was restored and run")
            else:
                _event(nb, name, f"its {attr} was changed; the original was restored")
        trusted = trusted_sources(self.db_url, self.assignment_id, self.notebook_id, policy_of(self))
        for index, cell in enumerate(nb.cells):
            name = _cell_name(cell, index)
            if _is_test_cell(cell) and name in trusted and cell.source != trusted[name]:
                cell.source = trusted[name]
                _event(nb, name, "the gradebook's copy of this test changed during grading; the original ran")
                self.log.error("Test cell %s differs from the snapshot taken at the start of grading", name)
        return nb, resources

    def add_missing_grade_cells(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        order = [c.name for c in source_nb.source_cells]
        source = {c.name: c for c in source_nb.source_cells}
        solutions = {c.name for c in source_nb.solution_cells}
        for grade_cell in source_nb.grade_cells:
            present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
            if grade_cell.name in present:
                continue
            before = order[: order.index(grade_cell.name)] if grade_cell.name in order else []
            at = 0
            for index, cell in enumerate(nb.cells):
                if cell.metadata.get("nbgrader", {}).get("grade_id") in before:
                    at = index + 1
            cell = self.missing_cell_transform(source[grade_cell.name], grade_cell.max_score,
                                               is_solution=grade_cell.name in solutions)
            cell.source = source[grade_cell.name].source
            nb.cells.insert(at, cell)
            self.log.warning("Restored missing grade cell %s", grade_cell.name)
            _event(nb, grade_cell.name, "this test cell was missing from your notebook; it was restored and run")
        return nb, resources


class BlankDemoCells(NbGraderPreprocessor):
    """Blank code cells tagged ``demo`` (training demos, plots): they carry no points and cost time."""

    enabled = Bool(True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and DEMO_TAG in tags and not utils.is_grade(cell) and not utils.is_solution(cell):
            cell.source = DEMO_NOTE
            self._blanked += 1
        return cell, resources

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        self._blanked = 0
        nb, resources = super().preprocess(nb, resources)
        _record(nb)["demo_cells_blanked"] = self._blanked
        return nb, resources


# ----------------------------------------------------------------------------------------- execute

class SandboxKernelManager(AsyncKernelManager):
    """Launches the kernel through :mod:`flowcourse_instructor.grading.sandbox` with the policy in ``policy``.

    Where this process has enabled :mod:`flowcourse_instructor.grading.forkserver` (``flowcourse grade`` does), the
    same command is carried out by a child forked from a warm process instead of a fresh interpreter.
    """

    policy = Unicode("", help="A sandbox.Policy as JSON; empty: limits only.").tag(config=True)
    course_root = Unicode("", help="The course being graded (its kernel side is staged there).").tag(config=True)

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        if self.provisioner is None and forkserver.server() is not None:  # `flowcourse grade`: fork kernels
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or str(uuid.uuid4())
            self.provisioner = forkserver.ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                          parent=self)
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        side = kernel_side(self.course_root or os.getcwd())
        if "ipykernel_launcher" in cmd:  # the kernel's own log (not the notebook's stderr) would flood the grader's
            cmd = [side.python, *cmd[1:], "--IPKernelApp.log_level=ERROR"]
        kw["env"] = kernel_environment(kw.get("env") or os.environ, side)
        policy = sandbox.Policy(**json.loads(self.policy)) if self.policy else sandbox.Policy()
        cwd = kw.get("cwd") or os.getcwd()
        return sandbox.wrapper_command(policy, cmd, cwd=cwd, connection_file=self.connection_file,
                                       python=side.python), kw


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` inside the sandbox, within a per-notebook budget, surviving a dead kernel.

    ``timeout`` (seconds per cell) and ``notebook_budget`` (wall seconds for the whole notebook) bound an
    infinite loop; the kernel's CPU-time limit is the budget too. Cells after a kernel death or past the
    budget are not run, and the :class:`Judge` says so. The sandbox mode used is recorded.
    """

    timeout = Integer(30, allow_none=True).tag(config=True)
    notebook_budget = Integer(600, help="Wall-clock seconds for all cells of one notebook.").tag(config=True)
    sandbox_mode = Unicode("", help="auto | root | userns | limits; empty: the grading policy's").tag(config=True)

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(**kw)

    def mode(self) -> str:
        """The sandbox mode: this preprocessor's own setting, else the policy's (``auto`` resolved once here)."""
        if getattr(self, "_mode", None) is None:
            self._mode = sandbox.detect_mode(self.sandbox_mode or policy_of(self).sandbox_mode)
        return self._mode

    def course_root(self) -> str:
        root = policy_of(self).course_root
        return root if root and os.path.isdir(root) else os.getcwd()

    def create_kernel_manager(self) -> AsyncKernelManager:
        km = super().create_kernel_manager()
        limits = policy_of(self)
        policy = sandbox.default_policy(self.mode(), self.course_root(), memory_mb=limits.memory_mb,
                                        cpu_seconds=self.notebook_budget, file_mb=limits.file_mb, nproc=limits.nproc)
        if isinstance(km, SandboxKernelManager):
            km.policy, km.course_root = policy.to_json(), self.course_root()
        return km

    def preprocess(self, nb: NotebookNode, resources: dict, km: Any = None) -> tuple[NotebookNode, dict]:
        record = _record(nb)
        record["sandbox"] = self.mode()
        side = kernel_side(self.course_root())
        record["kernel_env"] = "student" if side.student else "grader"
        self._deadline = time.monotonic() + self.notebook_budget
        self._kernel_said = ""
        self._stopped = ""
        self._cell_timeout = self.timeout
        try:
            return super().preprocess(nb, resources, km)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start is a recorded failure, not a crash
            record["kernel_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            if self._kernel_said:  # a forked kernel says why it could not start
                record["kernel_error"] += f" ({self._kernel_said.strip().splitlines()[-1][:300]})"
            self.log.error("Kernel failed for this notebook: %s", record["kernel_error"])
            return nb, resources
        finally:
            self.timeout = self._cell_timeout

    async def _async_cleanup_kernel(self) -> None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None)
        pid = getattr(provisioner, "pid", None)  # read now: nbclient sets self.km = None during cleanup
        self._kernel_said = getattr(process, "error", "") or getattr(self, "_kernel_said", "")
        try:
            await super()._async_cleanup_kernel()
        finally:
            if pid:  # whatever the notebook started (a child, a new session, a daemon) ends with its kernel
                sandbox.end_kernel_processes(pid, self.mode())

    _cleanup_kernel = run_sync(_async_cleanup_kernel)  # what nbclient's setup_kernel() calls

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        if cell.cell_type != "code":
            return cell, resources
        remaining = self._deadline - time.monotonic()
        if not self._stopped and remaining <= 1:
            self._stopped = f"the notebook's time budget ({self.notebook_budget} s) ran out before this cell"
        if self._stopped:
            cell.outputs = []
            _event(self.nb, _cell_name(cell, index), f"not run: {self._stopped}")
            return cell, resources
        self.timeout = int(max(1, min(self._cell_timeout or remaining, remaining)))
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            name = _cell_name(cell, index)
            self._stopped = (f"the kernel died while running cell {name} (memory or CPU limit, or the code "
                             "ended the process)")
            _event(self.nb, name, "the kernel died while running this cell")
            return cell, resources
        except CellTimeoutError:  # interrupted but still busy: nothing later can run in this kernel
            name = _cell_name(cell, index)
            self._stopped = (f"cell {name} ran past the time limit and the kernel did not respond to the "
                             "interrupt (a loop that ignores KeyboardInterrupt?)")
            _event(self.nb, name, "this cell ran past the time limit and could not be interrupted")
            return cell, resources


# ----------------------------------------------------------------------------------------- judge

class Judge(NbGraderPreprocessor):
    """Grade each test cell from its evidence against the answer key, outside the student's kernel.

    For every autograder test cell it reads the checks the (trusted, restored) source runs, judges the
    evidence case by case, and replaces the outputs by ``[display_data(verdict), execute_result(score)]``
    so that nbgrader's ``SaveAutoGrades`` records ``points × passed / total``. Stderr and warnings never
    reach the score. Test cells that run no ``check`` keep nbgrader's rule, minus stderr.
    """

    enabled = Bool(True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        record = _record(nb)
        self.events: dict[str, list[str]] = {}
        for e in record.get("events", []):
            self.events.setdefault(e["cell"], []).append(e["event"])
        record["cells"] = []
        for index, cell in enumerate(nb.cells):
            if _is_test_cell(cell):
                record["cells"].append(self.judge_cell(nb, cell, index))
        return nb, resources

    def _missing_reason(self, nb: NotebookNode, cell: NotebookNode, name: str) -> str:
        record = _record(nb)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                if output.ename == "CellTimeoutError":
                    return "the test cell ran past its time limit and was interrupted (an infinite loop?)"
                hint = ""
                if output.ename == "NameError":
                    hint = " — is it defined, and did the cell defining it run without an error?"
                return f"the test cell stopped with {output.ename}: {output.evalue[:200]}{hint}"
        for event in self.events.get(name, []):
            if event.startswith("not run"):
                return event
        if record.get("kernel_error"):
            return f"the kernel could not run: {record['kernel_error']}"
        return ("the test printed no result: it did not run, or code in your notebook changed how cells run "
                "(e.g. an IPython input transformer)")

    def judge_cell(self, nb: NotebookNode, cell: NotebookNode, index: int) -> dict[str, Any]:
        name = _cell_name(cell, index)
        points = float(cell.metadata["nbgrader"].get("points", 0))
        checks = checks_in(cell.source)
        notes = [e for e in self.events.get(name, []) if not e.startswith("not run")]  # those are the reason
        if _record(nb).get("unreadable"):
            notes.insert(0, f"your notebook file could not be read ({_record(nb)['unreadable']}); it was graded "
                            "as an empty notebook")
        if not checks:
            outputs = cell.get("outputs", [])
            cell.outputs = [o for o in outputs if not (o.output_type == "stream" and o.name == "stderr")]
            return {"cell": name, "points": points, "score": None, "checks": [], "notes": notes}
        payloads: dict[str, list[dict]] = {}
        for output in cell.get("outputs", []):
            data = output.get("data", {}) if output.output_type in ("display_data", "execute_result") else {}
            payload = data.get(MIME)
            if isinstance(payload, dict):
                payloads.setdefault(str(payload.get("check")), []).append(payload)
        results: list[CheckResult] = []
        for check_name in checks:
            try:
                spec = find_check(check_name)
            except UnknownCheck as exc:
                results.append(CheckResult(check_name, note=f"internal grading error: {exc}"))
                continue
            found = payloads.get(check_name, [])
            if len(found) == 1 and found[0].get("spec") != spec_fingerprint(check_name, policy_of(self)):
                self.log.error("Spec of %s differs between kernel and judge: edited during grading?", check_name)
                _record(nb).setdefault("internal_errors", []).append(f"{name}: the spec of {check_name} changed")
                records, missing = None, ("internal grading error: the check's specification changed while "
                                          "grading; your instructor must re-grade this notebook")
            elif len(found) == 1:
                records, missing = found[0].get("cases"), ""
                if not isinstance(records, list):
                    records, missing = None, "the test's output was malformed"
            elif not found:
                records, missing = None, self._missing_reason(nb, cell, name)
            else:
                records = None
                missing = (f"the result of this test appeared {len(found)} times "
                           "(code in your notebook printed extra results?)")
            try:
                results.append(judge_check(spec, records, missing=missing))
            except Exception as exc:  # noqa: BLE001 - an answer-key failure must not crash the batch
                self.log.error("Judging %s failed: %s", check_name, exc)
                results.append(CheckResult(check_name, note=f"internal grading error ({type(exc).__name__}: {exc}); "
                                                             "your instructor has been told"))
        passed, total = sum(r.passed for r in results), sum(r.total for r in results)
        # exact fraction; nbgrader rejects a score above the cell's points, so full marks are exactly points
        score = points if total and passed == total else (min(points * passed / total, points) if total else 0.0)
        title = f"{name} ({', '.join(checks)})"
        cell.outputs = [
            nbformat.v4.new_output("display_data", data={
                "text/plain": render_text(title, results, score, points, notes),
                "text/html": render_html(title, results, score, points, notes),
            }),
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(score))},
                                   execution_count=cell.get("execution_count")),
        ]
        return cell_record(name, points, score, results, notes)


def cell_record(name: str, points: float, score: float, results: list[CheckResult],
                notes: list[str]) -> dict[str, Any]:
    """What the :class:`Judge` keeps of one test cell in the grading record (``cells``), for reports.

    Each check lists the message of each failed case (``problems``) and, in the same order, the name of the
    spec's named mistake that case matched (``mistakes``, "" where none did).
    """
    return {
        "cell": name, "points": points, "score": score, "passed": sum(r.passed for r in results),
        "total": sum(r.total for r in results), "notes": notes,
        "checks": [{"name": r.name, "passed": r.passed, "total": r.total, "note": r.note,
                    "problems": [f"{c.label}: {c.problem}" + (f" — {c.hint}" if c.hint else "")
                                 for c in r.cases if not c.passed],
                    "mistakes": [c.mistake for c in r.cases if not c.passed]} for r in results],
    }


# ----------------------------------------------------------------------------------------- feedback

class HideTestSource(NbGraderPreprocessor):
    """Feedback never shows a hidden test's source (nbgrader #917): replace it by a one-line note."""

    enabled = Bool(True)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        if _is_test_cell(cell):
            cell.source = HIDDEN_NOTE
        return cell, resources
