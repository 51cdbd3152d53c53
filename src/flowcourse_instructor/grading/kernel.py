"""The kernel side of a hidden test: run the student's object on each case and emit the outputs as evidence.

Nothing here decides a grade. :func:`check` builds each case's inputs from the spec, calls the student's
object (each case under its own time limit, exceptions caught per case), encodes what came back and
displays it under the MIME type :data:`~flowcourse_instructor.grading.evidence.MIME`. The trusted judge, outside the
kernel, rebuilds the inputs, computes the answer key's outputs and replaces this display by the verdict.
A student who patches this module, torch or the inputs can only spoil their own evidence.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from flowcourse_instructor.grading.checks import all_checks, find_check, spec_fingerprint
from flowcourse_instructor.grading.evidence import MIME, encode
from flowcourse_instructor.grading.spec import Check

__all__ = ["check", "run_cases", "CaseTimeout"]

FORMAT = 1


class CaseTimeout(BaseException):
    """Raised inside a case that ran past its time limit (a BaseException so ``except Exception`` can't eat it)."""


def check(name: str, obj: Any) -> None:
    """Run the check ``name`` on the student's ``obj`` and display the evidence (returns nothing, so the
    cell shows no value).

    This is the one line a hidden test cell holds, e.g. ``check("planar_logdet", planar_logdet)``.
    """
    spec = find_check(name)
    payload = {"check": spec.name, "format": FORMAT, "spec": spec_fingerprint(name), "cases": []}
    namespace = sys._getframe(1).f_globals  # the notebook's globals, where its earlier graded functions live
    try:
        payload["cases"] = run_cases(spec, obj, into=payload["cases"], namespace=namespace)
    finally:  # a cell timeout interrupts with KeyboardInterrupt: still show the cases that ran
        _display(payload)


def run_cases(spec: Check, obj: Any, into: list[dict[str, Any]] | None = None,
              namespace: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Evidence for every case of ``spec``: ``{"label", "status", "output" | "error", "seconds"}``.

    ``status`` is ``"ok"``, ``"error"`` (the student's code raised) or ``"timeout"``. With the notebook's
    ``namespace``, the calls ``obj`` makes to the student's other graded functions of the lesson are recorded
    too (``"calls"``: their inputs and outputs), so that the judge charges a mistake in one of them once.
    """
    records = [] if into is None else into
    if spec.is_value:  # the answer itself, encoded under the time limit (its repr is the student's code)
        records.append(_run_case("answer", dict, obj, lambda answer: answer, spec.time_limit))
        return records
    limit = spec.time_limit
    helpers = _helpers(spec, obj, namespace or {})
    for case in spec.cases:
        with _recording(helpers, namespace or {}) as calls:
            records.append(_run_case(case.label, case.inputs, obj, spec.protocol, limit))
        if calls:
            records[-1]["calls"] = calls
        if records[-1]["status"] == "timeout":
            limit = min(limit, 1.0)  # one loop is evidence enough: keep the other cases from eating the cell
    return records


def _run_case(label: str, inputs: Callable[[], Mapping[str, Any]], obj: Any,
              protocol: Callable[..., Any] | None, limit: float) -> dict[str, Any]:
    start = time.perf_counter()
    record: dict[str, Any] = {"label": label}
    try:
        with _time_limit(limit):
            torch.manual_seed(0)  # the judge seeds the same way before building inputs
            kwargs = dict(inputs())
            before = {k: v.detach().clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
            if protocol is not None:
                out = protocol(obj, **kwargs)
            elif callable(obj):
                out = obj(**kwargs)
            else:
                raise TypeError(f"expected a function or class, got {type(obj).__name__} ({obj!r:.60})")
            record.update(status="ok", output=encode(out))
            changed = [k for k, v in before.items() if not _unchanged(kwargs[k], v)]
            if changed:  # the caller's tensors were edited in place: evidence the judge turns into a failure
                record["mutated"] = changed
    except CaseTimeout:
        record.update(status="timeout", error=f"did not finish within {limit:g} s")
    except (Exception, SystemExit) as exc:
        record.update(status="error", error=_describe(exc))
    record["seconds"] = round(time.perf_counter() - start, 4)
    return record


MAX_CALLS = 8  # recorded calls per helper and case: enough to replay a layer, small enough to send


def _code_names(obj: Any) -> set[str]:
    """Global names the code of a function, or of a class's methods, refers to (nested code included)."""
    codes = [obj.__code__] if isinstance(obj, types.FunctionType) else [
        f.__code__ for f in vars(obj).values() if isinstance(f, types.FunctionType)] if isinstance(obj, type) else []
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


def _helpers(spec: Check, obj: Any, namespace: dict[str, Any]) -> list[str]:
    """The lesson's other graded functions, as the notebook defines them, that ``obj`` calls."""
    graded = {s.name for s in all_checks().values() if s.lesson == spec.lesson} - {spec.name, spec.key_name}
    return sorted(n for n in graded & _code_names(obj) if isinstance(namespace.get(n), types.FunctionType))


@contextlib.contextmanager
def _recording(helpers: list[str], namespace: dict[str, Any]) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Replace each helper in ``namespace`` by a recorder of its calls (inputs and outputs, encoded)."""
    calls: dict[str, list[dict[str, Any]]] = {}
    originals = {name: namespace[name] for name in helpers}

    def recorder(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def record(*args: Any, **kwargs: Any) -> Any:
            log = calls.setdefault(name, [])
            if len(log) >= MAX_CALLS:
                return function(*args, **kwargs)
            entry: dict[str, Any] = {}
            with contextlib.suppress(Exception):  # what cannot be encoded is not checked
                entry = {"args": encode(list(args)), "kwargs": encode(kwargs)}  # before the call can edit them
            before = [a.detach().clone() if isinstance(a, torch.Tensor) else None for a in (*args, *kwargs.values())]
            try:
                out = function(*args, **kwargs)
            except Exception as exc:
                log.append({**entry, "error": _describe(exc)})
                raise
            if any(b is not None and not _unchanged(a, b) for a, b in zip((*args, *kwargs.values()), before,
                                                                            strict=True)):
                entry["mutated"] = True
            with contextlib.suppress(Exception):
                entry["output"] = encode(out)
            log.append(entry)
            return out
        return record

    namespace.update({name: recorder(name, f) for name, f in originals.items()})
    try:
        yield calls
    finally:
        namespace.update(originals)


def _unchanged(now: object, before: torch.Tensor) -> bool:
    """The input tensor still holds what it held before the call (NaN where it was NaN)."""
    if not isinstance(now, torch.Tensor) or now.shape != before.shape or now.dtype != before.dtype:
        return False
    now = now.detach()
    same = now == before
    if before.is_floating_point() or before.is_complex():
        same |= now.isnan() & before.isnan()
    return bool(same.all())


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = "<unprintable message>"
    return f"{type(exc).__name__}: {text}"[:500]


class _time_limit:  # noqa: N801 - used as a context manager
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` of wall time (SIGALRM)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.active = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")

    def __enter__(self) -> None:
        if self.active:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc: object) -> None:
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)

    @staticmethod
    def _fire(signum: int, frame: object) -> None:
        raise CaseTimeout


def _display(payload: dict[str, Any]) -> None:
    cases = payload["cases"]
    ran = sum(c["status"] == "ok" for c in cases)
    text = (
        f"flowcourse: check {payload['check']!r} ran on {len(cases)} case(s), {ran} returned a value; "
        "it is graded after submission (use flowcourse.selfcheck to test your work now)."
    )
    try:
        from IPython.display import display
    except ImportError:  # outside IPython: nothing to attach the evidence to
        print(text)
        return
    display({MIME: payload, "text/plain": text}, raw=True)
