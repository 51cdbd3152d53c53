"""The lessons on the instructor side: ``flowcourse_lessons.lesson_05`` *is* the folder ``solutions/05-planar-radial/``.

A lesson folder holds its nbgrader source notebook and, as plain modules, everything the lesson owns:

``key.py``       the answer key: the lesson's graded functions and classes, and its quiz answers;
``checks.py``    the hidden checks (``CHECKS``): the cases each graded name is run on and its named mistakes;
``students.py``  the sample students (``STUDENTS``) and the mistaken implementations that prove each hint
                 (``MISTAKEN``);
``test_key.py``  the key's tests against independent truth (autograd Jacobians, round trips, closed forms).

Adding a lesson is adding a folder ``solutions/NN-topic/``: it becomes ``flowcourse_lessons.lesson_NN``.
The folder names are nbgrader's assignment names, not Python identifiers, so each folder is registered as a
package whose ``__path__`` is the folder; ``import flowcourse_lessons.lesson_05.key`` then works as usual.

>>> from flowcourse_lessons import lessons
>>> lessons()["lesson_01"].name
'01-change-of-variables'
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path

__all__ = ["COURSE_ROOT", "register", "lessons", "package_of", "assignment_of"]

COURSE_ROOT = Path(__file__).resolve().parents[2]
_FOLDER = re.compile(r"^(\d\d)-[a-z0-9-]+$")
_REGISTERED: dict[str, Path] = {}


def register(root: str | Path) -> dict[str, Path]:
    """Register every lesson folder ``root/solutions/NN-topic`` as the package ``flowcourse_lessons.lesson_NN``.

    Returns the lessons found under ``root``. Registering another course root (the tests' fixture course)
    adds its lessons; a copy of this course (the demo's scratch root) finds its lessons already registered and
    grades with the first copy; a lesson number already taken by another lesson is an error.
    """
    found: dict[str, Path] = {}
    solutions = Path(root).resolve() / "solutions"
    for folder in sorted(solutions.iterdir()) if solutions.is_dir() else ():
        match = _FOLDER.match(folder.name)
        if not (folder.is_dir() and match):
            continue
        name = f"lesson_{match.group(1)}"
        if _REGISTERED.get(name, folder).name != folder.name:
            raise ValueError(f"{name} is both {_REGISTERED[name]} and {folder}")
        if name not in _REGISTERED:  # a copy of a registered lesson (a demo's course root) uses the first one
            spec = importlib.machinery.ModuleSpec(f"{__name__}.{name}", None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            module = importlib.util.module_from_spec(spec)
            module.__doc__ = f"Lesson {match.group(1)}: the folder {folder}."
            sys.modules[spec.name] = module
            setattr(sys.modules[__name__], name, module)
            _REGISTERED[name] = folder
        found[name] = folder
    return found


def lessons() -> dict[str, Path]:
    """Every registered lesson package name and its folder, in lesson order."""
    return dict(sorted(_REGISTERED.items()))


def package_of(assignment: str) -> str:
    """``"05-planar-radial"`` → ``"flowcourse_lessons.lesson_05"`` (the folder must be registered)."""
    for name, folder in _REGISTERED.items():
        if folder.name == assignment:
            return f"{__name__}.{name}"
    raise KeyError(f"no lesson folder named {assignment!r}; known: {', '.join(f.name for f in lessons().values())}")


def assignment_of(package: str) -> str:
    """``"flowcourse_lessons.lesson_05"`` (or a module inside it) → ``"05-planar-radial"``."""
    name = package.split(".")[1]
    return _REGISTERED[name].name


register(COURSE_ROOT)
