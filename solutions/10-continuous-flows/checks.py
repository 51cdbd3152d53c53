"""Hidden checks of lesson 10, continuous-time flows and flow matching (answer key: ``key.py``).

Time convention of the lesson: noise at t = 0, data at t = 1, ``field(x, t)`` a velocity, dynamics
``f(t, y)`` in the solver's argument order. The fields the cases hand to the student are fixed, seeded and
time-dependent (a tanh MLP on (x, t), or a linear field ``v = A x + t b`` whose divergence is tr A), in float64
and float32, so a stage evaluated at the wrong time, a sign or a direction cannot pass. Hutchinson's noise is
graded by its statistics (:func:`_noise_statistics`), with tolerances of five standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from flowcourse_instructor.grading.spec import Case, Check, Mistake, randn

# --- fields and dynamics the cases hand to the student ------------------------------------------------------


def _time_column(t: Any, x: Tensor) -> Tensor:
    t = torch.as_tensor(t, dtype=x.dtype)
    return t.expand(x.shape[0], 1) if t.dim() == 0 else t.reshape(x.shape[0], 1)


class _MLPField(nn.Module):
    """A fixed, seeded tanh MLP v(x, t) on R^d x [0, 1] (its weights are not the identity, nor small)."""

    def __init__(self, d: int, hidden: int, seed: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.dim = d
        self.label = f"seeded tanh MLP field ({d}+1)→{hidden}→{d}, seed {seed}, {str(dtype)[6:]}"
        self.inner = nn.Linear(d + 1, hidden, dtype=dtype)
        self.outer = nn.Linear(hidden, d, dtype=dtype)
        with torch.no_grad():
            for k, p in enumerate(self.parameters()):
                p.copy_(randn(*p.shape, seed=seed + k, dtype=dtype))
            self.outer.weight.mul_(1.5 / math.sqrt(hidden))

    def forward(self, x: Tensor, t: Any) -> Tensor:
        return self.outer(torch.tanh(self.inner(torch.cat([x, _time_column(t, x)], dim=1))))

    def __repr__(self) -> str:
        return self.label


class _LinearField(nn.Module):
    """v(x, t) = A x + t b: divergence tr A everywhere."""

    def __init__(self, d: int, seed: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.dim = d
        self.register_buffer("A", randn(d, d, seed=seed, dtype=dtype))
        self.register_buffer("b", randn(d, seed=seed + 1, dtype=dtype))
        self.label = f"linear field v = A x + t b in {d}-D (seed {seed}, tr A = {float(self.A.trace()):.3f})"

    def forward(self, x: Tensor, t: Any) -> Tensor:
        return x @ self.A.T + _time_column(t, x) * self.b

    def __repr__(self) -> str:
        return self.label


class _Dynamics:
    """The field as ODE dynamics f(t, y) = v(y, t), in the solver's argument order."""

    def __init__(self, field: nn.Module) -> None:
        self.field = field

    def __call__(self, t: Any, y: Tensor) -> Tensor:
        return self.field(y, t)

    def __repr__(self) -> str:
        return f"f(t, y) = v(y, t) with v the {self.field!r}"


# --- divergence and Hutchinson -------------------------------------------------------------------------------


def _field_cases(extra: Callable[[dict[str, Any]], dict[str, Any]] = lambda kw: kw) -> list[Case]:
    f32 = torch.float32
    return [
        Case("linear field v = A x + t b in 3-D (divergence tr A at every point), batch of 4, t = 0.3",
             lambda: extra({"field": _LinearField(3, seed=1), "x": randn(4, 3, seed=2), "t": 0.3})),
        Case("seeded MLP field in 2-D, batch of 5, t = 0.7",
             lambda: extra({"field": _MLPField(2, 16, seed=10), "x": randn(5, 2, seed=11), "t": 0.7})),
        # t as a 0-dim tensor, as a solver stepping on a torch.linspace grid passes it. Not one time per sample:
        # the lesson only ever takes a divergence at one time for the whole batch (inside the solver), and a
        # correct divergence built on per-sample Jacobians (flowcourse.jacobian.batch_jacobian) cannot take one
        Case("seeded MLP field in 4-D, batch of 6, t = 0.35 given as a 0-dim tensor",
             lambda: extra({"field": _MLPField(4, 16, seed=20), "x": 1.5 * randn(6, 4, seed=21),
                            "t": torch.tensor(0.35, dtype=torch.float64)})),
        Case("float32 MLP field in 3-D, batch of 5, t = 0.5: the output must be float32 too",
             lambda: extra({"field": _MLPField(3, 16, seed=30, dtype=f32), "x": randn(5, 3, seed=31, dtype=f32),
                            "t": 0.5})),
        Case("x that requires grad (a leaf, as when a self-check differentiates), 2-D MLP, batch of 3, t = 0.1",
             lambda: extra({"field": _MLPField(2, 8, seed=40), "x": randn(3, 2, seed=41).requires_grad_(),
                            "t": 0.1})),
    ]


def _with_noise(kw: dict[str, Any]) -> dict[str, Any]:
    # Rademacher noise in the even-seeded cases, Gaussian in the others: both are valid
    x = kw["x"]
    seed = int(abs(float(x.detach().reshape(-1)[0])) * 1000) + 7
    signs = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(seed)).to(x.dtype) * 2 - 1
    kw["eps"] = signs if x.shape[1] % 2 == 1 else randn(*x.shape, seed=seed, dtype=x.dtype)
    return kw


def _all_entries(ref: Any, kw: Mapping[str, Any]) -> Tensor:
    # Σ_ij ∂v_i/∂x_j = 1ᵀ J 1: the key's quadratic form with a vector of ones
    return ref.hutchinson_divergence(kw["field"], kw["x"], kw["t"], torch.ones_like(kw["x"]))


def _vjp_with_ones(ref: Any, kw: Mapping[str, Any]) -> Tensor:
    x = kw["x"].detach().requires_grad_()
    (grad,) = torch.autograd.grad(kw["field"](x, kw["t"]).sum(), x)
    return (grad * kw["eps"]).sum(dim=1)


def _vjp_summed(ref: Any, kw: Mapping[str, Any]) -> Tensor:
    x = kw["x"].detach().requires_grad_()
    (vjp,) = torch.autograd.grad(kw["field"](x, kw["t"]), x, grad_outputs=kw["eps"])
    return vjp.sum(dim=1)  # εᵀJ1


def _noise_statistics(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[bool, bool, bool, bool]:
    """Draw ``fn(x)`` and test E[ε] = 0, E[ε²] = 1 and E[ε_i ε_j] = 0 (i ≠ j) within five standard errors, and
    that the noise has x's shape and dtype: together E[εεᵀ] = I, what makes Hutchinson's estimator unbiased."""
    eps = fn(x)
    if not isinstance(eps, Tensor) or tuple(eps.shape) != tuple(x.shape):
        return False, False, False, False  # one value per entry of x is the first requirement
    same = eps.dtype == x.dtype
    e = eps.detach().double()
    n = e.numel()
    pairs = e[:, 0::2][:, : e.shape[1] // 2] * e[:, 1::2][:, : e.shape[1] // 2]
    zero_mean = abs(float(e.mean())) <= 5 / math.sqrt(n)  # Var ε = 1
    unit_second = abs(float(e.pow(2).mean()) - 1) <= 5 * math.sqrt(2 / n)  # Var ε² ≤ 2 (Gaussian), 0 (±1)
    uncorrelated = abs(float(pairs.mean())) <= 5 / math.sqrt(pairs.numel())  # Var ε_i ε_j = 1
    return zero_mean, unit_second, uncorrelated, same


# --- the ODE solver ----------------------------------------------------------------------------------------------


def _step_cases() -> list[Case]:
    f32 = torch.float32
    return [
        Case("linear dynamics f(t, y) = A y + t b in 3-D, t = 0.2, dt = 0.1, batch of 4",
             lambda: {"f": _Dynamics(_LinearField(3, seed=50)), "t": 0.2, "y": randn(4, 3, seed=51), "dt": 0.1}),
        Case("MLP dynamics in 2-D, t = 0.9, a backwards step dt = -0.25, batch of 5",
             lambda: {"f": _Dynamics(_MLPField(2, 16, seed=60)), "t": 0.9, "y": randn(5, 2, seed=61),
                      "dt": -0.25}),
        Case("MLP dynamics in 4-D, t = 0.0, a large step dt = 0.5, batch of 3",
             lambda: {"f": _Dynamics(_MLPField(4, 16, seed=70)), "t": 0.0, "y": 2 * randn(3, 4, seed=71),
                      "dt": 0.5}),
        Case("float32 MLP dynamics in 2-D, t = 0.4, dt = 0.2: the output must be float32 too",
             lambda: {"f": _Dynamics(_MLPField(2, 16, seed=80, dtype=f32)), "t": 0.4,
                      "y": randn(4, 2, seed=81, dtype=f32), "dt": 0.2}),
    ]


def _frozen_time(kw: Mapping[str, Any]) -> dict[str, Any]:
    f, t = kw["f"], kw["t"]
    return {**kw, "f": lambda _, y: f(t, y)}


def _equal_weights(ref: Any, kw: Mapping[str, Any]) -> Tensor:
    # the four stages of the key's RK4 step, recovered from one-stage steps, averaged with weights 1/4 each
    f, t, y, h = kw["f"], kw["t"], kw["y"], kw["dt"]
    k1 = f(t, y)
    k2 = f(t + h / 2, y + h / 2 * k1)
    k3 = f(t + h / 2, y + h / 2 * k2)
    k4 = f(t + h, y + h * k3)
    return y + h / 4 * (k1 + k2 + k3 + k4)


def _solve_cases() -> list[Case]:
    f32 = torch.float32
    return [
        Case("RK4 forward from t = 0 to t = 1 in 10 steps, MLP dynamics in 2-D",
             lambda: {"f": _Dynamics(_MLPField(2, 16, seed=90)), "y0": randn(5, 2, seed=91), "t0": 0.0,
                      "t1": 1.0, "steps": 10, "method": "rk4"}),
        Case("RK4 backwards from t = 1 to t = 0 in 8 steps, MLP dynamics in 3-D",
             lambda: {"f": _Dynamics(_MLPField(3, 16, seed=100)), "y0": randn(4, 3, seed=101), "t0": 1.0,
                      "t1": 0.0, "steps": 8, "method": "rk4"}),
        Case("Euler backwards from t = 0.5 to t = -0.5 in 5 steps, linear dynamics in 2-D",
             lambda: {"f": _Dynamics(_LinearField(2, seed=110)), "y0": randn(3, 2, seed=111), "t0": 0.5,
                      "t1": -0.5, "steps": 5, "method": "euler"}),
        Case("float32 RK4 from t = 0.2 to t = 0.8 in 3 steps, MLP dynamics in 2-D: the output must be float32",
             lambda: {"f": _Dynamics(_MLPField(2, 16, seed=120, dtype=f32)), "y0": randn(4, 2, seed=121, dtype=f32),
                      "t0": 0.2, "t1": 0.8, "steps": 3, "method": "rk4"}),
    ]


# --- the augmented state and the log-likelihood --------------------------------------------------------------


def _state_cases() -> list[Case]:
    def state(x: Tensor, seed: int) -> Tensor:
        return torch.cat([x, randn(x.shape[0], 1, seed=seed, dtype=x.dtype)], dim=1)  # ℓ ≠ 0: it must not matter

    f32 = torch.float32
    return [
        Case("linear field in 3-D, t = 0.6, batch of 4 (last column ℓ arbitrary)",
             lambda: {"field": _LinearField(3, seed=130), "t": 0.6, "state": state(randn(4, 3, seed=131), 132)}),
        Case("MLP field in 2-D, t = 0.25, batch of 5",
             lambda: {"field": _MLPField(2, 16, seed=140), "t": 0.25, "state": state(randn(5, 2, seed=141), 142)}),
        Case("float32 MLP field in 2-D, t = 0.8, batch of 3: the output must be float32 too",
             lambda: {"field": _MLPField(2, 16, seed=150, dtype=f32), "t": 0.8,
                      "state": state(randn(3, 2, seed=151, dtype=f32), 152)}),
    ]


def _flipped_last(out: Tensor) -> Tensor:
    return torch.cat([out[:, :-1], -out[:, -1:]], dim=1)


def _log_prob_cases() -> list[Case]:
    f32 = torch.float32
    return [
        Case("linear field in 2-D (log p(x) in closed form: a Gaussian), 20 steps, batch of 4",
             lambda: {"field": _LinearField(2, seed=160), "x": randn(4, 2, seed=161), "steps": 20}),
        Case("MLP field in 2-D, 6 steps, batch of 5",
             lambda: {"field": _MLPField(2, 16, seed=170), "x": randn(5, 2, seed=171), "steps": 6}),
        Case("MLP field in 3-D, 4 steps, batch of 3",
             lambda: {"field": _MLPField(3, 16, seed=180), "x": 2 * randn(3, 3, seed=181), "steps": 4}),
        Case("float32 MLP field in 2-D, 5 steps, batch of 4: the output must be float32 too",
             lambda: {"field": _MLPField(2, 16, seed=190, dtype=f32), "x": randn(4, 2, seed=191, dtype=f32),
                      "steps": 5}),
    ]


def _ends(ref: Any, kw: Mapping[str, Any], t0: float, t1: float, method: str = "rk4") -> tuple[Tensor, Tensor]:
    """(x(t1), Δ) of the key's augmented state started at (x, 0) at t0."""
    x, field = kw["x"], kw["field"]
    state = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
    end = ref.odeint_fixed(lambda t, s: ref.augmented_dynamics(field, t, s), state, t0, t1, kw["steps"],
                           method)
    return end[:, :-1], end[:, -1]


def _log_prob_mistakes() -> list[Mistake]:
    def sign(ref: Any, kw: Mapping[str, Any]) -> Tensor:
        z, delta = _ends(ref, kw, 1.0, 0.0)
        return ref.standard_normal_log_prob(z) + delta

    def no_base(ref: Any, kw: Mapping[str, Any]) -> Tensor:
        return -_ends(ref, kw, 1.0, 0.0)[1]

    def forward_in_time(ref: Any, kw: Mapping[str, Any]) -> Tensor:
        z, delta = _ends(ref, kw, 0.0, 1.0)
        return ref.standard_normal_log_prob(z) - delta

    def euler(ref: Any, kw: Mapping[str, Any]) -> Tensor:
        z, delta = _ends(ref, kw, 1.0, 0.0, "euler")
        return ref.standard_normal_log_prob(z) - delta

    def base_at_x(ref: Any, kw: Mapping[str, Any]) -> Tensor:
        return ref.standard_normal_log_prob(kw["x"]) - _ends(ref, kw, 1.0, 0.0)[1]

    return [
        Mistake("divergence sign",
                "d log p/dt = −∇·v: integrating the augmented state back from t = 1 gives Δ = ∫₀¹ ∇·v dt, and "
                "log p₁(x) = log p₀(z) − Δ — you added Δ (or integrated +∇·v)", sign),
        Mistake("forgetting log p₀ at the end",
                "the integral only gives the CHANGE of log-density along the path: add log p₀(z) = log N(z; 0, I) "
                "at the end point z = x(0)", no_base),
        Mistake("wrong time direction (integrated from t = 0 to t = 1)",
                "data live at t = 1 and noise at t = 0: start the augmented state (x, 0) at t = 1 and integrate "
                "BACK to t = 0 (odeint_fixed(…, 1.0, 0.0, steps)) to find the noise point z", forward_in_time),
        Mistake("Euler steps instead of RK4",
                "the log-likelihood is graded as `steps` RK4 steps of your odeint_fixed (its default method) from "
                "t = 1 to t = 0: Euler steps — or another solver, such as torchdiffeq's rk4 (Kutta's 3/8 rule) or "
                "an adaptive one — give a different number", euler),
        Mistake("log p₀ evaluated at x instead of at z",
                "the base density is evaluated where the trajectory ends, at z = x(0), not at the data point x",
                base_at_x),
    ]


# --- flow matching ---------------------------------------------------------------------------------------------


def _fm_cases() -> list[Case]:
    f32 = torch.float32
    return [
        Case("MLP field in 2-D, batch of 6, given noise x0 and times t",
             lambda: {"field": _MLPField(2, 16, seed=200), "x1": 2 * randn(6, 2, seed=201),
                      "x0": randn(6, 2, seed=202), "t": randn(6, seed=203).abs().clamp(max=1.0)}),
        Case("linear field in 3-D, batch of 4, times 0 and 1 included",
             lambda: {"field": _LinearField(3, seed=210), "x1": randn(4, 3, seed=211), "x0": randn(4, 3, seed=212),
                      "t": torch.tensor([0.0, 1.0, 0.3, 0.65], dtype=torch.float64)}),
        Case("float32 MLP field in 2-D, batch of 5: the loss must be float32 too",
             lambda: {"field": _MLPField(2, 16, seed=220, dtype=f32), "x1": randn(5, 2, seed=221, dtype=f32),
                      "x0": randn(5, 2, seed=222, dtype=f32), "t": torch.rand(5, generator=torch.Generator().
                                                                           manual_seed(223), dtype=f32)}),
    ]


Loss = Callable[[Any, Tensor, Tensor, Tensor], Tensor]


def _fm_protocol(loss: Loss, field: Any, x1: Tensor, x0: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """The loss of each sample alone (as a batch of two copies of it), then of the whole batch.

    A scalar alone is a poor witness: any wrong number is "c × the answer". The per-sample losses show which
    samples are wrong and by how much; the batch loss then shows how they are reduced (mean over the batch).
    Two copies, not a batch of one, so that code which squeezes a dimension of size 1 is not caught out."""
    each = torch.cat([torch.as_tensor(loss(field, x1[[i, i]], x0[[i, i]], t[[i, i]])).reshape(-1)
                      for i in range(x1.shape[0])])
    return each, loss(field, x1, x0, t)


def _fm_mistakes() -> list[Mistake]:
    def with_loss(loss: Loss) -> Callable[[Any, Mapping[str, Any]], tuple[Tensor, Tensor]]:
        return lambda ref, kw: _fm_protocol(lambda *a: loss(ref, *a), **kw)

    def target_reversed(ref: Any, field: Any, x1: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        # ‖v − (x₀ − x₁)‖² = ‖(−v) − (x₁ − x₀)‖²
        return ref.flow_matching_loss(lambda x, s: -field(x, s), x1, x0, t)

    def path_reversed(ref: Any, field: Any, x1: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        # x_t = t·x₀ + (1 − t)·x₁ is the key's path at time 1 − t, with the field still called at t
        return ref.flow_matching_loss(lambda x, s: field(x, 1 - s), x1, x0, 1 - t)

    def coordinate_mean(ref: Any, field: Any, x1: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        return ref.flow_matching_loss(field, x1, x0, t) / x1.shape[1]

    def at_data(ref: Any, field: Any, x1: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        return ref.flow_matching_loss(lambda x, s: field(x1, s), x1, x0, t)

    def target_data(ref: Any, field: Any, x1: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        # ‖v − x₁‖² = ‖(v − x₀) − (x₁ − x₀)‖²
        return ref.flow_matching_loss(lambda x, s: field(x, s) - x0, x1, x0, t)

    def norm_not_squared(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        each = _fm_protocol(ref.flow_matching_loss, **kw)[0].sqrt()
        return each, each.mean()

    def batch_sum(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        each, whole = _fm_protocol(ref.flow_matching_loss, **kw)
        return 2 * each, kw["x1"].shape[0] * whole  # each sample's "batch" holds two copies

    return [
        Mistake("velocity target x₀ − x₁",
                "along x_t = (1 − t)·x₀ + t·x₁ the velocity is dx_t/dt = x₁ − x₀ (noise → data); with x₀ − x₁ the "
                "field learns to carry data back to noise", with_loss(target_reversed)),
        Mistake("path reversed: x_t = t·x₀ + (1 − t)·x₁",
                "noise sits at t = 0 and data at t = 1: x_t = (1 − t)·x₀ + t·x₁", with_loss(path_reversed)),
        Mistake("mean over the coordinates too (F.mse_loss)",
                "the loss is the squared norm ‖v − (x₁ − x₀)‖², SUMMED over the coordinates and averaged over the "
                "batch; F.mse_loss also averages over the d coordinates (1/d of the loss)",
                with_loss(coordinate_mean)),
        Mistake("field evaluated at the data x₁ instead of x_t",
                "the field is asked where the path is at time t: v(x_t, t) with x_t = (1 − t)·x₀ + t·x₁",
                with_loss(at_data)),
        Mistake("target x₁ instead of x₁ − x₀",
                "the field is a velocity: its target is the path's derivative dx_t/dt = x₁ − x₀, not the data point",
                with_loss(target_data)),
        Mistake("norm not squared",
                "the loss is the SQUARED norm ‖v − (x₁ − x₀)‖² (summed squares of the coordinates), not the norm",
                norm_not_squared),
        Mistake("summed over the batch",
                "average the squared errors over the batch (.mean() over the samples): a sum grows with the batch "
                "size, and so would the learning rate you need", batch_sum),
    ]


_TRACE = -1.0  # the quiz's linear field has tr A = 0.5 − 1.5

CHECKS = [
    Check("divergence", cases=_field_cases(),
          mistakes=[Mistake("sum of all Jacobian entries (gradient of v.sum())",
                            "autograd.grad(v.sum(), x) sums each column of the Jacobian: summing that gives Σ_ij "
                            "∂v_i/∂x_j. The divergence keeps only the diagonal: Σ_i ∂v_i/∂x_i (one gradient of "
                            "v[:, i].sum() per coordinate i, entry i of it)", _all_entries)],
          same_dtype=True),
    Check("hutchinson_divergence", cases=_field_cases(_with_noise),
          mistakes=[
              Mistake("vector–Jacobian product with ones instead of ε",
                      "εᵀJ is autograd.grad(v, x, grad_outputs=eps): without grad_outputs (or with v.sum()) you get "
                      "1ᵀJ, and 1ᵀJε is not an unbiased estimate of tr J", _vjp_with_ones),
              Mistake("εᵀv instead of εᵀ(∂v/∂x)ε",
                      "the estimator needs the Jacobian: take the vector–Jacobian product εᵀJ by autograd, then its "
                      "dot product with ε", lambda ref, kw: (kw["eps"] * kw["field"](kw["x"], kw["t"])).sum(dim=1)),
              Mistake("εᵀJ summed (the dot product with ε left out)",
                      "autograd.grad(v, x, grad_outputs=eps) gives the vector εᵀJ; the estimate is its dot product "
                      "with ε, (εᵀJ)·ε summed over the coordinates — summing εᵀJ alone gives εᵀJ1", _vjp_summed),
              Mistake("the exact divergence (noise ignored)",
                      "this function estimates the trace with the given noise ε: return εᵀJε per sample, one "
                      "backward pass, not the exact trace",
                      lambda ref, kw: ref.divergence(kw["field"], kw["x"], kw["t"])),
          ],
          same_dtype=True),
    Check("hutchinson_noise",
          cases=[Case("x of shape (20000, 5), float64", lambda: {"x": randn(20000, 5, seed=230)}),
                 Case("x of shape (10000, 8), float32", lambda: {"x": randn(10000, 8, seed=231, dtype=torch.float32)})],
          mistakes=[
              Mistake("non-zero-mean noise",
                      "torch.rand and torch.randint(0, 2) give noise with mean ½: then E[εεᵀ] ≠ I and εᵀJε is biased "
                      "(by the off-diagonal Jacobian entries). Use signs ±1: 2·randint(0, 2) − 1",
                      lambda ref, kw: (False, False, False, True)),
              Mistake("uniform noise on [−1, 1]",
                      "uniform noise on [−1, 1] has mean 0 but variance 1/3: E[εεᵀ] = I/3 and the estimate is a third "
                      "of the trace. Use signs ±1 (or standard normal noise)",
                      lambda ref, kw: (True, False, True, True)),
              Mistake("one sign per sample shared by all coordinates",
                      "the coordinates' signs must be independent: with one sign per sample εεᵀ is the all-ones "
                      "matrix and εᵀJε sums every Jacobian entry", lambda ref, kw: (True, True, False, True)),
              Mistake("noise not in x's dtype",
                      "the noise must have x's dtype (float32 in, float32 out) for the vector–Jacobian product: "
                      "torch.randint returns int64, and torch.where(…, 1.0, -1.0) or torch.tensor(…) the default "
                      "dtype. Pass dtype=x.dtype, or start from torch.rand_like(x) / torch.randint_like(x, 0, 2)",
                      lambda ref, kw: (True, True, True, False)),
              Mistake("noise not of x's shape",
                      "draw one independent sign per entry of x: a torch tensor of shape x.shape = (batch, d), not "
                      "one vector shared by the batch (shape (d,)) nor one sign per sample (shape (batch, 1))",
                      lambda ref, kw: (False, False, False, False)),
          ],
          protocol=_noise_statistics,
          outputs=("zero mean", "E[ε²] = 1", "uncorrelated coordinates", "shape and dtype of x")),
    Check("euler_step", cases=_step_cases(),
          mistakes=[
              Mistake("dt missing", "an Euler step moves by dt·f(t, y), not by f(t, y)",
                      lambda ref, kw: ref.euler_step(kw["f"], kw["t"], kw["y"], 1.0)),
              Mistake("slope taken at the end of the step (t + dt)",
                      "explicit Euler evaluates the slope at the start of the step: f(t, y)",
                      lambda ref, kw: kw["y"] + kw["dt"] * kw["f"](kw["t"] + kw["dt"], kw["y"])),
          ],
          same_dtype=True),
    Check("rk4_step", cases=_step_cases(),
          mistakes=[
              Mistake("Euler step instead of RK4", "use all four stages: y + dt/6·(k₁ + 2k₂ + 2k₃ + k₄)",
                      lambda ref, kw: ref.euler_step(**kw)),
              Mistake("stages evaluated at time t (time not advanced)",
                      "k₂ and k₃ are slopes at the midpoint t + dt/2 and k₄ at the end t + dt: pass those times to f",
                      lambda ref, kw: ref.rk4_step(**_frozen_time(kw))),
              Mistake("dt missing in the update",
                      "the step moves y by dt/6·(k₁ + 2k₂ + 2k₃ + k₄): the weighted slope times the step size",
                      lambda ref, kw: kw["y"] + (ref.rk4_step(**kw) - kw["y"]) / kw["dt"]),
              Mistake("equal weights (k₁ + k₂ + k₃ + k₄)/4",
                      "Simpson's weights: the midpoint slopes count twice, y + dt/6·(k₁ + 2k₂ + 2k₃ + k₄)",
                      _equal_weights),
          ],
          same_dtype=True),
    Check("odeint_fixed", cases=_solve_cases(),
          mistakes=[
              Mistake("wrong time direction (|dt|: always forwards)",
                      "the step is h = (t1 − t0)/steps, negative when t1 < t0: the log-likelihood integrates BACK "
                      "from t = 1 to t = 0",
                      lambda ref, kw: ref.odeint_fixed(**{**kw, "t1": kw["t0"] + abs(kw["t1"] - kw["t0"])})),
              Mistake("time not advanced (every step at t0)",
                      "step k starts at t0 + k·h: the field depends on time, so pass the current time to each step",
                      lambda ref, kw: ref.odeint_fixed(**{**kw, "f": (lambda f, t0: lambda _, y: f(t0, y))(
                          kw["f"], kw["t0"])})),
              Mistake("method ignored (always RK4)",
                      "method=\"euler\" must take Euler steps (your euler_step), method=\"rk4\" RK4 steps",
                      lambda ref, kw: ref.odeint_fixed(**{**kw, "method": "rk4"})),
              Mistake("one step too many",
                      "take exactly `steps` steps of h = (t1 − t0)/steps: `for k in range(steps)`, which ends at t1",
                      lambda ref, kw: ref.odeint_fixed(**{
                          **kw, "steps": kw["steps"] + 1,
                          "t1": kw["t0"] + (kw["steps"] + 1) * (kw["t1"] - kw["t0"]) / kw["steps"]})),
              Mistake("one step too few",
                      "take exactly `steps` steps of h = (t1 − t0)/steps so that the last one ends at t1",
                      lambda ref, kw: ref.odeint_fixed(**{
                          **kw, "steps": kw["steps"] - 1,
                          "t1": kw["t0"] + (kw["steps"] - 1) * (kw["t1"] - kw["t0"]) / kw["steps"]})),
          ],
          same_dtype=True),
    Check("augmented_dynamics", cases=_state_cases(),
          mistakes=[Mistake("divergence sign",
                            "the log-density falls where the flow spreads points out: dℓ/dt = −∇·v, with a minus",
                            lambda ref, kw: _flipped_last(ref.augmented_dynamics(**kw)))],
          same_dtype=True),
    Check("cnf_log_prob", cases=_log_prob_cases(), mistakes=_log_prob_mistakes(), same_dtype=True,
          atol=1e-5, rtol=1e-5),
    Check("flow_matching_loss", cases=_fm_cases(), mistakes=_fm_mistakes(), same_dtype=True, protocol=_fm_protocol,
          outputs=("the loss of each sample alone (as a batch of two copies of it)", "the loss of the whole batch")),
    Check("quiz_10_direction",
          mistakes=[Mistake("wrong time direction",
                            "data sit at t = 1: to find the noise point z of a data point x, integrate from t = 1 "
                            "back to t = 0", lambda ref, kw: "A")]),
    Check("quiz_10_linear",
          mistakes=[Mistake("divergence sign",
                            "d log p/dt = −∇·v = −tr A: with tr A = −1 the log-density RISES by 1 nat",
                            lambda ref, kw: _TRACE)],
          atol=1e-3, rtol=0.0),
    Check("quiz_10_probability_flow",
          mistakes=[Mistake("the ODE taken for a sample path of the SDE",
                            "the probability-flow ODE does not reproduce the SDE's random paths, only its marginal "
                            "densities p_t — which is what a CNF needs", lambda ref, kw: "D")]),
]
