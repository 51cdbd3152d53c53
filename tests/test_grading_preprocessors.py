"""The nbgrader preprocessors on small notebooks: the judge (no kernel) and guarded execution (a real kernel)."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from flowcourse_instructor.grading import checks
from flowcourse_instructor.grading.evidence import MIME, encode
from flowcourse_instructor.grading.preprocessors import (
    HIDDEN_NOTE,
    BlankDemoCells,
    HideTestSource,
    Judge,
    _release_form,
    checks_in,
)
from flowcourse_instructor.grading.spec import Case, Check, tensor

SPEC = Check("pp_double", cases=[
    Case("a", lambda: {"z": tensor([1.0, 2.0])}), Case("b", lambda: {"z": tensor([-3.0])})])


@pytest.fixture
def registry(lesson_of):
    lesson_of([SPEC], pp_double=lambda z: 2 * z)


def _test_cell(outputs, points=2.0, gid="test_double"):
    cell = new_code_cell("### BEGIN HIDDEN TESTS\nfrom flowcourse_instructor.grading import check\n"
                         'check("pp_double", f)\n### END HIDDEN TESTS',
                         metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": gid,
                                                "points": points, "locked": True}})
    cell.outputs = outputs
    return cell


def _evidence(outputs, spec=None):
    cases = [{"label": label, "status": "ok", "output": encode(value)} for label, value in outputs]
    payload = {"check": "pp_double", "spec": spec or checks.spec_fingerprint("pp_double"), "cases": cases}
    return new_output("display_data", data={MIME: payload, "text/plain": "x"})


def _judge(*cells):
    nb = new_notebook(cells=list(cells))
    nb.metadata["flowcourse"] = {"events": [{"cell": "test_double", "event": "restored <after deletion>"}]}
    Judge().preprocess(nb, {})
    return nb


def test_judge_replaces_outputs_by_verdict_and_partial_score(registry):
    stderr = new_output("stream", name="stderr", text="UserWarning: harmless\n")
    nb = _judge(_test_cell([stderr, _evidence([("a", tensor([2.0, 4.0])), ("b", tensor([6.0]))])]))
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "execute_result"]
    assert outputs[1].data["text/plain"] == "1.0"  # 1 of 2 cases → half of 2 points; stderr costs nothing
    text = outputs[0].data["text/plain"]
    assert "1/2 cases passed → 1 / 2 points" in text and "the sign is flipped" in text
    assert "note: restored <after deletion>" in text and "&lt;after deletion&gt;" in outputs[0].data["text/html"]
    from nbgrader.utils import determine_grade
    assert determine_grade(nb.cells[0]) == (1.0, 2.0)  # exactly what SaveAutoGrades will record


def test_missing_or_duplicated_evidence_scores_zero_with_a_reason(registry):
    error = new_output("error", ename="NameError", evalue="name 'f' is not defined", traceback=[])
    nb = _judge(_test_cell([error]))
    assert nb.cells[0].outputs[1].data["text/plain"] == "0.0"
    assert "NameError: name 'f' is not defined — is it defined" in nb.cells[0].outputs[0].data["text/plain"]
    good = _evidence([("a", tensor([2.0, 4.0])), ("b", tensor([-6.0]))])
    twice = _judge(_test_cell([good, good]))
    assert twice.cells[0].outputs[1].data["text/plain"] == "0.0"
    assert "appeared 2 times" in twice.cells[0].outputs[0].data["text/plain"]
    empty = _judge(_test_cell([]))
    assert "changed how cells run" in empty.cells[0].outputs[0].data["text/plain"]
    full = _judge(_test_cell([good]))
    assert full.cells[0].outputs[1].data["text/plain"] == "2.0"
    edited = _judge(_test_cell([_evidence([("a", tensor([2.0, 4.0])), ("b", tensor([-6.0]))], spec="0" * 16)]))
    assert "specification changed while grading" in edited.cells[0].outputs[0].data["text/plain"]
    assert edited.metadata["flowcourse"]["internal_errors"] == ["test_double: the spec of pp_double changed"]


def test_evidence_printed_by_a_student_hook_in_another_cell_is_ignored(registry):
    forged = new_code_cell("print('hi')")
    forged.outputs = [_evidence([("a", tensor([2.0, 4.0])), ("b", tensor([-6.0]))])]
    nb = _judge(forged, _test_cell([]))
    assert nb.cells[1].outputs[1].data["text/plain"] == "0.0"


def test_demo_cells_are_blanked_and_test_sources_hidden():
    demo = new_code_cell("train_for_an_hour()", metadata={"tags": ["demo"], "nbgrader": {"locked": True}})
    answer = new_code_cell("def f(): ...", metadata={"tags": ["demo"], "nbgrader": {"solution": True,
                                                                                     "grade_id": "a"}})
    nb = new_notebook(cells=[demo, answer, _test_cell([])])
    BlankDemoCells().preprocess(nb, {})
    assert nb.cells[0].source.startswith("# demo cell: not run during grading")
    assert nb.cells[1].source == "def f(): ..."  # a student's answer is never blanked
    assert nb.metadata["flowcourse"]["demo_cells_blanked"] == 1
    HideTestSource().preprocess(nb, {})
    assert nb.cells[2].source == HIDDEN_NOTE and nb.cells[1].source == "def f(): ..."


def test_source_helpers():
    assert checks_in("check('a', f)\nx.check('b', g)\ncheck(name, h)\ncheck(") == []  # unparsable: none
    assert checks_in("check('a', f)\nx.check('b', g)\ncheck(name, h)") == ["a", "b"]
    assert _release_form("# head\n### BEGIN HIDDEN TESTS\ncheck('a', f)\n### END HIDDEN TESTS\n") == "# head"


@pytest.mark.slow
def test_guarded_execution_survives_loops_a_dead_kernel_and_the_budget(tmp_path, guarded_run):
    """A loop is interrupted by the per-cell timeout and the notebook goes on; a loop that ignores the
    interrupt, a killed kernel or an exhausted budget stop the run; every cell not run is recorded."""
    stubborn = ("import time\nwhile True:\n    try:\n        time.sleep(100)\n"
                "    except KeyboardInterrupt:\n        pass")
    nb, events = guarded_run(tmp_path, ["x = 1", "while True:\n    pass", "x = 2", stubborn, "x = 3"],
                             timeout=4, notebook_budget=120)
    assert nb.metadata["flowcourse"]["sandbox"] in ("root", "userns", "limits")
    assert nb.cells[1].outputs[-1].ename in ("CellTimeoutError", "KeyboardInterrupt")
    assert nb.cells[2].execution_count is not None and not any(o.output_type == "error" for o in nb.cells[2].outputs)
    assert {"cell": "c3", "event": "this cell ran past the time limit and could not be interrupted"} in events
    assert any(e["cell"] == "c4" and "did not respond to the interrupt" in e["event"] for e in events)

    _, events = guarded_run(tmp_path, ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "y = 1"],
                            timeout=20, notebook_budget=60)
    assert {"cell": "c0", "event": "the kernel died while running this cell"} in events
    assert any(e["cell"] == "c1" and "kernel died" in e["event"] for e in events)

    nb, events = guarded_run(tmp_path, ["import time"] + ["time.sleep(2)"] * 6, timeout=10, notebook_budget=5)
    assert any(e["event"] == "not run: the notebook's time budget (5 s) ran out before this cell" for e in events)
    assert nb.cells[-1].execution_count is None
