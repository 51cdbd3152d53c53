"""The neural-spline answer key (lesson 09) against independent truth.

Truth used here: autograd derivatives and Jacobians (``flowcheck``), round trips, brute-force bin search,
numpy's polynomial roots in float64, the peer library nflows (``unconstrained_rational_quadratic_spline`` with
linear tails, the same parametrisation) at equal parameters, lesson 02's MADE for the released ``made.py``; the
numbers the notebook states are recomputed here with the key and looked up in its text.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from flowcourse_lessons.lesson_02.key import MADE as lesson_02_made
from flowcourse_lessons.lesson_02.key import made_masks as lesson_02_made_masks
from flowcourse_lessons.lesson_09 import key, made
from flowcourse_lessons.lesson_09.key import (
    MIN_BIN_WIDTH,
    MIN_DERIVATIVE,
    SplineAutoregressive,
    SplineCoupling,
    rq_forward,
    rq_inverse,
    rq_knots,
    rq_root,
    rq_spline,
    search_bins,
)
from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline

from flowcourse.base import FlowDistribution, FlowSequence, StandardNormal
from flowcourse.data import dequantize, dequantized_bits_per_dim, digits, nats_per_dim, two_moons
from flowcourse.splines import Affine1D, Rescale, Spline1D, bimodal, bimodal_density
from flowcourse.training import default_dtype, fit_max_likelihood, single_thread

D64 = torch.float64
NOTEBOOK = Path(__file__).with_name("09-neural-splines.ipynb")


def notebook_cells():
    return {cell["id"]: "".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]}


def _params(*lead, bins=8, seed=0, scale=1.5, dtype=D64):
    g = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(*lead, n, generator=g, dtype=dtype) for n in (bins, bins, bins - 1))


def randomise(module, scale=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


# ------------------------------------------------------------------------------------------------ the knots


@pytest.mark.parametrize("bound", [1.0, 3.0])
def test_knots_tile_the_interval_with_minimum_sizes_and_unit_boundary_slopes(bound):
    w, h, d = _params(5, 3, bins=6, seed=1, scale=4.0)
    kx, ky, kd = rq_knots(w, h, d, bound)
    assert kx.shape == ky.shape == kd.shape == (5, 3, 7)
    for knots in (kx, ky):
        assert torch.equal(knots[..., 0], torch.full((5, 3), -bound, dtype=D64))
        assert torch.equal(knots[..., -1], torch.full((5, 3), bound, dtype=D64))
        assert (knots.diff(dim=-1) >= 2 * bound * MIN_BIN_WIDTH * (1 - 1e-9)).all()
        torch.testing.assert_close(knots.diff(dim=-1).sum(-1), torch.full((5, 3), 2 * bound, dtype=D64))
    assert torch.equal(kd[..., [0, -1]], torch.ones(5, 3, 2, dtype=D64))
    torch.testing.assert_close(kd[..., 1:-1], MIN_DERIVATIVE + torch.nn.functional.softplus(d))


def test_knots_keep_float32():
    kx, ky, kd = rq_knots(*_params(2, bins=4, dtype=torch.float32))
    assert kx.dtype == ky.dtype == kd.dtype == torch.float32


def test_knot_widths_are_the_softmax_with_the_minimum_by_hand():
    kx, _, _ = rq_knots(torch.tensor([0.0, math.log(3.0)], dtype=D64), torch.zeros(2, dtype=D64),
                        torch.zeros(1, dtype=D64), bound=1.0)
    # softmax (1/4, 3/4); sizes m + (1 - 2m)(1/4) and m + (1 - 2m)(3/4); knots -1 + 2·size_0
    torch.testing.assert_close(kx, torch.tensor([-1.0, -1 + 2 * (1e-3 + 0.998 / 4), 1.0], dtype=D64))


# ---------------------------------------------------------------------------------------------- bin search


def test_search_bins_against_a_brute_force_loop_including_knots_and_ends():
    kx, _, _ = rq_knots(*_params(30, bins=5, seed=2), bound=2.0)
    v = torch.cat([torch.rand(30, dtype=D64) * 4 - 2])
    v[:6] = kx[:6, 0]
    v[6:12] = kx[6:12, -1]
    v[12:18] = kx[12:18, 3]
    got = search_bins(kx, v)
    for i in range(30):
        want = max(k for k in range(5) if kx[i, k] <= v[i])
        assert got[i] == want, i
    assert got.dtype == torch.int64
    assert (got[6:12] == 4).all() and (got[12:18] == 3).all()


# ---------------------------------------------------------------------------------- forward, root, inverse


def _one_spline(bins=6, bound=2.0, seed=3, n=25):
    knots = rq_knots(*_params(1, bins=bins, seed=seed), bound)
    return tuple(k.expand(n, -1) for k in knots)


def test_rq_forward_logdet_is_log_of_autograd_derivative_and_interpolates_knots():
    kx, ky, kd = _one_spline()
    x = torch.linspace(-1.999, 1.999, 25, dtype=D64)
    y, logdet = rq_forward(x, kx, ky, kd)
    slope = torch.autograd.functional.jacobian(lambda v: rq_forward(v, kx, ky, kd)[0], x).diagonal()
    torch.testing.assert_close(logdet, slope.log(), atol=1e-12, rtol=1e-10)
    assert (y.diff() > 0).all()
    y_knots, logdet_knots = rq_forward(kx[0], kx[:7], ky[:7], kd[:7])
    torch.testing.assert_close(y_knots, ky[0], atol=1e-14, rtol=0)
    torch.testing.assert_close(logdet_knots.exp(), kd[0], atol=1e-12, rtol=0)


def test_rq_root_is_the_root_in_the_unit_interval_from_numpy():
    g = torch.Generator().manual_seed(4)
    b = 1 + torch.rand(40, generator=g, dtype=D64)
    a = (torch.rand(40, generator=g, dtype=D64) - 0.5) * b
    c = -(a * (xi := torch.rand(40, generator=g, dtype=D64)) ** 2 + b * xi)
    got = rq_root(a, b, c)
    for i in range(40):
        roots = np.roots([a[i].item(), b[i].item(), c[i].item()])
        inside = [r.real for r in roots if abs(r.imag) < 1e-12 and -1e-9 <= r.real <= 1 + 1e-9]
        assert len(inside) == 1
        assert abs(got[i].item() - inside[0]) < 1e-12


def test_rq_root_is_exact_on_straight_and_nearly_straight_bins_where_the_textbook_root_fails():
    b, c = torch.tensor(2.0, dtype=D64), torch.tensor(-0.5, dtype=D64)
    assert rq_root(torch.tensor(0.0, dtype=D64), b, c) == 0.25
    a = torch.tensor(1e-13, dtype=D64)
    truth = 0.25 - 1e-13 * 0.25**2 / 2  # first-order expansion of the root in a
    assert abs(rq_root(a, b, c).item() - truth) < 1e-16
    textbook = (-b + torch.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert abs(textbook.item() - truth) > 1e-5  # the cancellation the lesson shows


def test_rq_inverse_round_trip_and_autograd_logdet():
    kx, ky, kd = _one_spline(seed=5)
    x = torch.linspace(-1.999, 1.999, 25, dtype=D64)
    y, logdet = rq_forward(x, kx, ky, kd)
    x_back, logdet_back = rq_inverse(y, kx, ky, kd)
    torch.testing.assert_close(x_back, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(logdet + logdet_back, torch.zeros_like(x), atol=1e-12, rtol=0)
    slope = torch.autograd.functional.jacobian(lambda v: rq_inverse(v, kx, ky, kd)[0], y).diagonal()
    torch.testing.assert_close(logdet_back, slope.log(), atol=1e-10, rtol=1e-10)


# ----------------------------------------------------------------------------------------- the whole spline


@pytest.mark.parametrize("inverse", [False, True])
def test_rq_spline_agrees_with_nflows_at_equal_parameters(inverse):
    w, h, d = _params(200, bins=8, seed=6, scale=2.0)
    x = 4 * torch.randn(200, generator=torch.Generator().manual_seed(7), dtype=D64)
    y, logdet = rq_spline(x, w, h, d, bound=3.0, inverse=inverse)
    y_nflows, logdet_nflows = unconstrained_rational_quadratic_spline(x, w, h, d.clone(), inverse=inverse,
                                                                      tails="linear", tail_bound=3.0)
    torch.testing.assert_close(y, y_nflows, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(logdet, logdet_nflows, atol=1e-11, rtol=1e-11)


def test_rq_spline_tails_are_identity_with_zero_logdet_and_the_join_is_smooth():
    w, h, d = _params(6, bins=5, seed=8)
    x = torch.tensor([-1e6, -3.5, -3.0, 3.0, 3.5, 1e6], dtype=D64)
    y, logdet = rq_spline(x, w, h, d, bound=3.0)
    assert torch.equal(y, x) and torch.equal(logdet, torch.zeros(6, dtype=D64))
    eps = torch.tensor([-3 + 1e-9, 3 - 1e-9], dtype=D64)
    _, logdet_edge = rq_spline(eps, w[:2], h[:2], d[:2], bound=3.0)
    assert logdet_edge.abs().max() < 1e-6  # slope → 1 at ±B: C¹ with the tails
    x.requires_grad_(True)
    grad, = torch.autograd.grad(rq_spline(x, w, h, d, bound=3.0)[0].sum(), x)
    assert torch.equal(grad, torch.ones(6, dtype=D64))  # no gradient leaks from the spline into the tails


def test_rq_spline_round_trip_and_autograd_over_the_whole_line():
    w, h, d = _params(40, bins=8, seed=9)
    x = 3.5 * torch.randn(40, generator=torch.Generator().manual_seed(10), dtype=D64)
    y, logdet = rq_spline(x, w, h, d)
    slope = torch.autograd.functional.jacobian(lambda v: rq_spline(v, w, h, d)[0], x).diagonal()
    torch.testing.assert_close(logdet, slope.log(), atol=1e-10, rtol=1e-10)
    back, logdet_back = rq_spline(y, w, h, d, inverse=True)
    torch.testing.assert_close(back, x, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet + logdet_back, torch.zeros_like(x), atol=1e-10, rtol=0)


# ------------------------------------------------------------------------------------------------ the layers


@pytest.mark.parametrize(("dim", "mask"), [(2, None), (5, [0.0, 1.0, 1.0, 0.0, 0.0]), (6, None)])
def test_spline_coupling_against_autograd(dim, mask, flowcheck):
    layer = randomise(SplineCoupling(dim, hidden=16, bins=5, bound=2.0, mask=mask).double(), seed=dim)
    z = 2 * torch.randn(7, dim, generator=torch.Generator().manual_seed(11), dtype=D64)
    flowcheck(layer, z)
    x, _ = layer(z)
    kept = layer.mask == 1
    assert torch.equal(x[:, kept], z[:, kept])


def test_spline_coupling_starts_at_the_identity_and_keeps_the_even_coordinates_by_default():
    layer = SplineCoupling(4, hidden=8, bins=6)
    assert layer.mask.tolist() == [1.0, 0.0, 1.0, 0.0]
    z = 4 * torch.randn(5, 4)
    x, logdet = layer(z)
    torch.testing.assert_close(x, z, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logdet, torch.zeros(5), atol=1e-5, rtol=0)
    assert layer.net[-1].out_features == 2 * (3 * 6 - 1)


@pytest.mark.parametrize("dim", [2, 4])
def test_spline_autoregressive_against_autograd_and_triangular(dim, flowcheck):
    layer = randomise(SplineAutoregressive(dim, hidden=16, bins=5, bound=2.0).double(), seed=dim)
    z = 2 * torch.randn(6, dim, generator=torch.Generator().manual_seed(12), dtype=D64)
    flowcheck(layer, z)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], 0.3 * z[0])  # inside [-B, B]
    assert jac.triu(diagonal=1).abs().max() == 0 and jac.tril(diagonal=-1).abs().max() > 0


def test_spline_autoregressive_inverse_takes_dim_passes_and_starts_at_the_identity():
    layer = randomise(SplineAutoregressive(3, hidden=8, bins=4).double())
    layer.made.passes = 0
    layer.inverse(torch.randn(4, 3, dtype=D64))
    assert layer.made.passes == 3
    fresh = SplineAutoregressive(3, hidden=8, bins=4)
    z = torch.randn(4, 3)
    torch.testing.assert_close(fresh(z)[0], z, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------ the released MADE (lesson 02)


@pytest.mark.parametrize(("d", "hidden", "order"), [(2, [16, 16], None), (4, [12, 12], [2, 0, 3, 1]),
                                                     (3, [5, 7], [1, 2, 0])])
def test_released_made_agrees_with_lesson_02(d, hidden, order):
    for got, want in zip(made.made_masks(d, hidden, order), lesson_02_made_masks(d, hidden, order), strict=True):
        assert torch.equal(got, want)
    released = randomise(made.MADE(d, hidden, order, n_params=5).double(), seed=d)
    reference = randomise(lesson_02_made(d, hidden, order, n_params=5).double(), seed=d)
    y = torch.randn(6, d, dtype=D64)
    for got, want in zip(released(y), reference(y), strict=True):
        torch.testing.assert_close(got, want, atol=0, rtol=0)
    assert all(p.abs().min() > 0 for p in released.parameters())  # non-trivial weights: the comparison means something


# ------------------------------------------------------------------------------------------- quiz answers


def test_quiz_answers():
    layer = SplineCoupling(2, hidden=4, bins=8)
    assert layer.net[-1].out_features == key.quiz_09_n_params  # one moved coordinate
    assert key.quiz_09_boundary == "B" and key.quiz_09_linear_bin == "C"
    # Q3: δ_k = δ_{k+1} = s_k makes a = h(s - δ_k) + Δ(δ_{k+1} + δ_k - 2s) zero, and the spline straight
    kx, ky, kd = rq_knots(torch.zeros(1, 4), torch.zeros(1, 4), torch.full((1, 3), math.log(math.expm1(1 - 1e-3))))
    x = torch.linspace(-2.9, 2.9, 7).reshape(7, 1)
    y, logdet = rq_forward(x[:, 0], kx.expand(7, -1), ky.expand(7, -1), kd.expand(7, -1))
    torch.testing.assert_close(y, x[:, 0])
    torch.testing.assert_close(logdet, torch.zeros(7), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------- numbers stated in the text


def test_the_root_table_numbers_in_the_text():
    truths = {a: rq_root(*(torch.tensor(v, dtype=D64) for v in (a, 1.0, -0.5))) for a in (1e-2, 1e-4, 1e-6, 0.0)}
    f32 = torch.float32
    textbook, stable = {}, []
    for a, truth in truths.items():
        a32, b32, c32 = (torch.tensor(v, dtype=f32) for v in (a, 1.0, -0.5))
        textbook[a] = abs(((-b32 + torch.sqrt(b32 * b32 - 4 * a32 * c32)) / (2 * a32)).double() - truth).item()
        stable.append(abs(rq_root(a32, b32, c32).double() - truth).item())
    assert math.isnan(textbook[0.0])
    text = notebook_cells()["theory-inverse-2"]
    assert f"off by\n{textbook[1e-4]:.2e} at" in text
    assert f"by {textbook[1e-6]:.2e} at" in text
    assert f"within {max(stable):.2e} of the truth" in text
    a64, b64, c64 = (torch.tensor(v, dtype=D64) for v in (1e-12, 1.0, -0.5))
    error64 = abs((-b64 + torch.sqrt(b64 * b64 - 4 * a64 * c64)) / (2 * a64) - rq_root(a64, b64, c64)).item()
    assert f"off by\n{error64:.2e}." in text


def _bimodal_fits():
    train, test = bimodal(2000, seed=0).float(), bimodal(2000, seed=1).float()
    nll = {}
    with default_dtype(D64):
        for name, make in [("affine", Affine1D), ("spline", lambda: Spline1D(rq_spline, bins=8, bound=3.0))]:
            torch.manual_seed(0)
            dist = FlowDistribution(make(), StandardNormal(1)).float()
            fit_max_likelihood(dist, train, steps=300, lr=0.05, progress=False)
            with torch.no_grad():
                nll[name] = -dist.log_prob(test).mean().item()
    nll["true"] = -bimodal_density(test).log().mean().item()
    return nll


def test_bimodal_numbers_in_the_text():
    nll = _bimodal_fits()
    assert nll["spline"] < nll["affine"] - 0.5
    text = notebook_cells()["theory-why-2"]
    assert f"{nll['affine']:.3f} nats per point" in text
    assert f"reaches {nll['spline']:.3f} nats" in text
    assert f"density's {nll['true']:.3f}" in text


def test_two_moons_number_in_the_text():
    train, test = two_moons(4000, seed=0), two_moons(2000, seed=1)
    with default_dtype(D64):
        torch.manual_seed(0)
        keep_first = torch.tensor([1.0, 0.0])
        flow = FlowSequence(*[SplineCoupling(2, hidden=32, bins=8, bound=4.0, mask=keep_first if k % 2 == 0
                                             else 1 - keep_first) for k in range(4)]).float()
        dist = FlowDistribution(flow, StandardNormal(2)).float()
        fit_max_likelihood(dist, train, steps=300, batch_size=256, lr=3e-3, progress=False)
    with torch.no_grad():
        nats = nats_per_dim(dist.log_prob, test)
    assert f"reaches {nats:.3f} nats per dimension" in notebook_cells()["theory-train"]


@pytest.mark.slow
def test_digits_number_in_the_text():
    data = digits()
    with default_dtype(D64), single_thread():
        torch.manual_seed(0)
        even = (torch.arange(64) % 2 == 0).double()
        flow = FlowSequence(*[SplineCoupling(64, hidden=64, bins=8, bound=3.0, mask=even if k % 2 == 0 else 1 - even)
                              for k in range(4)], Rescale(0.25, 0.5)).float()
        dist = FlowDistribution(flow, StandardNormal(64)).float()
        noise = torch.Generator().manual_seed(0)
        fit_max_likelihood(dist, data.train.flatten(1), steps=100, batch_size=128, lr=5e-3, progress=False,
                           transform=lambda x: dequantize(x, generator=noise))
        bpd = dequantized_bits_per_dim(lambda y: dist.log_prob(y.flatten(1)), data.test)
    assert bpd < math.log2(17)
    assert f"reach\n{bpd:.3f} bits per dimension" in notebook_cells()["theory-digits"]


def test_the_no_model_baseline_in_the_text():
    assert f"below the {math.log2(17):.2f} bits of sending each of the 17 grey" in notebook_cells()["theory-digits"]
