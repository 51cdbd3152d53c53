"""The kernel side of hidden tests: cases run in isolation from each other and only evidence comes out."""

from __future__ import annotations

import sys
import time
import types

import pytest
import torch

from flowcourse_instructor.grading import kernel
from flowcourse_instructor.grading.evidence import MIME, decode
from flowcourse_instructor.grading.spec import Case, Check, randn, tensor

SPEC = Check("k_double", time_limit=0.5, cases=[
    Case("random", lambda: {"z": randn(3, 2, seed=1)}),
    Case("global rng", lambda: {"z": torch.randn(2)}),  # seeded by the kernel and the judge alike
    Case("scalar", lambda: {"z": tensor(2.0)}),
])


def test_outputs_are_recorded_per_case():
    records = kernel.run_cases(SPEC, lambda z: 2 * z)
    assert [r["status"] for r in records] == ["ok", "ok", "ok"]
    assert torch.equal(decode(records[0]["output"]), 2 * randn(3, 2, seed=1))
    torch.manual_seed(0)
    assert torch.equal(decode(records[1]["output"]), 2 * torch.randn(2))


def test_one_failing_case_does_not_stop_the_others():
    def picky(z):
        if z.dim() == 0:
            raise ValueError("scalars not supported")
        return z

    records = kernel.run_cases(SPEC, picky)
    assert [r["status"] for r in records] == ["ok", "ok", "error"]
    assert records[2]["error"] == "ValueError: scalars not supported"


def test_a_loop_times_out_and_later_cases_get_a_short_limit():
    def loop(z):
        while True:
            pass

    start = time.perf_counter()
    records = kernel.run_cases(SPEC, loop)
    assert [r["status"] for r in records] == ["timeout"] * 3
    assert time.perf_counter() - start < 0.5 + 2 * 0.5 + 1.0
    assert "did not finish within 0.5 s" in records[0]["error"]


def test_exit_and_non_callables_are_caught():
    assert kernel.run_cases(SPEC, lambda z: sys.exit(3))[0]["error"] == "SystemExit: 3"
    assert "expected a function or class, got int" in kernel.run_cases(SPEC, 5)[0]["error"]


def test_value_checks_record_the_object_itself():
    records = kernel.run_cases(Check("k_quiz"), " B ")
    assert [(r["label"], r["status"], r["output"]) for r in records] == [
        ("answer", "ok", {"kind": "str", "value": " B "})]


def test_protocol_exercises_classes():
    spec = Check("k_layer", cases=[Case("c", lambda: {"d": 3})],
                 protocol=lambda cls, d: cls(d).weight.shape)
    records = kernel.run_cases(spec, lambda d: types.SimpleNamespace(weight=torch.zeros(d, d)))
    assert decode(records[0]["output"]) == (3, 3)


def test_check_displays_evidence_even_when_interrupted(monkeypatch, lesson_of):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda data, raw=False: shown.append(data))
    lesson_of([SPEC])

    calls = []

    def interrupted(z):
        calls.append(z)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what nbclient's cell timeout delivers
        return z

    with pytest.raises(KeyboardInterrupt):
        kernel.check("k_double", interrupted)
    payload = shown[0][MIME]
    assert payload["check"] == "k_double" and [c["status"] for c in payload["cases"]] == ["ok"]
    assert "graded after submission" in shown[0]["text/plain"]
    assert kernel.check("k_double", lambda z: z) is None
