"""The registry of check specs: one module per lesson, each with a module-level ``CHECKS`` list.

Add ``checks/lesson_NN.py`` with ``CHECKS = [Check(...), ...]``; every module in this package is found
automatically. Check names are unique course-wide (a test enforces it). Extra spec modules (e.g. the test
fixture course) are added with the environment variable ``FLOWCOURSE_CHECK_MODULES`` (comma-separated
importable module names). Spec modules must not import ``flowcourse.reference``: the student's kernel
imports them.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pkgutil
from pathlib import Path
from types import ModuleType

from flowcourse.grading.spec import Check

__all__ = ["spec_modules", "all_checks", "find_check", "spec_fingerprint", "UnknownCheck"]

ENV = "FLOWCOURSE_CHECK_MODULES"


class UnknownCheck(KeyError):
    """A test cell names a check no spec module defines."""


def spec_modules() -> list[ModuleType]:
    """This package's lesson modules, then those named in ``$FLOWCOURSE_CHECK_MODULES``."""
    names = [f"{__name__}.{info.name}" for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    names += [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]
    return [importlib.import_module(name) for name in names]


def all_checks() -> dict[str, Check]:
    """Every registered check by name; raises ``ValueError`` when two modules reuse a name."""
    found: dict[str, Check] = {}
    where: dict[str, str] = {}
    for module in spec_modules():
        for spec in getattr(module, "CHECKS", ()):
            if not isinstance(spec, Check):
                raise TypeError(f"{module.__name__}.CHECKS must hold Check objects, got {type(spec).__name__}")
            if spec.name in found:
                raise ValueError(f"check name {spec.name!r} defined in both {where[spec.name]} and {module.__name__}")
            found[spec.name] = spec
            where[spec.name] = module.__name__
    return found


def find_check(name: str) -> Check:
    """The check called ``name``; raises :class:`UnknownCheck` naming the known ones when absent."""
    checks = all_checks()
    if name not in checks:
        raise UnknownCheck(f"no check named {name!r}; known: {', '.join(sorted(checks)) or 'none'}")
    return checks[name]


_FINGERPRINTS: dict[str, str] = {}


def spec_fingerprint(name: str) -> str:
    """A hash of the spec module defining check ``name``, as this process first read it.

    The kernel sends its fingerprint with the evidence; the judge compares it with its own, so specs edited
    while a class is being graded show up as a grading error instead of as a student's wrong answer.
    """
    for module in spec_modules():
        if any(getattr(spec, "name", None) == name for spec in getattr(module, "CHECKS", ())):
            if module.__name__ not in _FINGERPRINTS:
                path = getattr(module, "__file__", None)
                data = Path(path).read_bytes() if path and os.path.exists(path) else module.__name__.encode()
                _FINGERPRINTS[module.__name__] = hashlib.sha256(data).hexdigest()[:16]
            return _FINGERPRINTS[module.__name__]
    raise UnknownCheck(f"no check named {name!r}")
