"""Sylvester and Householder flows (lesson 06) against independent truth.

Truth used here: Sylvester's determinant identity checked with plain ``torch.linalg.det``, the explicitly
formed d x d Jacobian, autograd Jacobians + slogdet, orthogonality of Q and H checked directly, the lesson notes'
worked example 3 (a Sylvester layer with one neuron is planar) and round trips. Every layer is checked at
random parameters far from its initialisation (pyro's Sylvester log-det was off by up to 2.2 nats there,
and its test, run only near the identity, could not see it).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import pytest
import torch
from flowcourse_lessons.lesson_06.key import (
    Householder,
    HouseholderSylvester,
    OrthogonalSylvester,
    TriangularSylvester,
    householder_forward,
    householder_inverse,
    householder_product,
    householder_reflect,
    qr_sylvester_forward,
    sylvester_forward,
    sylvester_logdet,
)

from flowcourse.jacobian import batch_jacobian, jacobian_logdet

F64 = torch.float64
ACTS = [("tanh", 0.01), ("relu", 0.01), ("leaky_relu", 0.3)]


def dh_independent(a: torch.Tensor, activation: str, slope: float) -> torch.Tensor:
    if activation == "tanh":
        return 1.0 / torch.cosh(a) ** 2
    s = 0.0 if activation == "relu" else slope
    return torch.where(a > 0, torch.ones_like(a), torch.full_like(a, s))


def randomize(layer: torch.nn.Module, scale: float = 1.0) -> torch.nn.Module:
    """Free parameters far from init: diagonals ~ N(0, (2 scale)²) (tanh near ±1), the rest ~ N(0, scale²),
    the bias ~ N(0, 0.25) so that tanh is not saturated and h' (hence the log-det) stays far from 0."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.normal_(0.0, 2 * scale if name.endswith("diag") else 0.5 if name == "b" else scale)
    return layer.double()


# ---------------------------------------------------------------------------------------------------------
# Sylvester's identity and the general layer
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("d", "m"), [(5, 2), (3, 3), (2, 5)])
def test_sylvester_determinant_identity(d, m):
    """det(I_d + A Bᵀ) = det(I_m + Bᵀ A), also with a diagonal in between."""
    A, B = torch.randn(d, m, dtype=F64), torch.randn(d, m, dtype=F64)
    c = torch.rand(m, dtype=F64)
    torch.testing.assert_close(torch.linalg.det(torch.eye(d, dtype=F64) + A @ B.T),
                               torch.linalg.det(torch.eye(m, dtype=F64) + B.T @ A))
    torch.testing.assert_close(torch.linalg.det(torch.eye(d, dtype=F64) + A @ torch.diag(c) @ B.T),
                               torch.linalg.det(torch.eye(m, dtype=F64) + torch.diag(c) @ B.T @ A))


@pytest.mark.parametrize(("activation", "slope"), ACTS)
@pytest.mark.parametrize(("d", "m"), [(5, 3), (4, 1), (3, 6)])
def test_sylvester_logdet_matches_full_jacobian_and_autograd(activation, slope, d, m):
    A, B = torch.randn(d, m, dtype=F64), torch.randn(d, m, dtype=F64)
    b = torch.randn(m, dtype=F64)
    z = torch.randn(8, d, dtype=F64)
    x, ld = sylvester_forward(z, A, B, b, activation, slope)
    dh = dh_independent(z @ B + b, activation, slope)
    full = torch.eye(d, dtype=F64) + A @ (dh[:, :, None] * B.T)  # I_d + A diag(h') Bᵀ, per sample
    torch.testing.assert_close(ld, torch.linalg.slogdet(full).logabsdet)
    autograd = jacobian_logdet(lambda v: sylvester_forward(v, A, B, b, activation, slope), z)
    torch.testing.assert_close(ld, autograd)
    torch.testing.assert_close(sylvester_logdet(z, A, B, b, activation, slope), ld)
    assert ld.abs().max() > 0.1


def test_one_neuron_sylvester_is_lesson_05s_planar_example():
    z = torch.tensor([[0.5, -0.5]], dtype=F64)
    A, B = torch.tensor([[1.0], [0.0]], dtype=F64), torch.tensor([[1.0], [2.0]], dtype=F64)
    assert sylvester_logdet(z, A, B, torch.zeros(1, dtype=F64)).item() == pytest.approx(0.5802, abs=1e-4)


@pytest.mark.parametrize(("d", "m"), [(5, 3), (4, 4)])
def test_qr_form_equals_general_form_with_a_qr_b_q_rtilde_t(d, m):
    Q = torch.linalg.qr(torch.randn(d, m, dtype=F64)).Q
    R = torch.triu(torch.randn(m, m, dtype=F64) * 2)
    R_tilde = torch.triu(torch.randn(m, m, dtype=F64) * 2)
    b = torch.randn(m, dtype=F64)
    z = torch.randn(6, d, dtype=F64)
    x, ld = qr_sylvester_forward(z, Q, R, R_tilde, b)
    x_ref, ld_ref = sylvester_forward(z, Q @ R, Q @ R_tilde.T, b)
    torch.testing.assert_close(x, x_ref)
    torch.testing.assert_close(ld, ld_ref)
    torch.testing.assert_close(ld, jacobian_logdet(lambda v: qr_sylvester_forward(v, Q, R, R_tilde, b), z))


# ---------------------------------------------------------------------------------------------------------
# the three parameterised layers
# ---------------------------------------------------------------------------------------------------------
LAYERS = {
    "orthogonal-5-3": lambda act, s: OrthogonalSylvester(5, 3, act, s),
    "orthogonal-4-4": lambda act, s: OrthogonalSylvester(4, 4, act, s),
    "householder-5-3": lambda act, s: HouseholderSylvester(5, 3, act, s),
    "triangular-5": lambda act, s: TriangularSylvester(5, False, act, s),
    "triangular-5-reversed": lambda act, s: TriangularSylvester(5, True, act, s),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize(("activation", "slope"), ACTS)
def test_sylvester_layers_far_from_init(flowcheck, name, activation, slope):
    layer = randomize(LAYERS[name](activation, slope))
    # |raw diagonals| >= 1.5, so |R~_ii R_ii| > 0.8; products negative (1 + h' R~_ii R_ii heads for 0)
    # except for ReLU, positive there, so both sides are covered and no sum of mixed terms cancels.
    sign = 1.0 if activation == "relu" else -1.0
    with torch.no_grad():
        layer.r_diag.copy_(1.5 + layer.r_diag.abs())
        layer.r_tilde_diag.copy_(sign * (1.5 + layer.r_tilde_diag.abs()))
    z = torch.randn(5, layer.orthogonal().shape[0], dtype=F64)
    flowcheck(layer, z, invertible=False)
    _, ld = layer(z)
    assert ld.abs().max() > 0.3  # far enough from the identity for a wrong log-det to show
    # The diagonal constraint keeps every Jacobian orientation-preserving: det > 0, never a fold.
    assert (torch.linalg.slogdet(batch_jacobian(layer, z[:3])).sign > 0).all()


@pytest.mark.parametrize("name", LAYERS)
def test_q_orthonormal_and_r_triangular_with_bounded_diagonal(name):
    layer = randomize(LAYERS[name]("tanh", 0.01), scale=3.0)
    Q = layer.orthogonal()
    torch.testing.assert_close(Q.T @ Q, torch.eye(Q.shape[1], dtype=F64))
    for R in layer.triangular():
        torch.testing.assert_close(R, torch.triu(R))
    R, R_tilde = layer.triangular()
    assert (torch.diagonal(R) * torch.diagonal(R_tilde)).abs().max() < 1


def test_householder_sylvester_q_is_the_product_of_reflections():
    vs = torch.randn(3, 4, dtype=F64)
    Q = householder_product(vs)
    H = [torch.eye(4, dtype=F64) - 2 * torch.outer(v, v) / (v @ v) for v in vs]
    torch.testing.assert_close(Q, H[0] @ H[1] @ H[2])
    assert torch.linalg.det(Q).item() == pytest.approx(-1.0)  # three reflections


# ---------------------------------------------------------------------------------------------------------
# Householder reflections
# ---------------------------------------------------------------------------------------------------------
def test_householder_reflect_is_the_reflection_matrix():
    v = torch.randn(4, dtype=F64)
    z = torch.randn(7, 4, dtype=F64)
    H = torch.eye(4, dtype=F64) - 2 * torch.outer(v, v) / (v @ v)
    torch.testing.assert_close(householder_reflect(z, v), z @ H.T)
    torch.testing.assert_close(householder_reflect(v[None], v), -v[None])  # v itself flips
    y = torch.randn(4, dtype=F64)
    y = y - (y @ v) / (v @ v) * v
    torch.testing.assert_close(householder_reflect(y[None], v), y[None])  # the mirror is fixed
    torch.testing.assert_close(householder_reflect(z, 5.0 * v), householder_reflect(z, v))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_householder_layer_is_orthogonal_and_volume_preserving(flowcheck, k):
    layer = randomize(Householder(4, k), scale=1.0)
    z = torch.randn(6, 4, dtype=F64)
    flowcheck(layer, z)
    J = batch_jacobian(layer, z)
    torch.testing.assert_close(J.transpose(1, 2) @ J, torch.eye(4, dtype=F64).expand(6, 4, 4))
    sign, logabsdet = torch.linalg.slogdet(J)
    torch.testing.assert_close(logabsdet, torch.zeros(6, dtype=F64))
    torch.testing.assert_close(sign, torch.full((6,), (-1.0) ** k, dtype=F64))


def test_householder_inverse_needs_the_reverse_order():
    layer = randomize(Householder(3, 2), scale=1.0)
    z = torch.randn(5, 3, dtype=F64)
    x, _ = layer(z)
    same_order, _ = layer(x)  # H2 H1 H2 H1 z: not z, since the reflections do not commute
    assert not torch.allclose(same_order, z)
    torch.testing.assert_close(layer.inverse(x)[0], z)


# ---------------------------------------------------------------------------------------------------------
# stability
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize(("activation", "slope"), ACTS)
def test_sylvester_layers_extreme_parameters_float32(name, activation, slope):
    layer = LAYERS[name](activation, slope)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p).sign() * 1e4)  # tanh diagonals saturate; products can reach -1
    z = torch.randn(32, layer.orthogonal().shape[0]) * 1e3
    x, ld = layer(z)
    (x.sum() + ld.sum()).backward()
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_householder_extreme_float32():
    z = torch.randn(16, 3) * 1e3
    for v in ([1e4, -2e4, 3e4], [1e20, 3e19, -1e20], [1e-30, 0.0, 0.0]):
        v = torch.tensor(v)
        x = householder_reflect(z, v)
        assert torch.isfinite(x).all()
        torch.testing.assert_close(x.norm(dim=1), z.norm(dim=1), rtol=1e-5, atol=0)  # still orthogonal


# ---------------------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------------------
Z3, I3, V3 = torch.zeros(2, 3), torch.eye(3), torch.ones(3)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: sylvester_forward(torch.zeros(2, 4), torch.ones(3, 2), torch.ones(3, 2), torch.ones(2)),
         ValueError, r"\('batch', 3\)"),
        (lambda: sylvester_forward(Z3, torch.ones(3, 2), torch.ones(2, 3), torch.ones(2)),
         ValueError, r"B must have shape \(3, 2\)"),
        (lambda: sylvester_forward(Z3, torch.ones(3, 2), torch.ones(3, 2), torch.ones(3)),
         ValueError, r"b must have shape \(2,\)"),
        (lambda: sylvester_forward(Z3, V3, V3, torch.ones(1)), ValueError, "matrix"),
        (lambda: sylvester_forward(Z3, I3.double(), I3, V3), TypeError, "dtype of the batch"),
        (lambda: sylvester_forward(Z3, I3, I3, V3, "elu"), ValueError, "activation must be one of"),
        (lambda: qr_sylvester_forward(Z3, torch.ones(3, 3), I3, I3, V3), ValueError, "orthonormal"),
        (lambda: qr_sylvester_forward(Z3, I3, torch.ones(3, 3), I3, V3), ValueError, "R must be upper"),
        (lambda: qr_sylvester_forward(Z3, I3, I3, torch.ones(3, 3), V3), ValueError, "R_tilde must be upper"),
        (lambda: householder_reflect(Z3, torch.zeros(3)), ValueError, "non-zero"),
        (lambda: householder_reflect(Z3, [1.0, 0.0, 0.0]), TypeError, "v must be a torch.Tensor"),
        (lambda: householder_reflect(Z3, torch.ones(2)), ValueError, r"\('batch', 2\)"),
        (lambda: OrthogonalSylvester(3, 4), ValueError, "at most d"),
        (lambda: HouseholderSylvester(3, 0), ValueError, "n_reflections must be a positive integer"),
        (lambda: Householder(0, 1), ValueError, "d must be a positive integer"),
        (lambda: TriangularSylvester(3, activation="leaky_relu", negative_slope=2.0), ValueError, "slope"),
    ],
)
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---------------------------------------------------------------------------------------------------------
# the Householder flow as functions (lesson 06 grades these)
# ---------------------------------------------------------------------------------------------------------
def explicit_reflections(vs: torch.Tensor) -> list[torch.Tensor]:
    return [torch.eye(vs.shape[1], dtype=F64) - 2 * torch.outer(v, v) / (v @ v) for v in vs]


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_householder_forward_is_hk_to_h1_with_zero_logdet(k):
    vs = 3.0 * torch.randn(k, 4, dtype=F64)  # not unit vectors: the normalisation must happen inside
    z = torch.randn(6, 4, dtype=F64)
    matrix = torch.eye(4, dtype=F64)
    for H in explicit_reflections(vs):
        matrix = H @ matrix  # H_1 acts first
    x, ld = householder_forward(z, vs)
    torch.testing.assert_close(x, z @ matrix.T)
    assert ld.shape == (6,)
    torch.testing.assert_close(ld, torch.zeros(6, dtype=F64), atol=0, rtol=0)
    torch.testing.assert_close(ld, jacobian_logdet(lambda v: householder_forward(v, vs), z), atol=1e-12, rtol=0)
    sign = torch.linalg.slogdet(batch_jacobian(lambda v: householder_forward(v, vs), z[:2])).sign
    torch.testing.assert_close(sign, torch.full((2,), (-1.0) ** k, dtype=F64))  # det = (-1)^K, |det| = 1


@pytest.mark.parametrize("k", [1, 2, 4])
def test_householder_inverse_undoes_the_last_reflection_first(k):
    vs = torch.randn(k, 3, dtype=F64)
    x = torch.randn(5, 3, dtype=F64)
    z, ld = householder_inverse(x, vs)
    matrix = torch.eye(3, dtype=F64)
    for H in explicit_reflections(vs):
        matrix = matrix @ H  # H_1 H_2 ... H_K
    torch.testing.assert_close(z, x @ matrix.T)
    torch.testing.assert_close(householder_forward(z, vs)[0], x)
    torch.testing.assert_close(ld, torch.zeros(5, dtype=F64), atol=0, rtol=0)
    if k > 1:  # the forward order does not undo the flow: reflections do not commute
        assert not torch.allclose(householder_forward(x, vs)[0], z)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: householder_forward(Z3, torch.ones(0, 3)), ValueError, "at least one"),
        (lambda: householder_forward(Z3, torch.ones(3)), ValueError, "matrix"),
        (lambda: householder_forward(Z3, torch.ones(2, 4)), ValueError, r"\('batch', 4\)"),
        (lambda: householder_inverse(Z3, torch.ones(2, 3, dtype=F64)), TypeError, "dtype of the batch"),
        (lambda: householder_inverse(Z3, torch.zeros(1, 3)), ValueError, "non-zero"),
    ],
)
def test_householder_flow_bad_input_is_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


# ---------------------------------------------------------------------------------------------------------
# the notebook's setup cell stands in for earlier lessons' functions: it must agree with their keys
# ---------------------------------------------------------------------------------------------------------
def notebook_setup_functions() -> dict:
    """The functions the notebook's setup cell defines, run on their own (no dtype or seed side effects)."""
    notebook = json.loads((Path(__file__).parent / "06-sylvester-householder.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if c.get("id") == "setup")
    tree = ast.parse("".join(cell["source"]))
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    namespace = {"math": math, "torch": torch}
    exec(compile(tree, "<setup cell>", "exec"), namespace)
    return namespace


def test_setup_standard_normal_log_prob_is_lesson_01s():
    from flowcourse_lessons.lesson_01.key import standard_normal_log_prob

    z = 2.0 * torch.randn(7, 3, dtype=F64) + 0.5
    torch.testing.assert_close(notebook_setup_functions()["standard_normal_log_prob"](z),
                               standard_normal_log_prob(z))


@pytest.mark.parametrize(("activation", "slope"), ACTS)
def test_setup_h_and_dh_is_lesson_05s_planar_activation(activation, slope):
    from flowcourse_lessons.lesson_05.key import planar_activation

    a = 3.0 * torch.randn(6, 4, dtype=F64)
    got = notebook_setup_functions()["h_and_dh"](a, activation, slope)
    for mine, key in zip(got, planar_activation(a, activation, slope), strict=True):
        torch.testing.assert_close(mine, key)


# ---------------------------------------------------------------------------------------------------------
# the numbers the notebook's text states: computed here, then found in its markdown
# ---------------------------------------------------------------------------------------------------------
def notebook_markdown() -> str:
    """All markdown of the lesson notebook, as one string."""
    notebook = json.loads((Path(__file__).parent / "06-sylvester-householder.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")


def test_text_states_the_orders_of_magnitude_of_the_determinant_costs():
    text = notebook_markdown()
    assert f"about $10^{round(math.log10((784 / 16) ** 3))}$ per sample" in text   # d = 784, m = 16
    assert f"$O(d^3)$, about $10^{round(math.log10(1000 ** 3))}$ operations" in text  # d = 1000
    assert f"$O(m^3)$, about $10^{round(math.log10(10 ** 3))}$ operations" in text    # m = 10


def test_text_states_the_steps_of_the_iterative_orthogonalisation():
    """The demo's free 6 x 3 matrix (seed 0), divided by its norm: steps until ‖QᵀQ - I‖ <= 1e-12."""
    free = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    Q, eye = free / torch.linalg.matrix_norm(free), torch.eye(3, dtype=F64)
    steps = 0
    while torch.linalg.matrix_norm(Q.T @ Q - eye) > 1e-12:
        Q = Q @ (eye + 0.5 * (eye - Q.T @ Q))
        steps += 1
    U, _, Vh = torch.linalg.svd(free, full_matrices=False)
    torch.testing.assert_close(Q, U @ Vh, atol=1e-12, rtol=0)  # the limit is the polar factor
    assert f"orthonormal to $10^{{-12}}$ after {steps} steps" in notebook_markdown()


def test_text_states_the_row_column_mix_up_errors_of_the_demo():
    """The demo's mixed-up layer (column-vector matrices in row-vector code) against autograd, seeded as there."""
    def mixed_up_forward(z, Q, R, R_tilde, b):
        a = z @ (R_tilde @ Q.T) + b
        dh = 1 / torch.cosh(a) ** 2
        x = z + torch.tanh(a) @ (Q @ R)
        return x, torch.log(torch.abs(1 + dh * torch.diagonal(R_tilde) * torch.diagonal(R))).sum(dim=1)

    generator = torch.Generator().manual_seed(1)
    d = 4
    Q = householder_product(torch.randn(d, d, generator=generator, dtype=F64))
    z = torch.randn(16, d, generator=generator, dtype=F64)
    errors = {}
    for scale in [0.01, 0.03, 0.1, 0.3, 1.0, 2.0]:
        R = torch.triu(scale * torch.randn(d, d, generator=generator, dtype=F64))
        R_tilde = torch.triu(scale * torch.randn(d, d, generator=generator, dtype=F64))
        b = scale * torch.randn(d, generator=generator, dtype=F64)
        f = lambda v: mixed_up_forward(v, Q, R, R_tilde, b)  # noqa: B023, E731
        errors[scale] = float((f(z)[1] - jacobian_logdet(f, z)).abs().max())
        g = lambda v: qr_sylvester_forward(v, Q, R, R_tilde, b)  # noqa: B023, E731
        assert float((g(z)[1] - jacobian_logdet(g, z)).abs().max()) < 1e-12
    mantissa, exponent = f"{errors[0.01]:.0e}".split("e")
    assert (f"the largest error is ${mantissa}\\cdot 10^{{{int(exponent)}}}$ nats at scale 0.01,\n"
            f"{errors[1.0]:.1f} nats at scale 1 and {errors[2.0]:.1f} nats at scale 2") in notebook_markdown()
