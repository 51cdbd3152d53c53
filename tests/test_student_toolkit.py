"""The student side holds no answer: the toolkit wheel, the student environment, the release and its files.

A graded name is any name a hidden check compares with the answer key (``Check.key_name``) or hands to the
judge (``Check.name``), course-wide. ``make student-env`` (a prerequisite of ``make test``) builds the wheel
into ``dist/`` and the environment into ``.venv-student/``; these tests open both.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

import flowcourse_lessons
from flowcourse_instructor.grading.checks import all_checks
from flowcourse_instructor.grading.config import GRADING_SIDE

ROOT = Path(__file__).resolve().parents[1]
WHEELS = sorted((ROOT / "dist").glob("flowcourse-*.whl"))
STUDENT_PYTHON = ROOT / ".venv-student" / "bin" / "python"
CHECKS = all_checks()
GRADED: dict[str, str] = {}  # graded name → its lesson folder
for _spec in CHECKS.values():
    for _name in {_spec.name, _spec.key_name}:
        GRADED[_name] = flowcourse_lessons.assignment_of(_spec.lesson)
ANSWERS = {name for name, spec in CHECKS.items() if spec.is_value}
INSTRUCTOR = ("flowcourse_lessons", "flowcourse_instructor")
STUB = re.compile(r"^\s*(#.*)?$|raise NotImplementedError|^\s*pass\s*$|^\s*(\"\"\"|''')")


def _defined(source: str) -> set[str]:
    """Names of every function and class defined anywhere in ``source`` (methods included)."""
    return {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def _is_stub(node: ast.FunctionDef) -> bool:
    body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
    return all(isinstance(b, (ast.Raise, ast.Pass)) for b in body)


def _implemented(source: str) -> set[str]:
    """Functions of ``source`` whose body is more than the release's stub, and classes whose maps are
    (``forward``/``inverse``, or any method but ``__init__`` when it has neither; helpers may be given)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and not _is_stub(node):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef) and m.name != "__init__"}
            maps = [methods[n] for n in ("forward", "inverse") if n in methods] or list(methods.values())
            if any(not _is_stub(m) for m in maps):
                names.add(node.name)
    return names


def _imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _assigned(source: str) -> set[str]:
    return {t.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name)}


def _toolkit_problems(files: dict[str, str]) -> list[str]:
    problems = []
    for path, source in files.items():
        if not path.endswith(".py"):
            continue
        for name in sorted(_defined(source) & set(GRADED)):
            problems.append(f"{path} defines {name}, graded in lesson {GRADED[name]}")
        for name in sorted(_assigned(source) & ANSWERS):
            problems.append(f"{path} assigns {name}, a quiz or numeric answer")
        for module in sorted(_imports(source)):
            if module.split(".")[0] in INSTRUCTOR:
                problems.append(f"{path} imports {module} (the grading side)")
        for marker in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "Mistake(", "Check("):
            if marker in source:
                problems.append(f"{path} holds {marker!r}")
    return problems


def test_the_graded_names_are_known():
    """The scan below can only fail if it knows what to look for."""
    assert {"planar_logdet", "compose_forward", "made_masks", "flow_elbo", "Planar"} <= set(GRADED)
    assert len(ANSWERS) > 40


def test_the_scan_finds_a_graded_function_a_quiz_answer_and_an_import_of_the_key():
    leaky = {"leaky.py": "import flowcourse_lessons.lesson_05.key\ndef planar_logdet(z, u, w, b):\n    return z\n"
                         "quiz_05_fold = 'B'\n"}
    assert len(_toolkit_problems(leaky)) == 3


def test_the_toolkit_source_holds_no_answer():
    files = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "src" / "flowcourse").rglob("*.py")}
    assert files and _toolkit_problems(files) == []


def test_the_student_wheel_holds_the_toolkit_alone():
    assert WHEELS, "no student wheel in dist/: run `make student-wheel`"
    with zipfile.ZipFile(WHEELS[-1]) as wheel:
        names = wheel.namelist()
        files = {n: wheel.read(n).decode() for n in names if n.endswith(".py")}
    assert all(n.startswith(("flowcourse/", "flowcourse-")) for n in names), names
    assert "flowcourse/base.py" in files and "flowcourse/selfcheck.py" in files
    assert _toolkit_problems(files) == []


def test_the_student_environment_has_no_key_and_no_grader():
    assert STUDENT_PYTHON.exists(), "no .venv-student: run `make student-env`"
    code = ("import importlib, json, flowcourse, flowcourse.base, flowcourse.selfcheck\n"
            "missing = []\n"
            "for name in ('flowcourse_lessons', 'flowcourse_instructor', 'flowcourse.reference',\n"
            "             'flowcourse.grading'):\n"
            "    try:\n        importlib.import_module(name)\n    except ImportError:\n        missing.append(name)\n"
            "print(json.dumps({'missing': missing, 'toolkit': flowcourse.__file__}))")
    out = subprocess.run([str(STUDENT_PYTHON), "-c", code], capture_output=True, text=True, timeout=300,
                         cwd="/", env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout)
    assert len(seen["missing"]) == 4, f"importable in the student environment: {seen}"
    toolkit = Path(seen["toolkit"]).parent
    assert ".venv-student" in str(toolkit), toolkit  # the wheel's copy, not the repository's source
    files = {str(p): p.read_text() for p in toolkit.rglob("*.py")}
    assert _toolkit_problems(files) == []
    # and no other file of the environment names a quiz answer or the grading side (nbgrader itself knows its markers)
    tokens = re.compile("|".join([*map(re.escape, sorted(ANSWERS)), "flowcourse_lessons", "flowcourse_instructor"]))
    leaks = [str(p) for p in toolkit.parent.rglob("*.py") if tokens.search(p.read_text(errors="replace"))]
    assert leaks == []


def test_the_student_pins_are_the_course_pins():
    course = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    student = tomllib.loads((ROOT / "student" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(student) <= set(course), set(student) - set(course)


def _release_folders() -> list[Path]:
    return sorted(p for p in (ROOT / "course").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", _release_folders(), ids=lambda p: p.name)
def test_the_release_imports_no_key_and_implements_no_graded_function(folder):
    """Release notebooks hold stubs only; released files may carry an EARLIER lesson's graded pieces."""
    assert not any((folder / name).exists() for name in GRADING_SIDE)
    problems = []
    for nb_path in folder.glob("*.ipynb"):
        for cell in nbformat.read(nb_path, 4).cells:
            if cell.cell_type != "code":
                continue
            source = cell.source
            if "### BEGIN SOLUTION" in source or "### BEGIN HIDDEN TESTS" in source:
                problems.append(f"{nb_path.name}: a solution or hidden test was released")
            try:
                ast.parse(source)
            except SyntaxError:
                continue
            problems += [f"{nb_path.name}: imports {m}" for m in _imports(source) if m.split(".")[0] in INSTRUCTOR]
            problems += [f"{nb_path.name}: implements {n}, graded in {GRADED[n]}"
                         for n in _implemented(source) & set(GRADED) if GRADED[n] >= folder.name]
    for py in folder.glob("*.py"):
        source = py.read_text()
        problems += [f"{py.name}: imports {m}" for m in _imports(source) if m.split(".")[0] in INSTRUCTOR]
        problems += [f"{py.name}: defines {n}, graded in {GRADED[n]} (released with {folder.name})"
                     for n in _defined(source) & set(GRADED) if GRADED[n] >= folder.name]
    assert problems == []


def test_the_release_scan_catches_a_later_lessons_function_in_a_released_file(tmp_path):
    source = "def made_masks(degrees):\n    return degrees\n"
    assert "made_masks" in _defined(source) & set(GRADED)
    stub = "def planar_logdet(z):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    assert _implemented(stub) == set()
    assert _implemented("def planar_logdet(z):\n    return z\n") == {"planar_logdet"}


def _student_kernelspec(tmp_path: Path) -> dict[str, str]:
    spec = tmp_path / "kernels" / "flowcourse-student"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(STUDENT_PYTHON), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "flowcourse student", "language": "python"}))
    return {"JUPYTER_PATH": str(tmp_path)}


@pytest.mark.slow
@pytest.mark.parametrize("lesson", sorted(flowcourse_lessons.lessons().values()), ids=lambda p: p.name)
def test_each_solved_lesson_runs_in_the_student_environment(lesson, tmp_path, monkeypatch):
    """A student who solves everything does the whole course with the toolkit alone, demos included."""
    from nbclient import NotebookClient
    from nbgrader.preprocessors import ClearHiddenTests

    assert STUDENT_PYTHON.exists(), "no .venv-student: run `make student-env`"
    work = tmp_path / lesson.name
    work.mkdir()
    for released in (ROOT / "course" / lesson.name).glob("*.py"):
        (work / released.name).write_text(released.read_text())
    for key, value in _student_kernelspec(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    for nb_path in sorted(lesson.glob("*.ipynb")):
        nb = nbformat.read(nb_path, 4)
        nb, _ = ClearHiddenTests().preprocess(nb, {})
        NotebookClient(nb, timeout=300, kernel_name="flowcourse-student",
                       resources={"metadata": {"path": str(work)}}).execute()
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == []
        assert sys.prefix not in json.dumps([c.get("outputs", []) for c in nb.cells])  # ran in the student env


def _hidden_checks(solution: Path) -> list[tuple[str, str]]:
    """``(check name, the expression its hidden test hands over)`` for every hidden test of a solution notebook."""
    found = []
    for cell in nbformat.read(solution, 4).cells:
        if cell.cell_type == "code" and "### BEGIN HIDDEN TESTS" in cell.source:
            for node in ast.walk(ast.parse(cell.source)):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and len(node.args) > 1:
                    found.append((node.args[0].value, ast.unparse(node.args[1])))
    return found


@pytest.mark.parametrize("folder", _release_folders(), ids=lambda p: p.name)
def test_every_graded_name_is_visible_in_the_release(folder):
    """A student must be told the exact name each graded cell sets: it is in the release's own text."""
    solution = ROOT / "solutions" / folder.name / f"{folder.name}.ipynb"
    release = nbformat.read(folder / solution.name, 4)
    visible = "\n".join(c.source for c in release.cells)
    missing = [f"{name} (graded by {check})" for check, name in _hidden_checks(solution)
               if not re.search(rf"\b{re.escape(name)}\b", visible)]
    assert missing == [], f"graded names the student is never shown: {missing}"


def test_the_visibility_scan_finds_a_hidden_name(tmp_path):
    cell = nbformat.v4.new_code_cell('### BEGIN HIDDEN TESTS\ncheck("quiz_x", answer_x)\n### END HIDDEN TESTS')
    path = tmp_path / "s.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert _hidden_checks(path) == [("quiz_x", "answer_x")]
