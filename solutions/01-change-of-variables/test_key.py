"""Lesson 01 answer key against independent truth: torch.distributions, autograd Jacobians, quadrature."""

import ast
import json
import math
from pathlib import Path

import pytest
import torch
from flowcourse_lessons.lesson_01.key import (
    ElementwiseAffine,
    LinearFlow,
    Rotation,
    change_of_variables_log_prob,
    compose_forward,
    linear_logdet,
    pushforward_log_prob,
    rotation_matrix,
    scalar_affine,
    scalar_affine_inverse,
    scalar_affine_log_prob,
    standard_normal_log_prob,
)

from flowcourse.base import FlowDistribution, FlowSequence, StandardNormal
from flowcourse.jacobian import jacobian_logdet

f64 = torch.float64


def perturbed(layer, std=0.5):
    """The layer at random non-identity parameters, in float64."""
    layer = layer.double()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(std * torch.randn_like(p))
    return layer


def well_conditioned(d):
    return torch.eye(d, dtype=f64) + 0.4 * torch.randn(d, d, dtype=f64)


# --- the change of variables ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (7, 3), (7, 2, 2)])
def test_standard_normal_log_prob_matches_torch(shape):
    z = torch.randn(shape, dtype=f64)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).reshape(shape[0], -1).sum(1)
    torch.testing.assert_close(standard_normal_log_prob(z), expected)


def test_change_of_variables_gives_the_gaussian_of_a_linear_map():
    # x = W z + b with z ~ N(0, I) is N(b, W W^T): a closed form independent of the flow code.
    layer = perturbed(LinearFlow(3))
    layer.W.data = well_conditioned(3)
    x = 2 * torch.randn(6, 3, dtype=f64)
    truth = torch.distributions.MultivariateNormal(layer.b, covariance_matrix=layer.W @ layer.W.T).log_prob(x)
    torch.testing.assert_close(change_of_variables_log_prob(x, layer.inverse), truth)


def test_pushforward_log_prob_is_the_same_formula_the_other_way():
    layer = perturbed(LinearFlow(3))
    layer.W.data = well_conditioned(3)
    z = torch.randn(6, 3, dtype=f64)
    x, log_prob = pushforward_log_prob(z, layer.forward)
    truth = torch.distributions.MultivariateNormal(layer.b, covariance_matrix=layer.W @ layer.W.T).log_prob(x)
    torch.testing.assert_close(log_prob, truth)


def test_change_of_variables_rejects_a_log_det_not_summed_over_dimensions():
    def unsummed_inverse(x):
        return x / 2, torch.full_like(x, -math.log(2))

    with pytest.raises(ValueError, match=r"shape \(4,\).*sum"):
        change_of_variables_log_prob(torch.randn(4, 3, dtype=f64), unsummed_inverse)


# --- scalar affine flow: the seeds' worked example 1 -----------------------------------------------------

@pytest.mark.parametrize("a", [2.5, -0.7, 0.05])
@pytest.mark.parametrize("shape", [(9,), (9, 3)])
def test_scalar_affine_density_is_normal_b_abs_a(a, shape):
    b = 1.3
    x = 3 * torch.randn(shape, dtype=f64)
    # float64 parameters: torch.distributions would turn Python floats into float32.
    normal = torch.distributions.Normal(torch.tensor(b, dtype=f64), torch.tensor(abs(a), dtype=f64))
    truth = normal.log_prob(x).reshape(shape[0], -1).sum(1)
    torch.testing.assert_close(scalar_affine_log_prob(x, a, b), truth)


def test_scalar_affine_per_dimension_tensor_parameters():
    a = torch.tensor([0.5, -2.0, 3.0], dtype=f64)
    b = torch.tensor([1.0, 0.0, -4.0], dtype=f64)
    x = torch.randn(5, 3, dtype=f64)
    truth = torch.distributions.Normal(b, a.abs()).log_prob(x).sum(1)
    torch.testing.assert_close(scalar_affine_log_prob(x, a, b), truth)


def test_seeds_worked_example_1_closed_form():
    # The seeds' answer: log p_X(x) = -1/2 log(2 pi a^2) - (x - b)^2 / (2 a^2).
    a, b = 2.0, 1.0
    x = torch.linspace(-5, 5, 11, dtype=f64)
    seeds = -0.5 * math.log(2 * math.pi * a**2) - (x - b) ** 2 / (2 * a**2)
    torch.testing.assert_close(scalar_affine_log_prob(x, a, b), seeds)


@pytest.mark.parametrize(("a", "b"), [(0.3, 1.5), (-2.0, -1.0), (5.0, 0.0)])
def test_scalar_affine_density_integrates_to_one(a, b):
    x = torch.linspace(b - 12 * abs(a), b + 12 * abs(a), 20001, dtype=f64)
    mass = torch.trapezoid(scalar_affine_log_prob(x, a, b).exp(), x)
    assert abs(mass.item() - 1.0) < 1e-6


def test_scalar_affine_log_det_matches_autograd_and_inverts():
    a = torch.tensor([0.5, -2.0, 3.0], dtype=f64)
    b = torch.tensor([1.0, 0.0, -4.0], dtype=f64)
    z = torch.randn(4, 3, dtype=f64)
    x, ld = scalar_affine(z, a, b)
    torch.testing.assert_close(ld, jacobian_logdet(lambda v: scalar_affine(v, a, b), z))
    z_back, ld_inv = scalar_affine_inverse(x, a, b)
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(ld_inv, jacobian_logdet(lambda v: scalar_affine_inverse(v, a, b), x))


@pytest.mark.parametrize("a", [0.0, torch.tensor([1.0, 0.0], dtype=f64), float("nan")])
def test_scalar_affine_rejects_a_non_invertible_scale(a):
    x = torch.randn(3, 2, dtype=f64)
    for fn in (scalar_affine, scalar_affine_inverse, scalar_affine_log_prob):
        with pytest.raises(ValueError, match="nonzero"):
            fn(x, a, 0.0)


@pytest.mark.parametrize(
    ("x", "a", "error", "words"),
    [
        ([1.0, 2.0], 1.0, TypeError, "torch.Tensor"),
        (torch.ones(3, dtype=torch.long), 1.0, TypeError, "floating-point"),
        (torch.tensor(1.0), 1.0, ValueError, "batch"),
        (torch.ones(3), torch.ones(3, 2), ValueError, "broadcast"),
        (torch.ones(3, 2), torch.ones(4), ValueError, "broadcast"),
    ],
)
def test_scalar_affine_bad_inputs(x, a, error, words):
    with pytest.raises(error, match=words):
        scalar_affine(x, a, 0.0)


# --- determinants: O(d^3) dense vs O(d) triangular --------------------------------------------------------

def test_linear_logdet_against_closed_forms():
    a, b, c, d = 2.0, -3.0, 0.5, 4.0
    W = torch.tensor([[a, b], [c, d]], dtype=f64)
    assert linear_logdet(W).item() == pytest.approx(math.log(abs(a * d - b * c)))
    # An independent route: |det W| is the product of the eigenvalues' moduli.
    Ws = torch.randn(5, 4, 4, dtype=f64)
    truth = torch.linalg.eigvals(Ws).abs().log().sum(-1)
    torch.testing.assert_close(linear_logdet(Ws), truth)


def test_linear_logdet_rejects_singular_and_non_square():
    with pytest.raises(ValueError, match="singular"):
        linear_logdet(torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=f64))
    with pytest.raises(ValueError, match=r"\(\.\.\., d, d\)"):
        linear_logdet(torch.ones(2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        linear_logdet(torch.eye(2, dtype=torch.long))


# --- rotation: the seeds' practice problem 3 -------------------------------------------------------------

def test_rotation_matrix_is_the_seeds_matrix():
    theta = 0.8
    R = rotation_matrix(torch.tensor(theta, dtype=f64))
    c, s = math.cos(theta), math.sin(theta)
    torch.testing.assert_close(R, torch.tensor([[c, -s], [s, c]], dtype=f64))
    e1 = torch.tensor([1.0, 0.0])
    torch.testing.assert_close(rotation_matrix(math.pi / 2) @ e1, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("theta", [0.3, 1.0, 2.5, -2.0, math.pi])
def test_rotation_has_log_det_zero(flowcheck, theta):
    layer = Rotation(theta).double()
    z = torch.randn(5, 2, dtype=f64)
    _, ld = layer(z)
    assert torch.equal(ld, torch.zeros(5, dtype=f64))
    flowcheck(layer, z)  # autograd + slogdet confirm the 0


@pytest.mark.parametrize("theta", [0.3, 2.5, -2.0])
def test_rotated_standard_gaussian_stays_standard(theta):
    rotated = FlowDistribution(Rotation(theta), StandardNormal(2)).double()
    x = 2 * torch.randn(8, 2, dtype=f64)
    truth = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(1)
    torch.testing.assert_close(rotated.log_prob(x), truth)


# --- layers at random parameters -------------------------------------------------------------------------

def test_elementwise_affine_passes_flowcheck(flowcheck):
    layer = perturbed(ElementwiseAffine(4))
    flowcheck(layer, torch.randn(5, 4, dtype=f64))


def test_linear_flow_passes_flowcheck(flowcheck):
    layer = perturbed(LinearFlow(4))
    layer.W.data = well_conditioned(4)
    flowcheck(layer, torch.randn(5, 4, dtype=f64))


def test_composition_log_dets_add(flowcheck):
    layers = [perturbed(ElementwiseAffine(2)), perturbed(LinearFlow(2)), Rotation(0.7).double()]
    layers[1].W.data = well_conditioned(2)
    flow = FlowSequence(*layers)
    z = torch.randn(6, 2, dtype=f64)
    total, h = torch.zeros(6, dtype=f64), z
    for layer in layers:
        h, ld = layer(h)
        total = total + ld
    x, ld_flow = flow(z)
    torch.testing.assert_close(x, h)
    torch.testing.assert_close(ld_flow, total)
    flowcheck(flow, z)


def test_compose_forward_agrees_with_flow_sequence_and_autograd():
    # The graded loop (practice 1) against the toolkit's FlowSequence (its own private loop) and autograd.
    layers = [perturbed(ElementwiseAffine(2)), perturbed(LinearFlow(2)), Rotation(0.7).double()]
    layers[1].W.data = well_conditioned(2)
    z = torch.randn(6, 2, dtype=f64)
    x, ld = compose_forward(z, layers)
    x_seq, ld_seq = FlowSequence(*layers)(z)
    torch.testing.assert_close(x, x_seq)
    torch.testing.assert_close(ld, ld_seq)
    torch.testing.assert_close(ld, jacobian_logdet(lambda v: compose_forward(v, layers), z))


@pytest.mark.parametrize("layer", [ElementwiseAffine(2), LinearFlow(2), Rotation(0.4)])
def test_layers_reject_bad_inputs(layer):
    layer = layer.double()
    for method in (layer.forward, layer.inverse):
        with pytest.raises(ValueError, match=r"\('batch', 2\)"):
            method(torch.ones(3, 3, dtype=f64))
        with pytest.raises(TypeError, match="floating-point"):
            method(torch.ones(3, 2, dtype=torch.long))


def test_dense_layers_name_a_dtype_mismatch():
    for layer in (LinearFlow(2), Rotation(0.4)):
        with pytest.raises(TypeError, match="float32 parameters but z is torch.float64"):
            layer(torch.ones(3, 2, dtype=f64))


def test_linear_flow_with_singular_weight_raises():
    layer = LinearFlow(2).double()
    layer.W.data = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=f64)
    for method in (layer.forward, layer.inverse):
        with pytest.raises(ValueError, match="singular"):
            method(torch.ones(3, 2, dtype=f64))


# --- numbers the lesson text states, recomputed with the key and the toolkit ------------------------------

NOTEBOOK = Path(__file__).with_name("01-change-of-variables.ipynb")


def notebook_cells():
    return {cell["id"]: "".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]}


def notebook_function(cell_id, name):
    """The function ``name`` as the notebook's cell ``cell_id`` defines it (only that definition is run)."""
    tree = ast.parse(notebook_cells()[cell_id])
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    namespace = {"torch": torch, "math": math}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace[name]


def test_the_warped_grid_numbers_are_the_maps_own():
    text = notebook_cells()["theory-warp"]
    warp = notebook_function("demo-warp", "warp")
    z = torch.tensor([[0.0, 0.3], [2.0, -1.0], [-2.0, 0.5], [0.7, 1.1]], dtype=f64)
    truth = jacobian_logdet(warp, z)  # autograd, independent of the log-det the demo writes down
    torch.testing.assert_close(warp(z)[1], truth)
    origin = torch.zeros(1, 2, dtype=f64)
    base_peak = standard_normal_log_prob(origin).exp().item()
    warped_peak = (standard_normal_log_prob(origin) - jacobian_logdet(warp, origin)).exp().item()
    assert f"1/(2\\pi) \\approx {base_peak:.3f}" in text
    assert f"1/\\pi \\approx {warped_peak:.3f}" in text
    assert warped_peak == pytest.approx(1 / math.pi)
    # "at z_1 = ±2 it stretches each cell to twice its area"
    area = truth[1:3].exp()
    torch.testing.assert_close(area, torch.full((2,), 2.0, dtype=f64))
    assert "At $z_1 = \\pm 2$ it\nstretches each cell to twice its area" in text


def test_volume_preserving_maps_keep_the_peak_but_not_always_the_shape():
    text = notebook_cells()["theory-rotation"]
    shear = torch.tensor([[1.0, 0.0], [1.5, 1.0]], dtype=f64)  # the S of the text
    assert "S = \\begin{pmatrix}1 & 0\\\\ 1.5 & 1\\end{pmatrix}" in text
    assert "shear = torch.tensor([[1.0, 0.0], [1.5, 1.0]])" in notebook_cells()["demo-rotation"]
    layer = LinearFlow(2).double()
    layer.W.data = shear
    assert linear_logdet(shear).abs().item() < 1e-12
    g = torch.linspace(-4, 4, 161, dtype=f64)
    grid = torch.cartesian_prod(g, g)
    peaks = [FlowDistribution(flow, StandardNormal(2)).double().log_prob(grid).exp().max().item()
             for flow in (layer, Rotation(1.1).double())]
    assert peaks == pytest.approx([1 / (2 * math.pi)] * 2)
    assert f"$1/(2\\pi) \\approx {peaks[0]:.3f}$" in text
    # the shear changes the shape: its samples' covariance is S S^T, not I
    x, _ = layer(torch.randn(100_000, 2, dtype=f64))
    torch.testing.assert_close(torch.cov(x.T), shear @ shear.T, atol=0.05, rtol=0.05)
    assert (shear @ shear.T - torch.eye(2, dtype=f64)).abs().max() > 1


def test_a_narrow_gaussian_has_a_density_above_one():
    text = notebook_cells()["theory-positive"]
    log_peak = scalar_affine_log_prob(torch.tensor([[2.0]], dtype=f64), 0.1, 2.0).item()  # a = 0.1, at x = b
    assert f"\\approx {math.exp(log_peak):.2f}$, and its log is\n$\\approx +{log_peak:.2f}$" in text


def test_warped_grid_draws_the_image_of_the_grid_and_the_pushed_forward_density():
    import matplotlib.pyplot as plt

    from flowcourse.plots import warped_grid

    warp = notebook_function("demo-warp", "warp")
    fig = warped_grid(warp, bounds=(-2.0, 2.0), n_lines=5, base_log_prob=standard_normal_log_prob, resolution=21)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 * 5  # the lines z_1 = c and z_2 = c, c in 5 values
    line = ax.lines[0].get_xydata()  # z_1 = -2, z_2 from -2 to 2
    fine = torch.linspace(-2.0, 2.0, 21, dtype=f64)
    torch.testing.assert_close(torch.from_numpy(line), warp(torch.stack([torch.full_like(fine, -2.0), fine], 1))[0])
    shading = torch.from_numpy(ax.collections[0].get_array().data.reshape(-1))
    z = torch.cartesian_prod(fine, fine)
    torch.testing.assert_close(shading, (standard_normal_log_prob(z) - jacobian_logdet(warp, z)).exp())
    plt.close(fig)
