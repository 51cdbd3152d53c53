"""The RealNVP / NICE answer key (lesson 03) against independent truth.

Truth used here: autograd Jacobians (``flowcheck``, ``batch_jacobian``), round trips, the seeds' worked
example 2 and practice problem 2, polygon areas (shoelace formula), and numerical integration of densities.
"""

import json
import math
from pathlib import Path

import pytest
import torch
from flowcourse_lessons.lesson_03.key import (
    AdditiveCoupling,
    AffineCoupling,
    RealNVP,
    alternating_masks,
    channel_mask,
    checkerboard_mask,
    coupling_forward,
    coupling_forward_scale,
    coupling_inverse,
    coupling_inverse_scale,
    half_masks,
    soft_clamp,
)
from torch import nn

from flowcourse.base import FlowDistribution, StandardNormal
from flowcourse.jacobian import batch_jacobian, jacobian_logdet

D64 = torch.float64


def randomize(module: nn.Module, scale: float = 0.5) -> nn.Module:
    """Move every parameter away from its (identity) initialisation."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


class Constant(nn.Module):
    """A conditioner that ignores its input and returns fixed (log_s, t) — to hand-feed the seeds' numbers."""

    def __init__(self, log_s, t):
        super().__init__()
        self.register_buffer("out", torch.cat([torch.as_tensor(log_s), torch.as_tensor(t)]))

    def forward(self, z):
        return self.out.expand(z.shape[0], -1)


def conv_net(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, c_out, 3, padding=1))


# ------------------------------------------------------------------------- every layer vs autograd truth

@pytest.mark.parametrize("d", [2, 3, 5])
@pytest.mark.parametrize("clamp", [2.0, None])
def test_affine_coupling_matches_autograd(flowcheck, d, clamp):
    for mask in alternating_masks(d, 2):
        layer = randomize(AffineCoupling(mask, hidden=16, clamp=clamp))
        flowcheck(layer, torch.randn(4, d, dtype=D64))


def test_affine_coupling_with_half_mask_matches_autograd(flowcheck):
    layer = randomize(AffineCoupling(torch.tensor([1.0, 1.0, 0.0, 0.0]), hidden=16))
    flowcheck(layer, torch.randn(4, 4, dtype=D64))


@pytest.mark.parametrize("d", [2, 4])
def test_additive_coupling_matches_autograd(flowcheck, d):
    layer = randomize(AdditiveCoupling(alternating_masks(d, 1)[0], hidden=16))
    flowcheck(layer, torch.randn(4, d, dtype=D64))


def test_realnvp_matches_autograd(flowcheck):
    flowcheck(randomize(RealNVP(4, n_layers=4, hidden=16), 0.3), torch.randn(3, 4, dtype=D64))


@pytest.mark.parametrize("mask_kind", ["checkerboard", "channel"])
def test_image_coupling_with_conv_conditioner_matches_autograd(flowcheck, mask_kind):
    mask = checkerboard_mask(4, 4) if mask_kind == "checkerboard" else channel_mask(2)
    layer = AffineCoupling(mask, clamp=2.0, net=conv_net(2, 4))
    flowcheck(layer, torch.randn(3, 2, 4, 4, dtype=D64))


# ------------------------------------------------------------------ the seeds' worked example 2, practice 2

def test_worked_example_2_functions():
    z, mask = torch.tensor([[1.0, 3.0]], dtype=D64), torch.tensor([1.0, 0.0], dtype=D64)
    log_s, t = torch.tensor(0.5, dtype=D64), torch.tensor(2.0, dtype=D64)
    x, logdet = coupling_forward(z, mask, log_s, t)
    assert x[0, 0] == 1.0
    assert abs(float(x[0, 1]) - 6.946) < 1e-3
    assert abs(float(logdet[0]) - 0.5) < 1e-12
    # the seeds' inverse check starts from the rounded 6.946 and lands on 3.000
    z_back, logdet_inv = coupling_inverse(torch.tensor([[1.0, 6.946]], dtype=D64), mask, log_s, t)
    torch.testing.assert_close(z_back, z, atol=1e-3, rtol=0)
    assert abs(float(logdet_inv[0]) + 0.5) < 1e-12
    # with the scale given directly, s = exp(0.5) ≈ 1.649
    x_s, logdet_s = coupling_forward_scale(z, mask, torch.tensor(math.exp(0.5), dtype=D64), t)
    assert abs(float(x_s[0, 1]) - 6.946) < 1e-3 and abs(float(logdet_s[0]) - 0.5) < 1e-12


def test_worked_example_2_through_the_layer():
    """The layer's wiring: mask 1 = kept z_1, the conditioner's (log_s, t) act on z_2 only."""
    layer = AffineCoupling(torch.tensor([1.0, 0.0]), clamp=None, net=Constant([0.0, 0.5], [0.0, 2.0]))
    x, logdet = layer(torch.tensor([[1.0, 3.0]]))
    torch.testing.assert_close(x, torch.tensor([[1.0, 6.946]]), atol=1e-3, rtol=0)
    torch.testing.assert_close(logdet, torch.tensor([0.5]))
    z, _ = layer.inverse(x)
    torch.testing.assert_close(z, torch.tensor([[1.0, 3.0]]))


def test_practice_2_zero_scale_is_rejected():
    z, mask = torch.tensor([[1.0, 3.0], [1.0, -7.0]]), torch.tensor([1.0, 0.0])
    for fn in (coupling_forward_scale, coupling_inverse_scale):
        with pytest.raises(ValueError, match="nonzero"):
            fn(z, mask, torch.tensor([2.0, 0.0]), torch.tensor(1.0))
    # s = 0 on a kept coordinate is ignored, and a negative scale is an invertible reflection
    x, logdet = coupling_forward_scale(z, mask, torch.tensor([0.0, -2.0]), torch.tensor(1.0))
    torch.testing.assert_close(x, torch.tensor([[1.0, -5.0], [1.0, 15.0]]))
    torch.testing.assert_close(logdet, torch.full((2,), math.log(2.0)))
    z_back, logdet_inv = coupling_inverse_scale(x, mask, torch.tensor([0.0, -2.0]), torch.tensor(1.0))
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(logdet_inv, -logdet)


def test_scale_functions_match_autograd():
    z, mask = torch.randn(3, 4, dtype=D64), torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=D64)
    s, t = torch.tensor([0.3, -1.7, 2.0, 0.4], dtype=D64), torch.randn(4, dtype=D64)
    _, logdet = coupling_forward_scale(z, mask, s, t)
    torch.testing.assert_close(logdet, jacobian_logdet(lambda v: coupling_forward_scale(v, mask, s, t), z))
    x, _ = coupling_forward_scale(z, mask, s, t)
    _, logdet_inv = coupling_inverse_scale(x, mask, s, t)
    truth = jacobian_logdet(lambda v: coupling_inverse_scale(v, mask, s, t), x)
    torch.testing.assert_close(logdet_inv, truth)


# --------------------------------------------------------------------------------------- stable scales

def test_soft_clamp_is_bounded_odd_and_identity_near_zero():
    v = torch.linspace(-1e4, 1e4, 2001, dtype=D64, requires_grad=True)
    out = soft_clamp(v, 3.0)
    assert out.abs().max() < 3.0 + 1e-12 and (out.diff() >= 0).all()
    torch.testing.assert_close(out, -soft_clamp(-v, 3.0))
    small = torch.tensor([1e-4, -2e-4], dtype=D64)
    torch.testing.assert_close(soft_clamp(small, 3.0), small, atol=1e-11, rtol=0)
    zero = torch.zeros((), dtype=D64, requires_grad=True)
    (slope,) = torch.autograd.grad(soft_clamp(zero, 3.0), [zero])
    torch.testing.assert_close(slope, torch.tensor(1.0, dtype=D64))
    with pytest.raises(ValueError, match="positive"):
        soft_clamp(v, 0.0)


def test_unclamped_scale_overflows_where_clamped_stays_finite():
    """The unbounded-coupling-scale mistake, shown: float32, large inputs and weights."""
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    raw = randomize(AffineCoupling(mask, hidden=16, clamp=None), scale=5.0)
    clamped = AffineCoupling(mask, hidden=16, clamp=2.0)
    clamped.load_state_dict(raw.state_dict())  # same weights, only the clamp differs
    z = 100 * torch.randn(64, 4)
    x_raw, ld_raw = raw(z)
    assert not (torch.isfinite(x_raw).all() and torch.isfinite(ld_raw).all()), "the failure did not show"
    z_raw, ld_inv_raw = raw.inverse(z)
    assert not (torch.isfinite(z_raw).all() and torch.isfinite(ld_inv_raw).all())
    for out in (*clamped(z), *clamped.inverse(z)):
        assert torch.isfinite(out).all()
    _, ld = clamped(z)
    assert ld.abs().max() <= 2.0 * 2 + 1e-4  # two transformed coordinates, |log s| < 2 each


# --------------------------------------------------------------------------------------- masks and mixing

def test_one_layer_keeps_its_half_exactly_and_conditioner_sees_only_it():
    mask = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])
    layer = randomize(AffineCoupling(mask, hidden=16)).double()
    z = torch.randn(6, 5, dtype=D64)
    x, _ = layer(z)
    kept = mask.bool()
    assert torch.equal(x[:, kept], z[:, kept])
    assert ((x[:, ~kept] - z[:, ~kept]).abs() > 1e-6).all()
    J = batch_jacobian(layer, z)
    # block-triangular: kept rows are identity rows; transformed coordinates do not feed each other
    torch.testing.assert_close(J[:, kept][:, :, kept], torch.eye(2, dtype=D64).expand(6, 2, 2))
    assert torch.equal(J[:, kept][:, :, ~kept], torch.zeros(6, 2, 3, dtype=D64))
    J_bb = J[:, ~kept][:, :, ~kept]
    torch.testing.assert_close(J_bb, torch.diag_embed(torch.diagonal(J_bb, dim1=1, dim2=2)))


def test_two_alternating_layers_change_every_coordinate():
    flow = randomize(RealNVP(5, n_layers=2, hidden=16)).double()
    z = torch.randn(6, 5, dtype=D64)
    x, _ = flow(z)
    assert ((x - z).abs() > 1e-6).all()
    # whereas two layers with the same mask (the pitfall) leave the kept half untouched
    same = randomize(AffineCoupling(alternating_masks(5, 1)[0], hidden=16)).double()
    again = randomize(AffineCoupling(alternating_masks(5, 1)[0], hidden=16)).double()
    x_same, _ = again(same(z)[0])
    assert torch.equal(x_same[:, ::2], z[:, ::2])


def test_masks():
    m = alternating_masks(5, 3)
    assert m.shape == (3, 5)
    torch.testing.assert_close(m[0] + m[1], torch.ones(5))
    torch.testing.assert_close(m[0], m[2])
    halves = half_masks(5, 3)
    assert halves.tolist()[:2] == [[1, 1, 1, 0, 0], [0, 0, 0, 1, 1]] and torch.equal(halves[0], halves[2])
    assert torch.equal(half_masks(2, 4), alternating_masks(2, 4))  # one mask pair on the plane
    for layer, mask in zip(RealNVP(6, n_layers=3).layers, half_masks(6, 3), strict=True):
        assert torch.equal(layer.mask, mask)
    board = checkerboard_mask(3, 4)
    for i in range(3):
        for j in range(4):
            assert board[i, j] == (1.0 if (i + j) % 2 == 0 else 0.0)
    assert channel_mask(6).shape == (6, 1, 1) and channel_mask(6).flatten().tolist() == [1, 1, 1, 0, 0, 0]


# ------------------------------------------------------------------------------ NICE is volume-preserving

def shoelace_area(points: torch.Tensor) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float((x * y.roll(-1) - x.roll(-1) * y).sum()))


def square_boundary(n: int) -> torch.Tensor:
    s = torch.linspace(-1, 1, n + 1, dtype=D64)[:-1]
    one = torch.ones(n, dtype=D64)
    return torch.cat([torch.stack([s, -one], 1), torch.stack([one, s], 1),
                      torch.stack([-s, one], 1), torch.stack([-one, -s], 1)])


def test_nice_log_det_is_zero_and_areas_are_preserved():
    nice = randomize(AdditiveCoupling(torch.tensor([1.0, 0.0]), hidden=16), 1.0).double()
    z = torch.randn(50, 2, dtype=D64)
    x, logdet = nice(z)
    assert torch.equal(logdet, torch.zeros(50, dtype=D64))
    assert (x[:, 1] - z[:, 1]).abs().max() > 0.1  # it does move points
    with torch.no_grad():
        area = shoelace_area(nice(square_boundary(4000))[0])
    assert abs(area - 4.0) < 1e-4
    # an affine coupling does change the area of the same square: ∫|det J| by a midpoint rule, from autograd
    affine = randomize(AffineCoupling(torch.tensor([1.0, 0.0]), hidden=16), 1.0).double()
    with torch.no_grad():
        area_affine = shoelace_area(affine(square_boundary(4000))[0])
    g = (torch.arange(20, dtype=D64) + 0.5) / 10 - 1
    grid = torch.cartesian_prod(g, g)
    expected = float(jacobian_logdet(affine, grid).exp().mean()) * 4
    assert abs(area_affine - 4.0) > 0.05
    assert abs(area_affine - expected) < 0.01 * expected


def test_nice_keeps_gaussian_volume_but_not_gaussian_shape():
    """x = (z_1, z_2 + z_1²): log-det 0, yet a banana, not a Gaussian (the seeds' pitfall says otherwise)."""

    class Square(nn.Module):
        def forward(self, v):
            return v.pow(2).flip(1)  # (v_2², v_1²): only the second entry, z_1², is used

    banana = AdditiveCoupling(torch.tensor([1.0, 0.0]), net=Square())
    z = torch.randn(200_000, 2, dtype=D64)
    x, logdet = banana(z)
    assert torch.equal(logdet, torch.zeros_like(logdet))
    x2 = x[:, 1]
    assert abs(float(x2.mean()) - 1.0) < 0.02  # E[z_2 + z_1²] = 1
    skew = float(((x2 - x2.mean()) ** 3).mean() / x2.var() ** 1.5)
    assert skew > 1.0  # a Gaussian has skewness 0; here it is 8/3^1.5 ≈ 1.54
    # its density is exactly the Gaussian's at the pre-image (no volume term)
    dist = FlowDistribution(banana, StandardNormal(2).double())
    torch.testing.assert_close(dist.log_prob(x[:5]), StandardNormal(2).double().log_prob(z[:5]))


# ------------------------------------------------------------------------------- RealNVP as a distribution

def test_realnvp_density_integrates_to_one():
    dist = FlowDistribution(randomize(RealNVP(2, n_layers=4, hidden=16), 0.3), StandardNormal(2)).double()
    h = 0.05
    g = torch.arange(-12, 12, h, dtype=D64) + h / 2
    with torch.no_grad():
        mass = float(dist.log_prob(torch.cartesian_prod(g, g)).exp().sum()) * h * h
        x = dist.sample(200_000)
    # the density's mass on the box equals the share of samples (drawn forward, base→data) that land in it
    inside = float((x.abs() < 12).all(1).double().mean())
    assert inside > 0.9 and abs(mass - inside) < 5e-3


def test_float32_and_float64_agree():
    flow = randomize(RealNVP(3, n_layers=3, hidden=8))
    z = torch.randn(5, 3)
    x32, ld32 = flow(z)
    x64, ld64 = flow.double()(z.double())
    torch.testing.assert_close(x32, x64.float(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ld32, ld64.float(), atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------------------------- bad input

def test_bad_input_is_named():
    layer = AffineCoupling(torch.tensor([1.0, 0.0]), hidden=4)
    with pytest.raises(ValueError, match=r"\('batch', 2\).*\(3, 3\)"):
        layer(torch.randn(3, 3))
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.ones(3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer.inverse([[1.0, 2.0]])
    with pytest.raises(ValueError, match="0s and 1s"):
        AffineCoupling(torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="transform others"):
        AdditiveCoupling(torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="1-D mask"):
        AffineCoupling(checkerboard_mask(2, 2))
    with pytest.raises(ValueError, match="clamp"):
        AffineCoupling(torch.tensor([1.0, 0.0]), clamp=-1.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        RealNVP(1, n_layers=2)
    with pytest.raises(ValueError, match="does not broadcast"):
        coupling_forward(torch.randn(2, 3), torch.tensor([1.0, 0.0]), torch.zeros(3), torch.zeros(3))


# ------------------------------------------------------------ numbers the lesson text states, recomputed

NOTEBOOK = Path(__file__).with_name("03-realnvp.ipynb")


def notebook_cells():
    return {cell["id"]: "".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]}


def test_the_banana_numbers_in_the_text():
    """Section 6: x = (z_1, z_2 + z_1²) keeps the peak 1/(2π) and caps the log-likelihood, skewness 8/3^1.5."""
    cells = notebook_cells()

    class Square(nn.Module):
        def forward(self, v):
            return v.pow(2).flip(1)  # t = (v_2², v_1²); only t_2 = v_1² acts (mask (1, 0))

    banana = FlowDistribution(AdditiveCoupling(torch.tensor([1.0, 0.0]), net=Square()), StandardNormal(2)).double()
    g1, g2 = torch.linspace(-4, 4, 201, dtype=D64), torch.linspace(-3, 8, 276, dtype=D64)
    with torch.no_grad():
        peak = banana.log_prob(torch.cartesian_prod(g1, g2)).exp().max().item()
        x2 = banana.sample(400_000, generator=torch.Generator().manual_seed(0))[:, 1]
    assert peak == pytest.approx(1 / (2 * math.pi))
    skew_exact = 8 / 3**1.5  # Var(z_2 + z_1²) = 3, third central moment of a χ²₁ = 8
    skew = float(((x2 - x2.mean()) ** 3).mean() / x2.var() ** 1.5)
    assert skew == pytest.approx(skew_exact, abs=0.05)
    assert float(x2.mean()) == pytest.approx(1.0, abs=0.01)
    for cell in ("theory-nice", "answer-volume-preserving"):
        assert f"8/3^{{3/2}} \\approx {skew_exact:.2f}" in cells[cell]
    assert f"1/(2\\pi) \\approx {peak:.3f}" in cells["theory-nice"]
    assert f"\\log\\frac{{1}}{{2\\pi}} \\approx {math.log(peak):.3f}$ nats per point" in cells["theory-nice"]
    assert f"$-\\log(2\\pi)/2 \\approx {math.log(peak) / 2:.2f}$" in cells["theory-training"]
    assert f"(peak {peak:.3f})" in cells["demo-nice"]


def test_a_scale_raises_the_peak_the_demo_states():
    """The demo's affine coupling, same shift and log s = -1 on x_2: peak e/(2π)."""
    mask = torch.tensor([1.0, 0.0], dtype=D64)
    g1, g2 = torch.linspace(-4, 4, 201, dtype=D64), torch.linspace(-3, 8, 276, dtype=D64)
    x = torch.cartesian_prod(g1, g2)
    shift = torch.stack([torch.zeros_like(x[:, 0]), x[:, 0] ** 2], dim=1)
    z, logdet = coupling_inverse(x, mask, torch.tensor(-1.0, dtype=D64), shift)
    peak = (StandardNormal(2).double().log_prob(z) + logdet).exp().max().item()
    assert peak == pytest.approx(math.e / (2 * math.pi), rel=1e-3)
    assert f"peak {peak:.3f}" in notebook_cells()["demo-nice"]


def test_float32_overflow_threshold_in_the_text():
    assert math.log(torch.finfo(torch.float32).max) < 89 < math.log(torch.finfo(torch.float64).max)
    assert math.isinf(torch.exp(torch.tensor(89.0, dtype=torch.float32)).item())
    assert "In float32, $e^{89}$ is already `inf`" in notebook_cells()["theory-clamp"]
