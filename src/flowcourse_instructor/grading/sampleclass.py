"""The sample class: students written as patches to the release notebooks, each with its expected grade.

A :class:`Student` starts from the lesson's full solution (``base="solution"``, solution cells filled in as
a student would, without the solution markers) or from the blank release (``base="release"``), then applies
``patches`` (cell id → new source), ``append`` (cell id → code added at the end of that cell), ``insert``
(cell id → a new code cell after it; ``""`` means at the top) and ``delete`` (cell ids). ``filename``
submits under another name, ``raw`` writes bytes instead of a notebook. Expectations: ``expect_points``
(test cell id → points; unlisted test cells at full points, or at 0 when ``base="release"``),
``expect_total`` (the notebook's total instead), ``expect_message`` (fragments the feedback must contain)
and ``expect_flags`` (fragments of static-scan findings). ``needs_isolation``: the expectation holds only
when the kernel is sandboxed (``root`` or ``userns`` mode).

Course files: every ``autograder/sample_class/*.py`` of the course root may define ``STUDENTS`` (a list of
dicts with the fields above) and ``ROBUSTNESS = {"lesson": …, "target": …}`` choosing the lesson (and the
graded function) that the generic robustness students below break. Every lesson gets ``full`` and
``blank`` automatically.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import importlib.util
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from flowcourse_instructor.grading.checks import find_check

__all__ = ["Student", "load_sample_class", "materialize", "robustness_students", "expected_points",
           "student_solution_source", "lessons"]


@dataclass
class Student:
    """One sample submission for one lesson, and what grading it must give."""

    id: str
    lesson: str
    base: str = "solution"
    patches: dict[str, str] = field(default_factory=dict)
    append: dict[str, str] = field(default_factory=dict)
    insert: dict[str, str] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    filename: str | None = None
    raw: bytes | None = None
    expect_points: dict[str, float] = field(default_factory=dict)
    expect_total: float | None = None
    expect_message: str | tuple[str, ...] = ()
    expect_flags: tuple[str, ...] = ()
    needs_isolation: bool = False
    about: str = ""

    def __post_init__(self) -> None:
        if self.base not in ("solution", "release"):
            raise ValueError(f"student {self.id}: base must be 'solution' or 'release', got {self.base!r}")
        if isinstance(self.expect_message, str):
            self.expect_message = (self.expect_message,) if self.expect_message else ()
        self.delete = tuple(self.delete)
        self.expect_flags = tuple(self.expect_flags)


def lessons(root: Path) -> list[str]:
    """Lesson (assignment) folders of ``solutions/`` that hold a notebook, in order."""
    src = Path(root) / "solutions"
    return sorted(d.name for d in src.iterdir() if d.is_dir() and any(d.glob("*.ipynb"))) if src.is_dir() else []


def _notebooks(root: Path, lesson: str) -> list[Path]:
    return sorted((Path(root) / "solutions" / lesson).glob("*.ipynb"))


def student_solution_source(source: str) -> str:
    """A solution cell as a student would hand it in: the solution markers removed, the code kept."""
    lines = [line for line in source.split("\n") if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line]
    return "\n".join(lines)


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _solution_notebook(release: NotebookNode, solution: NotebookNode) -> NotebookNode:
    nb = copy.deepcopy(release)
    answers = {_grade_id(c): c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid in answers:
            cell.source = student_solution_source(answers[gid])
    return nb


def _apply(student: Student, nb: NotebookNode) -> NotebookNode:
    ids = {_grade_id(c) or c.get("id") for c in nb.cells}
    for cell_id in [*student.patches, *student.append, *student.delete, *(k for k in student.insert if k)]:
        if cell_id not in ids:
            raise ValueError(f"student {student.id}: no cell {cell_id!r} in lesson {student.lesson}")
    def new_cell(source: str, where: str) -> NotebookNode:
        cell = nbformat.v4.new_code_cell(source)
        cell.id = f"student-{where}"  # deterministic, so materialising twice gives the same file
        return cell

    cells = []
    if "" in student.insert:
        cells.append(new_cell(student.insert[""], "top"))
    for cell in nb.cells:
        name = _grade_id(cell) or cell.get("id")
        if name in student.delete:
            continue
        if name in student.patches:
            cell.source = student.patches[name]
        if name in student.append:
            cell.source = cell.source.rstrip("\n") + "\n\n" + student.append[name]
        cells.append(cell)
        if name in student.insert:
            cells.append(new_cell(student.insert[name], f"after-{name}"))
    nb.cells = cells
    return nb


def materialize(students: list[Student], root: Path) -> list[Path]:
    """Write each student's submission into ``root/submitted/<id>/<lesson>/`` (from ``course/``).

    As ``nbgrader submit`` does, the lesson's released files come back with the notebook.
    """
    written = []
    for student in students:
        folder = Path(root) / "submitted" / student.id / student.lesson
        folder.mkdir(parents=True, exist_ok=True)
        for released in sorted((Path(root) / "course" / student.lesson).iterdir()):
            if released.is_file() and released.suffix != ".ipynb":
                shutil.copy2(released, folder / released.name)
        for source_path in _notebooks(root, student.lesson):
            release = nbformat.read(Path(root) / "course" / student.lesson / source_path.name, as_version=4)
            nb = release if student.base == "release" else _solution_notebook(release, nbformat.read(source_path, 4))
            target = folder / (student.filename or source_path.name)
            if student.raw is not None:
                target.write_bytes(student.raw)
            else:
                nbformat.write(_apply(student, copy.deepcopy(nb)), target)
            written.append(target)
    return written


def _test_cells(root: Path, lesson: str) -> dict[str, tuple[float, list[tuple[str, str]]]]:
    """Test cell id → (points, [(check name, name of the object it checks)]) from the solution notebooks."""
    out = {}
    for path in _notebooks(root, lesson):
        for cell in nbformat.read(path, 4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                calls = []
                for node in ast.walk(ast.parse(cell.source)):
                    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" and len(node.args) > 1:
                        target = node.args[1]
                        calls.append((node.args[0].value, target.id if isinstance(target, ast.Name) else ""))
                out[meta["grade_id"]] = (float(meta.get("points", 0)), calls)
    return out


def expected_points(root: Path, student: Student) -> dict[str, float]:
    """Expected points per test cell: ``expect_points`` where given, else full (solution) or 0 (release)."""
    cells = _test_cells(root, student.lesson)
    default = {cid: (pts if student.base == "solution" else 0.0) for cid, (pts, _) in cells.items()}
    return {**default, **student.expect_points}


def _names(root: Path, lesson: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(answers, tests)``: each name an answer cell defines → that cell; each check → the test cell running it.

    Sample students name what they change (``patches={"planar_logdet": ...}``) and what they expect
    (``expect_points={"planar_logdet": 0}``) by these names, so the notebook's cell ids are stated once, there.
    """
    answers: dict[str, str] = {}
    for path in _notebooks(root, lesson):
        for cell in nbformat.read(path, 4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("solution"):
                with contextlib.suppress(SyntaxError):
                    for node in ast.parse(student_solution_source(cell.source)).body:
                        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                            answers.setdefault(node.name, meta["grade_id"])
                        for target in getattr(node, "targets", []):
                            if isinstance(target, ast.Name):
                                answers.setdefault(target.id, meta["grade_id"])
    tests = {check: cell_id for cell_id, (_points, calls) in _test_cells(root, lesson).items() for check, _ in calls}
    return answers, tests


def resolve_names(root: Path, student: Student) -> Student:
    """``student`` with the graded names among its keys replaced by the cell ids they stand for."""
    answers, tests = _names(Path(root), student.lesson)

    def answer(key: str) -> str:
        return answers.get(key, key)

    return dataclasses.replace(
        student, patches={answer(k): v for k, v in student.patches.items()},
        append={answer(k): v for k, v in student.append.items()},
        insert={answer(k): v for k, v in student.insert.items()},
        delete=tuple(answer(k) for k in student.delete),
        expect_points={tests.get(k, k): v for k, v in student.expect_points.items()})


def _solution_cell_defining(root: Path, lesson: str, name: str) -> str:
    for path in _notebooks(root, lesson):
        for cell in nbformat.read(path, 4).cells:
            if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
                try:
                    tree = ast.parse(student_solution_source(cell.source))
                except SyntaxError:
                    continue
                if any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name for n in tree.body):
                    return _grade_id(cell)
    raise ValueError(f"lesson {lesson}: no solution cell defines {name!r}")


def _pick_target(root: Path, lesson: str) -> tuple[str, str]:
    """The last graded *function* of the lesson (least likely to be used by later cells), and its check."""
    found = []
    for _cid, (_pts, calls) in _test_cells(root, lesson).items():
        for check_name, obj in calls:
            if obj and not find_check(check_name).is_value:
                try:
                    _solution_cell_defining(root, lesson, obj)
                except ValueError:
                    continue
                found.append((obj, check_name))
    if not found:
        raise ValueError(f"lesson {lesson}: no graded function to build robustness students on")
    return found[-1]


def robustness_students(root: Path, lesson: str, target: str | None = None) -> list[Student]:
    """The generic students: crash, loop, memory bomb, warnings, each cheat, deleted/edited tests, bad files."""
    root = Path(root)
    cells = _test_cells(root, lesson)
    if target is None:
        target, check_name = _pick_target(root, lesson)
    else:
        check_name = next(c for _, calls in cells.values() for c, obj in calls if obj == target)
    cell = _solution_cell_defining(root, lesson, target)
    hit = {cid: 0.0 for cid, (_, calls) in cells.items() if any(obj == target for _, obj in calls)}
    test_cell = next(iter(hit))
    spec = find_check(check_name)
    key_module, key_name = f"{spec.lesson}.key", spec.key_name
    nb_name = _notebooks(root, lesson)[0].name

    def broken(body: str) -> str:
        return f"\n\ndef {target}(*args, **kwargs):\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ")

    wrong = broken("import torch\nreturn torch.zeros(1)")
    trusted_names = ("../../../solutions", "../../../gradebook.db")
    s = [
        Student("full", lesson, about="the full solution"),
        Student("blank", lesson, base="release", expect_message="NotImplementedError", about="the blank release"),
        Student("raises", lesson, append={cell: broken("return 1 / 0")}, expect_points=hit,
                expect_message="raised ZeroDivisionError", about=f"{target} raises"),
        Student("infinite-loop", lesson, append={cell: broken("while True:\n    pass")}, expect_points=hit,
                expect_message="did not finish within", about=f"{target} never returns"),
        Student("memory-bomb", lesson, append={cell: broken(
            "import torch\nhoard = []\nwhile True:\n    hoard.append(torch.empty(2**30, dtype=torch.uint8))")},
                expect_points=hit, expect_message="can't allocate memory",
                about=f"{target} allocates 1 GiB blocks until the address-space limit stops it"),
        Student("warnings", lesson, insert={"": "import sys, warnings\nwarnings.warn('a harmless warning')\n"
                                                "print('debug output on stderr', file=sys.stderr)"},
                append={cell: f"import warnings as _w\n_{target} = {target}\n\ndef {target}(*args, **kwargs):\n"
                              "    _w.warn('harmless warning while grading')\n"
                              f"    return _{target}(*args, **kwargs)"},
                about="a correct answer that prints warnings and stderr (nbgrader alone gives 0)"),
        Student("kills-kernel", lesson, insert={"": (  # a pid namespace's init ignores its own SIGKILL: exit then
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nos._exit(137)")},
                expect_total=0.0, expect_message="kernel died", about="the kernel dies in the first cell"),
        Student("cheat-allclose", lesson, append={cell: wrong}, insert={"": (
            "import numpy, torch\ntorch.allclose = lambda *a, **k: True\n"
            "torch.testing.assert_close = lambda *a, **k: None\nnumpy.allclose = lambda *a, **k: True")},
                expect_points=hit, expect_flags=("patches a library",),
                about="a wrong answer plus torch.allclose = lambda *a, **k: True"),
        Student("cheat-patch-key", lesson, append={cell: wrong}, insert={"": (
            "import importlib\ntry:\n"
            f"    key = importlib.import_module('{key_module}')\n"
            f"    setattr(key, '{key_name}', lambda *a, **k: __import__('torch').zeros(1))\n"
            "except Exception as exc:\n    print('could not patch the key:', exc)")},
                expect_points=hit, expect_flags=("imports importlib",),
                about="a wrong answer plus replacing the function in the answer-key module"),
        Student("cheat-copy-key", lesson, append={cell: wrong + (
            f"\n\nfrom {key_module} import {key_name} as {target}")}, expect_points=hit,
                expect_flags=("imports the answer key",), needs_isolation=True,
                about="imports the answer key's function as its answer"),
        Student("cheat-transformer", lesson, insert={"": (
            "ip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: [])")},
                expect_total=0.0, expect_message="changed how cells run", expect_flags=("IPython hook",),
                about="an IPython input transformer that empties every later cell"),
        Student("cheat-read-files", lesson, append={cell: wrong + "\n\n" + textwrap.dedent(f"""\
            import glob, json, sqlite3
            for path in glob.glob('{trusted_names[0]}/*/*.ipynb'):
                for c in json.load(open(path))['cells']:
                    if 'def {target}(' in ''.join(c['source']):
                        exec(''.join(c['source']).replace('### BEGIN SOLUTION', '').replace('### END SOLUTION', ''))
            try:
                db = sqlite3.connect('file:{trusted_names[1]}?mode=ro', uri=True)
                print(db.execute('select source from source_cell').fetchall()[:1])
            except Exception as exc:
                print('no gradebook:', exc)""")}, expect_points=hit, needs_isolation=True,
                expect_flags=("names course files",), about="reads solutions/ and the hidden tests in gradebook.db"),
        Student("cheat-rewrite-gradebook", lesson, append={cell: wrong}, insert={"": textwrap.dedent(f"""\
            import sqlite3
            try:
                db = sqlite3.connect('{trusted_names[1]}')
                db.execute("update source_cell set source = 'pass' where name like 'test%'")
                db.commit()
            except Exception as exc:
                print('could not rewrite the gradebook:', exc)""")}, expect_points=hit,
                expect_flags=("names course files",),
                about="rewrites the hidden tests in the gradebook so that later wrong answers pass"),
        Student("deleted-test", lesson, delete=(test_cell,), expect_message="was missing from your notebook",
                about="deleted a test cell"),
        Student("edited-test", lesson, patches={test_cell: "print('all tests passed')"},
                expect_message="was edited", about="replaced a test cell by a print"),
        Student("renamed", lesson, filename=nb_name.replace(".ipynb", " (1).ipynb"), expect_total=0.0,
                expect_message="no notebook named", about="handed the notebook in under another name"),
        Student("unreadable", lesson, raw=b"\x00\xff{ this is not a notebook", expect_total=0.0,
                expect_message="could not be read", about="handed in a corrupt file"),
    ]
    return s


def _load_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"flowcourse_sample_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sample_class(source_root: Path, work_root: Path | None = None, *, robustness: bool = True) -> list[Student]:
    """Every student of the course: ``full``/``blank`` per lesson, the robustness set, the lessons' own.

    Each lesson's students are ``STUDENTS`` in ``solutions/NN-topic/students.py`` under ``source_root`` (their
    lesson is that folder unless they name it); ``autograder/sample_class/*.py`` adds students of any lesson and
    says which lesson the robustness set uses (``ROBUSTNESS``). ``work_root`` holds the solutions and release
    they patch. ``robustness=False`` leaves out the generic robustness students (``full``/``blank`` stay).
    A student of a lesson that does not exist is an error, never silently dropped.
    """
    source_root, work_root = Path(source_root), Path(work_root or source_root)
    all_lessons = lessons(work_root)
    extra: list[Student] = []
    robust = {"lesson": all_lessons[0] if all_lessons else None, "target": None}
    files = [(path, path.parent.name) for path in sorted((source_root / "solutions").glob("*/students.py"))]
    files += [(path, None) for path in sorted((source_root / "autograder" / "sample_class").glob("*.py"))]
    for path, folder in files:
        module = _load_file(path)
        for s in getattr(module, "STUDENTS", []):
            s = s if isinstance(s, Student) else Student(**{"lesson": folder, **s})
            if s.lesson not in all_lessons:
                raise ValueError(f"{path}: student {s.id!r} is for lesson {s.lesson!r}, which has no notebook in "
                                 f"{work_root / 'solutions'} (lessons: {', '.join(all_lessons)})")
            extra.append(resolve_names(work_root, s))
        robust.update(getattr(module, "ROBUSTNESS", {}))
    students: list[Student] = []
    if robustness and robust["lesson"] in all_lessons:
        students += robustness_students(work_root, robust["lesson"], robust["target"])
    for lesson in all_lessons:
        if lesson != robust["lesson"] or not robustness:
            students += [Student("full", lesson, about="the full solution"),
                         Student("blank", lesson, base="release", about="the blank release")]
    students += extra
    seen = set()
    for s in students:
        if (s.id, s.lesson) in seen:
            raise ValueError(f"sample class: student {s.id!r} defined twice for lesson {s.lesson}")
        seen.add((s.id, s.lesson))
    return students
