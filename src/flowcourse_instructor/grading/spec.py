r"""Check specifications: what a hidden test exercises, and which wrong answers it recognises.

A :class:`Check` names one graded object of a lesson (a function, a class, a quiz answer); its counterpart
in the lesson's answer key (``key.py`` beside the notebook) has the same name. It lists the :class:`Case`\ s
it is run on and the classic :class:`Mistake`\ s whose outputs the judge recognises. Specs are plain data:
the grading kernel imports them to build each case's inputs, and the trusted judge imports them to rebuild
the same inputs and compute the key's answer. So a lesson's ``checks.py`` never imports its ``key.py``; a
mistake's ``output`` receives a lazy handle to the key instead and calls it.

>>> spec = Check("double", cases=[Case("two points", lambda: {"z": tensor([[1.0, 2.0]])})])
>>> [case.label for case in spec.cases], spec.is_value
(['two points'], False)
>>> quiz = Check("quiz_00_q1")
>>> quiz.is_value
True
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["Case", "Mistake", "Check", "KeyRef", "randn", "rand", "tensor"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Case:
    """One deterministic input to a graded object.

    ``label`` names the input in the student's feedback (say what is special about it: "worked example
    3", "batch of 1", "large |w|"); ``inputs()`` returns the keyword arguments, built fresh on each call
    from fixed seeds so that the kernel and the judge build identical tensors.
    """

    label: str
    inputs: Callable[[], Mapping[str, Any]]


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer, recognised when a student's output equals ``output(ref, inputs)``.

    ``ref`` is a :class:`KeyRef` (``ref.planar_logdet`` is the lesson key's function, ``ref.lesson_05.planar_u_hat``
    an earlier lesson's), ``inputs``
    the case's keyword arguments. ``hint`` is the sentence the student reads, in the lesson's terms.
    """

    name: str
    hint: str
    output: Callable[[KeyRef, Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Check:
    r"""A graded object: its answer-key counterpart, the cases it runs on and the mistakes it names.

    ``reference`` is a dotted path inside the answer key (``"planar.planar_logdet"`` means
    ``flowcourse_lessons.lesson_05.key.planar_logdet``); only the trusted judge resolves it. With no cases the
    check is a *value* check: the student's object itself is the answer (quiz letters are compared
    case-insensitively, numbers within the tolerances). ``protocol(obj, **inputs)``, when given, says
    how to exercise a class or stateful object; the judge applies the same protocol to the reference.
    Outputs match when :math:`|y - \hat y| \le \mathrm{atol} + \mathrm{rtol}\,|\hat y|` elementwise
    and the shapes agree. ``time_limit`` bounds one case in seconds. ``outputs`` names the elements of a
    returned tuple for messages, e.g. ``("x", "log-det")``. ``same_dtype``: where the lesson teaches that the
    dtype follows the input, floating outputs must have the key's dtype (give float32 cases), not only its values.
    """

    name: str
    cases: tuple[Case, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    atol: float = 1e-6
    rtol: float = 1e-5
    protocol: Callable[..., Any] | None = None
    time_limit: float = 5.0
    outputs: tuple[str, ...] = ()
    key: str = ""
    lesson: str = ""
    same_dtype: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"check name must be a Python identifier, got {self.name!r}")
        object.__setattr__(self, "cases", _tuple_of(self.cases, Case, "cases"))
        object.__setattr__(self, "mistakes", _tuple_of(self.mistakes, Mistake, "mistakes"))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        labels = [case.label for case in self.cases]
        if len(set(labels)) != len(labels):
            raise ValueError(f"check {self.name!r}: case labels must be unique, got {labels}")
        if self.atol < 0 or self.rtol < 0 or self.time_limit <= 0:
            raise ValueError(f"check {self.name!r}: tolerances must be >= 0 and time_limit > 0")

    @property
    def key_name(self) -> str:
        """The attribute of the lesson's key that this check compares with."""
        return self.key or self.name

    @property
    def is_value(self) -> bool:
        """True for a value check (quiz answer, number): the student's object is compared directly."""
        return not self.cases


def _tuple_of(items: Iterable[Any], kind: type, what: str) -> tuple[Any, ...]:
    items = tuple(items)
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(f"{what} must hold {kind.__name__} objects, got {type(item).__name__}")
    return items


class KeyRef:
    """Lazy access to a lesson's answer key: ``KeyRef("flowcourse_lessons.lesson_05").planar_logdet``.

    Attributes are looked up in the lesson's ``key`` module, imported on first use; ``ref.lesson_NN`` is
    lesson NN's key module (a mistake built on an earlier lesson's function). Only the trusted judge
    resolves it: the grading kernel never has a key to import.
    """

    def __init__(self, lesson: str) -> None:
        self._lesson = lesson

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name.startswith("lesson_"):
            return importlib.import_module(f"{self._lesson.rpartition('.')[0]}.{name}.key")
        return getattr(importlib.import_module(f"{self._lesson}.key"), name)

    def resolve(self, spec: Check) -> Any:
        """The key's counterpart of ``spec``."""
        return getattr(self, spec.key_name)


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Standard-normal tensor from a private generator seeded with ``seed`` (same in every process).

    >>> bool((randn(2, 3, seed=1) == randn(2, 3, seed=1)).all())
    True
    """
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def rand(*shape: int, seed: int, low: float = 0.0, high: float = 1.0, dtype: torch.dtype = torch.float64) -> Tensor:
    """Uniform tensor on ``[low, high)`` from a private generator seeded with ``seed``."""
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return low + (high - low) * u


def tensor(values: Any, dtype: torch.dtype = torch.float64) -> Tensor:
    """A literal tensor, float64 by default (the seeds' worked values, edge cases)."""
    return torch.tensor(values, dtype=dtype)
