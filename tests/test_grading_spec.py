"""Check specs, the registry and the evidence encoding (fast; no nbgrader, no kernel)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import flowcourse_lessons
from flowcourse_instructor.grading import checks, evidence, kernel
from flowcourse_instructor.grading.judge import compare
from flowcourse_instructor.grading.spec import Case, Check, KeyRef, Mistake, rand, randn, tensor


def _case() -> Case:
    return Case("one", lambda: {"z": tensor([1.0])})


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"name": "bad name"}, ValueError),
        ({"name": "ok", "cases": [_case(), _case()]}, ValueError),
        ({"name": "ok", "cases": ["not a case"]}, TypeError),
        ({"name": "ok", "mistakes": [lambda: 0]}, TypeError),
        ({"name": "ok", "atol": -1.0}, ValueError),
        ({"name": "ok", "time_limit": 0}, ValueError),
    ],
)
def test_check_rejects_bad_specs(kwargs, error):
    with pytest.raises(error):
        Check(**kwargs)


def test_seeded_inputs_are_reproducible_and_private():
    torch.manual_seed(123)
    before = torch.randn(1)
    a, b = randn(3, 2, seed=5), randn(3, 2, seed=5)
    assert torch.equal(a, b) and a.dtype == torch.float64
    assert not torch.equal(a, randn(3, 2, seed=6))
    u = rand(1000, seed=1, low=-2.0, high=3.0)
    assert u.min() >= -2.0 and u.max() < 3.0
    torch.manual_seed(123)
    assert torch.equal(before, torch.randn(1)), "spec helpers must not touch the global RNG"


def test_keyref_resolves_lazily_in_the_lessons_key():
    key = KeyRef("flowcourse_lessons.lesson_05")
    spec = Check("planar_logdet")
    assert key.resolve(spec).__name__ == "planar_logdet"
    assert key.lesson_01.scalar_affine.__name__ == "scalar_affine"  # an earlier lesson's key
    assert key.resolve(Check("other", key="planar_forward")).__name__ == "planar_forward"
    with pytest.raises(AttributeError):
        key.resolve(Check("no_such_function"))


def test_registry_names_are_unique_course_wide():
    found = checks.all_checks()
    assert all(name == spec.name for name, spec in found.items())


def test_duplicate_names_across_lessons_are_rejected(tmp_path, monkeypatch):
    for n in ("97", "98"):
        folder = tmp_path / "solutions" / f"{n}-dup"
        folder.mkdir(parents=True)
        (folder / "checks.py").write_text(
            "from flowcourse_instructor.grading.spec import Check\nCHECKS = [Check('dup_name')]\n")
    monkeypatch.setattr(flowcourse_lessons, "_REGISTERED", dict(flowcourse_lessons._REGISTERED))
    flowcourse_lessons.register(tmp_path)  # as configure() and every grading task do for the root they grade
    with pytest.raises(ValueError, match="dup_name"):
        checks.all_checks()


def test_an_unknown_check_names_the_known_ones():
    with pytest.raises(checks.UnknownCheck, match="no check named 'nope'; known: .*planar_logdet"):
        checks.find_check("nope")


def test_spec_modules_never_import_the_answer_key():
    code = ("import sys; from flowcourse_instructor.grading import checks; checks.all_checks();"
            "bad = [m for m in sys.modules if m.startswith('flowcourse_lessons.') and m.endswith('.key')];"
            "print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"spec modules import the answer key: {result.stdout} {result.stderr[-500:]}"


def _course_checks() -> list[Check]:
    return list(checks.all_checks().values())


@pytest.mark.parametrize("spec", _course_checks(), ids=lambda s: s.name)
def test_every_course_check_runs_on_its_reference(spec):
    """Each case runs on the answer key, and each named mistake is distinguishable from it somewhere."""
    reference = KeyRef(spec.lesson).resolve(spec)
    records = kernel.run_cases(spec, reference)
    bad = [r for r in records if r["status"] != "ok"]
    assert not bad, f"{spec.name}: the reference fails its own cases: {bad}"
    makers = [lambda: {}] if spec.is_value else [c.inputs for c in spec.cases]
    for mistake in spec.mistakes:
        differs = False
        for make in makers:
            torch.manual_seed(0)
            inputs = dict(make())
            expected = reference if spec.is_value else (
                spec.protocol(reference, **inputs) if spec.protocol else reference(**inputs))
            torch.manual_seed(0)
            try:
                wrong = mistake.output(KeyRef(spec.lesson), dict(make()))
            except Exception:
                continue
            differs |= compare(wrong, expected, spec.atol, spec.rtol) is not None
        assert differs, f"{spec.name}: mistake {mistake.name!r} gives the right answer on every case"


# ------------------------------------------------------------------------------------------ evidence

@pytest.mark.parametrize(
    "value",
    [
        torch.tensor([1.5, float("nan"), float("inf"), -float("inf")], dtype=torch.float32),
        torch.randn(2, 3, dtype=torch.float64),
        torch.tensor(3.25),
        torch.arange(6).reshape(2, 3),
        torch.tensor([True, False]),
        torch.zeros(0, 4),
        torch.randn(3, dtype=torch.bfloat16),
    ],
)
def test_tensor_evidence_round_trips_exactly(value):
    out = evidence.decode(evidence.encode(value))
    assert out.dtype == value.dtype and out.shape == value.shape
    assert torch.equal(torch.nan_to_num(out.double(), nan=7.0), torch.nan_to_num(value.double(), nan=7.0))


def test_container_evidence_round_trips():
    value = (torch.ones(2), [1, 2.5, float("nan")], {"a": "b", "n": None}, True, 10**30, 1 + 2j,
             np.arange(3.0), np.float32(0.5))
    out = evidence.decode(evidence.encode(value))
    assert isinstance(out, tuple) and torch.equal(out[0], torch.ones(2))
    assert out[1][:2] == [1, 2.5] and math.isnan(out[1][2])
    assert out[2] == {"a": "b", "n": None} and out[3] is True and out[4] == 10**30 and out[5] == 1 + 2j
    assert np.array_equal(out[6], np.arange(3.0)) and out[7] == 0.5


def test_unencodable_outputs_become_opaque():
    out = evidence.decode(evidence.encode(torch.nn.Linear(2, 2)))
    assert isinstance(out, evidence.Opaque) and out.type == "Linear"
    big = evidence.decode(evidence.encode(torch.zeros(evidence.MAX_ELEMENTS + 1)))
    assert isinstance(big, evidence.Opaque) and "too large" in big.repr


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "tensor", "dtype": "float64", "shape": [3], "np": "<f8", "data": "AAAA"},
        {"kind": "tensor", "dtype": "float64", "shape": [1], "np": "|O", "data": ""},
        {"kind": "pickle", "value": "..."},
        {"kind": "const", "value": "rm -rf"},
        "not a dict",
        {"kind": "tensor", "dtype": "float64", "shape": [-1], "np": "<f8", "data": ""},
    ],
)
def test_malformed_evidence_is_rejected(payload):
    with pytest.raises(evidence.EvidenceError):
        evidence.decode(payload)


def test_mistake_receives_the_key_and_inputs():
    seen = {}
    m = Mistake("m", "hint", lambda ref, kw: seen.update(ref=ref, kw=kw))
    m.output(KeyRef("flowcourse_lessons.lesson_01"), {"z": 1})
    assert seen["kw"] == {"z": 1} and isinstance(seen["ref"], KeyRef)
