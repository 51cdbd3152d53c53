r"""Reference-free self-checks a student runs in visible cells: no answer key needed.

Each function tests the student's own code against an independent truth — the autograd Jacobian of
their own forward map (:func:`flowcourse.jacobian.jacobian_logdet`), a round trip through their inverse,
the shape contract ``(batch,)``, finiteness, the lesson notes' published numbers, that an answer variable
is set in the form the grader reads — prints one line
(``✓``/``✗``), records it for :func:`summary` and returns whether it passed. Nothing here raises on a
wrong answer, so a failing self-check never stops the notebook. ``flowcourse check NOTEBOOK`` runs a
notebook's visible cells and prints every self-check line.

>>> import torch
>>> ok = logdet(lambda z: (2 * z, torch.full((z.shape[0],), 2 * 0.6931471805599453, dtype=z.dtype)),
...             torch.ones(3, 2, dtype=torch.float64), label="doubling")
✓ doubling: log-det matches autograd on 3 points (max error 0)
>>> close(0.58, 0.5802, "worked example 3", atol=1e-3)
✓ worked example 3: 0.58 ≈ 0.5802 (|error| 0.0002 ≤ 0.001)
True
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from flowcourse.jacobian import jacobian_logdet

__all__ = ["logdet", "round_trip", "close", "answer", "unchanged", "shape", "finite", "summary", "reset", "MIME"]

MIME = "application/vnd.flowcourse.selfcheck+json"
_results: list[dict[str, Any]] = []


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


def _report(label: str, passed: bool, detail: str) -> bool:
    line = f"{'✓' if passed else '✗'} {label}: {detail}"
    record = {"label": label, "passed": passed, "detail": detail}
    _results.append(record)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({MIME: record, "text/plain": line}, raw=True)
            return passed
    except ImportError:
        pass
    print(line)
    return passed


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def logdet(fn: Callable[[Tensor], tuple[Tensor, Tensor]], z: Tensor, *, label: str = "log-det",
           atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    r"""Check the log-det that ``fn(z) -> (x, logdet)`` returns against :math:`\log|\det \partial x/\partial z|`
    computed by autograd from ``fn``'s own ``x``; also that it has shape ``(batch,)`` and is finite.

    Use float64 points for tight tolerances.
    """
    try:
        out = fn(z)
        if not (isinstance(out, tuple) and len(out) == 2):
            return _report(label, False, f"expected (x, logdet) from the function, got {type(out).__name__}")
        got = out[1]
        if not isinstance(got, Tensor) or tuple(got.shape) != (z.shape[0],):
            what = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            return _report(label, False, f"log-det must have shape (batch,) = ({z.shape[0]},), got {what}")
        truth = jacobian_logdet(fn, z).to(got.dtype)
    except Exception as exc:
        return _report(label, False, f"raised {type(exc).__name__}: {exc}")
    if not torch.isfinite(got).all():
        return _report(label, False, "log-det has NaN or inf entries")
    err = (got.detach() - truth).abs()
    ok = bool((err <= atol + rtol * truth.abs()).all())
    if ok:
        return _report(label, True, f"log-det matches autograd on {z.shape[0]} points (max error {_fmt(err.max())})")
    i = int(err.argmax())
    hint = " — it looks negated (the other direction's log-det?)" if torch.allclose(
        got.detach(), -truth, atol=atol, rtol=rtol) else ""
    return _report(label, False, f"at point {i}: you return {_fmt(got[i])}, autograd says {_fmt(truth[i])}{hint}")


def round_trip(forward: Callable[[Tensor], Any], inverse: Callable[[Tensor], Any], z: Tensor, *,
               label: str = "round trip", atol: float = 1e-6) -> bool:
    """Check ``inverse(forward(z)) == z``; when both return log-dets, also that they sum to zero."""
    try:
        fwd, inv = forward(z), None
        inv = inverse(_first(fwd))
        back = _first(inv)
    except Exception as exc:
        return _report(label, False, f"raised {type(exc).__name__}: {exc}")
    if not isinstance(back, Tensor) or back.shape != z.shape:
        what = tuple(back.shape) if isinstance(back, Tensor) else type(back).__name__
        return _report(label, False, f"inverse returned shape {what}, expected {tuple(z.shape)}")
    err = float((back - z).detach().abs().max())
    if err > atol:
        return _report(label, False, f"inverse(forward(z)) differs from z by {_fmt(err)}")
    if isinstance(fwd, tuple) and isinstance(inv, tuple):
        total = float((fwd[1] + inv[1]).detach().abs().max())
        if total > atol:
            return _report(label, False, f"forward and inverse log-dets should sum to 0, off by {_fmt(total)}")
    return _report(label, True, f"inverse(forward(z)) == z (max error {_fmt(err)})")


def close(value: Any, expected: float | Sequence[float], label: str, *, atol: float = 1e-3) -> bool:
    """Check a number (or tensor) against a published value, e.g. a worked example of the lesson notes.

    For a tensor, the message names the worst entry only.

    >>> close(torch.tensor([1.0, 2.5, 3.0]), [1.0, 2.0, 3.0], "three values")
    ✗ three values: entry 1 is 2.5, expected 2 (|error| 0.5 > 0.001)
    False
    """
    try:
        got = torch.as_tensor(value, dtype=torch.float64).detach()
        want = torch.as_tensor(expected, dtype=torch.float64)
        error = (got - want).abs().reshape(-1)
        err = float(error.max())
    except Exception as exc:
        return _report(label, False, f"could not compare {value!r:.80} with {expected!r:.80}: {exc}")
    ok = err <= atol
    relation, bound = ("≈", "≤") if ok else ("≠", ">")
    if got.numel() == 1 and want.numel() == 1:
        detail = f"{_fmt(got.item())} {relation} {want.item():g} (|error| {_fmt(err)} {bound} {atol:g})"
        return _report(label, ok, detail)
    if ok:
        return _report(label, True, f"all {error.numel()} entries within {atol:g} (max |error| {_fmt(err)})")
    i = int(error.nan_to_num(float("inf")).argmax())
    g = got.reshape(-1)[i] if got.numel() > 1 else got.reshape(())
    w = want.reshape(-1)[i] if want.numel() > 1 else want.reshape(())
    return _report(label, False, f"entry {i} is {_fmt(float(g))}, expected {float(w):g} "
                                 f"(|error| {_fmt(err)} > {atol:g})")


def answer(name: str, kind: str = "letter", choices: str = "ABCD") -> bool:
    """Check that the answer variable ``name`` is set in the notebook and has the form the grader reads
    (``kind="letter"``: one of ``choices``; ``"number"``: a finite number) — not whether it is right.

    >>> answer_q1 = "b"
    >>> answer("answer_q1")
    ✓ answer_q1: set to 'b', one of A, B, C, D
    True
    >>> answer("answer_q9")
    ✗ answer_q9: not set — write answer_q9 = "B" (one letter) in the cell above
    False
    """
    scope = sys._getframe(1).f_globals  # the notebook's variables (the caller's module)
    example = '"B" (one letter)' if kind == "letter" else "0.5 (a number)"
    if name not in scope:
        return _report(name, False, f"not set — write {name} = {example} in the cell above")
    value = scope[name]
    if kind == "letter":
        ok = isinstance(value, str) and len(value.strip()) == 1 and value.strip().upper() in choices.upper()
        return _report(name, ok, f"set to {value!r:.40}" + (f", one of {', '.join(choices)}" if ok else
                                                             f": expected one letter of {', '.join(choices)}"))
    try:
        number = float(torch.as_tensor(value).reshape(()))
        ok = bool(torch.isfinite(torch.tensor(number)))
    except Exception:
        return _report(name, False, f"set to {value!r:.40}: expected a single number")
    return _report(name, ok, f"set to {number:g}" + ("" if ok else ": expected a finite number"))


def unchanged(fn: Callable[..., Any], *args: Any, label: str = "inputs unchanged") -> bool:
    """Call ``fn(*args)`` and check that it leaves its tensor arguments as they were (no in-place edits:
    ``z.mul_()``, ``z += …``, ``z[…] = …`` would change the caller's tensors and break autograd).

    >>> unchanged(lambda z: z.mul_(2), torch.ones(2))
    ✗ inputs unchanged: argument 0 was changed in place (an in-place edit: z.mul_(), z += …, z[…] = …)
    False
    """
    before = [a.detach().clone() if isinstance(a, Tensor) else None for a in args]
    try:
        fn(*args)
    except Exception as exc:
        return _report(label, False, f"raised {type(exc).__name__}: {exc}")
    changed = [i for i, (a, b) in enumerate(zip(args, before, strict=True))
               if b is not None and not torch.equal(a.detach(), b)]
    if changed:
        return _report(label, False, f"argument {', '.join(map(str, changed))} was changed in place (an in-place "
                                     "edit: z.mul_(), z += …, z[…] = …)")
    return _report(label, True, "no argument was changed")


def shape(value: Any, expected: Sequence[int], label: str = "shape") -> bool:
    """Check that ``value`` is a tensor of shape ``expected``."""
    got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
    return _report(label, got == tuple(expected), f"got {got}, expected {tuple(expected)}")


def finite(value: Any, label: str = "finite") -> bool:
    """Check that every entry of a tensor (or tuple of tensors) is finite."""
    items = value if isinstance(value, tuple) else (value,)
    bad = [i for i, v in enumerate(items) if isinstance(v, Tensor) and not torch.isfinite(v).all()]
    return _report(label, not bad, "all values finite" if not bad else f"NaN or inf in output {bad}")


def summary() -> str:
    """Print and return a one-line summary of the self-checks run so far in this kernel."""
    failed = [r["label"] for r in _results if not r["passed"]]
    text = f"self-check: {len(_results) - len(failed)}/{len(_results)} passed"
    if failed:
        text += " — failing: " + ", ".join(failed)
    print(text)
    return text


def reset() -> None:
    """Forget the recorded results (e.g. before re-running a notebook)."""
    _results.clear()
