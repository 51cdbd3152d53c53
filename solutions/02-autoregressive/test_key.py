"""Lesson 02 answer key against independent truth: autograd Jacobian patterns, slogdet, quadrature."""

import pytest
import torch
from flowcourse_lessons.lesson_02.key import (
    IAF,
    MADE,
    MAF,
    affine_autoregressive,
    affine_autoregressive_inverse,
    iaf_forward,
    iaf_inverse,
    made_degrees,
    made_masks,
    maf_forward,
    maf_inverse,
    sequential_inverse,
    soft_clamp,
    triangular_logdet,
)

from flowcourse.base import FlowDistribution, StandardNormal
from flowcourse.jacobian import batch_jacobian

f64 = torch.float64


def perturbed(module, std=0.3):
    """The module at random non-identity parameters, in float64 (MADE's output layer starts at zero)."""
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn_like(p))
    return module


def strictly_earlier(order):
    """expected[i, j] = True iff dimension j comes before dimension i in the order (built from the order)."""
    order = list(order)
    d = len(order)
    return torch.tensor([[order.index(j) < order.index(i) for j in range(d)] for i in range(d)])


def reorder(J, order):
    """Re-index the last two dimensions of Jacobians by the order."""
    order = torch.as_tensor(order)
    return J[..., order, :][..., :, order]


ORDERS = [None, [2, 0, 3, 1, 4], "random"]


def resolve(order, d=5):
    if order == "random":
        return torch.randperm(d, generator=torch.Generator().manual_seed(7)).tolist()
    return list(range(d)) if order is None else order


# --- MADE masks -------------------------------------------------------------------------------------------

def test_made_degrees_rank_each_dimension_by_the_order():
    assert made_degrees(4).tolist() == [1, 2, 3, 4]
    assert made_degrees(4, [3, 1, 0, 2]).tolist() == [3, 2, 4, 1]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("hidden", [[], [4], [8, 6], [5, 3, 9]])
def test_made_mask_paths_are_strictly_autoregressive(order, hidden):
    d = 5
    order = resolve(order, d)
    masks = made_masks(d, hidden, order)
    assert [tuple(m.shape) for m in masks] == list(zip([*hidden, d], [d, *hidden], strict=True))
    paths = masks[0]
    for m in masks[1:]:
        paths = m @ paths  # paths[i, j] = number of input-j-to-output-i routes through the network
    reachable = paths > 0
    allowed = strictly_earlier(order)
    assert not (reachable & ~allowed).any(), "an output sees itself or a later input"
    if all(h >= d - 1 for h in hidden):
        assert torch.equal(reachable, allowed), "an allowed dependency is masked away"


def test_made_masks_for_a_single_dimension_connect_no_input():
    masks = made_masks(1, [3])
    assert masks[0].sum() == 0 and masks[1].shape == (1, 3)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_params", [2, 3])
def test_made_jacobian_is_strictly_triangular_in_the_order(order, n_params):
    d = 5
    order = resolve(order, d)
    made = perturbed(MADE(d, [16, 16], order, n_params=n_params))
    y = torch.randn(6, d, dtype=f64)
    outputs = made(y)
    assert len(outputs) == n_params and all(o.shape == (6, d) for o in outputs)
    for p in range(n_params):
        J = reorder(batch_jacobian(lambda v, p=p: made(v)[p], y), order)
        assert torch.all(J.triu() == 0), f"parameter {p}: an output depends on itself or a later input"
        assert torch.equal(J.abs().amax(0).tril(-1) > 0, torch.ones(d, d, dtype=torch.bool).tril(-1)), (
            f"parameter {p}: an allowed dependency is missing"
        )


# --- MAF and IAF ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flow_class", [MAF, IAF])
@pytest.mark.parametrize("order", ORDERS)
def test_flow_log_dets_match_autograd_both_ways(flowcheck, flow_class, order):
    flow = perturbed(flow_class(5, [16, 16], resolve(order)))
    flowcheck(flow, torch.randn(4, 5, dtype=f64))


@pytest.mark.parametrize("flow_class", [MAF, IAF])
@pytest.mark.parametrize("order", ORDERS)
def test_flow_jacobians_are_triangular_in_the_order(flow_class, order):
    d = 5
    order = resolve(order, d)
    flow = perturbed(flow_class(d, [16, 16], order))
    z = torch.randn(4, d, dtype=f64)
    x, _ = flow(z)
    lower = torch.ones(d, d, dtype=torch.bool).tril(-1)
    for J in (batch_jacobian(flow.forward, z), batch_jacobian(flow.inverse, x)):
        J = reorder(J, order)
        assert torch.all(J.triu(1) == 0)
        assert torch.all(J.diagonal(dim1=-2, dim2=-1) > 0)  # exp(±alpha)
        assert torch.equal(J.abs().amax(0).tril(-1) > 0, lower)


def test_one_dimensional_flows_are_affine(flowcheck):
    for flow_class in (MAF, IAF):
        flowcheck(perturbed(flow_class(1, [4])), torch.randn(3, 1, dtype=f64))


@pytest.mark.parametrize("d", [1, 3, 6])
def test_maf_density_takes_one_pass_and_sampling_d_passes(d):
    flow = perturbed(MAF(d, [8]))
    flow.passes = 0
    x, _ = flow(torch.randn(4, d, dtype=f64))
    assert flow.passes == d
    flow.passes = 0
    FlowDistribution(flow, StandardNormal(d).double()).log_prob(x)
    assert flow.passes == 1


@pytest.mark.parametrize("d", [1, 3, 6])
def test_iaf_sampling_takes_one_pass_and_density_d_passes(d):
    flow = perturbed(IAF(d, [8]))
    dist = FlowDistribution(flow, StandardNormal(d).double())
    flow.passes = 0
    x, _ = dist.sample_and_log_prob(4)
    assert flow.passes == 1
    flow.passes = 0
    dist.log_prob(x)
    assert flow.passes == d


@pytest.mark.parametrize("flow_class", [MAF, IAF])
def test_density_integrates_to_one_in_2d(flow_class):
    flow = perturbed(flow_class(2, [8], [1, 0], log_scale_bound=1.0), std=0.5)
    dist = FlowDistribution(flow, StandardNormal(2).double())
    t = torch.linspace(-25, 25, 601, dtype=f64)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad():
        density = dist.log_prob(grid).exp().reshape(601, 601)
    mass = torch.trapezoid(torch.trapezoid(density, t, dim=1), t)
    assert abs(mass.item() - 1.0) < 1e-4


@pytest.mark.parametrize("flow_class", [MAF, IAF])
def test_sample_density_agrees_with_density_of_samples(flow_class):
    dist = FlowDistribution(perturbed(flow_class(4, [16])), StandardNormal(4).double())
    x, log_prob = dist.sample_and_log_prob(8)
    torch.testing.assert_close(log_prob, dist.log_prob(x))


def test_flows_start_at_the_identity():
    z = torch.randn(3, 4)
    for flow in (MAF(4, [8]), IAF(4, [8])):
        x, ld = flow(z)
        assert torch.equal(x, z) and torch.equal(ld, torch.zeros(3))


# --- helpers ----------------------------------------------------------------------------------------------

def test_affine_steps_are_mutual_inverses_with_opposite_log_dets():
    z, shift, log_scale = (torch.randn(5, 3, dtype=f64) for _ in range(3))
    x, ld = affine_autoregressive(z, shift, log_scale)
    torch.testing.assert_close(x, z * torch.exp(log_scale) + shift)
    torch.testing.assert_close(ld, log_scale.sum(1))
    z_back, ld_inv = affine_autoregressive_inverse(x, shift, log_scale)
    torch.testing.assert_close(z_back, z)
    torch.testing.assert_close(ld_inv, -ld)


def test_sequential_inverse_solves_the_autoregressive_equation():
    made = perturbed(MADE(4, [12], [3, 1, 0, 2]))
    z = torch.randn(5, 4, dtype=f64)
    x, ld = sequential_inverse(made, affine_autoregressive, z)
    shift, log_scale = made(x)  # at the solution, x = z e^alpha(x) + mu(x) holds exactly
    torch.testing.assert_close(x, z * log_scale.exp() + shift)
    torch.testing.assert_close(ld, log_scale.sum(1))


def test_soft_clamp_is_bounded_and_identity_near_zero():
    s = torch.linspace(-8, 8, 101, dtype=f64, requires_grad=True)
    out = soft_clamp(s, bound=2.0)
    assert out.abs().max() < 2.0 and torch.all(out.diff() > 0)
    assert soft_clamp(torch.tensor([-1e6, 1e6], dtype=f64), bound=2.0).tolist() == [-2.0, 2.0]
    (slope,) = torch.autograd.grad(out[50], s)
    assert slope[50].item() == pytest.approx(1.0)


def test_huge_weights_stay_finite_in_float32():
    flow = MAF(3, [8], log_scale_bound=3.0)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(100 * torch.randn_like(p))
    z, ld = flow.inverse(torch.randn(16, 3) * 10)
    assert torch.isfinite(z).all() and torch.isfinite(ld).all()
    assert ld.abs().max() <= 3 * 3.0 + 1e-4


# --- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"d": 3, "hidden_sizes": [4], "order": [0, 1, 1]}, "permutation"),
        ({"d": 3, "hidden_sizes": [4], "order": [0, 1]}, "permutation"),
        ({"d": 3, "hidden_sizes": [4], "order": [0.0, 1.0, 2.0]}, "ints"),
        ({"d": 0, "hidden_sizes": [4]}, "positive int"),
        ({"d": 3, "hidden_sizes": [4, 0]}, "hidden_sizes"),
    ],
)
def test_bad_made_arguments_raise(kwargs, words):
    with pytest.raises(ValueError, match=words):
        made_masks(**kwargs)
    with pytest.raises(ValueError, match=words):
        MAF(**kwargs)


@pytest.mark.parametrize("flow_class", [MAF, IAF])
def test_flows_reject_bad_points(flow_class):
    flow = flow_class(3, [8])
    for method, name in ((flow.forward, "z"), (flow.inverse, "x")):
        with pytest.raises(ValueError, match=rf"{name} must have shape \('batch', 3\)"):
            method(torch.ones(4, 2))
        with pytest.raises(TypeError, match="floating-point"):
            method(torch.ones(4, 3, dtype=torch.long))
        with pytest.raises(TypeError, match=f"float32 parameters but {name} is torch.float64"):
            method(torch.ones(4, 3, dtype=f64))
    with pytest.raises(TypeError, match="MADE has torch.float32 parameters but y is torch.float64"):
        flow.made(torch.ones(4, 3, dtype=f64))


def test_bad_flow_options_raise():
    with pytest.raises(ValueError, match="n_params"):
        MADE(3, [4], n_params=0)
    with pytest.raises(ValueError, match="log_scale_bound"):
        IAF(3, [4], log_scale_bound=0.0)


# --- MAF and IAF as functions of a conditioner --------------------------------------------------------------

class CountingConditioner:
    """A hand-made autoregressive conditioner (no MADE): strictly lower-triangular tanh maps; counts passes."""

    def __init__(self, d, order, seed=0):
        g = torch.Generator().manual_seed(seed)
        allowed = strictly_earlier(order).to(f64)
        self.A = torch.randn(d, d, generator=g, dtype=f64) * allowed
        self.B = torch.randn(d, d, generator=g, dtype=f64) * allowed
        self.c = torch.randn(d, generator=g, dtype=f64)
        self.passes = 0

    def __call__(self, y):
        self.passes += 1
        return torch.tanh(y @ self.A.T) + self.c, 0.7 * torch.tanh(y @ self.B.T + self.c)


def as_flow(forward, inverse):
    """Wrap two functions of points as a module for the flowcheck fixture."""

    class Wrapped(torch.nn.Module):
        def forward(self, z):
            return forward(z)

        def inverse(self, x):
            return inverse(x)

    return Wrapped()


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(("forward", "inverse"), [(maf_forward, maf_inverse), (iaf_forward, iaf_inverse)])
def test_flow_functions_match_autograd_and_round_trip(flowcheck, order, forward, inverse):
    cond = CountingConditioner(5, resolve(order), seed=3)
    flowcheck(as_flow(lambda z: forward(z, cond), lambda x: inverse(x, cond)), torch.randn(4, 5, dtype=f64))


@pytest.mark.parametrize("d", [1, 2, 5])
def test_pass_counts_maf_samples_in_d_iaf_scores_in_d(d):
    z = torch.randn(3, d, dtype=f64)
    expected = {maf_forward: d, maf_inverse: 1, iaf_forward: 1, iaf_inverse: d}
    for fn, passes in expected.items():
        cond = CountingConditioner(d, list(range(d)))
        fn(z, cond)
        assert cond.passes == passes, f"{fn.__name__}: {cond.passes} passes, expected {passes}"


def test_maf_and_iaf_solve_their_own_equations_and_differ():
    order = [3, 1, 0, 2]
    cond = CountingConditioner(4, order, seed=5)
    z = torch.randn(6, 4, dtype=f64)
    x_maf, ld_maf = maf_forward(z, cond)
    shift, log_scale = cond(x_maf)  # MAF: the parameters read the data
    torch.testing.assert_close(x_maf, z * log_scale.exp() + shift)
    torch.testing.assert_close(ld_maf, log_scale.sum(1))
    x_iaf, ld_iaf = iaf_forward(z, cond)
    shift, log_scale = cond(z)  # IAF: the parameters read the base point
    torch.testing.assert_close(x_iaf, z * log_scale.exp() + shift)
    torch.testing.assert_close(ld_iaf, log_scale.sum(1))
    assert (x_maf - x_iaf).abs().max() > 1e-2, "MAF and IAF coincide: the test could not tell them apart"


@pytest.mark.parametrize(("flow_class", "forward", "inverse"),
                         [(MAF, maf_forward, maf_inverse), (IAF, iaf_forward, iaf_inverse)])
def test_flow_classes_agree_with_the_functions(flow_class, forward, inverse):
    flow = perturbed(flow_class(4, [12], [2, 0, 3, 1]))
    z = torch.randn(5, 4, dtype=f64)
    for got, want in zip(flow(z), forward(z, flow.conditioner), strict=True):
        torch.testing.assert_close(got, want)
    x = torch.randn(5, 4, dtype=f64)
    for got, want in zip(flow.inverse(x), inverse(x, flow.conditioner), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("fn", [maf_forward, maf_inverse, iaf_forward, iaf_inverse])
def test_flow_functions_reject_bad_points(fn):
    cond = CountingConditioner(3, [0, 1, 2])
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fn(torch.ones(3, dtype=f64), cond)
    with pytest.raises(TypeError, match="floating-point"):
        fn(torch.ones(2, 3, dtype=torch.long), cond)


@pytest.mark.parametrize("triangle", [torch.tril, torch.triu])
def test_triangular_logdet_equals_slogdet(triangle):
    J = triangle(torch.randn(6, 5, 5, dtype=f64))  # random signs on the diagonal, full off-diagonal part
    torch.testing.assert_close(triangular_logdet(J), torch.linalg.slogdet(J).logabsdet)
    torch.testing.assert_close(triangular_logdet(J[0]), torch.linalg.slogdet(J[0]).logabsdet)


def test_triangular_logdet_rejects_dense_and_singular():
    with pytest.raises(ValueError, match="triangular"):
        triangular_logdet(torch.randn(3, 3, dtype=f64) + 1)
    with pytest.raises(ValueError, match="zero on its diagonal"):
        triangular_logdet(torch.tensor([[1.0, 0.0], [3.0, 0.0]], dtype=f64))
    with pytest.raises(ValueError, match="square"):
        triangular_logdet(torch.ones(3, dtype=f64))


# ---------------------------------------------------------------------------------------------------------
# the numbers the notebook's text states: computed here, then found in its markdown
# ---------------------------------------------------------------------------------------------------------
def notebook_markdown() -> str:
    """All markdown of the lesson notebook, as one string."""
    import json
    from pathlib import Path

    notebook = json.loads((Path(__file__).parent / "02-autoregressive.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown")


def test_text_states_the_dense_determinant_cost_for_a_3072_pixel_image():
    import math

    operations = 3072 ** 3                      # a dense d x d determinant for d = 3 * 32 * 32
    exponent = math.floor(math.log10(operations))
    mantissa = round(operations / 10 ** exponent)
    assert f"about ${mantissa}\\cdot 10^{{{exponent}}}$" in notebook_markdown()


def test_text_states_the_worked_triangular_log_det_and_the_float64_overflow():
    J = torch.tensor([[2.0, 0.0, 0.0], [-1.0, 0.5, 0.0], [3.0, 7.0, -4.0]], dtype=torch.float64)
    value = float(triangular_logdet(J))
    assert f"\\approx {value:.3f}$" in notebook_markdown()
    assert value == pytest.approx(float(torch.linalg.slogdet(J).logabsdet), abs=1e-12)
    # "300 entries of size 10^3 overflow even float64": their product does, the sum of their logs does not
    big = torch.full((300,), 1000.0, dtype=torch.float64)
    assert torch.isinf(big.prod()) and "300 entries of size $10^3$ overflow even float64" in notebook_markdown()


def test_text_states_the_made_path_counts_of_the_heatmap_demo():
    masks = made_masks(4, [5, 5])
    paths = (masks[2] @ masks[1] @ masks[0]).long()
    assert torch.equal(paths.triu(), torch.zeros_like(paths))            # strictly lower triangular
    assert paths[0].sum() == 0                                          # output 1 reads nothing
    hidden_degrees = [int(n) for n in masks[0].sum(dim=1)]              # a unit of degree m reads inputs 1..m
    assert f"the hidden degrees are ${', '.join(map(str, hidden_degrees))}$" in notebook_markdown()
    assert masks[0][:, 3].sum() == 0                                    # no hidden unit reads input 4
    last = [int(n) for n in paths[3, :3]]
    assert f"along {last[0]}, {last[1]} and {last[2]} paths" in notebook_markdown()
