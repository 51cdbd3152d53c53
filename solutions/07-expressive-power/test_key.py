"""Lesson 07's answer key against independent truth: autograd, round trips, scipy, closed forms."""

import inspect
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from flowcourse_lessons.lesson_05 import key as lesson_05
from flowcourse_lessons.lesson_05.key import planar_forward
from flowcourse_lessons.lesson_06 import key as lesson_06
from flowcourse_lessons.lesson_07 import sylvester_layers as released  # the released file
from flowcourse_lessons.lesson_07.key import (
    ReLUPlanar1d,
    SylvesterStack,
    depth_experiment,
    gaussian_kl,
    gradient_rank,
    log_det_term,
    piecewise_gaussian_flow,
    piecewise_gaussian_layers,
    piecewise_gaussian_tv,
    piecewise_linear_layers,
    pointwise_condition_residual,
    pushforward_density_1d,
    quantile_function,
    relu_planar_1d,
    relu_planar_1d_inverse,
    topology_rank_experiment,
    total_variation_1d,
    two_gaussians_1d,
)
from scipy import optimize, stats

from flowcourse import expressivity
from flowcourse.base import FlowDistribution, FlowSequence, NoClosedFormInverse, StandardNormal
from flowcourse.jacobian import batch_jacobian, jacobian_logdet

F64 = torch.float64


def mixture_pdf(x):
    """The lesson's two-peaked target ½N(−2, 0.5²) + ½N(2, 0.5²), written with scipy, not torch."""
    return 0.5 * stats.norm.pdf(x, -2, 0.5) + 0.5 * stats.norm.pdf(x, 2, 0.5)


def mixture_ppf(alpha):
    cdf = lambda x: 0.5 * stats.norm.cdf(x, -2, 0.5) + 0.5 * stats.norm.cdf(x, 2, 0.5)  # noqa: E731
    return np.array([optimize.brentq(lambda x, a=a: cdf(x) - a, -20, 20, xtol=1e-14) for a in alpha])


@pytest.fixture(scope="module")
def mixture_icdf():
    return quantile_function(two_gaussians_1d().cdf)


# ----------------------------------------------------------------------------------------------- 1-D layer


@pytest.mark.parametrize(
    "u, w, b",
    [(1.3, 0.8, -0.2), (-0.6, 1.1, 0.4), (2.0, -0.4, 0.3), (-0.45, -1.9, -0.5), (0.7, 0.0, 1.2)],
)
def test_relu_planar_layer_logdet_matches_autograd_and_round_trips(flowcheck, u, w, b):
    layer = ReLUPlanar1d(u, w, b, dtype=F64)
    z = torch.linspace(-3, 3, 41, dtype=F64).unsqueeze(1) + 0.013  # both sides of the kink, never on it
    if w != 0:
        active = w * z + b > 0
        assert active.any() and (~active).any()
    flowcheck(layer, z)


def test_stack_of_relu_planar_layers_matches_autograd(flowcheck):
    g = torch.Generator().manual_seed(1)
    layers = []
    for _ in range(6):
        w = float(torch.randn((), generator=g, dtype=F64))
        u = float(torch.empty((), dtype=F64).uniform_(-0.9, 2.0, generator=g)) / w  # 1 + uw in (0.1, 3)
        layers.append(ReLUPlanar1d(u, w, float(torch.randn((), generator=g, dtype=F64)), dtype=F64))
    flowcheck(FlowSequence(*layers), torch.randn(50, 1, dtype=F64))


def test_relu_planar_functions_agree_with_a_direct_formula():
    z = torch.randn(30, 1, dtype=F64)
    u, w, b = -0.4, 1.5, 0.25
    x, logdet = relu_planar_1d(z, u, w, b)
    torch.testing.assert_close(x, z + u * torch.clamp(w * z + b, min=0))
    expected = torch.where(w * z[:, 0] + b > 0, math.log(1 + u * w), 0.0).to(F64)
    torch.testing.assert_close(logdet, expected)
    z_back, logdet_inv = relu_planar_1d_inverse(x, u, w, b)
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(logdet_inv, -expected)


def test_relu_planar_1d_agrees_with_lesson_05_planar_layer():
    z = torch.randn(25, 1, dtype=F64)
    u, w, b = -0.3, -1.7, 0.6
    x, logdet = relu_planar_1d(z, u, w, b)
    x_ref, logdet_ref = planar_forward(z, torch.tensor([u], dtype=F64), torch.tensor([w], dtype=F64), b, "relu")
    torch.testing.assert_close(x, x_ref)
    torch.testing.assert_close(logdet, logdet_ref)


@pytest.mark.parametrize("u, w", [(1.0, -1.0), (-2.0, 1.0), (3.0, -0.5)])
def test_non_increasing_relu_planar_layer_raises(u, w):
    z = torch.randn(4, 1, dtype=F64)
    with pytest.raises(ValueError, match=r"1 \+ u\*w"):
        relu_planar_1d(z, u, w, 0.1)
    with pytest.raises(ValueError, match="not invertible"):
        relu_planar_1d_inverse(z, u, w, 0.1)
    with pytest.raises(ValueError, match="not invertible"):
        ReLUPlanar1d(u, w, 0.1, dtype=F64)(z)


def test_relu_planar_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\('batch', 1\)"):
        relu_planar_1d(torch.randn(5, dtype=F64), 1.0, 1.0, 0.0)
    with pytest.raises(TypeError, match="floating-point"):
        relu_planar_1d(torch.ones(5, 1, dtype=torch.int64), 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="u must be a scalar"):
        relu_planar_1d(torch.randn(5, 1, dtype=F64), torch.ones(2), 1.0, 0.0)


# ------------------------------------------------------------------------------------------ construction


def test_construction_maps_normal_quantiles_onto_target_quantiles(mixture_icdf):
    n_layers = 12
    n_pieces = n_layers - 1
    flow = piecewise_gaussian_flow(mixture_icdf, n_layers)
    assert len(flow.layers) == n_layers
    levels = np.arange(1, n_pieces) / n_pieces
    z_knots = torch.tensor(stats.norm.ppf(levels), dtype=F64)
    x_knots = torch.tensor(mixture_ppf(levels), dtype=F64)
    x, _ = flow(z_knots.unsqueeze(1))
    torch.testing.assert_close(x[:, 0], x_knots, atol=1e-9, rtol=0)
    # linear on each inner bin: the autograd slope at the bin's midpoint is the chord's slope
    mid = ((z_knots[1:] + z_knots[:-1]) / 2).unsqueeze(1)
    slopes = batch_jacobian(flow, mid)[:, 0, 0]
    torch.testing.assert_close(slopes, (x_knots[1:] - x_knots[:-1]) / (z_knots[1:] - z_knots[:-1]))
    # the two unbounded tail pieces send the median of their base bin to the median of the target bin
    tails = np.array([0.5, n_pieces - 0.5]) / n_pieces
    x_tails, _ = flow(torch.tensor(stats.norm.ppf(tails), dtype=F64).unsqueeze(1))
    torch.testing.assert_close(x_tails[:, 0], torch.tensor(mixture_ppf(tails), dtype=F64), atol=1e-9, rtol=0)


def test_construction_layers_are_all_invertible_and_increasing(mixture_icdf):
    layers = piecewise_gaussian_layers(mixture_icdf, 300)
    assert len(layers) == 300
    assert all(1 + u * w > 0 for u, w, _ in layers)
    z = torch.linspace(-6, 6, 5001, dtype=F64).unsqueeze(1)
    x, _ = piecewise_gaussian_flow(mixture_icdf, 300)(z)
    assert bool((x[1:] > x[:-1]).all())


@pytest.mark.parametrize("n_pieces, seed", [(2, 0), (5, 1), (12, 2)])
def test_piecewise_linear_layers_compose_to_the_piecewise_linear_map(n_pieces, seed):
    g = torch.Generator().manual_seed(seed)
    x_knots = torch.sort(torch.randn(n_pieces - 1, generator=g, dtype=F64) * 3).values
    z_knots = torch.sort(torch.randn(n_pieces - 1, generator=g, dtype=F64)).values
    slopes = torch.empty(n_pieces, dtype=F64).uniform_(0.2, 3.0, generator=g)
    layers = piecewise_linear_layers(z_knots, x_knots, slopes)
    assert len(layers) == n_pieces + 1 and all(1 + u * w > 0 for u, w, _ in layers)
    # the map written down directly: through (z_1, x_1), slope s_k between the k-th and (k+1)-th x-knot
    s, xk = slopes.numpy(), x_knots.numpy()
    zk = np.concatenate([[float(z_knots[0])], float(z_knots[0]) + np.cumsum(np.diff(xk) / s[1:-1])])
    z = np.linspace(-8, 8, 801) + 1e-3
    expected = np.interp(z, zk, xk)
    expected = np.where(z < zk[0], xk[0] + s[0] * (z - zk[0]), expected)
    expected = np.where(z > zk[-1], xk[-1] + s[-1] * (z - zk[-1]), expected)
    x, _ = FlowSequence(*(ReLUPlanar1d(*p, dtype=F64) for p in layers))(torch.tensor(z).unsqueeze(1))
    np.testing.assert_allclose(x[:, 0].detach().numpy(), expected, atol=1e-10, rtol=0)


def test_piecewise_linear_layers_reject_bad_inputs():
    one, two = torch.tensor([0.0], dtype=F64), torch.tensor([1.0, 2.0], dtype=F64)
    with pytest.raises(ValueError, match="slopes must be > 0"):
        piecewise_linear_layers(one, one, torch.tensor([1.0, 0.0], dtype=F64))
    with pytest.raises(ValueError, match="N - 1 knots"):
        piecewise_linear_layers(two, two, two)
    with pytest.raises(ValueError, match="strictly increasing"):
        piecewise_linear_layers(two, torch.tensor([1.0, 1.0], dtype=F64), torch.ones(3, dtype=F64))


def test_construction_rejects_too_few_layers(mixture_icdf):
    with pytest.raises(ValueError, match="n_layers"):
        piecewise_gaussian_layers(mixture_icdf, 2)


def test_pushforward_density_puts_mass_one_over_n_on_each_target_bin(mixture_icdf):
    n_pieces = 40
    flow = piecewise_gaussian_flow(mixture_icdf, n_pieces + 1)
    edges = np.concatenate([[-9.0], mixture_ppf(np.arange(1, n_pieces) / n_pieces), [9.0]])
    # the density is a smooth Gaussian piece inside each bin and jumps at the knots: Gauss–Legendre
    # nodes lie strictly inside, so each bin is integrated to near machine precision
    nodes, weights = np.polynomial.legendre.leggauss(60)
    masses = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        xs = torch.tensor((b - a) / 2 * nodes + (a + b) / 2, dtype=F64)
        masses.append((b - a) / 2 * float(pushforward_density_1d(flow, xs) @ torch.tensor(weights)))
    np.testing.assert_allclose(masses, 1 / n_pieces, atol=1e-12, rtol=0)


def test_pushforward_density_matches_a_monte_carlo_histogram(mixture_icdf):
    flow = piecewise_gaussian_flow(mixture_icdf, 50)
    # histogram of forward samples (never uses the inverse or a log-det) against the exact bin masses
    n = 400_000
    with torch.no_grad():
        x, _ = flow(torch.randn(n, 1, dtype=F64, generator=torch.Generator().manual_seed(3)))
    edges = np.linspace(-4, 4, 33)
    counts, _ = np.histogram(x[:, 0].numpy(), bins=edges)
    masses = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        g = torch.linspace(a, b, 801, dtype=F64)
        masses.append(float(torch.trapezoid(pushforward_density_1d(flow, g), g)))
    masses = np.array(masses)
    freq = counts / n
    assert np.all(np.abs(freq - masses) <= 5 * np.sqrt(masses * (1 - masses) / n) + 1e-5)


def test_pushforward_density_of_a_list_equals_that_of_the_flow(mixture_icdf):
    xs = torch.linspace(-5, 5, 101, dtype=F64)
    layers = piecewise_gaussian_layers(mixture_icdf, 20)
    torch.testing.assert_close(
        pushforward_density_1d(layers, xs), pushforward_density_1d(piecewise_gaussian_flow(mixture_icdf, 20), xs)
    )


def test_total_variation_shrinks_from_50_to_300_layers():
    tv50, tv300 = piecewise_gaussian_tv(50), piecewise_gaussian_tv(300)
    # measured 0.0239 and 0.0050 (the notebook states them: see test_notebook_states_the_tv_it_measures)
    assert 0.01 < tv50 < 0.035
    assert 0.002 < tv300 < 0.0075
    assert tv300 < tv50 / 3
    # recompute the 50-layer TV with scipy's target density and numpy's quadrature
    xs = np.linspace(-8, 8, 40001)
    flow = piecewise_gaussian_flow(quantile_function(two_gaussians_1d().cdf), 50)
    q = pushforward_density_1d(flow, torch.tensor(xs)).numpy()
    assert abs(0.5 * np.trapezoid(np.abs(mixture_pdf(xs) - q), xs) - tv50) < 1e-9


# ---------------------------------------------------------------------------------------------------- TV


def test_total_variation_of_identical_densities_is_zero():
    xs = torch.linspace(-6, 6, 2001, dtype=F64)
    p = torch.distributions.Normal(0.3, 1.2).log_prob(xs).exp()
    assert float(total_variation_1d(p, p.clone(), xs)) == 0.0


def test_total_variation_of_disjoint_uniforms_is_one():
    xs = torch.linspace(-1, 4, 50001, dtype=F64)
    p = ((xs >= 0) & (xs <= 1)).to(F64)
    q = ((xs >= 2) & (xs <= 3)).to(F64)
    assert abs(float(total_variation_1d(p, q, xs)) - 1) < 1e-3


def test_total_variation_of_shifted_gaussians_has_closed_form():
    xs = torch.linspace(-10, 11, 20001, dtype=F64)
    p = torch.distributions.Normal(0.0, 1.0).log_prob(xs).exp()
    q = torch.distributions.Normal(1.0, 1.0).log_prob(xs).exp()
    assert abs(float(total_variation_1d(p, q, xs)) - (2 * stats.norm.cdf(0.5) - 1)) < 1e-6


def test_total_variation_bad_shapes_raise():
    xs = torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="one shape"):
        total_variation_1d(torch.ones(5), torch.ones(4), xs)
    with pytest.raises(ValueError, match=r"1-D tensor"):
        total_variation_1d(torch.ones(5, 1), torch.ones(5, 1), xs)


# ------------------------------------------------------------------------------------ topology matching


def test_log_det_term_of_an_exact_affine_pushforward_is_minus_log_det():
    A = torch.tensor([[1.5, 0.4], [-0.3, 0.7]], dtype=F64)
    c = torch.tensor([0.2, -1.0], dtype=F64)
    p = torch.distributions.MultivariateNormal(c, covariance_matrix=A @ A.T)
    q = StandardNormal(2).double()
    z = torch.randn(9, 2, dtype=F64)
    L = log_det_term(lambda v: (v @ A.T + c, None), z, p.log_prob, q.log_prob)
    torch.testing.assert_close(L, torch.full((9,), -math.log(abs(float(torch.linalg.det(A)))), dtype=F64))
    # and a p that is not the pushforward gives something else
    L_wrong = log_det_term(lambda v: (v @ A.T + c, None), z, q.log_prob, q.log_prob)
    assert not torch.allclose(L_wrong, L)


def test_log_det_term_of_relu_planar_pushforward_is_minus_autograd_log_det(mixture_icdf):
    flow = piecewise_gaussian_flow(mixture_icdf, 10)
    dist = FlowDistribution(flow, StandardNormal(1).double())
    z = torch.randn(20, 1, dtype=F64)
    L = log_det_term(flow, z, dist.log_prob, dist.base.log_prob)
    torch.testing.assert_close(L, -jacobian_logdet(flow, z))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sylvester_stack_logdet_matches_autograd_and_inverts(flowcheck, activation):
    stack = SylvesterStack.random(5, [1, 2, 2], activation=activation, seed=4)
    z = torch.randn(12, 5, dtype=F64)
    flowcheck(stack, z, invertible=False)
    x, _ = stack(z)
    torch.testing.assert_close(stack.fixed_point_inverse(x), z, atol=1e-12, rtol=0)
    with pytest.raises(NoClosedFormInverse):
        stack.inverse(x)


def test_gradients_of_log_det_term_span_at_most_M_directions():
    d, neurons = 7, [1, 2, 1]
    M = sum(neurons)
    stack = SylvesterStack.random(d, neurons, seed=2)
    z = torch.randn(16, d, dtype=F64)

    def L_autograd(v):  # −log|det J_f(v)| from the autograd Jacobian, independent of Sylvester's identity
        J = torch.func.jacrev(lambda y: stack(y.unsqueeze(0))[0][0])(v)
        return -torch.linalg.slogdet(J).logabsdet

    grads = torch.func.vmap(torch.func.grad(L_autograd))(z).detach()
    s = torch.linalg.svdvals(grads)
    assert gradient_rank(grads) == M
    assert float(s[M] / s[0]) < 1e-10 < float(s[M - 1] / s[0])
    # the proof's reason: every gradient lies in span(B_1, ..., B_K)
    Q, _ = torch.linalg.qr(torch.cat(list(stack.B), dim=1))
    torch.testing.assert_close(grads - grads @ Q @ Q.T, torch.zeros_like(grads), atol=1e-10, rtol=0)


@pytest.mark.parametrize("d, neurons", [(6, [1, 1, 1]), (8, [2, 3]), (9, [1, 2, 1, 3])])
def test_topology_rank_experiment_gives_M_for_tanh_and_zero_for_relu(d, neurons):
    assert topology_rank_experiment(d, neurons) == sum(neurons)
    assert topology_rank_experiment(d, neurons, seed=5) == sum(neurons)
    assert topology_rank_experiment(d, neurons, activation="relu") == 0


def test_gradient_rank_of_known_matrices():
    g = torch.Generator().manual_seed(0)
    low = torch.randn(10, 2, generator=g, dtype=F64) @ torch.randn(2, 6, generator=g, dtype=F64)
    assert gradient_rank(low) == 2
    assert gradient_rank(torch.randn(10, 6, generator=g, dtype=F64)) == 6
    assert gradient_rank(torch.zeros(4, 3, dtype=F64)) == 0
    nearly_rank_one = torch.diag(torch.tensor([1.0, 1e-5, 0.0], dtype=F64))
    assert gradient_rank(nearly_rank_one) == 2
    assert gradient_rank(nearly_rank_one, rtol=1e-3) == 1
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        gradient_rank(torch.zeros(3, dtype=F64))


def test_sylvester_stack_bad_arguments_raise():
    with pytest.raises(ValueError, match="activation"):
        SylvesterStack.random(3, [1], activation="softsign")
    with pytest.raises(ValueError, match="lipschitz"):
        SylvesterStack.random(3, [1], lipschitz=1.5)
    with pytest.raises(ValueError, match=r"\('batch', 3\)"):
        SylvesterStack.random(3, [1])(torch.zeros(2, 4, dtype=F64))


# ---------------------------------------------------------------------------- ReLU pointwise condition


def test_relu_pointwise_condition_holds_for_the_exact_pushforward():
    stack = SylvesterStack.random(4, [2, 1, 2], activation="relu", seed=7)
    q = StandardNormal(4).double()
    z = torch.randn(15, 4, dtype=F64)
    residual = pointwise_condition_residual(stack, z, stack.pushforward_log_prob, q.log_prob)
    assert residual.shape == (15, 4)
    torch.testing.assert_close(residual, torch.zeros_like(residual), atol=1e-10, rtol=0)
    # f is linear around z: the Jacobian does not move under a tiny step
    J, J_near = batch_jacobian(stack, z), batch_jacobian(stack, z + 1e-7 * torch.randn_like(z))
    torch.testing.assert_close(J, J_near, atol=1e-12, rtol=0)


def test_pointwise_residual_is_the_gradient_of_L_for_smooth_layers_and_fails_for_a_wrong_p():
    stack = SylvesterStack.random(4, [1, 1], activation="tanh", seed=8)
    q = StandardNormal(4).double()
    z = torch.randn(15, 4, dtype=F64)
    residual = pointwise_condition_residual(stack, z, stack.pushforward_log_prob, q.log_prob)
    grad_L = torch.func.vmap(torch.func.grad(lambda v: -stack(v.unsqueeze(0))[1][0]))(z)
    torch.testing.assert_close(residual, grad_L, atol=1e-9, rtol=1e-7)
    assert float(residual.abs().max()) > 1e-3
    relu = SylvesterStack.random(4, [2, 1], activation="relu", seed=7)
    wrong = pointwise_condition_residual(relu, z, q.log_prob, q.log_prob)  # p = q is not f#q
    assert float(wrong.abs().max()) > 0.1


# ----------------------------------------------------------------------------------------------- depth


def test_gaussian_kl_matches_torch_and_the_lesson_constant():
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(0.0, 1.0), torch.distributions.Normal(0.0, 2.0))
    assert abs(gaussian_kl(1.0, 4.0) - float(ref)) < 1e-6
    assert abs(gaussian_kl(1.0, 4.0) - (math.log(2) + 1 / 8 - 1 / 2)) < 1e-12
    assert round(gaussian_kl(1.0, 4.0), 3) == 0.318
    mvn = torch.distributions.MultivariateNormal
    ref8 = torch.distributions.kl_divergence(
        mvn(torch.zeros(8, dtype=F64), 0.5 * torch.eye(8, dtype=F64)),
        mvn(torch.zeros(8, dtype=F64), 3.0 * torch.eye(8, dtype=F64)),
    )
    assert abs(gaussian_kl(0.5, 3.0, d=8) - float(ref8)) < 1e-10
    with pytest.raises(ValueError, match="positive"):
        gaussian_kl(0.0, 1.0)


def test_depth_experiment_smoke():
    untrained = depth_experiment(0, d=3, n_eval=50_000)
    assert abs(untrained - 3 * gaussian_kl(1.0, 4.0)) < 0.03
    trained = depth_experiment(1, d=3, steps=150, batch_size=128)
    assert math.isfinite(trained) and trained < untrained
    with pytest.raises(ValueError, match="K"):
        depth_experiment(-1)


# ------------------------------------------------------------------- the released file sylvester_layers.py


@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("m", [1, 3])
def test_released_sylvester_forward_agrees_with_lesson_06_key(activation, m):
    g = torch.Generator().manual_seed(10 + m)
    A, B = torch.randn(4, m, generator=g, dtype=F64), torch.randn(4, m, generator=g, dtype=F64)
    b, z = torch.randn(m, generator=g, dtype=F64), 2 * torch.randn(16, 4, generator=g, dtype=F64)
    x, logdet = released.sylvester_forward(z, A, B, b, activation)
    x_ref, logdet_ref = lesson_06.sylvester_forward(z, A, B, b, activation)
    assert logdet.abs().max() > 0.1  # non-identity: the log-det is not trivially 0
    torch.testing.assert_close(x, x_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(logdet, logdet_ref, atol=1e-12, rtol=0)


def test_released_planar_agrees_with_lesson_05_key_and_initialises_alike():
    torch.manual_seed(3)
    mine = released.Planar(6).double()
    torch.manual_seed(3)
    ref = lesson_05.Planar(6, "tanh").double()
    for name in ("u", "w", "b"):
        torch.testing.assert_close(getattr(mine, name), getattr(ref, name), atol=0, rtol=0)
    with torch.no_grad():  # non-identity parameters with w^T u << -1, where û matters
        for layer in (mine, ref):
            layer.u.copy_(-3 * layer.w / layer.w.norm() ** 2 + 0.2)
            layer.b.fill_(0.4)
    z = 2 * torch.randn(20, 6, dtype=F64)
    for out, out_ref in zip(mine(z), ref(z), strict=True):
        torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=0)


def test_released_planar_runs_the_depth_experiment_as_the_key_does():
    kw = {"d": 4, "steps": 5, "batch_size": 64, "n_eval": 2000}
    ours = expressivity.depth_experiment(2, lambda d: released.Planar(d), **kw)
    assert ours == pytest.approx(depth_experiment(2, **kw), abs=1e-9)


# ------------------------------------------------------------- what the notebook's text states, recomputed


def notebook_cells(raw: bool = False) -> dict:
    """The notebook's cells by id, each source with its whitespace runs made single spaces unless ``raw``."""
    notebook = json.loads((Path(__file__).parent / "07-expressive-power.ipynb").read_text())
    sources = {c["id"]: "".join(c["source"]) for c in notebook["cells"]}
    return sources if raw else {k: " ".join(v.split()) for k, v in sources.items()}


def notebook_markdown() -> str:
    notebook = json.loads((Path(__file__).parent / "07-expressive-power.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")


def _mixture_cdf(x):
    return 0.5 * stats.norm.cdf(x, -2, 0.5) + 0.5 * stats.norm.cdf(x, 2, 0.5)


def _end_slopes(z_knots, x_knots, ends):
    """Slopes of the two unbounded pieces: the median of each end bin goes to the target's."""
    z_ends, x_ends = stats.norm.ppf(ends), mixture_ppf(ends)
    return (x_knots[0] - x_ends[0]) / (z_knots[0] - z_ends[0]), (x_ends[1] - x_knots[-1]) / (z_ends[1] - z_knots[-1])


def _transport_equal_mass(n_pieces):
    levels = np.arange(1, n_pieces) / n_pieces
    z_knots, x_knots = stats.norm.ppf(levels), mixture_ppf(levels)
    left, right = _end_slopes(z_knots, x_knots, np.array([0.5, n_pieces - 0.5]) / n_pieces)
    return z_knots, x_knots, np.concatenate([[left], np.diff(x_knots) / np.diff(z_knots), [right]])


def _transport_equal_width(n_pieces, lo=-3.5, hi=3.5):
    x_knots = np.linspace(lo, hi, n_pieces - 1)
    levels = _mixture_cdf(x_knots)
    z_knots = stats.norm.ppf(levels)
    left, right = _end_slopes(z_knots, x_knots, np.array([levels[0] / 2, (1 + levels[-1]) / 2]))
    return z_knots, x_knots, np.concatenate([[left], np.diff(x_knots) / np.diff(z_knots), [right]])


def _pushforward_tv(transport, n_layers, n_grid):
    """TV to the mixture of g#N(0, 1), g piecewise linear through the knots: numpy and scipy only, no layers.

    On the piece through (z_k, x_k) with slope s, x = x_k + s (z - z_k), so the density is φ(z) / s.
    """
    z_knots, x_knots, slopes = transport(n_layers - 1)
    xs = np.linspace(-8, 8, n_grid)
    piece = np.searchsorted(x_knots, xs)  # 0 left of x_1, k between x_k and x_{k+1}
    anchor = np.maximum(piece - 1, 0)
    z = z_knots[anchor] + (xs - x_knots[anchor]) / slopes[piece]
    q = stats.norm.pdf(z) / slopes[piece]
    return 0.5 * np.trapezoid(np.abs(mixture_pdf(xs) - q), xs)


def _fitted_slope(depths, tvs):
    return np.polyfit(np.log(depths), np.log(tvs), 1)[0]


def test_notebook_states_the_tv_it_measures_at_50_and_300_layers():
    tv50, tv300 = (_pushforward_tv(_transport_equal_mass, n, 40001) for n in (50, 300))
    assert tv50 == pytest.approx(piecewise_gaussian_tv(50), abs=1e-5)  # the key, with its layers, agrees
    cells = notebook_cells()
    text = cells["theory-fifty-three-hundred"]
    assert f"$\\mathrm{{TV}} = {tv50:.4f}$ with 50 layers and ${tv300:.4f}$ with 300" in text
    assert "grid of 40 001 points over $[-8, 8]$" in text
    assert "torch.linspace(-8, 8, 40001)" in cells["demo-fifty-vs-three-hundred"]
    assert f"TV {tv50:.3f} at 50 layers, {tv300:.3f} at 300" in cells["summary"]


def test_notebook_states_the_fitted_rate_of_the_tv():
    depths = [10, 30, 100, 300]
    mass = [_pushforward_tv(_transport_equal_mass, n, 10001) for n in depths]
    width = [_pushforward_tv(_transport_equal_width, n, 10001) for n in depths]
    np.testing.assert_allclose(mass, [piecewise_gaussian_tv(n, n_grid=10001) for n in depths], rtol=1e-3)
    slope_mass, slope_width = _fitted_slope(depths, mass), _fitted_slope(depths, width)
    cells = notebook_cells()
    assert "depths = [10, 30, 100, 300]" in cells["demo-tv-rate"]
    assert "torch.linspace(-8, 8, 10001)" in cells["demo-tv-rate"]
    text = cells["theory-fifty-three-hundred"]
    assert f"the slope is ${slope_mass:.2f}$" in text and f"$(\\text{{layers}})^{{{slope_mass:.2f}}}$" in text
    assert f"the slope is ${slope_width:.2f}$" in text
    assert f"$(\\text{{layers}})^{{{slope_mass:.2f}}}$ between 10 and 300 layers" in cells["summary"]
    # "from 100 layers on the error is smaller" with equal-width knots, and not before
    assert width[0] > mass[0] and width[1] > mass[1] and width[2] < mass[2] and width[3] < mass[3]
    assert "from 100 layers on the error is smaller" in text
    # further exercise 2: TV times the number of layers grows
    assert f"grows from {10 * mass[0]:.2f} at 10 layers to {300 * mass[3]:.2f} at 300" in cells["summary"]


@pytest.fixture
def float64_default():
    previous, threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(F64)  # as the notebook's setup cell does
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(previous)
    torch.set_num_threads(threads)


def _depth_kl(K):
    return expressivity.depth_experiment(K, lambda d: released.Planar(d), d=8)


def test_notebook_states_the_depth_experiments_settings_and_its_fit_at_k_equals_d(float64_default):
    defaults = {k: v.default for k, v in inspect.signature(expressivity.depth_experiment).parameters.items()}
    text = notebook_cells()["theory-depth-experiment"]
    assert (defaults["steps"], defaults["batch_size"], defaults["n_eval"]) == (300, 256, 20000)
    assert "300 steps of batch 256" in text and "20 000 fresh samples" in text
    assert f"KL drops to {_depth_kl(8):.3f}" in text


def test_depth_experiment_stays_above_the_bound_and_each_layer_buys_about_03_nats(float64_default):
    per_direction = gaussian_kl(1.0, 4.0)
    kl = {K: _depth_kl(K) for K in (0, 1, 2, 4)}
    for K, value in kl.items():
        assert value >= (8 - K) * per_direction  # "never falls below the bound"
    gains = [kl[0] - kl[1], kl[1] - kl[2], (kl[2] - kl[4]) / 2]
    assert all(round(g, 1) == 0.3 for g in gains), gains
    text = notebook_cells()["theory-depth-experiment"]
    assert f"$(8 - K)\\cdot {per_direction:.3f}$" in text and "about one direction's worth, 0.3 nats" in text


def test_notebook_states_the_gaussian_tv_threshold_and_constants():
    def tv_isotropic(k):  # TV(N(0, I_k), N(0, 4 I_k)); the densities cross where |x|² = (8k/3) log 2
        r2 = 8 * k * math.log(2) / 3
        return stats.chi2.cdf(r2, k) - stats.chi2.cdf(r2 / 4, k)

    assert tv_isotropic(2) < 0.5 < tv_isotropic(3)  # so K ≤ d - 3 planar layers leave TV > 0.5: T_0.5 ≥ d - 2
    text = " ".join(notebook_markdown().split())
    assert "which exceeds 0.5 once $d - K \\ge 3$ — so here $T_{0.5} \\ge d - 2$" in text
    assert f"\\approx {gaussian_kl(1.0, 4.0):.3f}\\,(d - K)" in text
    assert round(784**2, -5) == 6e5 and "$d = 784$ and $d^2 \\approx 6\\cdot 10^5$" in text
    cells = notebook_cells()
    assert f"0.6^60 ≈ {0.6 ** 60:.0e}" in cells["demo-relu-peaks"]
    M = np.array([[1.5, 0.4], [-0.3, 0.7]])
    assert "M, c = torch.tensor([[1.5, 0.4], [-0.3, 0.7]])" in cells["selfcheck-log-det-term"]
    assert f"L = -log|det M| = {-math.log(abs(np.linalg.det(M))):.3f}" in cells["selfcheck-log-det-term"]
    assert f"TV(N(0,1), N(1,1)) = {2 * stats.norm.cdf(0.5) - 1:.4f}" in cells["selfcheck-tv"]


def test_radial_row_of_the_layer_table_parameters_and_log_det():
    """α > 0, β ≥ −α (as lesson 05): then the table's log-det is autograd's; below −α the layer folds."""
    row = next(line for line in notebook_cells(raw=True)["theory-layers"].splitlines() if line.startswith("| radial"))
    assert "$\\alpha > 0$, $\\beta \\ge -\\alpha$" in row and "\\log(1 + \\beta\\alpha h^2)" in row
    z0 = torch.tensor([0.3, -0.2, 0.5], dtype=F64)

    def radial(z, alpha, beta):  # written from the table, not from a key
        r = torch.linalg.vector_norm(z - z0, dim=1, keepdim=True)
        return z + beta / (alpha + r) * (z - z0)

    z = torch.randn(12, 3, dtype=F64, generator=torch.Generator().manual_seed(4))
    for alpha, beta in [(0.7, -0.7), (0.7, -0.4), (1.5, 2.0)]:
        h = 1 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))
        table = 2 * torch.log(1 + beta * h) + torch.log(1 + beta * alpha * h**2)
        logdet = jacobian_logdet(lambda v, a=alpha, b=beta: (radial(v, a, b), None), z)
        torch.testing.assert_close(table, logdet)
        torch.testing.assert_close(table, lesson_05.radial_logdet(z, z0, alpha, beta))
    # β < −α: two points on one ray, on either side of z0, share an image — not invertible
    e = torch.tensor([[1.0, 0.0, 0.0]], dtype=F64)
    alpha, beta = 0.7, -1.2
    a, b = radial(z0 + 0.1 * e, alpha, beta), radial(z0 - 0.1 * e, alpha, beta)
    rho = lambda r: r * (alpha + beta + r) / (alpha + r)  # noqa: E731  signed radius along the ray
    r_other = optimize.brentq(lambda r: rho(r) - rho(0.1), 0.15, 5.0)
    torch.testing.assert_close(radial(z0 + r_other * e, alpha, beta), a)
    assert not torch.allclose(a, b)


def test_notebook_speaks_to_the_student_and_numbers_its_questions():
    notebook = json.loads((Path(__file__).parent / "07-expressive-power.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in notebook["cells"])
    bad = re.compile(r"seed(s|'s)\b|\bissue\b|engineer|catalog|quick experiment|answer key|our grader", re.I)
    assert not bad.findall(text)
    questions = [int(n) for n in re.findall(r"\*\*Question (\d+)", text)]
    assert questions == list(range(1, len(questions) + 1)) and len(questions) == 7
    written = [int(n) for n in re.findall(r"\*\*Written question (\d+)", text)]
    assert written == [1, 2]
    assert "demo-householder" not in {c["id"] for c in notebook["cells"]}  # lesson 06 shows it; 07 refers back
    assert "Lesson 06\n  (section 6)" in text or "Lesson 06 (section 6)" in " ".join(text.split())
