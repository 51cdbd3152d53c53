"""Planar and radial flows (lesson 05) against independent truth.

Truth used here: worked example 3 of the lesson notes (0.5802 with raw u, 0.2202 with û, and its Jacobian by hand),
autograd Jacobians + slogdet, determinants of the explicitly formed Jacobian, the closed form
m(a) = -1 + log(1 + e^a) evaluated with numpy, and round trips. Parameters are random and far from any
initialisation, in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from flowcourse_lessons.lesson_05.key import (
    Planar,
    Radial,
    planar_forward,
    planar_inverse,
    planar_logdet,
    planar_u_hat,
    planar_u_hat_logdet,
    radial_forward,
    radial_inverse,
    radial_logdet,
)

from flowcourse.base import NoClosedFormInverse
from flowcourse.jacobian import batch_jacobian, jacobian_logdet

F64 = torch.float64
ACTS = [("tanh", 0.01), ("relu", 0.01), ("leaky_relu", 0.3)]


def h_and_dh(a: torch.Tensor, activation: str, slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The activation and its derivative written out independently of the code under test."""
    if activation == "tanh":
        return torch.tanh(a), 1.0 / torch.cosh(a) ** 2
    s = 0.0 if activation == "relu" else slope
    pos = (a > 0).to(a.dtype)
    return pos * a + (1 - pos) * s * a, pos + (1 - pos) * s


def m_numpy(a: float) -> float:
    """m(a) = -1 + log(1 + e^a), by numpy's overflow-safe logaddexp."""
    return -1.0 + float(np.logaddexp(0.0, a))


def randomize(layer: torch.nn.Module, scale: float = 2.0) -> torch.nn.Module:
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0.0, scale)
    return layer.double()


# ---------------------------------------------------------------------------------------------------------
# worked example 3 of the lesson notes
# ---------------------------------------------------------------------------------------------------------
EX_Z, EX_U, EX_W = [[0.5, -0.5]], [1.0, 0.0], [1.0, 2.0]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_worked_example_log_dets_from_the_lesson_notes(dtype):
    z, u, w = (torch.tensor(v, dtype=dtype) for v in (EX_Z, EX_U, EX_W))
    assert planar_logdet(z, u, w, 0.0).item() == pytest.approx(0.5802, abs=1e-4)
    assert planar_logdet(z, planar_u_hat(u, w), w, 0.0).item() == pytest.approx(0.2202, abs=1e-4)
    assert planar_u_hat_logdet(z, u, w, 0.0).item() == pytest.approx(0.2202, abs=1e-4)
    for reparameterize, expected in [(False, 0.5802), (True, 0.2202)]:
        layer = Planar(2, reparameterize=reparameterize).to(dtype)
        with torch.no_grad():
            layer.u.copy_(u), layer.w.copy_(w), layer.b.zero_()
        assert layer(z)[1].item() == pytest.approx(expected, abs=1e-4)


def test_worked_example_jacobian_by_hand():
    """The worked example's J = [[1 + 0.7864, 1.5729], [0, 1]] at z = (0.5, -0.5)."""
    z, u, w = (torch.tensor(v, dtype=F64) for v in (EX_Z, EX_U, EX_W))
    J = batch_jacobian(lambda v: planar_forward(v, u, w, 0.0), z)[0]
    torch.testing.assert_close(J, torch.tensor([[1.7864, 1.5729], [0.0, 1.0]], dtype=F64), atol=1e-4, rtol=0)
    x, _ = planar_forward(z, u, w, 0.0)
    torch.testing.assert_close(x, torch.tensor([[0.5 + math.tanh(-0.5), -0.5]], dtype=F64))


# ---------------------------------------------------------------------------------------------------------
# planar log-det: determinant lemma and autograd
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("activation", "slope"), ACTS)
@pytest.mark.parametrize("wu", [None, -3.0])  # None: random u; -3: 1 + h' w^T u changes sign (folding map)
def test_planar_logdet_is_determinant_lemma_and_autograd(activation, slope, wu):
    d = 4
    u, w = torch.randn(d, dtype=F64) * 2, torch.randn(d, dtype=F64) * 2
    if wu is not None:
        u = wu * w / (w @ w)
    b = torch.tensor(0.7, dtype=F64)
    z = torch.randn(10, d, dtype=F64)
    x, ld = planar_forward(z, u, w, b, activation, slope)
    h, dh = h_and_dh(z @ w + b, activation, slope)
    torch.testing.assert_close(x, z + h[:, None] * u)
    J = torch.eye(d, dtype=F64) + dh[:, None, None] * torch.outer(u, w)
    torch.testing.assert_close(ld, torch.linalg.det(J).abs().log())
    autograd = jacobian_logdet(lambda v: planar_forward(v, u, w, b, activation, slope), z)
    torch.testing.assert_close(ld, autograd)
    torch.testing.assert_close(planar_logdet(z, u, w, b, activation, slope), ld)


@pytest.mark.parametrize(("activation", "slope"), ACTS)
@pytest.mark.parametrize("reparameterize", [True, False])
def test_planar_layer_far_from_init(flowcheck, activation, slope, reparameterize):
    layer = randomize(Planar(3, activation, reparameterize, slope))
    if not reparameterize:  # raw u: keep w^T u > 0 so that ReLU layers stay invertible
        with torch.no_grad():
            layer.u.copy_(layer.w * torch.rand(3, dtype=F64) * 3)
    z = torch.randn(8, 3, dtype=F64)
    flowcheck(layer, z, invertible=activation != "tanh")
    assert layer(z)[1].abs().max() > 0.1  # not a test that passes at the identity


# ---------------------------------------------------------------------------------------------------------
# û: the invertibility constraint
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [-1000.0, -30.0, -3.0, -1.0, 0.0, 0.5, 40.0, 1000.0])
def test_u_hat_meets_the_constraint_with_the_closed_form(k):
    """w^T û = m(w^T u) >= -1 for w^T u far below -1 too; only the component along w changes."""
    w = torch.randn(5, dtype=F64) * 3
    noise = torch.randn(5, dtype=F64)
    u = k * w / (w @ w) + (noise - (noise @ w) / (w @ w) * w)  # w^T u = k exactly
    u_hat = planar_u_hat(u, w)
    assert (w @ u_hat).item() >= -1.0 - 1e-12  # slack: rounding of the dot product w^T û itself
    assert (w @ u_hat).item() == pytest.approx(m_numpy(float(w @ u)), rel=1e-10, abs=1e-10)
    along_w = torch.outer(w, w) / (w @ w)
    torch.testing.assert_close((torch.eye(5, dtype=F64) - along_w) @ (u_hat - u), torch.zeros(5, dtype=F64))


def test_u_hat_random_pairs_and_zero_w():
    for _ in range(50):
        u, w = torch.randn(3, dtype=F64) * 10, torch.randn(3, dtype=F64) * 10
        assert (w @ planar_u_hat(u, w)).item() == pytest.approx(m_numpy(float(w @ u)), abs=1e-9)
    u = torch.randn(3, dtype=F64)
    torch.testing.assert_close(planar_u_hat(u, torch.zeros(3, dtype=F64)), u)


def test_u_hat_layer_preserves_orientation_where_raw_u_folds():
    """Autograd det > 0 everywhere with û; the raw u with w^T u = -3 gives det < 0 near the hyperplane."""
    w = torch.tensor([1.0, -2.0], dtype=F64)
    u = -3.0 * w / (w @ w)
    z = torch.randn(60, 2, dtype=F64) * 0.3  # |w^T z| small: h' close to 1
    u_hat = planar_u_hat(u, w)
    sign_hat = torch.linalg.slogdet(batch_jacobian(lambda v: planar_forward(v, u_hat, w, 0.0), z)).sign
    sign_raw = torch.linalg.slogdet(batch_jacobian(lambda v: planar_forward(v, u, w, 0.0), z)).sign
    assert (sign_hat > 0).all()
    assert (sign_raw < 0).any()


@pytest.mark.parametrize(("activation", "slope"), [*ACTS, ("leaky_relu", 1.0), ("leaky_relu", 0.0)])
def test_u_hat_logdet_equals_direct_form(activation, slope):
    u, w = torch.randn(3, dtype=F64) * 2, torch.randn(3, dtype=F64) * 2
    z = torch.randn(12, 3, dtype=F64)
    b = torch.tensor(-0.4, dtype=F64)
    direct = planar_logdet(z, planar_u_hat(u, w), w, b, activation, slope)
    torch.testing.assert_close(planar_u_hat_logdet(z, u, w, b, activation, slope), direct)


@pytest.mark.parametrize(("dtype", "wu"), [(F64, -200.0), (torch.float32, -1e4)])
def test_u_hat_logdet_exact_where_w_dot_u_hat_rounds_to_minus_one(dtype, wu):
    """ReLU, w^T z + b > 0: log|det| = log(1 + w^T û) = log softplus(w^T u), about w^T u, not -inf."""
    w = torch.tensor([1.0, 1.0], dtype=dtype)
    u = wu * w / (w @ w)
    z = torch.tensor([[1.0, 2.0]], dtype=dtype)
    expected = math.log(np.logaddexp(0.0, wu)) if np.logaddexp(0.0, wu) > 0 else wu
    got = planar_u_hat_logdet(z, u, w, 0.0, "relu")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    layer = Planar(2, "relu").to(dtype)
    with torch.no_grad():
        layer.u.copy_(u), layer.w.copy_(w), layer.b.zero_()
    assert layer(z)[1].item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("wu", [-60.0, -30.5, -29.5, -3.0, 0.0, 4.0, 40.0])
def test_tanh_u_hat_logdet_float32_matches_float64_truth_on_both_sides_of_the_log_space_switch(wu):
    """log(tanh² a + sech² a · softplus(w^T u)) in float64 (a sum of positives) is the truth for float32."""
    w = torch.tensor([1.0, -2.0], dtype=F64)
    u = wu * w / (w @ w)
    z = torch.randn(200, 2, dtype=F64) * 3
    a = z @ w + 0.1
    s = torch.nn.functional.softplus(torch.tensor(wu, dtype=F64))
    truth = torch.log(torch.tanh(a) ** 2 + torch.cosh(a) ** -2 * s)
    got = planar_u_hat_logdet(z.float(), u.float(), w.float(), 0.1)
    torch.testing.assert_close(got.double(), truth, rtol=1e-5, atol=1e-5)
    layer = Planar(2)
    with torch.no_grad():
        layer.u.copy_(u), layer.w.copy_(w), layer.b.fill_(0.1)
    torch.testing.assert_close(layer(z.float())[1].double(), truth, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# closed-form inverse for piecewise-linear h
# ---------------------------------------------------------------------------------------------------------
def test_relu_planar_in_1d_splits_and_scales():
    """In 1-D: identity where w z + b <= 0, slope 1 + u w (an affine piece) where w z + b > 0."""
    u, w, b = torch.tensor([0.5], dtype=F64), torch.tensor([-1.5], dtype=F64), torch.tensor(1.0, dtype=F64)
    z = torch.linspace(-3, 3, 61, dtype=F64)[:, None]
    x, ld = planar_forward(z, u, w, b, "relu")
    active = (w * z + b > 0).squeeze(1)
    assert 0 < active.sum() < len(active)
    torch.testing.assert_close(x[~active], z[~active])
    torch.testing.assert_close(ld[~active], torch.zeros_like(ld[~active]))
    torch.testing.assert_close(x[active], 0.25 * z[active] + 0.5)  # (1 + uw) z + u b
    torch.testing.assert_close(ld[active], torch.full_like(ld[active], math.log(0.25)))
    z_back, ld_inv = planar_inverse(x, u, w, b, "relu")
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(ld_inv, -ld)


@pytest.mark.parametrize(("activation", "slope", "wu"), [("relu", 0.0, -2.0), ("leaky_relu", 0.5, -1.5)])
def test_inverse_refuses_a_folding_layer(activation, slope, wu):
    w = torch.tensor([1.0, 1.0], dtype=F64)
    with pytest.raises(ValueError, match="not invertible"):
        planar_inverse(torch.zeros(1, 2, dtype=F64), wu * w / 2, w, 0.0, activation, slope)


def test_tanh_planar_has_no_closed_form_inverse():
    with pytest.raises(NoClosedFormInverse):
        Planar(2).inverse(torch.zeros(1, 2))
    with pytest.raises(NoClosedFormInverse):
        planar_inverse(torch.zeros(1, 2), torch.ones(2), torch.ones(2), 0.0, "tanh")


# ---------------------------------------------------------------------------------------------------------
# stability
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("activation", "slope"), ACTS)
@pytest.mark.parametrize("reparameterize", [True, False])
def test_planar_extreme_parameters_float32(activation, slope, reparameterize):
    layer = Planar(2, activation, reparameterize, slope)
    u, w = torch.tensor([1e4, -1e4]), torch.tensor([-1e4, 0.9e4])  # w^T u = -1.9e8
    with torch.no_grad():
        layer.u.copy_(u), layer.w.copy_(w), layer.b.fill_(30.0)
    z = torch.randn(64, 2) * 1e3
    near = z - ((z @ w + 30.0) / (w @ w))[:, None] * w  # points close to the hyperplane, |a| = O(1)
    z = torch.cat([z, near])
    x, ld = layer(z)
    (x.sum() + ld.sum()).backward()
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    for big_w in (torch.tensor([1e4, 2e4]), torch.tensor([1e20, -3e19])):
        assert torch.isfinite(planar_u_hat(u, big_w)).all()


# ---------------------------------------------------------------------------------------------------------
# radial
# ---------------------------------------------------------------------------------------------------------
def radial_jacobian_by_hand(z, z0, alpha, beta):
    """(1 + βh) I + β h' r ê êᵀ, h = 1/(α + r), h' = -h², ê = (z - z0)/r."""
    diff = z - z0
    r = diff.norm(dim=1)
    h = 1 / (alpha + r)
    e = diff / r[:, None]
    eye = torch.eye(z.shape[1], dtype=z.dtype)
    radial_part = (beta * -(h**2) * r)[:, None, None] * e[:, :, None] * e[:, None, :]
    return (1 + beta * h)[:, None, None] * eye + radial_part


@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("beta", [-0.69, 0.3, 4.0])  # -0.69 is just above -alpha: strong contraction
def test_radial_logdet_matches_jacobian_by_hand_and_autograd(d, beta):
    alpha = 0.7
    z0 = torch.randn(d, dtype=F64)
    z = torch.randn(9, d, dtype=F64) * 2
    x, ld = radial_forward(z, z0, alpha, beta)
    torch.testing.assert_close(x, z + beta / (alpha + (z - z0).norm(dim=1, keepdim=True)) * (z - z0))
    by_hand = torch.linalg.slogdet(radial_jacobian_by_hand(z, z0, alpha, beta)).logabsdet
    torch.testing.assert_close(ld, by_hand)
    torch.testing.assert_close(ld, jacobian_logdet(lambda v: radial_forward(v, z0, alpha, beta), z))
    torch.testing.assert_close(radial_logdet(z, z0, alpha, beta), ld)
    z_back, ld_inv = radial_inverse(x, z0, alpha, beta)
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(ld_inv, jacobian_logdet(lambda v: radial_inverse(v, z0, alpha, beta), x))


@pytest.mark.parametrize("d", [1, 2, 4])
def test_radial_layer_far_from_init(flowcheck, d):
    layer = randomize(Radial(d), scale=2.0)
    z = torch.randn(8, d, dtype=F64) * 2
    flowcheck(layer, z)


def test_radial_constraint_holds_for_any_free_parameters():
    layer = Radial(3)
    for a_raw in (-1e4, -50.0, -3.0, 0.0, 3.0, 1e4):
        for b_raw in (-1e4, -50.0, -3.0, 0.0, 3.0, 1e4):
            with torch.no_grad():
                layer.alpha_raw.fill_(a_raw), layer.beta_raw.fill_(b_raw)
            assert layer.alpha.item() > 0
            assert layer.beta.item() >= -layer.alpha.item()


@pytest.mark.parametrize("beta", [-0.999, 0.0, 5.0])
def test_radial_is_monotone_along_rays(beta):
    """For beta >= -alpha the radius r -> |f(z) - z0| is increasing: the map is injective on each ray."""
    alpha = 1.0
    z0 = torch.tensor([0.5, -1.0], dtype=F64)
    direction = torch.tensor([0.6, 0.8], dtype=F64)
    radii = torch.linspace(0, 10, 401, dtype=F64)
    x, _ = radial_forward(z0 + radii[:, None] * direction, z0, alpha, beta)
    assert ((x - z0).norm(dim=1).diff() > 0).all()


@pytest.mark.parametrize(("alpha", "beta", "words"), [(0.0, 1.0, "alpha > 0"), (-1.0, 1.0, "alpha > 0"),
                                                      (1.0, -1.5, "beta >= -alpha")])
def test_radial_rejects_non_invertible_parameters(alpha, beta, words):
    z, z0 = torch.randn(2, 2, dtype=F64), torch.zeros(2, dtype=F64)
    for fn in (radial_forward, radial_logdet, radial_inverse):
        with pytest.raises(ValueError, match=words):
            fn(z, z0, alpha, beta)


def test_radial_extreme_parameters_float32():
    layer = Radial(3)
    for a_raw, b_raw in [(1e4, -1e4), (1e4, 1e4), (-1e4, 1e4), (-1e4, -1e4), (0.0, 1e4)]:
        with torch.no_grad():
            layer.z0.copy_(torch.randn(3) * 1e3)
            layer.alpha_raw.fill_(a_raw), layer.beta_raw.fill_(b_raw)
        x, ld = layer(torch.randn(32, 3) * 1e3)
        assert torch.isfinite(x).all() and torch.isfinite(ld).all()
        z_back, ld_inv = layer.inverse(x)
        assert torch.isfinite(z_back).all() and torch.isfinite(ld_inv).all()


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------
Z2, V2, Z2_INT = torch.zeros(3, 2), torch.ones(2), torch.zeros(3, 2, dtype=torch.long)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: planar_logdet(torch.zeros(3, 4), V2, V2, 0.0), ValueError, r"\('batch', 2\)"),
        (lambda: planar_logdet(Z2_INT, V2, V2, 0.0), TypeError, "floating-point"),
        (lambda: planar_logdet(Z2, torch.ones(3), V2, 0.0), ValueError, r"u must have shape \(2,\)"),
        (lambda: planar_logdet(Z2, V2, torch.ones(2, 1), 0.0), ValueError, r"w must have shape \(d,\)"),
        (lambda: planar_logdet(Z2, [1.0, 1.0], V2, 0.0), TypeError, "u must be a torch.Tensor"),
        (lambda: planar_logdet(Z2, V2.double(), V2, 0.0), TypeError, "dtype of the batch"),
        (lambda: planar_logdet(Z2, V2, V2, torch.zeros(2)), ValueError, "b .*one bias"),
        (lambda: planar_logdet(Z2, V2, V2, 0.0, "sigmoid"), ValueError, "activation must be one of"),
        (lambda: planar_logdet(Z2, V2, V2, 0.0, "leaky_relu", -0.2), ValueError, "negative_slope"),
        (lambda: planar_u_hat(torch.ones(3), V2), ValueError, r"u must have shape \(2,\)"),
        (lambda: Planar(0), ValueError, "positive integer"),
        (lambda: Planar(2, "softplus"), ValueError, "activation"),
        (lambda: radial_forward(Z2, torch.zeros(3), 1.0, 0.0), ValueError, r"\('batch', 3\)"),
        (lambda: radial_forward(Z2, torch.zeros(2), V2, 0.0), ValueError, "alpha must be a scalar"),
        (lambda: radial_forward(Z2, torch.zeros(2), 1.0, "big"), TypeError, "beta must be a scalar"),
        (lambda: Radial(-1), ValueError, "positive integer"),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_lesson_05_worked_values_in_the_key_match_the_lesson_notes():
    """quiz.worked_05_*: the lesson notes' 0.580 (raw u) and 0.2202 (û), from closed forms, not from the code."""
    from flowcourse_lessons.lesson_05 import key as quiz

    sech2 = 1.0 / math.cosh(0.5) ** 2
    m1 = -1.0 + math.log(1.0 + math.e)  # m(wᵀu) at wᵀu = 1
    assert quiz.worked_05_logdet_raw_u == pytest.approx(math.log(1.0 + sech2), abs=1e-6)
    assert quiz.worked_05_logdet_raw_u == pytest.approx(0.580, abs=5e-4)
    assert quiz.worked_05_logdet_u_hat == pytest.approx(math.log(1.0 + sech2 * m1), abs=1e-6)
    assert quiz.worked_05_logdet_u_hat == pytest.approx(0.2202, abs=5e-5)


# ---------------------------------------------------------------------------------------------------------
# the numbers the notebook's text states: computed here, then found in its markdown
# ---------------------------------------------------------------------------------------------------------
def notebook_markdown() -> str:
    """All markdown of the lesson notebook, as one string."""
    import json
    from pathlib import Path

    notebook = json.loads((Path(__file__).parent / "05-planar-radial.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")


def test_text_states_the_worked_example_by_hand():
    """Section 2's hand computation: cosh, h', the Jacobian's entries, the determinant and the log-det."""
    text = notebook_markdown()
    z, u, w = torch.tensor(EX_Z, dtype=F64), torch.tensor(EX_U, dtype=F64), torch.tensor(EX_W, dtype=F64)
    b = torch.tensor(0.0, dtype=F64)
    a = float(z[0] @ w + b)
    dh = 1 - math.tanh(a) ** 2
    J = batch_jacobian(lambda v: planar_forward(v, u, w, b)[0], z)[0]
    assert f"1/{math.cosh(0.5):.4f}^2 \\approx {dh:.4f}" in text
    assert f"\\begin{{pmatrix}} {float(J[0, 0]):.4f} & {float(J[0, 1]):.4f} \\\\ 0 & 1\\end{{pmatrix}}" in text
    assert f"$\\det J = {float(torch.linalg.det(J)):.4f}$" in text
    assert f"\\log|\\det J| \\approx {float(planar_logdet(z, u, w, b)):.3f}$" in text


def test_text_states_the_u_hat_values_of_the_worked_example():
    text = notebook_markdown()
    z, u, w = torch.tensor(EX_Z, dtype=F64), torch.tensor(EX_U, dtype=F64), torch.tensor(EX_W, dtype=F64)
    b = torch.tensor(0.0, dtype=F64)
    u_hat = planar_u_hat(u, w)
    wu_hat = float(w @ u_hat)
    dh = 1 - math.tanh(-0.5) ** 2
    logdet = float(planar_logdet(z, u_hat, w, b))
    assert f"\\log|\\det J| \\approx {logdet:.4f}$" in text
    assert f"You should find ${logdet:.4f}$" in text
    assert f"m(1) = -1 + \\log(1 + e) \\approx {wu_hat:.4f}$" in text
    assert f"$1 + {dh:.4f}\\cdot {wu_hat:.4f} \\approx {1 + dh * wu_hat:.4f}$" in text


def test_text_states_where_exp_overflows_and_the_cost_of_a_lost_mode():
    text = notebook_markdown()
    float32_limit = math.log(torch.finfo(torch.float32).max)
    float64_limit = math.log(torch.finfo(torch.float64).max)
    assert torch.isinf(torch.exp(torch.tensor(float32_limit + 0.05, dtype=torch.float32)))
    assert f"$s > {float32_limit:.1f}$ in float32 ($s > {math.floor(float64_limit)}$ in float64)" in text
    assert f"$\\log 2 \\approx {math.log(2):.2f}$ nats" in text


def demo_fit_definitions() -> dict:
    """PlanarStack and annealed, as the notebook's demo cell defines them (definitions only, nothing run)."""
    import ast
    import json
    from pathlib import Path

    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    notebook = json.loads((Path(__file__).parent / "05-planar-radial.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if c.get("id") == "demo-fit")
    tree = ast.parse("".join(cell["source"]))
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)]
    namespace = {"math": math, "torch": torch, "nn": nn, "F": F}
    exec(compile(tree, "<demo-fit cell>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("K", [2, 8, 32])
def test_text_states_the_longer_reverse_kl_runs(K):
    """The text's KL after 2000 annealed steps on U1, recomputed with the demo's own code (a few seconds each)."""
    import re

    from flowcourse.base import FlowDistribution, StandardNormal
    from flowcourse.data import energy_normaliser, log_target
    from flowcourse.training import fit_reverse_kl

    stated = re.search(r"reaches KL ≈ ([\d.]+) / ([\d.]+) / ([\d.]+) nats on \$U_1\$ for\s+\$K = 2, 8, 32\$",
                       notebook_markdown())
    assert stated, "the text no longer states the longer runs' KL for K = 2, 8, 32"
    defs = demo_fit_definitions()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # as in the notebook
    try:
        torch.manual_seed(K)
        log_p, log_Z = log_target("U1"), energy_normaliser("U1")
        dist = FlowDistribution(defs["PlanarStack"](K), StandardNormal(2))
        fit_reverse_kl(dist, defs["annealed"](log_p, 1000), steps=2000, batch_size=256, lr=0.01, seed=K,
                       progress=False)
        with torch.no_grad():
            x, log_q = dist.sample_and_log_prob(20_000, generator=torch.Generator().manual_seed(1))
        kl = float((log_q - log_p(x)).mean()) + log_Z
    finally:
        torch.set_default_dtype(previous)
    value = float(stated.group([2, 8, 32].index(K) + 1))
    assert kl == pytest.approx(value, rel=0.05), f"K = {K}: measured KL {kl:.4f}, the text states {value}"
