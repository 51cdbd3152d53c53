r"""The trusted comparison: student evidence against the answer key, case by case, with messages that teach.

Runs only in the grading process. For each case of a :class:`~flowcourse_instructor.grading.spec.Check` it rebuilds
the inputs, computes the answer key's output, decodes what the student's code returned and compares
(shapes exactly, values within :math:`\mathrm{atol} + \mathrm{rtol}|\hat y|`). A wrong output is matched
against the spec's named mistakes, then against generic ones (negated, not summed over dimensions, summed
or averaged over the batch, a constant factor or offset, :math:`|\det|` instead of :math:`\log|\det|`,
right values in the wrong shape, swapped tuple elements, NaN/inf).

>>> import torch
>>> from flowcourse_instructor.grading.spec import Case, Check, tensor
>>> spec = Check("double", cases=[Case("z = (1, 2)", lambda: {"z": tensor([1.0, 2.0])})])
>>> def evidence(value):
...     from flowcourse_instructor.grading.evidence import encode
...     return [{"label": "z = (1, 2)", "status": "ok", "output": encode(value)}]
>>> result = judge_check(spec, evidence(tensor([-2.0, -4.0])), reference=lambda z: 2 * z)
>>> result.passed, result.total, result.cases[0].hint.split(":")[0]
(0, 1, 'the sign is flipped')
"""

from __future__ import annotations

import contextlib
import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowcourse_instructor.grading.evidence import EvidenceError, Opaque, decode
from flowcourse_instructor.grading.spec import Check, KeyRef, Mistake

__all__ = ["CaseResult", "CheckResult", "judge_check", "compare", "diagnose", "render_text", "render_html",
           "describe"]


@dataclass
class CaseResult:
    """The verdict on one case: passed or not, what came back, what was expected, and a hint.

    ``mistake`` is the name of the spec's named mistake the output matched ("" when none did).
    """

    label: str
    passed: bool
    inputs: str = ""
    problem: str = ""
    hint: str = ""
    mistake: str = ""


@dataclass
class CheckResult:
    """The verdict on one check: its cases, and a note when no evidence could be used at all."""

    name: str
    cases: list[CaseResult] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases)


# ------------------------------------------------------------------------------------------ rendering

def describe(value: Any, limit: int = 6) -> str:
    """A short human rendering: tensors as shape + first values, containers recursively."""
    if isinstance(value, Tensor):
        flat = value.detach().reshape(-1)
        shape = tuple(value.shape)
        if value.is_floating_point():
            vals = [_num(float(v)) for v in flat[:limit]]
        else:
            vals = [str(v.item()) for v in flat[:limit]]
        more = ", …" if flat.numel() > limit else ""
        if value.dim() == 0:
            return f"tensor({vals[0]})"
        return f"tensor of shape {shape} [{', '.join(vals)}{more}]"
    if isinstance(value, np.ndarray):
        return "array " + describe(torch.from_numpy(np.asarray(value, dtype=np.float64)), limit)[7:]
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(describe(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(describe(v, limit) for v in value) + "]"
    if isinstance(value, Opaque):
        return str(value)
    if isinstance(value, str):
        return repr(value[:80])
    if callable(value) and hasattr(value, "__name__"):
        return f"the function {value.__name__}"
    return repr(value)[:120]


def _num(x: float) -> str:
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.6g}"


def _describe_inputs(inputs: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {describe(v, 4)}" for k, v in inputs.items())


# ------------------------------------------------------------------------------------------ comparison

@dataclass
class Mismatch:
    """Where and how an output differs; ``got``/``expected`` are the differing parts."""

    where: str
    problem: str
    got: Any
    expected: Any


def _as_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return torch.from_numpy(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def _normalise_answer(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _element_name(i: int, names: Sequence[str]) -> str:
    return names[i] if i < len(names) else f"element {i + 1} of the returned tuple"


def compare(got: Any, expected: Any, atol: float, rtol: float, where: str = "the output",
            names: Sequence[str] = (), dtype: bool = False) -> Mismatch | None:
    """``None`` when ``got`` matches ``expected``, else the first :class:`Mismatch` found.

    ``dtype``: floating tensors must also have the expected dtype (a float32 answer to float64 inputs otherwise
    passes within the tolerances).
    """
    if isinstance(expected, Tensor):
        return _compare_tensor(got, expected, atol, rtol, where, dtype)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return Mismatch(where, f"expected a tuple of {len(expected)} values, got {describe(got)}", got, expected)
        if len(got) != len(expected):
            return Mismatch(where, f"expected a tuple of {len(expected)} values, got {len(got)}", got, expected)
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            found = compare(g, e, atol, rtol, _element_name(i, names), dtype=dtype)
            if found is not None:
                return found
        return None
    if isinstance(expected, bool):
        ok = isinstance(got, (bool, np.bool_)) and bool(got) == expected
        return None if ok else Mismatch(where, f"got {describe(got)}, expected {expected}", got, expected)
    if isinstance(expected, (int, float)):
        g = _as_tensor(got)
        if g is None or g.numel() != 1:
            return Mismatch(where, f"expected a number, got {describe(got)}", got, expected)
        value = float(g.reshape(()).double())
        if math.isfinite(value) and abs(value - expected) <= atol + rtol * abs(expected):
            return None
        return Mismatch(where, f"got {_num(value)}, expected {_num(float(expected))}", value, float(expected))
    if isinstance(expected, str):
        if isinstance(got, str) and _normalise_answer(got) == _normalise_answer(expected):
            return None
        return Mismatch(where, f"your answer {describe(got)} is not the expected {expected!r}", got, expected)
    if got == expected:
        return None
    return Mismatch(where, f"got {describe(got)}, expected {describe(expected)}", got, expected)


def _compare_tensor(got: Any, expected: Tensor, atol: float, rtol: float, where: str,
                    dtype: bool = False) -> Mismatch | None:
    g = _as_tensor(got)
    if g is None:
        return Mismatch(where, f"expected a tensor of shape {tuple(expected.shape)}, got {describe(got)}", got,
                        expected)
    if g.numel() == 1 and expected.dim() == 0:
        g = g.reshape(())
    if tuple(g.shape) != tuple(expected.shape):
        return Mismatch(where, f"shape {tuple(g.shape)}, expected {tuple(expected.shape)}", g, expected)
    if dtype and expected.is_floating_point() and g.is_floating_point() and g.dtype != expected.dtype:
        return Mismatch(where, f"dtype {str(g.dtype).removeprefix('torch.')}, expected "
                               f"{str(expected.dtype).removeprefix('torch.')}", g, expected)
    if not expected.is_floating_point() and not expected.is_complex():
        bad = g != expected
    else:
        gd, ed = g.detach().to(torch.float64), expected.detach().to(torch.float64)
        bad = ~((gd - ed).abs() <= atol + rtol * ed.abs())  # NaN anywhere compares as bad
    if not bool(bad.any()):
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    at = f" at index {list(index)}" if index else ""
    count = int(bad.sum())
    gv, ev = g[index] if index else g, expected[index] if index else expected
    fmt = _num if expected.is_floating_point() else str
    more = f" ({count} of {bad.numel()} entries differ)" if bad.numel() > 1 else ""
    return Mismatch(where, f"{at.strip()}: got {fmt(gv.item())}, expected {fmt(ev.item())}{more}".lstrip(": "),
                    g, expected)


# ------------------------------------------------------------------------------------------ diagnosis

def _close(a: Tensor, b: Tensor, atol: float, rtol: float) -> bool:
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    return a.shape == b.shape and bool(((a - b).abs() <= atol + rtol * b.abs()).all())


def _generic_tensor(g: Tensor, e: Tensor, atol: float, rtol: float) -> str:
    if not (g.is_floating_point() and e.is_floating_point()):
        return ""
    g, e = g.detach().to(torch.float64), e.detach().to(torch.float64)
    tol = max(atol, 1e-9)
    if g.shape != e.shape:
        if g.numel() == e.numel() and _close(g.reshape(e.shape), e, tol, rtol):
            return f"right values in the wrong shape: return shape {tuple(e.shape)} (not {tuple(g.shape)})"
        if g.dim() > e.dim() and tuple(g.shape[: e.dim()]) == tuple(e.shape):
            summed = g.sum(dim=tuple(range(e.dim(), g.dim())))
            if _close(summed, e, tol, rtol):
                return ("per-dimension values not summed: sum over the event dimensions to return one value "
                        f"per sample, shape {tuple(e.shape)}")
        if g.numel() == 1 and e.dim() >= 1 and e.numel() > 1:
            v = g.reshape(())
            if _close(v, e.sum(), tol, rtol):
                return f"summed over the batch as well: return one value per sample, shape {tuple(e.shape)}"
            if _close(v, e.mean(), tol, rtol):
                return f"averaged over the batch: return one value per sample, shape {tuple(e.shape)}"
        if g.dim() == 2 and e.dim() == 2 and g.shape == e.shape[::-1] and _close(g.T, e, tol, rtol):
            return "the result is transposed"
        return ""
    if not torch.isfinite(g).all() and torch.isfinite(e).all():
        return ("NaN or inf in your output where the answer is finite: a log of a negative number (log without "
                "abs?), a division by zero, or exp overflowing (use softplus / a bounded scale)")
    if _close(g, -e, tol, rtol) and e.abs().max() > tol:
        return ("the sign is flipped: you return the negative of the answer — for a log-det, the other "
                "direction's log|det| (log|det J_f⁻¹| = −log|det J_f|), or a minus where the formula adds")
    if e.abs().min() > 1e-12 and _close(g, e.exp(), tol, rtol):
        return "you return |det| itself; the answer is log|det|"
    positive = e.abs() > 1e-12
    if positive.all():
        ratio = g / e
        c = float(ratio.reshape(-1)[0])
        if abs(c - 1) > 1e-6 and math.isfinite(c) and _close(g, c * e, tol, rtol) and abs(c) > 1e-12:
            return f"your values are {c:.4g} × the answer: a factor is missing or extra"
    offset = (g - e).reshape(-1)
    c = float(offset[0]) if offset.numel() else 0.0
    if e.numel() > 1 and abs(c) > tol and math.isfinite(c) and _close(g, e + c, tol, rtol):
        return f"off by the constant {c:.4g} everywhere: a missing or extra constant term (a normaliser?)"
    return ""


def diagnose(got: Any, expected: Any, mismatch: Mismatch, atol: float, rtol: float) -> str:
    """A generic explanation of a wrong output, or ``""`` when none fits."""
    if isinstance(expected, tuple) and isinstance(got, (tuple, list)) and len(got) == len(expected) == 2:
        if compare(tuple(got[::-1]), expected, atol, rtol) is None:
            return "the two returned values are swapped"
    if isinstance(expected, tuple) and not isinstance(got, (tuple, list)):
        return f"return a tuple of {len(expected)} values, e.g. (x, logdet)"
    g, e = _as_tensor(mismatch.got), _as_tensor(mismatch.expected)
    if g is not None and e is not None:
        if g.is_floating_point() and e.is_floating_point() and g.dtype != e.dtype and g.shape == e.shape:
            return WRONG_DTYPE
        return _generic_tensor(g, e, atol, rtol)
    return ""


# ------------------------------------------------------------------------------------------ judging

def _expected(spec: Check, reference: Any, inputs: dict[str, Any]) -> Any:
    if spec.is_value:
        return reference
    if spec.protocol is not None:
        return spec.protocol(reference, **inputs)
    return reference(**inputs)


def _build_inputs(make: Callable[[], Any]) -> dict[str, Any]:
    torch.manual_seed(0)  # the kernel seeds the same way before building inputs
    return dict(make())


IN_PLACE = ("in-place edit of an input: `z.mul_(…)`, `z += …` or `z[...] = …` change the caller's tensor (and "
            "break autograd on tensors that need gradients); compute a new tensor instead (`z * s`, `torch.where`)")
WRONG_DTYPE = ("the dtype must follow the input's (float32 in, float32 out): a tensor made with the default "
               "dtype (`torch.zeros(n)`, `torch.tensor(…)`) changed it; use `z.new_zeros(…)` or `dtype=z.dtype`")


def judge_check(spec: Check, records: list[dict[str, Any]] | None, *, key: KeyRef | None = None,
                reference: Any = None, missing: str = "") -> CheckResult:
    """Judge a check's evidence ``records`` (``None``: no evidence, every case fails with ``missing``).

    The answer key's object is ``reference`` if given, else ``key.resolve(spec)`` (``key`` defaults to the
    spec's lesson's key).
    """
    result = CheckResult(spec.name)
    labels = ["answer"] if spec.is_value else [c.label for c in spec.cases]
    if records is None:
        result.note = missing or "no output from the test"
        result.cases = [CaseResult(label, False, problem=result.note) for label in labels]
        return result
    key = key or KeyRef(spec.lesson)
    if reference is None:
        reference = key.resolve(spec)
    by_label = {r.get("label"): r for r in records if isinstance(r, dict)}
    makers = [lambda: {}] if spec.is_value else [c.inputs for c in spec.cases]
    for label, make in zip(labels, makers, strict=True):
        inputs = _build_inputs(make)
        shown = "" if spec.is_value else _describe_inputs(inputs)
        record = by_label.get(label)
        if record is None:
            result.cases.append(CaseResult(label, False, shown, "no output for this case: the test stopped before it"))
            continue
        status = record.get("status")
        if status == "timeout":
            result.cases.append(CaseResult(label, False, shown, f"your code {record.get('error', 'timed out')} "
                                           "(an infinite loop, or far too much work?)"))
            continue
        helper_calls = _checked_calls(key, record.get("calls") or {})
        wrong_helpers = sorted({name for name, _, ok in helper_calls if not ok})
        names = " and ".join(f"`{h}`" for h in wrong_helpers)
        if status != "ok":
            error = record.get("error", "?")
            hint = IN_PLACE if re.search(r"in-?place operation", error) else ""
            raised_in = _raised_in(key, record.get("calls") or {})
            if raised_in:
                hint = (f"the error was raised inside your `{raised_in}` (the key's `{raised_in}` accepts the same "
                        "inputs): fix it first (see its own check)" + (f"; {hint}" if hint else ""))
            result.cases.append(CaseResult(label, False, shown, f"your code raised {error}", hint))
            continue
        edited_by_helper = [name for name, recorded in (record.get("calls") or {}).items()
                            if any(call.get("mutated") for call in recorded)]
        if record.get("mutated") and not edited_by_helper:
            changed = ", ".join(f"`{n}`" for n in record["mutated"])
            result.cases.append(CaseResult(label, False, shown, f"your code changed its input {changed} in place",
                                           IN_PLACE))
            continue
        try:
            got = decode(record.get("output"))
        except EvidenceError as exc:
            result.cases.append(CaseResult(label, False, shown, f"unreadable output ({exc})"))
            continue
        expected = _expected(spec, reference, inputs)
        mismatch = compare(got, expected, spec.atol, spec.rtol, names=spec.outputs, dtype=spec.same_dtype)
        if mismatch is None:
            result.cases.append(CaseResult(label, True, shown, hint=_charged_elsewhere(spec, wrong_helpers)))
            continue
        if wrong_helpers and _explained(got, expected, helper_calls, spec):  # a mistake is charged once
            result.cases.append(CaseResult(label, True, shown, hint=_charged_elsewhere(spec, wrong_helpers)))
            continue
        named = _named_mistake(spec, key, make, got)
        hint = f"{named.name}: {named.hint}" if named else diagnose(got, expected, mismatch, spec.atol, spec.rtol)
        if wrong_helpers:
            hint = (f"your `{spec.name}` calls your {names}, which is wrong on these inputs: fix it first (see its "
                    f"own check), then look at `{spec.name}` again" + (f" — {hint}" if hint else ""))
        problem = f"{mismatch.where}: {mismatch.problem}" if mismatch.where != "the output" or not spec.is_value \
            else mismatch.problem
        result.cases.append(CaseResult(label, False, shown, problem, hint, named.name if named else ""))
    return result


def _decoded_calls(calls: list[dict[str, Any]]) -> list[tuple[list[Any], dict[str, Any], Any, bool]]:
    """Recorded helper calls that returned, as ``(args, kwargs, output, edited its inputs?)``; calls with an
    input that could not be encoded (a function, a layer) are left out: they cannot be checked."""
    out = []
    for call in calls:
        with contextlib.suppress(EvidenceError, KeyError, TypeError):
            args, kwargs = decode(call["args"]), decode(call["kwargs"])
            if not _has_opaque([args, kwargs]):
                out.append((args, kwargs, decode(call["output"]), bool(call.get("mutated"))))
    return out


def _has_opaque(value: Any) -> bool:
    if isinstance(value, Opaque):
        return True
    if isinstance(value, dict):
        return any(_has_opaque(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_opaque(v) for v in value)
    return False


def _charged_elsewhere(spec: Check, helpers: Sequence[str]) -> str:
    if not helpers:
        return ""
    names = " and ".join(f"`{h}`" for h in helpers)
    return (f"your `{spec.name}` is right; what is wrong here comes from your {names} (traced in the checks "
            "above): a mistake costs points once, in the function that makes it")


def _raised_in(key: KeyRef, calls: dict[str, list[dict[str, Any]]]) -> str:
    """The helper that raised, when the key's own helper accepts the same inputs (the fault is the helper's)."""
    for name, recorded in sorted(calls.items()):
        for call in recorded:
            if "error" not in call or "args" not in call:
                continue
            with contextlib.suppress(Exception):
                args, kwargs = decode(call["args"]), decode(call["kwargs"])
                if not _has_opaque([args, kwargs]):
                    getattr(key, name)(*args, **kwargs)
                    return name
    return ""


def _checked_calls(key: KeyRef, calls: dict[str, list[dict[str, Any]]]) -> list[tuple[str, tuple[Any, Any], bool]]:
    """Each recorded helper call as ``(name, (the student's output, the key's output), right?)``."""
    checked = []
    for name, recorded in sorted(calls.items()):
        try:
            truth = getattr(key, name)
        except AttributeError:
            continue
        for args, kwargs, output, mutated in _decoded_calls(recorded):
            try:
                answer = truth(*args, **kwargs)
            except Exception:  # noqa: BLE001 - inputs the key refuses: nothing to compare against
                continue
            right = _matches(output, answer) and not mutated  # an in-place edit is wrong too
            checked.append((name, (output, answer), right))
    return checked


def _matches(got: Any, answer: Any) -> bool:
    """``got`` equals ``answer`` within 1e-6, NaN in the same places counting as equal (a helper handed NaN by
    its caller's own bug is not wrong)."""
    def nan_safe(value: Any) -> Any:
        if isinstance(value, Tensor) and value.is_floating_point():
            # in float64: in float32 the stand-in for NaN would overflow to inf, and inf never equals inf
            return torch.nan_to_num(value.detach().to(torch.float64), nan=1.2345e300, posinf=1e301, neginf=-1e301)
        return [nan_safe(v) for v in value] if isinstance(value, (tuple, list)) else value
    return compare(nan_safe(got), nan_safe(answer), 1e-6, 1e-5) is None


def _parts(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (tuple, list)) else [value]


def _explained(got: Any, expected: Any, calls: list[tuple[str, tuple[Any, Any], bool]], spec: Check) -> bool:
    """True when every wrong part of ``got`` is what the key makes of a helper's answer (the answer itself,
    negated, shifted or scaled, ``a·helper + b``), made by the student from their wrong helper's output the
    same way: the function is right, only its helper is not."""
    got_parts, expected_parts = _parts(got), _parts(expected)
    if len(got_parts) != len(expected_parts):
        return False
    for g, e in zip(got_parts, expected_parts, strict=True):
        if compare(g, e, spec.atol, spec.rtol) is None:
            continue
        if not any(_same_use(g, e, own_part, key_part, spec)
                   for _, (own, answer), ok in calls if not ok
                   for own_part, key_part in zip(_parts(own), _parts(answer), strict=False)):
            return False
    return True


def _same_use(got: Any, expected: Any, own: Any, answer: Any, spec: Check) -> bool:
    """``expected = a·answer + b`` for numbers a, b and ``got = a·own + b`` with the same a, b; or the helper's
    answer is a term of the expected value (``got − expected = ±(own − answer)``)."""
    g, e, o, k = (_as_tensor(v) for v in (got, expected, own, answer))
    if any(v is None or not v.is_floating_point() for v in (g, e, o, k)) or g.shape != e.shape:
        return False
    try:  # a helper's value may be spread over the batch (one log|det W| for every sample)
        o, k = o.expand(e.shape), k.expand(e.shape)
    except RuntimeError:
        return False
    e64, k64, g64, o64 = (v.detach().double().reshape(-1) for v in (e, k, g, o))
    if not bool(torch.isfinite(e64).all() and torch.isfinite(k64).all()):
        return False

    def agrees(x: Tensor, y: Tensor) -> bool:  # NaN where the other has NaN counts as agreeing
        both = x.isnan() & y.isnan()
        return compare(torch.where(both, 0.0, x), torch.where(both, 0.0, y), spec.atol, spec.rtol) is None

    if k64.numel() > 1 and float(k64.max() - k64.min()) > 1e-9:
        design = torch.stack([k64, torch.ones_like(k64)], dim=1)
        fits = [tuple(torch.linalg.lstsq(design, e64.unsqueeze(1)).solution.reshape(-1).tolist())]
    else:  # one value (or a constant helper): the helper's answer enters as itself or negated
        fits = [(a, float((e64 - a * k64).mean())) for a in (1.0, -1.0)]
    if any(agrees(a * k64 + b, e64) and agrees(g64, a * o64 + b) for a, b in fits):
        return True
    # the helper's answer enters as a term (``expected = rest ± answer``): its error passes through unchanged
    return any(agrees(g64 - e64, sign * (o64 - k64)) for sign in (1.0, -1.0))


def _named_mistake(spec: Check, key: KeyRef, make: Callable[[], Any], got: Any) -> Mistake | None:
    for mistake in spec.mistakes:
        try:
            wrong = mistake.output(key, _build_inputs(make))
        except Exception:  # a mistake that cannot be formed for this case simply does not match
            continue
        if _matches_mistake(got, wrong, spec):
            return mistake
    return None


def _matches_mistake(got: Any, wrong: Any, spec: Check) -> bool:
    def nan_safe(value: Any) -> Any:  # a mistake that yields NaN matches a student's NaN in the same places
        if isinstance(value, Tensor) and value.is_floating_point():
            return torch.nan_to_num(value.detach().to(torch.float64), nan=1e300, posinf=1e299, neginf=-1e299)
        if isinstance(value, (tuple, list)):
            return type(value)(nan_safe(v) for v in value)
        return value

    return compare(nan_safe(got), nan_safe(wrong), spec.atol, spec.rtol) is None


# ------------------------------------------------------------------------------------------ messages

def render_text(title: str, results: Sequence[CheckResult], score: float, points: float,
                notes: Sequence[str] = ()) -> str:
    """The plain-text verdict of a test cell (also what ``text/plain`` feedback shows)."""
    passed, total = sum(r.passed for r in results), sum(r.total for r in results)
    lines = [f"{title}: {passed}/{total} cases passed → {score:g} / {points:g} points"]
    lines += [f"  note: {n}" for n in notes]
    for r in results:
        if r.note:
            lines.append(f"  ✗ [{r.name}] {r.note}")
            lines.append("      cases not graded: " + "; ".join(f"“{c.label}”" for c in r.cases))
            continue
        for c in r.cases:
            mark = "✓" if c.passed else "✗"
            lines.append(f"  {mark} [{r.name}] case “{c.label}”" + ("" if c.passed else f": {c.problem}"))
            if not c.passed and c.inputs:
                lines.append(f"      inputs: {c.inputs}")
            if c.hint:
                lines.append(f"      {'note' if c.passed else 'likely mistake'} — {c.hint}")
    return "\n".join(lines)


def render_html(title: str, results: Sequence[CheckResult], score: float, points: float,
                notes: Sequence[str] = ()) -> str:
    """The same verdict as :func:`render_text`, as a small HTML block for the feedback page."""
    e = html.escape
    passed, total = sum(r.passed for r in results), sum(r.total for r in results)
    color = "#1a7f37" if passed == total and total else ("#9a6700" if passed else "#cf222e")
    out = [f'<div class="flowcourse-verdict" style="border-left:4px solid {color};padding:4px 8px">',
           f"<b>{e(title)}</b>: {passed}/{total} cases passed → <b>{score:g} / {points:g}</b> points"]
    if notes:
        out.append("<ul>" + "".join(f"<li><i>{e(n)}</i></li>" for n in notes) + "</ul>")
    out.append("<ul>")
    for r in results:
        if r.note:
            labels = "; ".join(f"“{c.label}”" for c in r.cases)
            out.append(f'<li><span style="color:#cf222e">✗</span> <code>{e(r.name)}</code>: {e(r.note)}'
                       f"<br><small>cases not graded: {e(labels)}</small></li>")
            continue
        for c in r.cases:
            mark = '<span style="color:#1a7f37">✓</span>' if c.passed else '<span style="color:#cf222e">✗</span>'
            item = f"<li>{mark} <code>{e(r.name)}</code> case “{e(c.label)}”"
            if not c.passed:
                item += f": {e(c.problem)}"
                if c.inputs:
                    item += f"<br><small>inputs: {e(c.inputs)}</small>"
                if c.hint:
                    item += f"<br><b>{'note' if c.passed else 'likely mistake'}</b> — {e(c.hint)}"
            out.append(item + "</li>")
    out.append("</ul></div>")
    return "\n".join(out)
