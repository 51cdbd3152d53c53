"""Shared checks against independent truth: autograd Jacobians, round trips, log-det symmetry."""

from __future__ import annotations

import pytest
import torch

from flowcourse.jacobian import jacobian_logdet
from flowcourse.training import single_thread


def assert_flow_correct(layer, z: torch.Tensor, *, invertible: bool = True, atol: float = 1e-8) -> None:
    """Check a flow layer at the points ``z`` (float64, random non-identity parameters expected).

    - forward log-det == slogdet of the autograd Jacobian of forward, shape (batch,);
    - if invertible: inverse(forward(z)) == z, inverse log-det == slogdet of the autograd Jacobian of
      inverse, and the two log-dets sum to zero.
    """
    layer = layer.double()
    x, ld = layer(z)
    assert ld.shape == (z.shape[0],), f"log-det shape {tuple(ld.shape)}, expected ({z.shape[0]},)"
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()
    if x.shape == z.shape:
        assert not torch.allclose(x, z), "layer is at the identity: the check could not fail"
    torch.testing.assert_close(ld, jacobian_logdet(layer, z), atol=atol, rtol=1e-7)
    if invertible:
        z_back, ld_inv = layer.inverse(x)
        assert ld_inv.shape == (z.shape[0],)
        torch.testing.assert_close(z_back, z, atol=1e-7, rtol=1e-7)
        torch.testing.assert_close(ld_inv, jacobian_logdet(layer.inverse, x), atol=atol, rtol=1e-7)
        torch.testing.assert_close(ld + ld_inv, torch.zeros_like(ld), atol=atol, rtol=0)


def _guarded_run(folder, sources, **options):
    """Run code cells ``sources`` (ids ``c0``, ``c1``, …) in ``folder`` with the grader's ``GuardedExecute``
    (``options``: its traits); return the notebook and the events it recorded."""
    from nbformat.v4 import new_code_cell, new_notebook

    from flowcourse_instructor.grading.preprocessors import GuardedExecute

    cells = [new_code_cell(src) for src in sources]
    for i, cell in enumerate(cells):
        cell.id = f"c{i}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                            "display_name": "Python 3"}})
    GuardedExecute(**options).preprocess(nb, {"metadata": {"path": str(folder)}})
    return nb, nb.metadata["flowcourse"].get("events", [])


@pytest.fixture
def guarded_run():
    """The function :func:`_guarded_run`: notebook cells executed as the grader executes them."""
    return _guarded_run


@pytest.fixture
def flowcheck():
    """The function :func:`assert_flow_correct`."""
    return assert_flow_correct


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One torch thread for the whole run (module fixtures too): small per-sample autograd Jacobians are
    10-40x slower with two threads on 2 cores."""
    with single_thread():
        yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def lesson_of(tmp_path, monkeypatch):
    """Register check specs (and key attributes) as a throwaway lesson 99: ``lesson_of([SPEC], double=f)``.

    Returns the lesson's package name. Grading tests use it for specs that live in the test module.
    """
    import sys
    import types

    import flowcourse_lessons

    def register(checks, **key):
        folder = tmp_path / "solutions" / "99-temp"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checks.py").touch()  # the registry looks for the file; the module below stands in for it
        package = "flowcourse_lessons.lesson_99"
        modules = [types.ModuleType(package), types.ModuleType(f"{package}.checks"), types.ModuleType(f"{package}.key")]
        modules[0].__path__ = [str(folder)]
        modules[1].CHECKS = list(checks)
        vars(modules[2]).update(key)
        for module in modules:
            monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(flowcourse_lessons._REGISTERED, "lesson_99", folder)
        monkeypatch.setattr(flowcourse_lessons, "lesson_99", modules[0], raising=False)
        return package

    return register
