"""Hidden checks of lesson 07, the expressive power of normalizing flows (answer key: ``key.py``).

The 1-D ReLU planar layer is checked both ways, including that it *refuses* parameters with
:math:`1 + uw \\le 0` (a protocol turns "raised ValueError" into a comparable value). The slope bookkeeping of
the construction is graded by the map the returned layers compose to, at probe points, so any equivalent
choice of :math:`(u, w, b)` passes. The topology-matching functions receive small flows and densities
written here (the kernel cannot import the answer key): an elementwise increasing map followed by an affine
one, which is no lesson's graded layer, at random non-identity parameters in float64. ``log_det_term_differentiable``
checks what a value comparison cannot see and sections 5–6 rely on: that :math:`L(z)` reaches ``z`` by autograd
(with ``z`` a leaf that requires grad, so an in-place edit of it raises), including the ``log p(f(z))`` term. Named
mistakes are computed from the answer key (``ref``) wherever the mistake is a change of the key's result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from flowcourse.expressivity import quantile_function, two_gaussians_1d
from flowcourse.jacobian import batch_jacobian
from flowcourse_instructor.grading.spec import Case, Check, Mistake, rand, randn, tensor

_RAISED = "raises ValueError"
_ACCEPTED = "accepted non-invertible parameters (no error)"

# --- the 1-D ReLU planar layer -----------------------------------------------------------------------------


def _invertible_or_raises(fn: Callable[..., Any], **kw: Any) -> Any:
    """What the layer checks compare: the output for valid parameters, the error type for invalid ones."""
    if 1 + kw["u"] * kw["w"] > 0:
        return fn(**kw)
    try:
        fn(**kw)
    except Exception as exc:  # the wrong exception type is reported as such, not as a crash
        return f"raises {type(exc).__name__}"
    return _ACCEPTED


def _accepted(ref: Any, kw: Mapping[str, Any]) -> str:
    if 1 + kw["u"] * kw["w"] > 0:
        raise ValueError("valid parameters: this mistake does not apply")
    return _ACCEPTED


def _layer_cases(name: str) -> list[Case]:
    def pts(seed: int, n: int, scale: float = 2.0) -> Tensor:
        return randn(n, 1, seed=seed) * scale

    return [
        Case("u = 1.3, w = 0.8, b = -0.2 on 8 points on both sides of the kink",
             lambda: {name: pts(71, 8), "u": 1.3, "w": 0.8, "b": -0.2}),
        Case("negative w (active LEFT of the kink): u = -0.45, w = -1.9, b = -0.5",
             lambda: {name: pts(72, 7), "u": -0.45, "w": -1.9, "b": -0.5}),
        Case("w = 0: a pure shift by u·ReLU(b) (u = 0.7, b = 1.2)",
             lambda: {name: pts(73, 5), "u": 0.7, "w": 0.0, "b": 1.2}),
        Case("slope near 0: u = -0.99, w = 1, b = 0.3 (1 + uw = 0.01)",
             lambda: {name: pts(74, 6), "u": -0.99, "w": 1.0, "b": 0.3}),
        Case("batch of 1 far out at 40: u = 2.5, w = 0.6, b = -1",
             lambda: {name: tensor([[40.0]]), "u": 2.5, "w": 0.6, "b": -1.0}),
        Case("not invertible: u = 2, w = -1 (slope 1 + uw = -1 folds the line)",
             lambda: {name: pts(75, 4), "u": 2.0, "w": -1.0, "b": 0.1}),
        Case("not invertible: u = -1, w = 1 (slope 1 + uw = 0 flattens half the line)",
             lambda: {name: pts(76, 4), "u": -1.0, "w": 1.0, "b": 0.1}),
    ]


def _forward_with(ref: Any, kw: Mapping[str, Any], logdet: Callable[[Tensor, float], Tensor]) -> tuple[Tensor, Tensor]:
    """The key's map with a wrong log-det, ``logdet(key's log-det, 1 + uw)``; the key raises on invalid
    parameters (there the mistake is 'accepted', not a wrong log-det)."""
    x, key_logdet = ref.relu_planar_1d(**kw)
    return x, logdet(key_logdet, 1 + kw["u"] * kw["w"])


def _active(key_logdet: Tensor, slope: float) -> Tensor:
    """The indicator of the active side, from the key's log-det log(1 + uw)·1[wz + b > 0]."""
    if slope == 1.0:
        raise ValueError("uw = 0: the layer is a shift, log|uw| is undefined")
    return key_logdet / math.log(slope)


_SIDE_HINT = ("the layer is the identity where wz + b ≤ 0 and has slope 1 + uw where wz + b > 0: the log-det is "
              "log(1 + uw) on the ACTIVE side and 0 elsewhere")
_INVALID_HINT = ("with 1 + uw ≤ 0 the layer is not invertible (slope ≤ 0 on the active side: it folds or flattens "
                 "the line); check the parameters first and raise ValueError naming 1 + u*w")


def _same_u_inverse(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """``x - u·ReLU(wx + b)``: the key removes ``x - z = u/(1 + uw)·ReLU(wx + b)``, the mistake (1 + uw) times that."""
    z, logdet = ref.relu_planar_1d_inverse(**kw)
    return kw["x"] - (1 + kw["u"] * kw["w"]) * (kw["x"] - z), logdet


# --- densities on the line -----------------------------------------------------------------------------------


def _random_layers(seed: int, n: int) -> list[tuple[float, float, float]]:
    """``n`` invertible layers with 1 + uw in (0.4, 2.5), |w| in (0.5, 1.5): kinks within reach of the data."""
    w = torch.sign(randn(n, seed=seed)) * rand(n, seed=seed + 3, low=0.5, high=1.5)
    slope = rand(n, seed=seed + 1, low=0.4, high=2.5)
    b = 0.7 * randn(n, seed=seed + 2)
    return [(float((slope[i] - 1) / w[i]), float(w[i]), float(b[i])) for i in range(n)]


_PUSHFORWARD_CASES = [
    Case("one shift layer (u, w, b) = (1, 0, 2): N(2, 1)",
         lambda: {"layers": [(1.0, 0.0, 2.0)], "xs": torch.linspace(-3, 6, 19, dtype=torch.float64)}),
    Case("two layers: split at 0 and stretch the right half by 2, then squeeze right of 0.5 by 0.4",
         lambda: {"layers": [(1.0, 1.0, 0.0), (-0.6, 1.0, -0.5)],
                  "xs": torch.linspace(-4, 5, 37, dtype=torch.float64)}),
    Case("five random layers on 50 points", lambda: {"layers": _random_layers(81, 5),
                                                    "xs": randn(50, seed=82) * 2}),
    Case("a single point, three random layers", lambda: {"layers": _random_layers(83, 3),
                                                        "xs": tensor([0.37])}),
]


def _inverse_logdet(ref: Any, kw: Mapping[str, Any]) -> Tensor:
    """The log-det of ``f⁻¹`` at ``xs``: the key's inverse layers, the last layer undone first."""
    v, logdet = kw["xs"].unsqueeze(1), kw["xs"].new_zeros(kw["xs"].shape[0])
    for u, w, b in reversed(list(kw["layers"])):
        v, ld = ref.relu_planar_1d_inverse(v, u, w, b)
        logdet = logdet + ld
    return logdet


def _density(ref: Any, kw: Mapping[str, Any], sign: float) -> Tensor:
    """``φ(f⁻¹(x))·exp(sign·log-det)``: the key's density ``φ(f⁻¹(x))·exp(log-det)`` with the log-det changed."""
    return ref.pushforward_density_1d(**kw) * torch.exp((sign - 1.0) * _inverse_logdet(ref, kw))


# --- the construction ----------------------------------------------------------------------------------------


class _Quantile:
    """A target's quantile function with a readable name for the feedback."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor]) -> None:
        self.name, self.fn = name, fn

    def __call__(self, alpha: Tensor) -> Tensor:
        return self.fn(alpha)

    def __repr__(self) -> str:
        return f"<quantile function of {self.name}>"


_TRANSPORT_CASES = [
    Case("target N(1, 2²), N = 5 pieces: the map is exactly z ↦ 1 + 2z",
         lambda: {"target_icdf": _Quantile("N(1, 2²)", lambda a: 1 + 2 * torch.special.ndtri(a)), "n_pieces": 5}),
    Case("exponential target (rate 1), N = 8",
         lambda: {"target_icdf": _Quantile("Exp(1)", lambda a: -torch.log1p(-a)), "n_pieces": 8}),
    Case("logistic target, N = 2 (one knot, two tail pieces)",
         lambda: {"target_icdf": _Quantile("the logistic distribution", lambda a: torch.log(a) - torch.log1p(-a)),
                  "n_pieces": 2}),
    Case("the lesson's mixture ½N(-2, 0.5²) + ½N(2, 0.5²), N = 10",
         lambda: {"target_icdf": _Quantile("½N(-2, 0.5²) + ½N(2, 0.5²)", quantile_function(two_gaussians_1d().cdf)),
                  "n_pieces": 10}),
]


def _transport_tails(ref: Any, kw: Mapping[str, Any], tails: Callable[[Tensor], tuple[Tensor, Tensor]]) -> Any:
    z, x, s = ref.piecewise_linear_transport(kw["target_icdf"], kw["n_pieces"])
    left, right = tails(s)
    return z, x, torch.cat([left.reshape(1), s[1:-1], right.reshape(1)])


def _neighbour_tails(s: Tensor) -> tuple[Tensor, Tensor]:
    if s.shape[0] < 3:
        raise ValueError("no inner bin to copy from")
    return s[1], s[-2]


def _probe_points() -> Tensor:
    return torch.linspace(-6, 6, 61, dtype=torch.float64).unsqueeze(1) + 0.0123  # off every kink


def _compose(layers: Any) -> tuple[Tensor, int]:
    """The map the layers compose to, at the probe points, and how many layers there are."""
    v = _probe_points()
    for u, w, b in layers:
        v = v + float(u) * torch.relu(float(w) * v + float(b))
    return v, len(layers)


def _composed(fn: Callable[..., Any], **kw: Any) -> tuple[Tensor, int]:
    return _compose(fn(**kw))


def _layers_inputs(seed: int, n_pieces: int, low: float = 0.2, high: float = 3.0) -> dict[str, Tensor]:
    return {"z_knots": torch.sort(randn(n_pieces - 1, seed=seed)).values,
            "x_knots": torch.sort(randn(n_pieces - 1, seed=seed + 1) * 3).values,
            "slopes": rand(n_pieces, seed=seed + 2, low=low, high=high)}


def _gaussian_knots() -> dict[str, Tensor]:
    z = torch.special.ndtri(torch.arange(1, 6, dtype=torch.float64) / 6)
    return {"z_knots": z, "x_knots": 1 + 2 * z, "slopes": torch.full((6,), 2.0, dtype=torch.float64)}


_LAYERS_CASES = [
    Case("N = 2 pieces (one knot): a shift, a left slope, a right slope", lambda: _layers_inputs(91, 2)),
    Case("N = 4 random knots and slopes", lambda: _layers_inputs(92, 4)),
    Case("N = 8 random knots, slopes from 0.05 to 20 (large ratios)", lambda: _layers_inputs(93, 8, 0.05, 20.0)),
    Case("a Gaussian target N(1, 2²), N = 6: every slope is 2", _gaussian_knots),
]


def _slopes_not_ratios(ref: Any, kw: Mapping[str, Tensor]) -> tuple[Tensor, int]:
    """The key's layers, but layer k + 2 with u = s_k - 1 instead of s_k/r_k - 1 (same kink and side)."""
    layers = ref.piecewise_linear_layers(**kw)
    slopes = [float(s) for s in kw["slopes"][1:]]
    return _compose(layers[:2] + [(s - 1.0, w, b) for (_, w, b), s in zip(layers[2:], slopes, strict=True)])


def _kinks_at_z(ref: Any, kw: Mapping[str, Tensor]) -> tuple[Tensor, int]:
    """The key's shift layer, then the key's construction with the base knots z_k as the kinks."""
    shift = ref.piecewise_linear_layers(**kw)[0]
    return _compose([shift, *ref.piecewise_linear_layers(kw["z_knots"], kw["z_knots"], kw["slopes"])[1:]])


# --- total variation -----------------------------------------------------------------------------------------


def _normal_pdf(xs: Tensor, mean: float, std: float) -> Tensor:
    return torch.distributions.Normal(mean, std).log_prob(xs).exp()


def _tv_gaussians() -> dict[str, Tensor]:
    xs = torch.linspace(-8, 9, 3401, dtype=torch.float64)
    return {"p_values": _normal_pdf(xs, 0.0, 1.0), "q_values": _normal_pdf(xs, 1.0, 1.0), "xs": xs}


def _tv_uneven() -> dict[str, Tensor]:
    xs = torch.cumsum(rand(40, seed=101, low=0.01, high=0.3), 0) - 3
    return {"p_values": rand(40, seed=102, high=2.0), "q_values": rand(40, seed=103, high=2.0), "xs": xs}


_TV_CASES = [
    Case("N(0, 1) against N(1, 1) on [-8, 9] (closed form 2Φ(½) - 1 = 0.3829)", _tv_gaussians),
    Case("p = 1 against q(x) = 2x on [0, 1], 11 points (TV = 1/4)",
         lambda: {"p_values": torch.ones(11, dtype=torch.float64),
                  "q_values": 2 * torch.linspace(0, 1, 11, dtype=torch.float64),
                  "xs": torch.linspace(0, 1, 11, dtype=torch.float64)}),
    Case("random values on an UNEVEN grid of 40 points", _tv_uneven),
    Case("identical densities (TV = 0)",
         lambda: {"p_values": _normal_pdf(torch.linspace(-5, 5, 101, dtype=torch.float64), 0.3, 1.2),
                  "q_values": _normal_pdf(torch.linspace(-5, 5, 101, dtype=torch.float64), 0.3, 1.2),
                  "xs": torch.linspace(-5, 5, 101, dtype=torch.float64)}),
]

# --- topology matching: small flows and densities ------------------------------------------------------------


class _Density:
    """A log-density ``v -> (batch,)`` with a readable name."""

    def __init__(self, name: str, fn: Callable[[Tensor], Tensor]) -> None:
        self.name, self.fn = name, fn

    def __call__(self, v: Tensor) -> Tensor:
        return self.fn(v)

    def __repr__(self) -> str:
        return f"<log-density of {self.name}>"


def _gaussian(name: str, mean: Tensor, cov: Tensor) -> _Density:
    dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov)
    return _Density(name, dist.log_prob)


def _standard_normal(d: int) -> _Density:
    return _gaussian("N(0, I)" if d > 1 else "N(0, 1)", torch.zeros(d, dtype=torch.float64),
                     torch.eye(d, dtype=torch.float64))


class _Map:
    r"""The base→data map :math:`x = M g(z) + c`, :math:`g` increasing and applied coordinatewise
    (``None``: the identity), returning ``(x, log|det J|)`` with
    :math:`\log|\det J| = \log|\det M| + \sum_i \log g'(z_i)`. It is no lesson's graded layer."""

    def __init__(self, name: str, M: Tensor, c: Tensor, g: Callable[[Tensor], Tensor] | None = None,
                 g_prime: Callable[[Tensor], Tensor] | None = None) -> None:
        self.name, self.M, self.c, self.g, self.g_prime = name, M, c, g, g_prime

    def __call__(self, z: Tensor) -> tuple[Tensor, Tensor]:
        logdet = torch.linalg.slogdet(self.M).logabsdet.expand(z.shape[0])
        if self.g is None:
            return z @ self.M.T + self.c, logdet
        return self.g(z) @ self.M.T + self.c, logdet + torch.log(self.g_prime(z)).sum(1)

    def __repr__(self) -> str:
        return f"<flow: {self.name}>"


def _affine_exact() -> dict[str, Any]:
    M = tensor([[1.5, 0.4], [-0.3, 0.7]])
    c = tensor([0.2, -1.0])
    return {"flow": _Map("affine x = Mz + c", M, c), "z": randn(6, 2, seed=111),
            "log_p": _gaussian("N(c, MMᵀ), the exact pushforward", c, M @ M.T), "log_q": _standard_normal(2)}


def _smooth() -> dict[str, Any]:
    flow = _Map("x = M(z + ½ sin z) + c in 2-D", randn(2, 2, seed=112) + tensor([[1.0, 0.0], [0.0, 1.0]]),
                randn(2, seed=113), lambda v: v + 0.5 * torch.sin(v), lambda v: 1 + 0.5 * torch.cos(v))
    return {"flow": flow, "z": randn(7, 2, seed=115),
            "log_p": _gaussian("N(0, 4I)", torch.zeros(2, dtype=torch.float64), 4 * torch.eye(2, dtype=torch.float64)),
            "log_q": _standard_normal(2)}


def _piecewise_linear() -> dict[str, Any]:
    kinks = randn(3, seed=118)
    flow = _Map("x = M(z + 0.8·ReLU(z - t)) + c in 3-D, piecewise linear", randn(3, 3, seed=116),
                randn(3, seed=117), lambda v: v + 0.8 * torch.relu(v - kinks),
                lambda v: 1 + 0.8 * (v > kinks).to(v.dtype))
    mean = tensor([0.5, -1.0, 0.3])
    return {"flow": flow, "z": randn(8, 3, seed=119),
            "log_p": _gaussian("N((0.5, -1, 0.3), 2I)", mean, 2 * torch.eye(3, dtype=torch.float64)),
            "log_q": _standard_normal(3)}


def _one_d() -> dict[str, Any]:
    return {"flow": _Map("1-D map x = sinh(z)", tensor([[1.0]]), tensor([0.0]), torch.sinh, torch.cosh),
            "z": tensor([[0.9]]), "log_p": _gaussian("N(1, 0.5²)", tensor([1.0]), tensor([[0.25]])),
            "log_q": _standard_normal(1)}


_TOPOLOGY_CASES = [
    Case("affine map, p its exact pushforward", _affine_exact),
    Case("smooth map x = M(z + ½ sin z) + c in 2-D, p = N(0, 4I) (not the pushforward)", _smooth),
    Case("piecewise-linear map in 3-D (coordinatewise ReLU kinks, then M), p = N((0.5, -1, 0.3), 2I)",
         _piecewise_linear),
    Case("batch of 1 in 1-D: x = sinh(z), p = N(1, 0.5²)", _one_d),
]


def _score(log_density: Callable[[Tensor], Tensor], v: Tensor) -> Tensor:
    v = v.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_density(v).sum(), v)
    return grad


def _residual_parts(kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``C``, ``x = f(z)``, the score of p at x and the score of q at z."""
    z = kw["z"]
    C = batch_jacobian(kw["flow"], z)
    x = kw["flow"](z)[0].detach()
    return C, x, _score(kw["log_p"], x), _score(kw["log_q"], z)


def _residual_untransposed(kw: Mapping[str, Any]) -> Tensor:
    C, _, score_p, score_q = _residual_parts(kw)
    return (C @ score_p.unsqueeze(2)).squeeze(2) - score_q


def _residual_p_at_z(kw: Mapping[str, Any]) -> Tensor:
    C, _, _, score_q = _residual_parts(kw)
    return (C.transpose(1, 2) @ _score(kw["log_p"], kw["z"]).unsqueeze(2)).squeeze(2) - score_q


def _rank_inputs() -> list[Case]:
    def low_rank() -> dict[str, Tensor]:
        return {"grads": randn(12, 2, seed=121) @ randn(2, 6, seed=122)}

    def huge() -> dict[str, Tensor]:
        return {"grads": 1e6 * (randn(10, 2, seed=123) @ randn(2, 6, seed=124)) + 1e-4 * randn(10, 6, seed=125)}

    return [
        Case("rank 2: a 12×2 times a 2×6 matrix", low_rank),
        Case("random 10×6: rank 6", lambda: {"grads": randn(10, 6, seed=126)}),
        Case("all zeros: rank 0", lambda: {"grads": torch.zeros(4, 3, dtype=torch.float64)}),
        Case("diag(1, 1e-5, 0): a small but real direction counts (rank 2)",
             lambda: {"grads": torch.diag(tensor([1.0, 1e-5, 0.0]))}),
        Case("diag(1, 1e-5, 0) with rtol = 1e-3 (rank 1)",
             lambda: {"grads": torch.diag(tensor([1.0, 1e-5, 0.0])), "rtol": 1e-3}),
        Case("huge scale: rank 2 times 10⁶ plus noise of size 10⁻⁴ (relative tolerance: rank 2)", huge),
        Case("tiny scale: a random 8×4 times 10⁻¹⁰ (relative tolerance: rank 4)",
             lambda: {"grads": 1e-10 * randn(8, 4, seed=127)}),
    ]


def _rank_absolute(kw: Mapping[str, Any]) -> int:
    return int((torch.linalg.svdvals(kw["grads"]) > kw.get("rtol", 1e-8)).sum())


# --- depth ---------------------------------------------------------------------------------------------------


_KL_CASES = [
    Case("KL(N(0,1) ‖ N(0,4)), d omitted (the lesson's 0.318)", lambda: {"var_q": 1.0, "var_p": 4.0}),
    Case("the depth experiment at K = 0: d = 8, variances 1 and 4", lambda: {"var_q": 1.0, "var_p": 4.0, "d": 8}),
    Case("variances 0.5 and 3 in d = 8", lambda: {"var_q": 0.5, "var_p": 3.0, "d": 8}),
    Case("the other way round: KL(N(0,4) ‖ N(0,1))", lambda: {"var_q": 4.0, "var_p": 1.0, "d": 1}),
    Case("equal variances (KL = 0), d = 5", lambda: {"var_q": 2.0, "var_p": 2.0, "d": 5}),
    Case("large magnitudes: variances 1e-3 and 1e3, d = 2", lambda: {"var_q": 1e-3, "var_p": 1e3, "d": 2}),
]


def _z_requires_grad(make: Callable[[], Mapping[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The case ``make`` with its points ``z`` a leaf that requires grad (an in-place edit of z raises)."""
    def build() -> dict[str, Any]:
        kw = dict(make())
        kw["z"] = kw["z"].clone().requires_grad_(True)
        return kw
    return build


_DIFFERENTIABLE_CASES = [
    Case(f"{case.label}; z requires grad", _z_requires_grad(case.inputs)) for case in _TOPOLOGY_CASES[1:]]


def _differentiable_protocol(fn: Callable[..., Any], flow: Any, z: Tensor, log_p: Any, log_q: Any) -> tuple[bool, bool]:
    """Whether ``L = fn(flow, z, log_p, log_q)`` reaches ``z`` by autograd, and whether its gradient holds more than
    ``-∇log q(z)`` (the ``log p(f(z))`` term, which a detached ``f(z)`` drops)."""
    values = fn(flow, z, log_p, log_q)
    if not (isinstance(values, Tensor) and values.requires_grad):
        return False, False
    (grad,) = torch.autograd.grad(values.sum(), z, allow_unused=True)
    if grad is None:
        return False, False
    base = z.detach().requires_grad_(True)
    (score_q,) = torch.autograd.grad(log_q(base).sum(), base)
    return True, not torch.allclose(grad, -score_q, rtol=1e-7, atol=1e-9)


CHECKS = [
    Check(
        "relu_planar_1d",
        cases=_layer_cases("z"),
        protocol=_invertible_or_raises,
        outputs=("x", "log-det"),
        mistakes=[
            Mistake("invalid slope 1 + uw ≤ 0 accepted", _INVALID_HINT, _accepted),
            Mistake("log-det on the wrong side of the kink", _SIDE_HINT,
                    lambda ref, kw: _forward_with(ref, kw, lambda ld, s: math.log(s) - ld)),
            Mistake("log-det log(1 + uw) at every point", _SIDE_HINT,
                    lambda ref, kw: _forward_with(ref, kw, lambda ld, s: torch.full_like(ld, math.log(s)))),
            Mistake("the identity's 1 forgotten in the slope",
                    "x = z + u·ReLU(wz + b) has derivative 1 + uw on the active side (the identity contributes "
                    "the 1), not uw",
                    lambda ref, kw: _forward_with(ref, kw, lambda ld, s: math.log(abs(s - 1)) * _active(ld, s))),
        ],
    ),
    Check(
        "relu_planar_1d_inverse",
        cases=_layer_cases("x"),
        protocol=_invertible_or_raises,
        outputs=("z", "log-det"),
        mistakes=[
            Mistake("invalid slope 1 + uw ≤ 0 accepted", _INVALID_HINT, _accepted),
            Mistake("log-det sign (the forward log-det returned by the inverse)",
                    "the inverse has slope 1/(1 + uw) on the active side: its log-det is -log(1 + uw) there",
                    lambda ref, kw: (ref.relu_planar_1d_inverse(**kw)[0],
                                     -ref.relu_planar_1d_inverse(**kw)[1])),
            Mistake("the same u subtracted (z = x - u·ReLU(wx + b))",
                    "on the active side wx + b = (1 + uw)(wz + b), so the amount to remove is "
                    "u/(1 + uw)·ReLU(wx + b), not u·ReLU(wx + b)",
                    lambda ref, kw: _same_u_inverse(ref, kw)),
        ],
    ),
    Check(
        "pushforward_density_1d",
        cases=_PUSHFORWARD_CASES,
        mistakes=[
            Mistake("log-det sign (the inverse's log-det subtracted)",
                    "p_X(x) = φ(f⁻¹(x))·|d f⁻¹/dx|: the inverse's log-det is ADDED to log φ(f⁻¹(x))",
                    lambda ref, kw: _density(ref, kw, sign=-1.0)),
            Mistake("log-det missing",
                    "the density must be corrected for the stretching: add the inverse layers' log-dets",
                    lambda ref, kw: _density(ref, kw, sign=0.0)),
            Mistake("layers undone in the wrong order",
                    "x = f_K(…f_1(z)), so f⁻¹ undoes the LAST layer first: loop over reversed(layers)",
                    lambda ref, kw: ref.pushforward_density_1d(list(kw["layers"])[::-1], kw["xs"])),
        ],
    ),
    Check(
        "piecewise_linear_transport",
        cases=_TRANSPORT_CASES,
        outputs=("z_knots", "x_knots", "slopes"),
        mistakes=[
            Mistake("tail slopes copied from the neighbouring bins",
                    "the two unbounded end pieces need their own slope: the one that also sends the median of "
                    "the base's end bin, Φ⁻¹(1/2N) or Φ⁻¹(1 - 1/2N), to the target's, F⁻¹(1/2N) or F⁻¹(1 - 1/2N)",
                    lambda ref, kw: _transport_tails(ref, kw, _neighbour_tails)),
            Mistake("tails left at slope 1",
                    "the end pieces must be rescaled too, with the median-matching slope; slope 1 leaves the "
                    "Gaussian's tails in place",
                    lambda ref, kw: _transport_tails(ref, kw, lambda s: (s.new_ones(()), s.new_ones(())))),
        ],
    ),
    Check(
        "piecewise_linear_layers",
        cases=_LAYERS_CASES,
        protocol=_composed,
        outputs=("the composed map at 61 probe points", "the number of layers"),
        mistakes=[
            Mistake("slope bookkeeping (u = s_k - 1 instead of s_k/r_k - 1)",
                    "right of x_k the earlier layers have already set the slope to r_k (s_(k-1), or 1 at the first "
                    "knot); a layer MULTIPLIES the slope on its active side by 1 + uw, so 1 + uw must be s_k/r_k",
                    lambda ref, kw: _slopes_not_ratios(ref, kw)),
            Mistake("kinks at the base knots z_k instead of the data knots x_k",
                    "layer k + 2 acts on points the earlier layers have already moved: z_k is at x_k by then, "
                    "so the kink goes at x_k (b = -x_k)",
                    lambda ref, kw: _kinks_at_z(ref, kw)),
            Mistake("the shift layer missing",
                    "layer 1, (x_1 - z_1, 0, 1), moves z_1 onto x_1; without it every knot is off by x_1 - z_1",
                    lambda ref, kw: _compose(ref.piecewise_linear_layers(**kw)[1:])),
        ],
    ),
    Check(
        "total_variation_1d",
        cases=_TV_CASES,
        mistakes=[
            Mistake("TV without the ½",
                    "TV(p, q) = ½∫|p - q| dx: without the ½ it runs from 0 to 2, and two disjoint densities "
                    "would be at distance 2 instead of 1",
                    lambda ref, kw: 2 * ref.total_variation_1d(**kw)),
            Mistake("squared differences (a 'total variance', not the total variation)",
                    "the total VARIATION integrates the absolute difference |p - q|, not (p - q)²",
                    lambda ref, kw: 0.5 * torch.trapezoid((kw["p_values"] - kw["q_values"]) ** 2, kw["xs"])),
            Mistake("sum without the grid spacing",
                    "the integral needs the spacing dx between grid points: use torch.trapezoid(…, xs)",
                    lambda ref, kw: 0.5 * (kw["p_values"] - kw["q_values"]).abs().sum()),
            Mistake("no absolute value",
                    "∫(p - q) dx is 0 for any two densities; TV integrates |p - q|",
                    lambda ref, kw: 0.5 * torch.trapezoid(kw["p_values"] - kw["q_values"], kw["xs"])),
        ],
    ),
    Check(
        "log_det_term",
        cases=_TOPOLOGY_CASES,
        mistakes=[
            Mistake("-log|det J_f| used for L",
                    "L(z) = log p(f(z)) - log q(z) equals -log|det J_f(z)| only when p is exactly the pushforward "
                    "of q; compute it from the two densities",
                    lambda ref, kw: -kw["flow"](kw["z"])[1]),
            Mistake("log q evaluated at f(z)",
                    "q is the base density: evaluate it at z, and p at x = f(z)",
                    lambda ref, kw: kw["log_p"](kw["flow"](kw["z"])[0]) - kw["log_q"](kw["flow"](kw["z"])[0])),
            Mistake("log p evaluated at z",
                    "p lives on the data side: evaluate it at x = f(z)",
                    lambda ref, kw: kw["log_p"](kw["z"]) - kw["log_q"](kw["z"])),
        ],
    ),
    Check(
        "log_det_term_differentiable",
        key="log_det_term",
        cases=_DIFFERENTIABLE_CASES,
        protocol=_differentiable_protocol,
        outputs=("L(z) reaches z by autograd (True: ∇_z L can be taken, as sections 5 and 6 do)",
                 "∇_z L includes the log p(f(z)) term (not only -∇log q(z))"),
        mistakes=[
            Mistake("L computed without autograd",
                    "sections 5 and 6 differentiate L(z) with autograd, so log_det_term must stay in the graph: no "
                    "torch.no_grad(), .detach() or .item() inside it (wrap the CALL in no_grad where only values are "
                    "needed, as the demos do)",
                    lambda ref, kw: (False, False)),
            Mistake("f(z) detached",
                    "x = f(z) must keep its graph: log p(f(z)) depends on z through f, and ∇_z L needs that term "
                    "(Cᵀ∇log p(f(z))); do not .detach() x or z before calling the flow",
                    lambda ref, kw: (True, False)),
        ],
    ),
    Check(
        "gradient_rank",
        cases=_rank_inputs(),
        atol=0.0,
        rtol=0.0,
        mistakes=[
            Mistake("absolute threshold",
                    "count singular values above rtol TIMES the largest one: the rank must not change when the "
                    "gradients are scaled by 10⁶ or 10⁻¹⁰",
                    lambda ref, kw: _rank_absolute(kw)),
            Mistake("torch.linalg.matrix_rank with its default tolerance",
                    "matrix_rank's default cut-off is eps·max(n, d) relative: it counts numerical noise as "
                    "directions and ignores the rtol argument",
                    lambda ref, kw: int(torch.linalg.matrix_rank(kw["grads"]))),
        ],
    ),
    Check(
        "pointwise_condition_residual",
        cases=_TOPOLOGY_CASES,
        mistakes=[
            Mistake("Jacobian not transposed (C∇log p(f(z)) instead of Cᵀ∇log p(f(z)))",
                    "by the chain rule ∇_z log p(f(z)) = Cᵀ ∇_x log p(x) with C = ∂f/∂z: transpose C "
                    "(batch_jacobian returns C with rows = outputs)",
                    lambda ref, kw: _residual_untransposed(kw)),
            Mistake("score of p taken at z instead of f(z)",
                    "the score of p must be evaluated at the image x = f(z), where p lives",
                    lambda ref, kw: _residual_p_at_z(kw)),
        ],
    ),
    Check(
        "gaussian_kl",
        cases=_KL_CASES,
        mistakes=[
            Mistake("KL arguments swapped (KL(p ‖ q) instead of KL(q ‖ p))",
                    "KL is not symmetric: KL(N(0, σ_q²) ‖ N(0, σ_p²)) = d(½ log(σ_p²/σ_q²) + σ_q²/(2σ_p²) - ½)",
                    lambda ref, kw: ref.gaussian_kl(kw["var_p"], kw["var_q"], kw.get("d", 1))),
            Mistake("½ missing in front of the log",
                    "the log term is ½ log(σ_p²/σ_q²) = log(σ_p/σ_q): half the log of the VARIANCE ratio",
                    lambda ref, kw: ref.gaussian_kl(**kw) + kw.get("d", 1) * 0.5 * math.log(kw["var_p"] / kw["var_q"])),
            Mistake("dimension d ignored",
                    "the d coordinates are independent: their KLs add, so multiply by d",
                    lambda ref, kw: ref.gaussian_kl(kw["var_q"], kw["var_p"])),
            Mistake("variances treated as standard deviations",
                    "the arguments are variances σ²; squaring them again gives log(σ_p²/σ_q²) + σ_q⁴/(2σ_p⁴) - ½",
                    lambda ref, kw: ref.gaussian_kl(kw["var_q"] ** 2, kw["var_p"] ** 2, kw.get("d", 1))),
        ],
    ),
    Check("quiz_07_pwc_invertible",
          mistakes=[Mistake("monotone step functions",
                            "a step function is constant on each piece, so it sends a whole interval to one "
                            "point: no step function is injective, monotone or not",
                            lambda ref, kw: "C")]),
    Check("quiz_07_tv_definition",
          mistakes=[Mistake("total variance",
                            "Kong & Chaudhuri's 'total variance distance' is a slip: T_ε uses the total VARIATION "
                            "distance ½∫|p - q|, the largest difference in probability of any event",
                            lambda ref, kw: "C"),
                    Mistake("squared distance",
                            "TV integrates |p - q|, not (p - q)²", lambda ref, kw: "B")]),
    Check("quiz_07_one_dimension",
          mistakes=[Mistake("exact instead of approximate",
                            "the 1-D result answers Q2 (approximation in TV, error → 0 as layers are added), "
                            "not Q1: finitely many ReLU layers give a piecewise Gaussian, not an arbitrary p",
                            lambda ref, kw: "A")]),
    Check("quiz_07_householder_stack"),
    Check("quiz_07_depth_bound",
          mistakes=[Mistake("necessary read as sufficient",
                            "a lower bound on the depth says fewer layers cannot work; it promises nothing about "
                            "what d^κ layers can do",
                            lambda ref, kw: "C")]),
    Check("quiz_07_relu_peaks"),
    Check("quiz_07_sylvester_rank_bound", atol=0.0, rtol=0.0,
          mistakes=[Mistake("dimension instead of neurons",
                            "the bound is the total number of neurons M = Σ m_k, not the dimension d",
                            lambda ref, kw: 10),
                    Mistake("layers instead of neurons",
                            "each layer contributes its m_k neurons: M = 2 + 1 + 3",
                            lambda ref, kw: 3)]),
]
