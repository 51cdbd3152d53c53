"""Student self-checks: reference-free truths (autograd, round trips, published numbers) and `flowcourse check`."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from flowcourse import selfcheck
from flowcourse.studentcheck import check_notebook

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"


A = torch.tensor([2.0, -0.7], dtype=torch.float64)  # log|det| = log 1.4, not 0: the checks can fail


def affine(z, a=A, b=1.0):
    return a * z + b, torch.log(a.abs()).sum().expand(z.shape[0])


def affine_inverse(x, a=A, b=1.0):
    return (x - b) / a, -torch.log(a.abs()).sum().expand(x.shape[0])


@pytest.fixture(autouse=True)
def _fresh():
    selfcheck.reset()
    yield
    selfcheck.reset()


def test_logdet_against_autograd(capsys):
    z = torch.randn(4, 2, dtype=torch.float64)
    assert selfcheck.logdet(affine, z, label="affine")
    assert not selfcheck.logdet(lambda z: (affine(z)[0], -affine(z)[1]), z, label="negated")
    assert not selfcheck.logdet(lambda z: (affine(z)[0], torch.zeros(4, 2)), z, label="shape")
    assert not selfcheck.logdet(lambda z: 1 / 0, z, label="raises")
    out = capsys.readouterr().out
    assert "✓ affine: log-det matches autograd on 4 points" in out
    assert "✗ negated: at point 0" in out and "looks negated" in out
    assert "must have shape (batch,) = (4,), got (4, 2)" in out and "raised ZeroDivisionError" in out


def test_round_trip_and_logdet_symmetry(capsys):
    z = torch.randn(3, 2, dtype=torch.float64)
    assert selfcheck.round_trip(affine, affine_inverse, z)
    assert not selfcheck.round_trip(affine, lambda x: affine(x), z, label="forward twice")
    assert not selfcheck.round_trip(affine, lambda x: (affine_inverse(x)[0], affine(x)[1]), z, label="sym")
    out = capsys.readouterr().out
    assert "✗ forward twice: inverse(forward(z)) differs" in out and "should sum to 0" in out


def test_published_numbers_shapes_finiteness_and_summary(capsys):
    assert selfcheck.close(torch.tensor(0.5802), 0.5802, "worked example 3")
    assert not selfcheck.close(0.2202, 0.5802, "raw u vs û")
    assert selfcheck.shape(torch.zeros(5), (5,))
    assert not selfcheck.finite((torch.zeros(2), torch.tensor([math.nan])))
    text = selfcheck.summary()
    assert text == "self-check: 2/4 passed — failing: raw u vs û, finite"


@pytest.mark.slow
def test_flowcourse_check_runs_visible_cells(tmp_path, capsys):
    nb = nbformat.read(FIXTURE / "solutions" / "00-toy" / "toy.ipynb", 4)
    for cell in nb.cells:  # a student's notebook: answers in place, no hidden tests
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "# hidden test"
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    shutil.copy(path, tmp_path / "copy.ipynb")
    assert check_notebook(path, timeout=120) == 0
    out = capsys.readouterr().out
    assert "✓ affine_forward log-det: log-det matches autograd" in out and "self-checks: 2/2 passed" in out
    for cell in nb.cells:
        if cell.get("id") == "affine_forward_answer":
            cell.source = ("def affine_forward(z, a, b):\n"
                           "    return a * z + b, -torch.log(a.abs()).sum().expand(z.shape[0])")
    nbformat.write(nb, path)
    assert check_notebook(path, timeout=120) == 1
    out = capsys.readouterr().out
    assert "✗ affine_forward log-det" in out and "self-checks: 0/2 passed" in out
