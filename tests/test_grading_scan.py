"""Static scan of submissions: each cheat from issue 3 is flagged, ordinary solutions are not."""

from __future__ import annotations

import nbformat
import pytest

from flowcourse_instructor.grading.scan import scan_notebook, scan_source


@pytest.mark.parametrize(
    "source, rule",
    [
        ("import torch\ntorch.allclose = lambda *a, **k: True", "patches a library"),
        ("import numpy as np\nsetattr(np, 'allclose', lambda *a: True)", "patches a library"),
        ("import flowcourse_lessons.lesson_05.key as key\nkey.planar_logdet = f", "imports the answer key"),
        ("from flowcourse_lessons.lesson_05.key import planar_logdet", "imports the answer key"),
        ("import flowcourse_lessons", "imports the answer key"),
        ("get_ipython().input_transformers_cleanup.append(lambda lines: [])", "installs an IPython hook"),
        ("ip = get_ipython()\nip.events.register('pre_run_cell', f)", "installs an IPython hook"),
        ("import sys\nsys.modules['torch'] = None", "edits sys.modules"),
        ("open('../../../solutions/01/01.ipynb').read()", "names course files"),
        ("import sqlite3\nsqlite3.connect('gradebook.db')", "imports sqlite3"),
        ("import subprocess\nsubprocess.run(['ls'])", "imports subprocess"),
        ("import os\nos.system('cat /etc/passwd')", "calls os.system"),
        ("!cat ../../../gradebook.db", "runs a shell command"),
        ("check = lambda *a, **k: None", "rebinds check"),
        ("def f(:\n    torch.allclose = g", "does not parse"),
    ],
)
def test_cheats_are_flagged(source, rule):
    findings = scan_source(source, cell="c1")
    assert any(rule in f.rule for f in findings), findings
    assert all(f.cell == "c1" and f.line >= 1 for f in findings)


def test_ordinary_solutions_are_not_flagged():
    source = (
        "import math\nimport torch\n\ndef planar_logdet(z, u, w, b):\n"
        "    h = torch.tanh(z @ w + b)\n    return torch.log((1 + (1 - h**2) * (w @ u)).abs())\n"
        "x = torch.zeros(3)\nx[0] = 1.0\nresult = {'a': 1}\nresult['b'] = 2\n"
    )
    assert scan_source(source) == []


def test_notebook_scan_names_cells_and_skips_trusted_ones():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import flowcourse_lessons", metadata={"nbgrader": {"grade_id": "demo"}}),
        nbformat.v4.new_code_cell("torch.allclose = None", metadata={"nbgrader": {"grade_id": "answer"}}),
        nbformat.v4.new_markdown_cell("import flowcourse_lessons"),
    ])
    findings = scan_notebook(nb, skip={"demo"})
    assert [(f.cell, f.rule) for f in findings] == [("answer", "patches a library")]
    assert "cell answer, line 1" in str(findings[0])


def test_the_reference_package_name_is_configurable():
    assert scan_source("import fixture_key.toy", reference="fixture_key")[0].rule == "imports the answer key"
    assert scan_source("import fixture_key.toy") == []
