"""The registry of check specs: each lesson folder's ``checks.py`` with its module-level ``CHECKS`` list.

Every registered lesson (:mod:`flowcourse_lessons`) with a ``checks.py`` is found automatically; another
course root (the tests' fixture course) is added with :func:`flowcourse_lessons.register`, which
:func:`flowcourse_instructor.grading.config.configure` and every grading task (:mod:`..engine`) call for the root
they grade. Check names are
unique course-wide (a test enforces it), so a hidden test cell names a check without its lesson. A lesson's
``checks.py`` never imports its ``key.py``: the grading kernel imports the checks, and has no key.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import flowcourse_lessons
from flowcourse_instructor.grading.spec import Check

if TYPE_CHECKING:
    from flowcourse_instructor.grading.policy import GradingPolicy

__all__ = ["spec_modules", "all_checks", "find_check", "spec_fingerprint", "UnknownCheck"]


class UnknownCheck(KeyError):
    """A test cell names a check no spec module defines."""


def spec_modules() -> list[ModuleType]:
    """The ``checks`` module of every registered lesson that has one, in lesson order."""
    return [importlib.import_module(f"flowcourse_lessons.{name}.checks")
            for name, folder in flowcourse_lessons.lessons().items() if (folder / "checks.py").is_file()]


def all_checks() -> dict[str, Check]:
    """Every registered check by name; raises ``ValueError`` when two lessons reuse a name."""
    found: dict[str, Check] = {}
    for module in spec_modules():
        lesson = module.__name__.rpartition(".")[0]
        for spec in getattr(module, "CHECKS", ()):
            if not isinstance(spec, Check):
                raise TypeError(f"{module.__name__}.CHECKS must hold Check objects, got {type(spec).__name__}")
            if spec.name in found and found[spec.name].lesson != lesson:
                raise ValueError(f"check name {spec.name!r} defined in both {found[spec.name].lesson} and {lesson}")
            if spec.name in found:
                raise ValueError(f"check name {spec.name!r} defined twice in {lesson}")
            object.__setattr__(spec, "lesson", lesson)  # derived from where the spec lives, never restated
            found[spec.name] = spec
    return found


def find_check(name: str) -> Check:
    """The check called ``name``; raises :class:`UnknownCheck` naming the known ones when absent."""
    checks = all_checks()
    if name not in checks:
        raise UnknownCheck(f"no check named {name!r}; known: {', '.join(sorted(checks)) or 'none'}")
    return checks[name]


def spec_fingerprint(name: str, policy: GradingPolicy | None = None) -> str:
    """A hash of the ``checks.py`` defining check ``name``: the policy's snapshot when it has one, else the file now.

    The kernel sends its fingerprint with the evidence; the judge compares it with the one the grading policy
    took before grading began, so specs edited while a class is being graded show up as a grading error
    instead of as a student's wrong answer.
    """
    from flowcourse_instructor.grading.policy import checks_fingerprint

    module = importlib.import_module(f"{find_check(name).lesson}.checks")
    path = Path(getattr(module, "__file__", None) or "")
    snapshot = policy.fingerprint(path.parent.name) if policy is not None else None
    return snapshot or checks_fingerprint(path)
