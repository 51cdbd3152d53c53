"""Static scan of a submission: code that reaches for the grader, the answer key or the course files.

Findings never change a score (the judge's comparison already ignores what the kernel patches); they are
listed in the grade report for an instructor to review. Each finding names the cell, the line and a rule.

>>> [f.rule for f in scan_source("import torch\\ntorch.allclose = lambda *a, **k: True")]
['patches a library']
>>> scan_source("def f(z):\\n    return 2 * z")
[]
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "scan_source", "scan_notebook"]

_PATCHED_ROOTS = {"torch", "np", "numpy", "math", "flowcourse", "nbgrader", "IPython", "sys", "builtins", "os",
                  "scipy", "check", "selfcheck"}
_HOOK_PREFIXES = ("input_transformer", "ast_transformer", "register_magic", "set_custom_exc", "run_cell",
                  "showtraceback", "displayhook", "display_pub", "set_hook")
_SHELL_CALLS = {("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execve"), ("os", "fork"),
                ("os", "spawnv"), ("os", "kill"), ("os", "setuid")}
_SHELL_MODULES = {"subprocess", "pty", "ctypes", "multiprocessing", "signal", "importlib", "socket", "shutil",
                  "sqlite3", "sqlalchemy", "nbformat", "gc", "inspect"}
_COURSE_PATHS = re.compile(r"solutions|gradebook|\.git\b|autograder|submitted/|autograded/|feedback/|nbgrader_config")


@dataclass(frozen=True)
class Finding:
    """One suspicious line: which cell (id or index), which line, which rule, and the code."""

    cell: str
    line: int
    rule: str
    code: str

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.rule}: {self.code}"


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


class _Visitor(ast.NodeVisitor):
    def __init__(self, reference: str) -> None:
        self.found: list[tuple[int, str]] = []
        self.reference = reference

    def add(self, node: ast.AST, rule: str) -> None:
        self.found.append((getattr(node, "lineno", 0), rule))

    def _import(self, node: ast.AST, module: str, names: list[str]) -> None:
        full = [module, *(f"{module}.{n}" for n in names)] if module else names
        if any(m == self.reference or m.startswith(self.reference + ".") for m in full):
            self.add(node, "imports the answer key")
        if module.split(".")[0] in _SHELL_MODULES or any(n.split(".")[0] in _SHELL_MODULES for n in names):
            self.add(node, f"imports {module or names[0]} (processes, signals, files or introspection)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._import(node, "", [alias.name])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._import(node, node.module or "", [a.name for a in node.names])

    def _assigned(self, target: ast.AST, node: ast.AST) -> None:
        if isinstance(target, (ast.Attribute, ast.Subscript)):
            root = _root_name(target)
            if "sys.modules" in _dotted(target.value if isinstance(target, ast.Subscript) else target):
                self.add(node, "edits sys.modules")
            elif root in _PATCHED_ROOTS:
                self.add(node, "patches a library" if root not in ("check", "selfcheck") else "patches the grader")
        elif isinstance(target, ast.Name) and target.id in ("check", "get_ipython"):
            self.add(node, f"rebinds {target.id}")
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._assigned(t, node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._assigned(target, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assigned(node.target, node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith(_HOOK_PREFIXES) or (node.attr == "register" and _dotted(node.value).endswith("events")):
            self.add(node, "installs an IPython hook")
        elif _dotted(node) == "sys.modules" and not any(r == "edits sys.modules" for _, r in self.found):
            self.add(node, "uses sys.modules")
        elif node.attr in ("__builtins__", "__globals__", "__code__", "__subclasses__"):
            self.add(node, f"uses {node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if tuple(name.split(".")[-2:]) in _SHELL_CALLS or name in ("exec", "eval", "__import__", "compile"):
            self.add(node, f"calls {name}")
        if name == "get_ipython":
            self.add(node, "uses get_ipython()")
        if name in ("setattr", "delattr") and node.args and _root_name(node.args[0]) in _PATCHED_ROOTS:
            self.add(node, "patches a library")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and (_COURSE_PATHS.search(node.value) or self.reference in node.value):
            self.add(node, "names course files (solutions, gradebook, answer key, …)")


def _strip_magics(source: str) -> tuple[str, list[tuple[int, str]]]:
    """Turn IPython magics and shell escapes into blank lines, recording them as findings."""
    lines, found = [], []
    for i, line in enumerate(source.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("!", "%")):
            found.append((i, "runs a shell command or magic"))
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines), found


def scan_source(source: str, cell: str = "?", reference: str = "flowcourse_lessons") -> list[Finding]:
    """Findings in one cell's source (unparsable code is scanned line by line with patterns)."""
    code, found = _strip_magics(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        for i, line in enumerate(code.splitlines(), 1):
            if re.search(r"get_ipython|sys\.modules|subprocess|os\.system|torch\.\w+\s*=", line) or (
                    _COURSE_PATHS.search(line)):
                found.append((i, "suspicious code in a cell that does not parse"))
    else:
        visitor = _Visitor(reference)
        visitor.visit(tree)
        found += visitor.found
    src_lines = source.splitlines()
    out, seen = [], set()
    for line, rule in sorted(found):
        if (line, rule) not in seen:
            seen.add((line, rule))
            text = src_lines[line - 1].strip()[:120] if 0 < line <= len(src_lines) else ""
            out.append(Finding(cell, line, rule, text))
    return out


def scan_notebook(nb: Any, reference: str = "flowcourse_lessons", skip: set[str] | None = None) -> list[Finding]:
    """Findings in every code cell of a notebook (``skip``: cell ids not to scan, e.g. trusted test cells)."""
    found: list[Finding] = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id") or str(index)
        if skip and name in skip:
            continue
        source = cell.get("source", "")
        found += scan_source("".join(source) if isinstance(source, list) else source, str(name), reference)
    return found
