"""The quality benchmark's units and baselines against independent truth; both benchmarks run end to end.

Nothing here asserts a wall time: the timing figures are reported by ``python -m benchmarks.lessons``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from flowcourse.data import (
    categorical_baseline_bpd,
    dequantized_bits_per_dim,
    digits,
    gaussian_baseline_bpd,
    nats_per_dim,
    two_moons,
    two_moons_split,
)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the repository root on the path
    sys.path.insert(0, str(ROOT))

from benchmarks import lessons, quality  # noqa: E402

# ---------------------------------------------------------------------------------------------- bits/dim


def test_uniform_on_the_lower_half_of_the_levels_costs_three_bits():
    # Images with levels 0..7 only, modelled by the uniform density on [0, 8/17)^64 (log p = 64 log(17/8)):
    # each pixel is one of 8 equally likely levels, exactly log2(8) = 3 bits, whatever the dequantisation.
    x = torch.randint(0, 8, (5, 1, 8, 8), generator=torch.Generator().manual_seed(3)).double()

    def log_prob(y):
        assert bool((y < 8 / 17).all()), "dequantised points must stay in [0, 8/17)"
        return torch.full((y.shape[0],), 64 * math.log(17 / 8), dtype=y.dtype)

    assert dequantized_bits_per_dim(log_prob, x, repeats=3) == pytest.approx(3.0, abs=1e-12)


def test_bits_per_dim_is_per_dimension_and_in_bits():
    # A density that puts log p = c on every dequantised image: bpd = (-c + D log 17) / (D ln 2), D = 16 here
    x = torch.zeros(4, 1, 4, 4)
    c = 7.5
    got = dequantized_bits_per_dim(lambda y: torch.full((y.shape[0],), c), x)
    assert got == pytest.approx((-c + 16 * math.log(17)) / (16 * math.log(2)), rel=1e-6)


def test_dequantized_bits_per_dim_rejects_a_per_pixel_log_prob():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        dequantized_bits_per_dim(lambda y: y.flatten(1), torch.zeros(2, 1, 2, 2))


def _dequantised_numpy(images: torch.Tensor, seed: int) -> np.ndarray:
    """(x + u)/17 with u from torch's generator seeded ``seed`` (the stream the package draws from)."""
    u = torch.rand(images.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return ((images.double() + u) / 17).reshape(len(images), -1).numpy()


@pytest.mark.parametrize("alpha", [None, 0.05])
def test_gaussian_baseline_against_scipy(alpha):
    d = digits()
    train, test = _dequantised_numpy(d.train, 0), _dequantised_numpy(d.test, 1)
    log_jac = np.zeros(len(test))
    if alpha is not None:
        s = alpha + (1 - 2 * alpha) * test
        log_jac = (np.log(1 - 2 * alpha) - np.log(s) - np.log1p(-s)).sum(1)
        train = np.log(alpha + (1 - 2 * alpha) * train) - np.log1p(-(alpha + (1 - 2 * alpha) * train))
        test = np.log(s) - np.log1p(-s)
    gauss = multivariate_normal(train.mean(0), np.cov(train.T, bias=True))
    log_p = gauss.logpdf(test) + log_jac
    expected = ((-log_p + 64 * np.log(17)) / (64 * np.log(2))).mean()
    assert gaussian_baseline_bpd(seed=0, logit_alpha=alpha) == pytest.approx(expected, abs=1e-6)


def test_categorical_baseline_against_counting():
    d = digits()
    train = d.train.reshape(len(d.train), -1).numpy().astype(int)
    test = d.test.reshape(len(d.test), -1).numpy().astype(int)
    bits = 0.0
    for j in range(64):
        counts = np.bincount(train[:, j], minlength=17)
        bits -= np.log2((counts[test[:, j]] + 1) / (len(train) + 17)).sum()
    assert categorical_baseline_bpd() == pytest.approx(bits / test.size, abs=1e-9)


# ------------------------------------------------------------------------------------------ nats per dim


@pytest.mark.parametrize("event", [(2,), (2, 3)])
def test_nats_per_dim_is_the_nll_over_d(event):
    d = math.prod(event)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = a @ a.T + d * torch.eye(d, dtype=torch.float64)
    mean = torch.randn(d, generator=g, dtype=torch.float64)
    x = torch.randn(50, *event, generator=g, dtype=torch.float64)
    gauss = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    truth = -multivariate_normal(mean.numpy(), cov.numpy()).logpdf(x.flatten(1).numpy()).mean() / d
    assert nats_per_dim(lambda v: gauss.log_prob(v.flatten(1)), x) == pytest.approx(truth, rel=1e-10)


def test_two_moons_split_is_two_independent_draws():
    train, test = two_moons_split(300, 100)
    assert torch.equal(train, two_moons(300, seed=0)) and torch.equal(test, two_moons(100, seed=1))
    assert not (train[:, None, :] == test[None, :, :]).all(-1).any(), "a test point is also a training point"


# ------------------------------------------------------------------------------------------ the benchmarks


def test_quality_quick_run_prints_every_row(monkeypatch, capsys):
    tiny = quality.Budget(glow_steps=2, realnvp_steps=2, moons_steps=2, long_runs=False, label="QUICK (tiny)")
    monkeypatch.setattr(quality, "QUICK", tiny)
    assert quality.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "QUICK" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "quantity" not in line]
    assert len(rows) == 11
    assert any("pixel space" in r for r in rows) and any("logit space α = 0.05" in r for r in rows)
    assert sum("nats per dimension" in r for r in rows) == 4
    figures = [float(r.split("|")[3]) for r in rows]
    assert all(math.isfinite(v) and v > 0 for v in figures)
    # lessons 09-10 at equal time, each with its goal: the figure of the model it must beat, and a verdict
    new = [r for r in rows if "lesson 09" in r or "lesson 10" in r]
    assert len(new) == 3 and all("equal time): " in r and r.split("|")[4].strip().startswith("< ") for r in new)
    realnvp = next(float(r.split("|")[3]) for r in rows if "RealNVP, 8 couplings" in r)
    assert all(f"< {realnvp:.3f} (RealNVP" in r for r in new if "two-moons" in r)


def test_train_for_stops_at_its_cpu_budget_and_takes_at_least_one_step():
    import time

    layer = torch.nn.Linear(2, 1)
    data = torch.randn(64, 2)
    batches = quality.shuffled_batches(data, 16)
    assert quality.train_for(layer, lambda x: layer(x).pow(2).mean(), batches, seconds=0.0, lr=1e-2) == 1
    start = time.process_time()
    steps = quality.train_for(layer, lambda x: layer(x).pow(2).mean(), batches, seconds=0.2, lr=1e-2, anneal=True)
    assert steps > 1 and 0.2 <= time.process_time() - start < 1.0
    assert quality.goal(0.85, 0.866, "x") == "< 0.866 (x): PASS" and quality.goal(0.9, 0.866, "x").endswith("not met")


def test_the_new_lessons_models_are_the_lessons_architectures():
    from flowcourse_lessons.lesson_09.key import SplineCoupling
    from flowcourse_lessons.lesson_10.key import VelocityField

    spline, steps = quality.moons_spline(0.0)
    layers = list(spline.flow.layers)
    assert steps == 1 and len(layers) == 4 and all(isinstance(layer, SplineCoupling) for layer in layers)
    assert [layer.mask.tolist() for layer in layers] == [[1.0, 0.0], [0.0, 1.0]] * 2
    assert {(layer.bins, layer.bound, layer.net[0].out_features) for layer in layers} == {(8, 4.0, 32)}
    assert next(spline.parameters()).dtype == torch.float32
    field, _ = quality.moons_flow_matching(0.0)
    assert isinstance(field, VelocityField) and field.net[0].out_features == 64 and field.dim == 2
    digits_model, _ = quality.digits_spline(0.0)
    couplings = list(digits_model.flow.layers)[:4]
    assert all(isinstance(layer, SplineCoupling) and layer.net[0].out_features == 64 for layer in couplings)
    assert couplings[0].mask[:4].tolist() == [1.0, 0.0, 1.0, 0.0] and couplings[1].mask[:4].tolist() == [0.0, 1.0] * 2


def test_lesson04_glow_matches_the_lessons_architecture():
    model = quality.lesson04_glow(steps=1)
    assert next(model.parameters()).dtype == torch.float32
    n_params = sum(p.numel() for p in model.parameters())
    # level 1: 4 steps on 4 channels, level 2: 4 steps on 8 channels; coupling nets 3x3 -> 1x1 -> 3x3, 64 hidden
    def step(c):
        ca, cb = (c + 1) // 2, c // 2
        net = (9 * ca * 64 + 64) + (64 * 64 + 64) + (9 * 64 * 2 * cb + 2 * cb)
        return net + (2 * c * c + c) + 2 * c  # LU: lower, upper (c² each, half masked), log|s|; ActNorm: 2c
    assert n_params == 4 * step(4) + 4 * step(8)


def _tiny_lessons(tmp_path: Path) -> Path:
    for name, source in [("01-ok", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3:\n"
                                   "    pass"),
                         ("02-broken", "raise ValueError('boom')")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.txt").write_text("copied along")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(open('data.txt').read())"),
                                             nbformat.v4.new_code_cell(source)])
        nbformat.write(nb, tmp_path / name / f"{name}.ipynb")
    return tmp_path


def test_lessons_benchmark_reads_kernel_cpu_and_reports_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lessons, "SOLUTIONS", _tiny_lessons(tmp_path))
    saved = tmp_path / "executed"
    assert lessons.main(["--save-executed", str(saved)]) == 1  # a lesson raised
    first = nbformat.read(saved / "01-ok.ipynb", as_version=4).cells[0]
    assert first.outputs[0]["text"].strip() == "copied along"  # cwd was the copied lesson folder
    out = capsys.readouterr().out
    assert "load average at start" in out and "logical cores" in out
    ok = next(line for line in out.splitlines() if line.startswith("| 01-ok"))
    cpu = float(ok.split("|")[3])
    assert cpu >= 0.3, "the kernel burnt 0.3 s of CPU in a cell, the appended cell must see it"
    assert "ERROR" not in ok
    broken = next(line for line in out.splitlines() if line.startswith("| 02-broken"))
    assert "ValueError: boom" in broken
    assert out.count("| **total**") == 1


def test_lessons_verdict_and_filter(tmp_path, monkeypatch):
    assert lessons.verdict(30.0, 30.0) == "PASS"
    assert lessons.verdict(41.0, 30.0) == "over by 11 s"
    monkeypatch.setattr(lessons, "SOLUTIONS", _tiny_lessons(tmp_path))
    assert [p.parent.name for p in lessons.lesson_notebooks("01")] == ["01-ok"]
    with pytest.raises(SystemExit, match="no lesson matches"):
        lessons.lesson_notebooks("nope")
