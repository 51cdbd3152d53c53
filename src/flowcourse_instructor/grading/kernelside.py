"""What a grading kernel runs on: the student environment, plus the kernel half of the checks — never a key.

A grading kernel gets exactly what a student has — the Python of ``.venv-student`` (``make student-env``: the
toolkit wheel, JupyterLab, nbgrader's student extensions) — and one folder staged for it beside that:

``src/flowcourse_instructor/``  the check runner the hidden test cells import (``check``), and its helpers
``src/flowcourse_lessons/``     the lessons' registry
``solutions/NN-topic/checks.py`` each lesson's case inputs and named mistakes (no ``key.py`` is staged)

So the answer key is absent from a grading kernel by construction: no file of it is on the kernel's path or in
its environment. The sandbox (:mod:`.sandbox`) hides the course root, the repository and the grader's home as a
second wall. Without a student environment (``make student-env`` not run) kernels fall back to the grader's own
Python, which has the key installed: the grade report says so, and only the sandbox keeps the key out of reach.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import flowcourse_lessons

__all__ = ["KernelSide", "kernel_side", "kernel_environment", "stage", "student_python"]


@dataclass(frozen=True)
class KernelSide:
    """The interpreter grading kernels run (``python``), the folder put on their path (``path``), and whether
    that interpreter is the student environment's (``student``)."""

    python: str
    path: str
    student: bool

    @property
    def prefix(self) -> str:
        """The environment folder of ``python`` (``.venv-student``), which the sandbox keeps visible."""
        return str(Path(self.python).parent.parent)

    @property
    def describe(self) -> str:
        return ("the student environment (no answer key installed)" if self.student else
                "the grader's own environment (run `make student-env`: the key is installed there, only the "
                "sandbox hides it)")


def student_python(root: Path | None = None) -> Path | None:
    """``.venv-student/bin/python`` of the repository, when ``make student-env`` has made it."""
    python = (root or flowcourse_lessons.COURSE_ROOT) / ".venv-student" / "bin" / "python"
    return python if python.exists() else None


def stage(dest: Path) -> Path:
    """Copy the kernel half of grading into ``dest`` (see the module docstring); return the folder for the path."""
    import flowcourse_instructor

    src = dest / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in (Path(flowcourse_instructor.__file__).parent, Path(flowcourse_lessons.__file__).parent):
        shutil.copytree(package, src / package.name, ignore=ignore)
    for folder in flowcourse_lessons.lessons().values():
        if (folder / "checks.py").is_file():
            (dest / "solutions" / folder.name).mkdir(parents=True)
            shutil.copy2(folder / "checks.py", dest / "solutions" / folder.name / "checks.py")
    return src


def kernel_side(course_root: str | Path) -> KernelSide:
    """The kernel side for grading ``course_root`` (its lessons are registered here first).

    Staged once per content under ``course_root/.kernel-side/<hash>/`` (written to a temporary name, then
    renamed, so parallel graders share one copy); ``make clean`` removes it.
    """
    flowcourse_lessons.register(course_root)
    return _kernel_side(Path(course_root).resolve(), tuple(sorted(flowcourse_lessons.lessons().items())))


@cache
def _kernel_side(course_root: Path, lessons: tuple[tuple[str, Path], ...]) -> KernelSide:
    base = course_root / ".kernel-side"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    scratch = Path(tempfile.mkdtemp(prefix="staging-", dir=base))
    stage(scratch)
    digest = hashlib.sha256()
    for path in sorted(p for p in scratch.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(scratch)).encode() + b"\0" + path.read_bytes())
    dest = base / digest.hexdigest()[:16]
    try:
        scratch.chmod(0o755)  # root mode runs kernels as an unprivileged uid: readable, never writable
        scratch.rename(dest)
    except OSError:  # another grader staged the same content first
        shutil.rmtree(scratch, ignore_errors=True)
    python = student_python()
    return KernelSide(python=str(python or sys.executable), path=str(dest / "src"), student=python is not None)


def kernel_environment(environ: Mapping[str, str], side: KernelSide) -> dict[str, str]:
    """The environment of a grading kernel: ``environ`` with the kernel side as its only Python path, and nothing
    that points into the course (the course root the grader works on is the grader's business)."""
    env = {k: v for k, v in environ.items() if not k.startswith("FLOWCOURSE_") and k != "VIRTUAL_ENV"}
    env["PYTHONPATH"] = side.path
    return env
