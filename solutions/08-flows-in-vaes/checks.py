r"""Hidden checks of lesson 08, flows in VAEs (answer key: ``key.py`` beside this file).

Every function is checked at random, far-from-initialisation inputs: encoder outputs with :math:`w^\top u`
both above and well below :math:`-1` (where a raw-``u`` planar layer folds), forward log-dets that are
clearly non-zero (so a sign error in :math:`\log q_K` shows), Bernoulli logits of :math:`\pm 120` in float32
and :math:`\pm 800` in float64 (where :math:`\log\sigma(\ell)` underflows), and log weights of hundreds of
nats (where :math:`\log \frac1S\sum e^{\log w}` underflows). Two cases come with a closed form: the lesson notes'
worked example 3 with :math:`\hat u` (0.2202) and a linear-Gaussian model whose flow posterior is exact, so
that the ELBO and the importance-weighted bound both equal :math:`\log p(x) = \log\mathcal{N}(x; 0, 2)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from flowcourse_instructor.grading.spec import Case, Check, KeyRef, Mistake, randn, tensor

# --- the Gaussian base q_0 ------------------------------------------------------------------------------------


def _normal_inputs(shape: tuple[int, ...], seed: int, *, spread: float = 1.0, log_sigma_shift: float = 0.0,
                   param_shape: tuple[int, ...] | None = None) -> dict[str, Tensor]:
    param_shape = param_shape or shape
    return {"z": randn(*shape, seed=seed) * spread, "mu": randn(*param_shape, seed=seed + 1),
            "log_sigma": randn(*param_shape, seed=seed + 2) * 0.8 + log_sigma_shift}


NORMAL_CASES = [
    Case("5 points in 3-D, random μ and log σ", lambda: _normal_inputs((5, 3), seed=800)),
    Case("S = 4 samples of 3 examples in 2-D (μ, log σ of shape (3, 2) broadcast over the samples)",
         lambda: _normal_inputs((4, 3, 2), seed=810, param_shape=(3, 2))),
    Case("batch of 1 in 1-D with a narrow posterior (log σ ≈ -3)",
         lambda: _normal_inputs((1, 1), seed=820, log_sigma_shift=-3.0)),
    Case("points far from μ (|z - μ| ~ 20), 4 points in 4-D", lambda: _normal_inputs((4, 4), seed=830, spread=20.0)),
    Case("float32, 6 points in 2-D", lambda: {k: v.float() for k, v in _normal_inputs((6, 2), seed=840).items()}),
]


def _normal_with(ref: KeyRef, kw: Mapping[str, Tensor], *, log_sigma: Tensor, log_norm: Tensor | None = None) -> Tensor:
    """The key's log-density at ``log_sigma``, with ``-Σ log_norm`` in place of its normaliser ``-Σ log σ``."""
    out = ref.diagonal_normal_log_prob(kw["z"], kw["mu"], log_sigma)
    return out if log_norm is None else out + (log_sigma - log_norm).sum(-1)


NORMAL_MISTAKES = [
    Mistake("log σ read as log σ² (a log-variance)",
            "the encoder outputs log σ, so σ = exp(log σ) and the normaliser is -log σ; exp(log σ / 2) and "
            "-½ log σ are right only for an encoder that outputs the log-variance",
            lambda ref, kw: _normal_with(ref, kw, log_sigma=kw["log_sigma"] / 2)),
    Mistake("normaliser -log σ left out",
            "q_0 is N(μ, diag σ²): each coordinate carries -log σ_i - ½ log 2π besides -½((z - μ)/σ)²; without "
            "-log σ the density does not integrate to 1 and the ELBO rewards huge σ",
            lambda ref, kw: _normal_with(ref, kw, log_sigma=kw["log_sigma"],
                                         log_norm=torch.zeros_like(kw["log_sigma"]))),
    Mistake("σ in place of log σ in the normaliser",
            "the normaliser of N(μ, σ²) is -log σ (= -log_sigma), not -σ",
            lambda ref, kw: _normal_with(ref, kw, log_sigma=kw["log_sigma"], log_norm=kw["log_sigma"].exp())),
    Mistake("log σ used as σ (exp forgotten)",
            "log_sigma is log σ: the standard deviation is exp(log_sigma)",
            lambda ref, kw: _normal_with(ref, kw, log_sigma=torch.log(kw["log_sigma"]))),
]

# --- the Bernoulli decoder ------------------------------------------------------------------------------------


def _binary(*shape: int, seed: int, p: float = 0.3) -> Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < p).double()


def _confident(scale: float, dtype: torch.dtype) -> dict[str, Tensor]:
    """Confident logits ±scale, right and wrong: x = 1 with ℓ = -scale is a confidently wrong pixel."""
    x = tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    sign = tensor([[-1.0, 1.0, 1.0, -1.0], [-1.0, 1.0, -0.5, 0.2]])
    return {"x": x.to(dtype), "logits": (scale * sign).to(dtype)}


BERNOULLI_CASES = [
    Case("4 binary images of 64 pixels, logits ~ N(0, 3²)",
         lambda: {"x": _binary(4, 64, seed=850), "logits": randn(4, 64, seed=851) * 3}),
    Case("batch of 1, 5 pixels", lambda: {"x": tensor([[1.0, 0.0, 0.0, 1.0, 1.0]]), "logits": randn(1, 5, seed=852)}),
    Case("S = 3 samples of logits for 2 images (x of shape (2, 6) broadcast)",
         lambda: {"x": _binary(2, 6, seed=853, p=0.5), "logits": randn(3, 2, 6, seed=854) * 2}),
    Case("float32, confident logits ±120 (σ(-120) underflows to 0 in float32)",
         lambda: _confident(120.0, torch.float32)),
    Case("float64, confident logits ±800 (σ(-800) underflows to 0 in float64)",
         lambda: _confident(800.0, torch.float64)),
]


def _naive_bernoulli(kw: Mapping[str, Tensor]) -> Tensor:
    p = torch.sigmoid(kw["logits"])
    return (kw["x"] * torch.log(p) + (1 - kw["x"]) * torch.log(1 - p)).sum(-1)


def _clamped_bernoulli(kw: Mapping[str, Tensor], eps: float) -> Tensor:
    p = torch.sigmoid(kw["logits"]).clamp(eps, 1 - eps)
    return (kw["x"] * torch.log(p) + (1 - kw["x"]) * torch.log(1 - p)).sum(-1)


_LOG_SIGMOID_HINT = ("log σ(ℓ) computed as log(sigmoid(ℓ)) underflows: σ(-120) is exactly 0 in float32, log 0 = -inf, "
                     "and 0·log 0 = NaN even for pixels the model gets right; use the softplus form "
                     "x·ℓ - softplus(ℓ) (log σ(ℓ) = -softplus(-ℓ), log(1 - σ(ℓ)) = -softplus(ℓ))")

BERNOULLI_MISTAKES = [
    Mistake("Bernoulli log-likelihood via log(sigmoid), which underflows", _LOG_SIGMOID_HINT,
            lambda ref, kw: _naive_bernoulli(kw)),
    *[Mistake("probabilities clamped before the log",
              "clamping σ(ℓ) to [ε, 1 - ε] hides the underflow but caps the cost of a confidently wrong pixel at "
              "-log ε (about 16 nats for ε = 1e-7) instead of |ℓ|; the softplus form x·ℓ - softplus(ℓ) is exact",
              lambda ref, kw, eps=eps: _clamped_bernoulli(kw, eps)) for eps in (1e-7, 1e-6, 1e-8, 1e-12)],
    Mistake("averaged over the pixels instead of summed",
            "the pixels are independent given z, so their log-likelihoods ADD: sum over the last dimension",
            lambda ref, kw: ref.bernoulli_log_prob(kw["x"], kw["logits"]) / kw["logits"].shape[-1]),
]

# --- amortised planar layers -----------------------------------------------------------------------------------


def _rows_with_wu(n: int, d: int, seed: int, wu: list[float], dtype: torch.dtype = torch.float64,
                  z_scale: float = 1.0, b_scale: float = 0.5) -> dict[str, Tensor]:
    """``n`` rows of (u, w, b) with prescribed wᵀu per row, and points z."""
    w = randn(n, d, seed=seed + 1)
    other = randn(n, d, seed=seed + 2)
    other = other - ((other * w).sum(1, keepdim=True) / (w * w).sum(1, keepdim=True)) * w  # ⟂ w, row by row
    u = tensor(wu)[:, None] * w / (w * w).sum(1, keepdim=True) + other
    return {"z": (randn(n, d, seed=seed) * z_scale).to(dtype), "u": u.to(dtype), "w": w.to(dtype),
            "b": (randn(n, seed=seed + 3) * b_scale).to(dtype)}


def _worked_example_3() -> dict[str, Tensor]:
    """Worked example 3 of the lesson notes as one row: log-det 0.580 with the raw u, 0.2202 with û."""
    return {"z": tensor([[0.5, -0.5]]), "u": tensor([[1.0, 0.0]]), "w": tensor([[1.0, 2.0]]), "b": tensor([0.0])}


PLANAR_CASES = [
    Case("worked example 3 with û: z = (0.5, -0.5), u = (1, 0), w = (1, 2), b = 0 (log-det 0.2202)",
         _worked_example_3),
    Case("5 rows in 2-D, random per-row parameters", lambda: {"z": randn(5, 2, seed=860), "u": randn(5, 2, seed=861),
                                                              "w": randn(5, 2, seed=862), "b": randn(5, seed=863)}),
    Case("4 rows in 3-D with raw wᵀu = -3, -1.5, -6, -2 (a raw-u layer folds; û does not)",
         lambda: _rows_with_wu(4, 3, seed=870, wu=[-3.0, -1.5, -6.0, -2.0], z_scale=0.3)),
    Case("3 rows in 3-D (rows = dimension), wᵀu = 0.5, -4, 2",
         lambda: _rows_with_wu(3, 3, seed=880, wu=[0.5, -4.0, 2.0], z_scale=1.5)),
    Case("batch of 1 in 5-D, wᵀu = -2.5", lambda: _rows_with_wu(1, 5, seed=890, wu=[-2.5])),
    Case("float32, 4 rows in 2-D, wᵀu = 1, -0.5, -2, 3",
         lambda: _rows_with_wu(4, 2, seed=900, wu=[1.0, -0.5, -2.0, 3.0], dtype=torch.float32)),
    Case("float32, an encoder output with wᵀu = 200 (exp(200) overflows float32)",
         lambda: _rows_with_wu(2, 2, seed=905, wu=[200.0, 150.0], dtype=torch.float32, z_scale=0.5)),
    Case("large |wᵀz + b| (tanh saturated), 3 rows in 2-D",
         lambda: {"z": randn(3, 2, seed=910) * 15, "u": randn(3, 2, seed=911), "w": randn(3, 2, seed=912) * 4,
                  "b": randn(3, seed=913)}),
    Case("encoder outputs that require grad (as in training), 4 rows in 2-D, wᵀu = 0.5, -3, 1, -1.2",
         lambda: {k: v.requires_grad_() for k, v in
                  _rows_with_wu(4, 2, seed=915, wu=[0.5, -3.0, 1.0, -1.2]).items()}),
]


def _planar_gradients(fn: Any, z: Tensor, u: Tensor, w: Tensor, b: Tensor) -> tuple[bool, bool, bool]:
    """Run the layer on copies of the inputs that require grad, backpropagate the sum of both outputs and
    return whether u, w and b received a non-zero gradient: the encoder outputs u, w, b, and a layer that
    cuts one of them from the graph computes the right values while the encoder never learns it. (An
    in-place edit is graded by the value check, not again here: the layer gets clones.)"""
    params = [t.detach().clone().requires_grad_() for t in (u, w, b)]
    x, logdet = fn(z.detach().clone(), *params)
    total = x.sum() + logdet.sum()
    if total.requires_grad:
        total.backward()
    return tuple(p.grad is not None and bool((p.grad != 0).any()) for p in params)


PLANAR_TRAIN_CASES = [PLANAR_CASES[1], PLANAR_CASES[2], PLANAR_CASES[4]]

PLANAR_TRAIN_MISTAKES = [
    Mistake("û detached from u (the encoder's u never trains)",
            "the values are right, but no gradient reaches u: `.detach()`, `.data` or `torch.no_grad()` around û "
            "cut it from the graph, so training never updates the encoder's u — compute û from u inside the graph",
            lambda ref, kw: (False, True, True)),
]


def _wrong_u_hat_rows(u: Tensor, w: Tensor, *, norm_squared: bool = True, softplus: bool = True) -> Tensor:
    """A mistaken û per row: ‖w‖ for ‖w‖² (``norm_squared=False``) or log(1 + exp) for softplus."""
    wu = (w * u).sum(-1, keepdim=True)
    m = -1 + (F.softplus(wu) if softplus else torch.log(1 + torch.exp(wu)))
    norm = (w * w).sum(-1, keepdim=True) if norm_squared else w.norm(dim=-1, keepdim=True)
    return u + (m - wu) * w / norm


def _u_hat_rows(ref: KeyRef, u: Tensor, w: Tensor) -> Tensor:
    """Lesson 05's û, row by row."""
    return torch.stack([ref.lesson_05.planar_u_hat(u_i, w_i) for u_i, w_i in zip(u, w, strict=True)])


def _planar_rows(ref: KeyRef, z: Tensor, u: Tensor, w: Tensor, b: Tensor, *, dh: str = "sech2",
                 keep_abs: bool = False) -> tuple[Tensor, Tensor]:
    """Lesson 05's planar layer row by row with the given (already final) ``u``.

    Its log-det is log|1 + h'·wᵀu|; ``keep_abs=False`` drops the abs (NaN where a raw-u layer folds), and
    ``dh="tanh"`` puts tanh in place of h' = 1 - tanh² (both the student's direct formula).
    """
    rows = [ref.lesson_05.planar_forward(z[i:i + 1], u[i], w[i], b[i]) for i in range(z.shape[0])]
    x, logdet = torch.cat([r[0] for r in rows]), torch.cat([r[1] for r in rows])
    if dh == "sech2" and keep_abs:
        return x, logdet
    h = torch.tanh((w * z).sum(-1) + b)
    slope = h if dh == "tanh" else 1 - h**2
    bracket = 1 + slope * (w * u).sum(-1)
    return x, torch.log(bracket.abs() if keep_abs else bracket)


def _planar_mistake(ref: KeyRef, kw: Mapping[str, Tensor], **how: Any) -> tuple[Tensor, Tensor]:
    u_hat = how.pop("u_hat", "right")
    u = kw["u"]
    if u_hat == "right":
        u = _u_hat_rows(ref, kw["u"], kw["w"])
    elif u_hat == "norm":
        u = _wrong_u_hat_rows(kw["u"], kw["w"], norm_squared=False)
    elif u_hat == "log1p_exp":
        u = _wrong_u_hat_rows(kw["u"], kw["w"], softplus=False)
    return _planar_rows(ref, kw["z"], u, kw["w"], kw["b"], **how)


_FORGOT_U_HAT_HINT = ("the encoder can output any u, so each row must use û = u + (m(wᵀu) - wᵀu)·w/‖w‖² with "
                      "m(a) = -1 + softplus(a) (lesson 05); with the raw u a row with wᵀu < -1 folds space and its "
                      "log-det is the log of a negative number")

PLANAR_MISTAKES = [
    Mistake("û forgotten (raw u used)", _FORGOT_U_HAT_HINT, lambda ref, kw: _planar_mistake(ref, kw, u_hat="raw")),
    Mistake("û forgotten (raw u used)", _FORGOT_U_HAT_HINT,
            lambda ref, kw: _planar_mistake(ref, kw, u_hat="raw", keep_abs=True)),
    Mistake("‖w‖ instead of ‖w‖² in û",
            "û = u + (m(wᵀu) - wᵀu)·w/‖w‖², with the squared norm of each row's w, so that wᵀû = m(wᵀu) > -1",
            lambda ref, kw: _planar_mistake(ref, kw, u_hat="norm")),
    Mistake("log(1 + exp(·)) instead of softplus in û",
            "log(1 + exp(a)) overflows to inf for a > 88 in float32, and an encoder can output such wᵀu; "
            "torch.nn.functional.softplus is the same function without the overflow",
            lambda ref, kw: _planar_mistake(ref, kw, u_hat="log1p_exp")),
    Mistake("tanh instead of its derivative",
            "the Jacobian of each row is I + h'(wᵀz + b)·û wᵀ, so the log-det needs h' = 1 - tanh², not tanh",
            lambda ref, kw: _planar_mistake(ref, kw, dh="tanh")),
    Mistake("û used in the log-det but the raw u in the map",
            "x = z + û·tanh(wᵀz + b): the layer whose log-det you return must be the layer you apply",
            lambda ref, kw: (_planar_rows(ref, kw["z"], kw["u"], kw["w"], kw["b"], keep_abs=True)[0],
                             ref.amortized_planar_forward(**kw)[1])),
]


def _flow_inputs(n: int, K: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    return {"z0": randn(n, d, seed=seed).to(dtype), "u": (randn(n, K, d, seed=seed + 1) * 1.2).to(dtype),
            "w": (randn(n, K, d, seed=seed + 2) * 1.2).to(dtype), "b": (randn(n, K, seed=seed + 3) * 0.5).to(dtype)}


FLOW_CASES = [
    Case("K = 3 layers on 4 examples in 2-D", lambda: _flow_inputs(4, 3, 2, seed=920)),
    Case("K = 1 layer, batch of 1 in 3-D", lambda: _flow_inputs(1, 1, 3, seed=930)),
    Case("K = 0 layers (the Gaussian VAE): the identity, log-det 0", lambda: _flow_inputs(3, 0, 2, seed=940)),
    Case("n = K = d = 2 (examples, layers and dimensions all of size 2)", lambda: _flow_inputs(2, 2, 2, seed=950)),
    Case("K = 5 layers on 6 examples in 2-D, float32", lambda: _flow_inputs(6, 5, 2, seed=960, dtype=torch.float32)),
]


def _flow_with(ref: KeyRef, kw: Mapping[str, Tensor], order: list[int], *, last_only: bool = False,
               index_examples: bool = False) -> tuple[Tensor, Tensor]:
    z, total = kw["z0"], torch.zeros(kw["z0"].shape[0], dtype=kw["z0"].dtype)
    for k in order:
        params = (kw["u"][k], kw["w"][k], kw["b"][k]) if index_examples else (kw["u"][:, k], kw["w"][:, k],
                                                                               kw["b"][:, k])
        z, logdet = ref.amortized_planar_forward(z, *params)
        total = logdet if last_only else total + logdet
    return z, total


FLOW_MISTAKES = [
    Mistake("only the last layer's log-det",
            "log q_K subtracts the log-dets of ALL K layers: keep a running total, Σ_k log|det ∂f_k/∂z_{k-1}|",
            lambda ref, kw: _flow_with(ref, kw, list(range(kw["u"].shape[1])), last_only=True)),
    Mistake("layers applied in reverse order",
            "layer 1 acts first: z_K = f_K(…f_2(f_1(z_0))), with f_k's parameters u[:, k-1], w[:, k-1], b[:, k-1]",
            lambda ref, kw: _flow_with(ref, kw, list(range(kw["u"].shape[1]))[::-1])),
    Mistake("layer k's parameters taken from example k (u[k] instead of layer k's column)",
            "u has shape (n, K, d): u[:, k] is layer k's parameters for every example; u[k] is all K layers of "
            "example k",
            lambda ref, kw: _flow_with(ref, kw, list(range(kw["u"].shape[1])), index_examples=True)),
    Mistake("û forgotten (raw u used)", _FORGOT_U_HAT_HINT,
            lambda ref, kw: _raw_flow(ref, kw)),
]


def _raw_flow(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    z, total = kw["z0"], torch.zeros(kw["z0"].shape[0], dtype=kw["z0"].dtype)
    for k in range(kw["u"].shape[1]):
        z, logdet = _planar_rows(ref, z, kw["u"][:, k], kw["w"][:, k], kw["b"][:, k])
        total = total + logdet
    return z, total

# --- the ELBO from its pieces ------------------------------------------------------------------------------------


def _exact_posterior(S: int, xs: list[float], seed: int) -> dict[str, Tensor]:
    r"""Prior N(0, 1), likelihood N(x; z, 1): q_0 = N(0, 1) pushed through z_K = x/2 + z_0/√2 IS the posterior.

    Every sample's log weight is then log p(x) = log N(x; 0, 2), and the forward log-det is -½ log 2.
    """
    x = tensor(xs)
    z0 = randn(S, len(xs), seed=seed)
    zK = x / 2 + z0 / math.sqrt(2.0)
    normal = torch.distributions.Normal(tensor(0.0), tensor(1.0))
    return {"log_px_given_z": normal.log_prob(x - zK), "log_pz": normal.log_prob(zK), "log_q0": normal.log_prob(z0),
            "sum_logdet": torch.full((S, len(xs)), -0.5 * math.log(2.0), dtype=torch.float64)}


def _pieces(S: int, n: int, seed: int, scale: float = 1.0) -> dict[str, Tensor]:
    return {"log_px_given_z": randn(S, n, seed=seed) * 3 * scale - 20 * scale,
            "log_pz": randn(S, n, seed=seed + 1) - 2.5, "log_q0": randn(S, n, seed=seed + 2) - 1.0,
            "sum_logdet": randn(S, n, seed=seed + 3) * 1.5 + 0.7}


ELBO_CASES = [
    Case("S = 4 samples of 3 examples", lambda: _pieces(4, 3, seed=970)),
    Case("S = 1 sample of 5 examples", lambda: _pieces(1, 5, seed=975)),
    Case("S = 6 samples of 1 example", lambda: _pieces(6, 1, seed=980)),
    Case("large magnitudes (log p(x|z) ≈ -500), S = 3, n = 4", lambda: _pieces(3, 4, seed=985, scale=25.0)),
    Case("exact flow posterior of a linear-Gaussian model (S = 5, 4 examples): ELBO = log N(x; 0, 2)",
         lambda: _exact_posterior(5, [-1.0, 0.5, 2.0, 4.0], seed=990)),
]


def _elbo_with(ref: KeyRef, kw: Mapping[str, Tensor], sum_logdet: Tensor) -> Tensor:
    """The key's ELBO with ``sum_logdet`` in place of the forward log-dets."""
    return ref.flow_elbo(kw["log_px_given_z"], kw["log_pz"], kw["log_q0"], sum_logdet)


ELBO_MISTAKES = [
    Mistake("log-det added to log q_K instead of subtracted",
            "z_K = f(z_0) spreads or squeezes the samples, so log q_K(z_K|x) = log q_0(z_0|x) - "
            "Σ_k log|det ∂f_k/∂z_{k-1}|: the forward log-dets are SUBTRACTED from the density, hence ADDED to the ELBO",
            lambda ref, kw: _elbo_with(ref, kw, -kw["sum_logdet"])),
    Mistake("log-det left out",
            "without Σ_k log|det ∂f_k/∂z_{k-1}| you score the samples z_K with the density of z_0: log q_K needs the "
            "change-of-variables correction",
            lambda ref, kw: _elbo_with(ref, kw, torch.zeros_like(kw["sum_logdet"]))),
    Mistake("summed over the batch",
            "the ELBO is a bound per example: average over the S samples (dim 0) only and return shape (n,); the "
            "training loop, not this function, averages over the batch",
            lambda ref, kw: ref.flow_elbo(**kw).sum()),
    Mistake("summed over the samples instead of averaged",
            "the S samples estimate one expectation E_q[…]: average them (mean over dim 0), don't add them up",
            lambda ref, kw: ref.flow_elbo(**kw) * kw["log_q0"].shape[0]),
]

# --- the importance-weighted bound ---------------------------------------------------------------------------------


def _exact_log_weights() -> dict[str, Tensor]:
    """log w = log p(x | z) + log p(z) - log p(z | x) at draws z of the exact posterior N(x/2, 1/2): log p(x)."""
    x = tensor([0.3, -2.0, 1.0])
    z = x / 2 + randn(7, 3, seed=995) / math.sqrt(2.0)
    normal = torch.distributions.Normal(tensor(0.0), tensor(1.0))
    posterior = torch.distributions.Normal(x / 2, tensor(0.5).sqrt())
    return {"log_weights": normal.log_prob(x - z) + normal.log_prob(z) - posterior.log_prob(z)}


IWAE_CASES = [
    Case("S = 8 samples of 3 examples, log w ≈ -20 ± 3", lambda: {"log_weights": randn(8, 3, seed=1000) * 3 - 20}),
    Case("S = 1 (the bound is the log weight itself), 4 examples",
         lambda: {"log_weights": randn(1, 4, seed=1005) * 2 - 5}),
    Case("S = n = 4 (samples and examples of equal number)", lambda: {"log_weights": randn(4, 4, seed=1010) * 2 - 8}),
    Case("float32, log w ≈ -110 (e^-110 underflows float32; an MNIST-sized image has log w of -100 or less)",
         lambda: {"log_weights": (randn(16, 3, seed=1015) * 4 - 110).float()}),
    Case("float64, log w ≈ -800 (e^-800 underflows float64)", lambda: {"log_weights": randn(5, 2, seed=1020) - 800}),
    Case("S = 256 widely spread log weights (±10 nats) for 1 example",
         lambda: {"log_weights": randn(256, 1, seed=1025) * 10 - 30}),
    Case("exact flow posterior of a linear-Gaussian model: all 7 weights equal p(x), bound = log N(x; 0, 2)",
         _exact_log_weights),
]

IWAE_MISTAKES = [
    Mistake("log-mean-exp without logsumexp (underflows)",
            "exp(log w) underflows to 0 for log weights below about -103 (float32) or -745 (float64), and log 0 = "
            "-inf; torch.logsumexp(log_w, dim=0) - log S computes the same number stably",
            lambda ref, kw: torch.log(torch.exp(kw["log_weights"]).mean(0))),
    Mistake("mean of the log weights (that is the ELBO)",
            "the mean of log w is the ELBO estimate, L_1; the importance-weighted bound takes the log of the MEAN "
            "WEIGHT, log (1/S) Σ_s w_s, which is larger",
            lambda ref, kw: kw["log_weights"].mean(0)),
    Mistake("logsumexp without the -log S",
            "log (1/S) Σ_s w_s = logsumexp_s(log w_s) - log S: without -log S the 'bound' grows with S and can exceed "
            "log p(x)",
            lambda ref, kw: ref.importance_weighted_bound(**kw) + math.log(kw["log_weights"].shape[0])),
    Mistake("logsumexp over the examples instead of the samples",
            "log_weights has shape (S, n): the S samples of one example are a column, so reduce over dim 0",
            lambda ref, kw: ref.importance_weighted_bound(kw["log_weights"].T)),
    Mistake("max instead of logsumexp",
            "max_s log w_s is only a crude approximation of log Σ_s w_s (off by up to log S): use logsumexp",
            lambda ref, kw: kw["log_weights"].amax(0) - math.log(kw["log_weights"].shape[0])),
]

CHECKS = [
    Check("diagonal_normal_log_prob", cases=NORMAL_CASES,
          mistakes=NORMAL_MISTAKES),
    Check("bernoulli_log_prob", cases=BERNOULLI_CASES,
          mistakes=BERNOULLI_MISTAKES),
    Check("amortized_planar_forward", cases=PLANAR_CASES,
          mistakes=PLANAR_MISTAKES, outputs=("x", "log-det")),
    Check("amortized_planar_forward_trains", key="amortized_planar_forward", cases=PLANAR_TRAIN_CASES,
          mistakes=PLANAR_TRAIN_MISTAKES, protocol=_planar_gradients,
          outputs=("a gradient reaches u", "a gradient reaches w", "a gradient reaches b")),
    Check("amortized_planar_flow", cases=FLOW_CASES, mistakes=FLOW_MISTAKES,
          outputs=("z_K", "sum of log-dets")),
    Check("flow_elbo", cases=ELBO_CASES, mistakes=ELBO_MISTAKES),
    Check("importance_weighted_bound", cases=IWAE_CASES,
          mistakes=IWAE_MISTAKES),
    Check("quiz_08_q4"),
    Check("quiz_08_gap"),
    Check("quiz_08_prior_direction"),
    Check("quiz_08_sign"),
    Check("quiz_08_reading"),
    Check("quiz_08_collapse"),
]
