"""The continuous-flow answer key (lesson 10) against independent truth.

Truth used here: autograd Jacobians (``batch_jacobian``, and ``flowcheck`` on the CNF written as a flow layer),
closed forms (a linear field's flow is the matrix exponential and its log-density change is −t·tr A; the
straight-path flow between N(0, I) and N(μ, σ²I) is Gaussian at every time, with a known optimal velocity),
the peer solver torchdiffeq (fixed-grid Euler, adaptive Dormand–Prince), and Monte Carlo with tolerances of a
few standard errors derived from the estimators' variances.
"""

import json
import math
from pathlib import Path

import pytest
import torch
import torchdiffeq
from flowcourse_lessons.lesson_10 import key
from flowcourse_lessons.lesson_10.key import (
    VelocityField,
    augmented_dynamics,
    cnf_log_prob,
    divergence,
    euler_step,
    flow_matching_loss,
    hutchinson_divergence,
    hutchinson_noise,
    odeint_fixed,
    rk4_step,
    sample,
    standard_normal_log_prob,
)
from torch import nn

from flowcourse.base import Flow
from flowcourse.jacobian import batch_jacobian

D64 = torch.float64


def random_field(dim: int, hidden: int = 16, scale: float = 0.6, seed: int = 0) -> VelocityField:
    """A float64 velocity field moved far from its initialisation (a check at a tiny field could not fail)."""
    torch.manual_seed(seed)
    field = VelocityField(dim, hidden=hidden).double()
    with torch.no_grad():
        for p in field.parameters():
            p.add_(scale * torch.randn_like(p))
    return field


class Linear(nn.Module):
    def __init__(self, A: torch.Tensor, b: torch.Tensor | None = None) -> None:
        super().__init__()
        self.A, self.b, self.dim = A, b, A.shape[0]

    def forward(self, x, t):
        out = x @ self.A.T
        return out if self.b is None else out + torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1) * self.b


def gaussian_path_field(mu: torch.Tensor, sigma: float):
    r"""The flow-matching optimum for data N(μ, σ²I): v*(x, t) = E[x₁ − x₀ | x_t = x] on x_t = (1 − t)x₀ + t x₁.

    Cov(x₁ − x₀, x_t) = tσ² − (1 − t) and Var x_t = (1 − t)² + t²σ² per coordinate, so
    v*(x, t) = μ + (tσ² − (1 − t)) / ((1 − t)² + t²σ²) · (x − tμ).
    """
    def field(x, t):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1)
        var = (1 - t) ** 2 + t**2 * sigma**2
        return mu + (t * sigma**2 - (1 - t)) / var * (x - t * mu)
    field.dim = mu.numel()
    return field


# --------------------------------------------------------------------------------------------------- divergence

@pytest.mark.parametrize("dim", [1, 2, 5])
def test_divergence_is_the_trace_of_the_autograd_jacobian(dim):
    field = random_field(dim)
    x = 1.5 * torch.randn(6, dim, dtype=D64)
    for t in (0.0, 0.37, torch.rand(6, dtype=D64)):
        J = torch.stack([batch_jacobian(lambda y, s=s: field(y, s), xi[None])[0]
                         for xi, s in zip(x, t if torch.is_tensor(t) else [t] * 6, strict=True)])
        torch.testing.assert_close(divergence(field, x, t), J.diagonal(dim1=1, dim2=2).sum(1))


def test_divergence_of_a_linear_field_is_its_trace_and_keeps_the_graph():
    A = torch.randn(4, 4, dtype=D64)
    x = torch.randn(3, 4, dtype=D64)
    torch.testing.assert_close(divergence(Linear(A), x, 0.2), A.trace().expand(3))
    field = random_field(2)
    div = divergence(field, torch.randn(4, 2, dtype=D64), 0.5)
    assert div.requires_grad  # maximum likelihood differentiates through it
    div.sum().backward()
    # every parameter but the last bias (a constant velocity has divergence 0) receives a gradient
    assert all(p.grad is not None for name, p in field.named_parameters() if name != "net.6.bias")
    with torch.no_grad():
        assert not divergence(field, torch.randn(4, 2, dtype=D64), 0.5).requires_grad


def test_divergence_leaves_the_input_alone():
    x = torch.randn(3, 2, dtype=D64)
    before = x.clone()
    divergence(random_field(2), x, 0.3)
    assert torch.equal(x, before) and not x.requires_grad


# --------------------------------------------------------------------------------------------------- Hutchinson

def test_hutchinson_estimate_is_the_quadratic_form_of_the_jacobian():
    field = random_field(3)
    x, eps = torch.randn(5, 3, dtype=D64), torch.randn(5, 3, dtype=D64)
    J = torch.stack([batch_jacobian(lambda y: field(y, 0.6), xi[None])[0] for xi in x])
    torch.testing.assert_close(hutchinson_divergence(field, x, 0.6, eps), torch.einsum("bi,bij,bj->b", eps, J, eps))


def test_hutchinson_noise_has_identity_second_moment():
    n = 200_000
    eps = hutchinson_noise(torch.zeros(n, 3, dtype=torch.float32))
    assert eps.dtype == torch.float32 and set(eps.unique().tolist()) == {-1.0, 1.0}
    second = eps.double().T @ eps.double() / n
    # each entry of E[εεᵀ] is a mean of n products of variance ≤ 1: five standard errors
    assert (second - torch.eye(3, dtype=D64)).abs().max() < 5 / math.sqrt(n)


@pytest.mark.parametrize("noise", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_with_the_variance_the_text_states(noise):
    A = torch.tensor([[0.3, -1.2, 0.5], [2.0, -0.7, 0.1], [0.4, 0.9, 1.6]], dtype=D64)
    S = A + A.T
    K = 100_000
    x = torch.randn(1, 3, dtype=D64).expand(K, 3)
    eps = hutchinson_noise(x) if noise == "rademacher" else torch.randn(K, 3, dtype=D64)
    est = hutchinson_divergence(Linear(A), x, 0.0, eps)
    variance = float(S.triu(1).pow(2).sum()) if noise == "rademacher" else float(0.5 * S.pow(2).sum())
    assert abs(float(est.mean()) - float(A.trace())) < 4 * math.sqrt(variance / K)
    # the sample variance of εᵀAε, within five of its own standard errors sqrt((m₄ − Var²)/K)
    m4 = float((est - est.mean()).pow(4).mean())
    assert abs(float(est.var()) - variance) < 5 * math.sqrt((m4 - variance**2) / K)
    if noise == "rademacher":  # never worse than Gaussian noise: the Gaussian adds 2 Σ A_ii²
        assert 0.5 * float(S.pow(2).sum()) - variance == pytest.approx(2 * float(A.diagonal().pow(2).sum()))


def test_non_zero_mean_noise_is_biased_as_the_text_says():
    """Entries uniform on {0, 1}: E[εᵀAε] = ½ tr A + ¼ Σ_{i≠j} A_ij, not tr A."""
    A = torch.tensor([[0.3, -1.2, 0.5], [2.0, -0.7, 0.1], [0.4, 0.9, 1.6]], dtype=D64)
    K = 200_000
    eps = torch.randint(0, 2, (K, 3)).double()
    est = hutchinson_divergence(Linear(A), torch.zeros(K, 3, dtype=D64), 0.0, eps)
    predicted = 0.5 * float(A.trace()) + 0.25 * float(A.sum() - A.trace())
    assert abs(float(est.mean()) - predicted) < 5 * float(est.std()) / math.sqrt(K)
    assert abs(predicted - float(A.trace())) > 0.05
    cells = notebook_cells()
    assert r"$\tfrac12\operatorname{tr}J + \tfrac14\sum_{i\neq j}J_{ij}$" in cells["theory-hutchinson"]
    # the demo's matrix: tr B = 1 and off-diagonal entries summing to 8, so {0, 1} noise averages 0.5 + 2 = 2.5
    B = torch.tensor([[1.0, 2.0, 1.5], [1.0, -0.5, 2.0], [0.5, 1.0, 0.5]], dtype=D64)
    assert float(B.trace()) == 1.0 and float(B.sum() - B.trace()) == 8.0
    assert "tr B = 1, off-diagonal entries sum to 8" in cells["demo-hutchinson"]


# ----------------------------------------------------------------------------------------------------- solvers

def test_one_step_against_taylor_series():
    h = 0.3
    one = torch.ones(1, 1, dtype=D64)
    assert float(rk4_step(lambda t, y: y, 0.0, one, h)) == pytest.approx(1 + h + h**2 / 2 + h**3 / 6 + h**4 / 24)
    assert float(euler_step(lambda t, y: y, 0.0, one, h)) == pytest.approx(1 + h)
    # a slope cubic in t is integrated exactly (Simpson's rule): midpoint times are used
    cubic = lambda t, y: (4 * t**3 - 3 * t**2 + 1) * torch.ones_like(y)  # noqa: E731
    exact = (1.0**4 - 1.0**3 + 1.0) - (0.5**4 - 0.5**3 + 0.5)
    assert float(rk4_step(cubic, 0.5, torch.zeros(1, 1, dtype=D64), 0.5)) == pytest.approx(exact, abs=1e-14)


def test_linear_ode_matches_the_matrix_exponential_both_ways():
    A = torch.randn(3, 3, dtype=D64)
    y0 = torch.randn(4, 3, dtype=D64)
    y1 = odeint_fixed(lambda t, y: y @ A.T, y0, 0.0, 1.0, 200)
    torch.testing.assert_close(y1, y0 @ torch.linalg.matrix_exp(A).T, atol=1e-9, rtol=1e-9)
    back = odeint_fixed(lambda t, y: y @ A.T, y1, 1.0, 0.0, 200)
    torch.testing.assert_close(back, y0, atol=1e-9, rtol=1e-9)


def test_orders_of_convergence_stated_in_the_text():
    """Section 3: RK4's error falls by 2⁴ = 16 when the step halves, Euler's by 2 (the demo's spiral)."""
    A = torch.tensor([[0.0, -2.0], [2.0, 0.0]], dtype=D64) + 0.1 * torch.eye(2, dtype=D64)
    y0 = torch.tensor([[1.0, 0.5]], dtype=D64)
    truth = y0 @ torch.linalg.matrix_exp(A).T

    def error(n, method):
        return float((odeint_fixed(lambda t, y: y @ A.T, y0, 0.0, 1.0, n, method) - truth).norm())

    assert error(16, "rk4") / error(32, "rk4") == pytest.approx(16, rel=0.05)
    assert error(16, "euler") / error(32, "euler") == pytest.approx(2, rel=0.1)
    cells = notebook_cells()
    assert "divides it by $2^4 = 16$" in cells["theory-solver"]
    assert "error ratio when the step halves (16 → 32 steps)" in cells["demo-solver"]


def test_against_torchdiffeq():
    field = random_field(3, seed=4, scale=0.3)
    y0 = torch.randn(5, 3, dtype=D64)
    dyn = lambda t, y: field(y, t)  # noqa: E731
    with torch.no_grad():
        # the same fixed grid with Euler: the same arithmetic
        theirs = torchdiffeq.odeint(dyn, y0, torch.tensor([0.0, 1.0], dtype=D64), method="euler",
                                    options={"step_size": 0.05})[-1]
        torch.testing.assert_close(odeint_fixed(dyn, y0, 0.0, 1.0, 20, "euler"), theirs, atol=1e-12, rtol=0)
        # RK4 against adaptive Dormand–Prince at a tight tolerance, forwards and backwards
        for t0, t1 in ((0.0, 1.0), (1.0, 0.0)):
            reference = torchdiffeq.odeint(dyn, y0, torch.tensor([t0, t1], dtype=D64), method="dopri5",
                                           rtol=1e-11, atol=1e-12)[-1]
            torch.testing.assert_close(odeint_fixed(dyn, y0, t0, t1, 64), reference, atol=1e-8, rtol=1e-8)


def test_cnf_log_prob_against_torchdiffeq_on_the_augmented_state():
    field = random_field(2, seed=5, scale=0.3)
    x = torch.randn(3, 2, dtype=D64)

    def dyn(t, state):  # written independently of augmented_dynamics: the trace of the autograd Jacobian
        y = state[:, :-1]
        J = torch.stack([batch_jacobian(lambda u: field(u, t), yi[None])[0] for yi in y])
        return torch.cat([field(y, t), -J.diagonal(dim1=1, dim2=2).sum(1, keepdim=True)], dim=1)

    with torch.no_grad():
        end = torchdiffeq.odeint(dyn, torch.cat([x, torch.zeros(3, 1, dtype=D64)], 1),
                                 torch.tensor([1.0, 0.0], dtype=D64), method="dopri5", rtol=1e-10, atol=1e-10)[-1]
    reference = standard_normal_log_prob(end[:, :2]) - end[:, 2]
    torch.testing.assert_close(cnf_log_prob(field, x, steps=40).detach(), reference, atol=1e-7, rtol=1e-7)


# ------------------------------------------------------------------------------------------------ log-likelihood

def test_linear_field_log_density_change_is_minus_trace():
    A = torch.randn(3, 3, dtype=D64)
    x = torch.randn(5, 3, dtype=D64)
    expected = standard_normal_log_prob(x @ torch.linalg.matrix_exp(-A).T) - A.trace()
    torch.testing.assert_close(cnf_log_prob(Linear(A), x, steps=60), expected, atol=1e-8, rtol=1e-8)
    # the augmented dynamics' last column is -tr A, whatever ℓ is
    state = torch.randn(5, 4, dtype=D64)
    torch.testing.assert_close(augmented_dynamics(Linear(A), 0.3, state)[:, -1], -A.trace().expand(5))


def test_quiz_linear_field_and_its_text():
    A = torch.tensor([[0.5, 2.0], [-1.0, -1.5]], dtype=D64)
    assert key.quiz_10_linear == pytest.approx(-float(A.trace()))
    x0 = torch.randn(4, 2, dtype=D64)
    x1 = x0 @ torch.linalg.matrix_exp(A).T
    change = cnf_log_prob(Linear(A), x1, steps=60) - standard_normal_log_prob(x0)
    torch.testing.assert_close(change, torch.full((4,), key.quiz_10_linear, dtype=D64), atol=1e-8, rtol=0)
    assert r"A = \begin{pmatrix} 0.5 & 2 \\ -1 & -1.5 \end{pmatrix}" in notebook_cells()["quiz-linear"]


def test_the_gaussian_path_has_the_density_flow_matching_promises():
    """The optimal flow-matching field for N(μ, σ²I) data carries N(0, I) to exactly N(μ, σ²I)."""
    mu, sigma = torch.tensor([1.5, -0.5], dtype=D64), 0.4
    field = gaussian_path_field(mu, sigma)
    x = mu + sigma * torch.randn(6, 2, dtype=D64) * 2
    truth = standard_normal_log_prob((x - mu) / sigma) - 2 * math.log(sigma)
    torch.testing.assert_close(cnf_log_prob(field, x, steps=100), truth, atol=1e-6, rtol=1e-6)
    # and sampling lands there: mean and spread within five standard errors
    torch.manual_seed(1)
    n = 20_000
    samples = sample(field, n, steps=50)
    assert (samples.mean(0) - mu).abs().max() < 5 * sigma / math.sqrt(n)
    assert (samples.std(0) / sigma - 1).abs().max() < 5 / math.sqrt(2 * n)


def test_the_gaussian_path_field_minimises_the_flow_matching_loss():
    """E‖v* − (x₁ − x₀)‖² is the irreducible conditional variance, Σ ∫₀¹ Var(x₁ − x₀ | x_t) dt; any other field
    (here v* + a constant) does worse."""
    mu, sigma, d = torch.tensor([1.5, -0.5], dtype=D64), 0.4, 2
    field = gaussian_path_field(mu, sigma)
    ts = (torch.arange(100_000, dtype=D64) + 0.5) / 100_000
    cov, var = ts * sigma**2 - (1 - ts), (1 - ts) ** 2 + ts**2 * sigma**2
    floor = d * float((1 + sigma**2 - cov**2 / var).mean())  # midpoint rule for the time integral
    torch.manual_seed(2)
    n = 400_000
    x1 = mu + sigma * torch.randn(n, d, dtype=D64)
    per_sample = torch.stack([flow_matching_loss(field, x1[i:i + 1]) for i in range(0, 2000)])
    se = float(per_sample.std()) / math.sqrt(n)
    assert abs(float(flow_matching_loss(field, x1)) - floor) < 5 * se
    shifted = lambda x, t: field(x, t) + 0.3  # noqa: E731
    assert float(flow_matching_loss(shifted, x1)) > floor + d * 0.09 - 5 * se


def test_cnf_density_integrates_to_one():
    field = random_field(2, seed=6, scale=0.3)
    h = 0.15
    g = torch.arange(-7.5, 7.5, h, dtype=D64) + h / 2
    with torch.no_grad():
        mass = float(cnf_log_prob(field, torch.cartesian_prod(g, g), steps=10).exp().sum()) * h * h
    assert mass == pytest.approx(1.0, abs=5e-3)


class CNF(Flow):
    """The key's CNF as a flow layer: forward integrates (z, 0) from t = 0 to 1, inverse (x, 0) from 1 to 0."""

    def __init__(self, field: nn.Module, steps: int) -> None:
        super().__init__()
        self.field, self.steps = field, steps

    def _run(self, y, t0, t1):
        state = torch.cat([y, y.new_zeros(y.shape[0], 1)], dim=1)
        end = odeint_fixed(lambda t, s: augmented_dynamics(self.field, t, s), state, t0, t1, self.steps)
        return end[:, :-1], end[:, -1]

    def forward(self, z):
        x, ell = self._run(z, 0.0, 1.0)
        return x, -ell  # log|det ∂x/∂z| = ∫₀¹ ∇·v dt

    def inverse(self, x):
        z, delta = self._run(x, 1.0, 0.0)
        return z, -delta


def test_the_cnf_as_a_flow_layer_matches_autograd(flowcheck):
    """The integrated trace is the log-det of the solved map (to the solver's accuracy), both directions."""
    flowcheck(CNF(random_field(2, seed=7, scale=0.3), steps=100), torch.randn(3, 2, dtype=D64), atol=1e-7)


# ------------------------------------------------------------------------------------------------ flow matching

def test_flow_matching_loss_defaults_and_gradients():
    field = random_field(3)
    x1 = torch.randn(8, 3, dtype=D64)
    torch.manual_seed(3)
    drawn = flow_matching_loss(field, x1)
    torch.manual_seed(3)
    x0, t = torch.randn_like(x1), torch.rand(8, dtype=D64)
    torch.testing.assert_close(drawn, flow_matching_loss(field, x1, x0, t))
    assert drawn.shape == () and drawn.dtype == D64
    drawn.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in field.parameters())
    # at t = 1 the field is asked at the data point, at t = 0 at the noise point
    seen = []
    probe = lambda x, s: seen.append((x.clone(), s.clone())) or torch.zeros_like(x)  # noqa: E731
    flow_matching_loss(probe, x1[:2], x0[:2], torch.tensor([1.0, 0.0], dtype=D64))
    torch.testing.assert_close(seen[0][0], torch.stack([x1[0], x0[1]]))
    assert key.quiz_10_direction == "C" and key.quiz_10_probability_flow == "B"


def test_velocity_field_times_and_dtypes():
    field = VelocityField(3, hidden=8)
    x = torch.randn(4, 3)
    a = field(x, 0.25)
    for t in (torch.tensor(0.25), torch.full((4,), 0.25), torch.full((4, 1), 0.25)):
        torch.testing.assert_close(field(x, t), a)
    assert field.double()(x.double(), 0.5).dtype == D64
    with pytest.raises(ValueError, match="batch"):
        field(x, torch.zeros(3))
    assert sample(field, 5, steps=3).dtype == D64
    # the benchmarks' calls, in float32: VelocityField(dim, hidden), cnf_log_prob, flow_matching_loss, sample
    f32 = VelocityField(2, hidden=16)
    x = torch.randn(7, 2)
    assert cnf_log_prob(f32, x, steps=3).shape == (7,) and cnf_log_prob(f32, x, steps=3).dtype == torch.float32
    assert flow_matching_loss(f32, x).dtype == torch.float32 and sample(f32, 4, steps=2).shape == (4, 2)
    with torch.no_grad():  # evaluation without a graph
        assert not cnf_log_prob(f32, x, steps=3).requires_grad


# ------------------------------------------------------------------------------------------- the notebook's text

NOTEBOOK = Path(__file__).with_name("10-continuous-flows.ipynb")


def notebook_cells():
    return {cell["id"]: "".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]}


def test_numbers_in_the_self_checks():
    cells = notebook_cells()
    A = torch.tensor([[0.3, -1.2, 0.5], [2.0, -0.7, 0.1], [0.4, 0.9, 1.6]], dtype=D64)
    assert float(A.trace()) == pytest.approx(1.2)
    assert "tr A = 1.2" in cells["selfcheck-divergence"] and "-tr A = -1.2" in cells["selfcheck-augmented-dynamics"]
    assert (1.0 - 0.5**3) == 0.875 and "1 - 0.125 = 0.875" in cells["selfcheck-rk4-step"]


def test_the_notebook_imports_only_the_toolkit():
    for cell_id, source in notebook_cells().items():
        if "BEGIN HIDDEN TESTS" in source:
            continue
        assert "flowcourse_lessons" not in source and "flowcourse_instructor" not in source, cell_id


def test_the_training_budgets_the_text_states():
    """Section 6: 4 RK4 steps per maximum-likelihood evaluation, 60 steps against flow matching's 3000."""
    cells = notebook_cells()
    assert "only 4 RK4 steps" in cells["theory-ml"] and "60 steps to flow matching's 3000" in cells["theory-ml"]
    assert "steps=3000" in cells["demo-flow-matching"]
    assert "cnf_log_prob(f, batch, steps=4)" in cells["demo-max-likelihood"]
    assert "steps=60" in cells["demo-max-likelihood"]



def test_the_toolkit_base_density_the_notebook_uses_is_lesson_01s():
    """The notebook's StandardNormal(d).log_prob (toolkit) and the key's lesson-01 standard_normal_log_prob agree."""
    from flowcourse.base import StandardNormal

    for d in (1, 2, 5):
        z = 3 * torch.randn(6, d, dtype=D64)
        torch.testing.assert_close(StandardNormal(d).log_prob(z), standard_normal_log_prob(z), atol=1e-12, rtol=0)
    assert StandardNormal(3).log_prob(torch.randn(4, 3)).dtype == torch.float32
    assert "from flowcourse.base import StandardNormal" in notebook_cells()["setup"]


def test_the_toolkit_training_loop_is_seeded_and_anneals():
    """flowcourse.continuous.fit (the demos' loop): same seed and initial field → the same losses; cosine → lr 0."""
    from flowcourse.continuous import fit
    from flowcourse.data import two_moons

    data = two_moons(256, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        field = VelocityField(2, hidden=8)
        losses, seconds = fit(field, data, flow_matching_loss, steps=30, batch_size=64, lr=1e-2, cosine=True)
        runs.append(losses)
    assert runs[0] == runs[1] and seconds > 0
    assert sum(runs[0][-10:]) < sum(runs[0][:10])  # it learns
