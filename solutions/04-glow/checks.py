"""Hidden checks of lesson 04, Glow (answer key: ``key.py`` beside this file, reached only through ``ref``).

Every layer is checked on images with non-square sides (so ``h·h`` or ``w·w`` cannot pass for ``h·w``), at
random non-identity parameters, and in both directions on inputs that are not each other's images (a
forward error and an inverse error are graded separately). The classes are exercised through protocols:

* :func:`_actnorm_protocol` samples before any data, initialises on a first data batch, evaluates a second
  batch and samples, then loads the state into a fresh layer and evaluates a third batch, which must *not*
  re-initialise it (the ``load_state_dict`` pitfall);
* :func:`_lu_protocol` loads seeded factors whose masked-out entries are deliberately non-zero, and counts
  calls of dense determinants while the layer runs: the LU log-det must come from the factors in
  :math:`O(C)`;
* :func:`_factor_out_protocol` wraps a fixed non-linear per-pixel flow;
* :func:`_actnorm_trains_protocol` and :func:`_lu_trains_protocol` (the checks ``ActNorm_trains`` and
  ``LUInvertible1x1Conv_trains``) evaluate a training batch data→base and report, per parameter, whether autograd
  carries a gradient to it from the points and from the log-det — what a value comparison cannot see (a
  ``torch.no_grad()`` around z, a ``.item()`` in the log-det, a plain tensor instead of an ``nn.Parameter``).
  One of their cases feeds inputs that require grad, so an in-place edit of the input raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from flowcourse_instructor.grading.spec import Case, Check, Mistake, randn, tensor

_F64 = torch.float64


def _images(batch: int, channels: int, h: int, w: int, seed: int, scale: float = 1.0,
            shift: float = 0.0) -> Tensor:
    """An image batch whose channels have different means and spreads (so per-channel statistics matter)."""
    spread = scale * torch.exp(randn(channels, seed=seed + 1)).reshape(1, -1, 1, 1)
    offset = shift + 2.0 * randn(channels, seed=seed + 2).reshape(1, -1, 1, 1)
    return randn(batch, channels, h, w, seed=seed) * spread + offset


# --- ActNorm: data-dependent initialisation ---------------------------------------------------------------


def _constant_channel() -> dict[str, Tensor]:
    x = _images(3, 3, 2, 4, seed=130)
    x[:, 1] = 0.0  # a border pixel that is 0 in every image: no spread at all
    return {"x": x}


ACTNORM_INIT_CASES = [
    Case("batch of 4 images, 3 channels, 5×3 pixels, channels with different means and spreads",
         lambda: {"x": _images(4, 3, 5, 3, seed=100)}),
    Case("batch of 1 image, 2 channels, 3×4 pixels", lambda: {"x": _images(1, 2, 3, 4, seed=110)}),
    Case("large magnitudes: values ~ 1000 ± 300, 6 images, 4 channels, 2×2 pixels",
         lambda: {"x": _images(6, 4, 2, 2, seed=120, scale=300.0, shift=1000.0)}),
    Case("a constant channel (channel 1 is 0 everywhere): σ floored at 1e-6", _constant_channel),
]


def _std(x: Tensor, dims: tuple[int, ...] = (0, 2, 3), correction: int = 0) -> Tensor:
    return x.std(dims, correction=correction)


def _with_key_bias(ref: Any, x: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """The key's bias (the mean, right in every mistake below) with a mistaken log-scale."""
    return ref.actnorm_init(x)[0], log_scale


ACTNORM_INIT_MISTAKES = [
    Mistake("Bessel-corrected standard deviation",
            "ActNorm's initial scale is the population standard deviation (divide by N, not N − 1): "
            "x.std(dims, unbiased=False), so that z has variance exactly 1 on the initialisation batch",
            lambda ref, kw: _with_key_bias(ref, kw["x"], torch.log(_std(kw["x"], correction=1).clamp_min(1e-6)))),
    Mistake("statistics per pixel instead of per channel",
            "ActNorm has ONE bias and ONE scale per channel, shared by all pixels: average over the batch AND "
            "the pixels, dims (0, 2, 3), to get tensors of shape (C,)",
            lambda ref, kw: (kw["x"].mean(0), torch.log(kw["x"].std(0, correction=0).clamp_min(1e-6)))),
    Mistake("scale instead of log-scale",
            "return log σ (the layer stores the LOG-scale, x = z·exp(log_scale) + bias), not σ itself",
            lambda ref, kw: _with_key_bias(ref, kw["x"], ref.actnorm_init(kw["x"])[1].exp())),
    Mistake("log-variance instead of log-standard-deviation",
            "the scale is the standard deviation σ, so log_scale = log σ = ½·log σ², not log σ²",
            lambda ref, kw: _with_key_bias(ref, kw["x"], torch.log(kw["x"].var((0, 2, 3), correction=0)))),
    Mistake("no floor for a channel without spread",
            "a channel that is constant in the batch has σ = 0 and log 0 = −inf: floor σ at 1e-6 "
            "(σ.clamp_min(1e-6)) before the log",
            lambda ref, kw: _with_key_bias(ref, kw["x"], torch.log(_std(kw["x"])))),
]


def _actnorm_inputs(channels: int, h: int, w: int, batch: int, seed: int) -> dict[str, Any]:
    return {"channels": channels,
            "z": randn(batch, channels, h, w, seed=seed),
            "x_init": _images(batch + 2, channels, h, w, seed=seed + 10),
            "x": _images(batch, channels, h, w, seed=seed + 20),
            "x_new": _images(batch + 1, channels, h, w, seed=seed + 30, scale=3.0, shift=5.0)}


ACTNORM_CASES = [
    Case("3 channels, 4×5 pixels, batches of 2 to 4", lambda: _actnorm_inputs(3, 4, 5, 2, seed=200)),
    Case("1 channel, 8×8 pixels (a digit-sized image), batches of 1 to 3",
         lambda: _actnorm_inputs(1, 8, 8, 1, seed=210)),
    Case("4 channels, 2×3 pixels, batches of 5 to 7", lambda: _actnorm_inputs(4, 2, 3, 5, seed=220)),
]


def _actnorm_protocol(cls: Any, channels: int, z: Tensor, x_init: Tensor, x: Tensor,
                      x_new: Tensor) -> tuple[Tensor, ...]:
    """Sample before any data, initialise on ``x_init``, evaluate ``x`` and sample, then load the state
    into a fresh layer and evaluate ``x_new`` (which must not re-initialise it)."""
    layer = cls(channels).double()
    x_before, _ = layer(z)
    z_init, ld_init = layer.inverse(x_init)
    z_x, ld_x = layer.inverse(x)
    x_z, ld_z = layer(z)
    fresh = cls(channels).double()
    fresh.load_state_dict(layer.state_dict())
    z_new, _ = fresh.inverse(x_new)
    return x_before, z_init, ld_init, z_x, ld_x, x_z, ld_z, z_new


ACTNORM_OUTPUTS = ("forward(z) before any data (must be the identity: no initialisation when sampling)",
                   "inverse(x_init), the first data batch (initialises)", "its log-det",
                   "inverse(x), a later batch", "its log-det", "forward(z) after the initialisation", "its log-det",
                   "inverse(x_new) in a fresh layer after load_state_dict (must keep the loaded parameters)")


def _actnorm_mistaken(ref: Any, kw: Mapping[str, Any], *, pixels: bool = True, reinit_on_load: bool = False,
                      init_every_call: bool = False) -> tuple[Tensor, ...]:
    """The protocol's outputs from the key's :class:`ActNorm`, with one classic mistake switched on."""
    channels, z, x, x_new = kw["channels"], kw["z"], kw["x"], kw["x_new"]
    with torch.no_grad():
        out = list(_actnorm_protocol(ref.ActNorm, **kw))
        if init_every_call:  # every inverse call initialises on its own batch; sampling uses the last one's
            layer = ref.ActNorm(channels).double()
            out[3:5] = layer.inverse(x)
            out[5:7] = layer(z)
        if reinit_on_load or init_every_call:  # the fresh layer initialises again on x_new
            out[7] = ref.ActNorm(channels).double().inverse(x_new)[0]
        if not pixels:  # the log-dets counted once instead of at each of the h·w pixels
            for i in (2, 4, 6):
                out[i] = out[i] / (x.shape[2] * x.shape[3])
    return tuple(out)


ACTNORM_MISTAKES = [
    Mistake("ActNorm re-initialised after load_state_dict",
            "the flag `initialized` must be a registered BUFFER (self.register_buffer('initialized', "
            "torch.tensor(False))): a plain Python attribute is not saved in state_dict, so a fresh layer that "
            "loads trained parameters initialises again on its first batch and overwrites them (nflows #4)",
            lambda ref, kw: _actnorm_mistaken(ref, kw, reinit_on_load=True)),
    Mistake("ActNorm initialised on every call",
            "the data-dependent initialisation runs ONCE, on the first data batch; afterwards bias and "
            "log_scale are ordinary parameters — set the flag after initialising and check it",
            lambda ref, kw: _actnorm_mistaken(ref, kw, init_every_call=True)),
    Mistake("missing h·w factor",
            "the same per-channel scale acts at every one of the h·w pixels, so the log-det is "
            "h·w·Σ_c log_scale_c, not Σ_c log_scale_c",
            lambda ref, kw: _actnorm_mistaken(ref, kw, pixels=False)),
]


# --- parameters that must train ---------------------------------------------------------------------------


def _gradient_flags(layer: nn.Module, z: Any, logdet: Any, from_points: tuple[str, ...], from_logdet: tuple[str, ...],
                    seed: int) -> tuple[bool, ...]:
    """Whether autograd carries a gradient to each parameter named in ``from_points`` from the points ``z`` (a fixed
    random weighting of them), then to each named in ``from_logdet`` from the log-det. A tensor that is not a
    registered parameter of ``layer`` never trains: False."""
    registered = dict(layer.named_parameters())
    points = (randn(*z.shape, seed=seed, dtype=z.dtype) * z).sum() if isinstance(z, Tensor) else None
    total = logdet.sum() if isinstance(logdet, Tensor) else None
    flags = []
    for objective, names in ((points, from_points), (total, from_logdet)):
        for name in names:
            param = registered.get(name)
            if param is None or objective is None or not objective.requires_grad:
                flags.append(False)
                continue
            (grad,) = torch.autograd.grad(objective, param, retain_graph=True, allow_unused=True)
            flags.append(grad is not None and bool(grad.abs().sum() > 0))
    return tuple(flags)


def _gradient_outputs(from_points: tuple[str, ...], from_logdet: tuple[str, ...]) -> tuple[str, ...]:
    return (*(f"{name} receives a gradient from z = inverse(x) (True: it trains)" for name in from_points),
            *(f"{name} receives a gradient from inverse's log-det" for name in from_logdet))


_ACTNORM_PARAMETERS = ("bias", "log_scale")


def _actnorm_trains_inputs(channels: int, h: int, w: int, batch: int, seed: int,
                           requires_grad: bool = False) -> dict[str, Any]:
    x_init, x = _images(batch + 2, channels, h, w, seed=seed), _images(batch, channels, h, w, seed=seed + 10)
    if requires_grad:
        x_init.requires_grad_(True)
        x.requires_grad_(True)
    return {"channels": channels, "x_init": x_init, "x": x}


ACTNORM_TRAINS_CASES = [
    Case("3 channels, 4×5 pixels: a first batch initialises, a second is a training batch",
         lambda: _actnorm_trains_inputs(3, 4, 5, 2, seed=250)),
    Case("1 channel, 8×8 pixels (a digit-sized image)", lambda: _actnorm_trains_inputs(1, 8, 8, 3, seed=260)),
    Case("2 channels, 3×2 pixels, data batches that require grad (x.requires_grad_(): an in-place edit raises)",
         lambda: _actnorm_trains_inputs(2, 3, 2, 2, seed=270, requires_grad=True)),
]


def _actnorm_trains_protocol(cls: Any, channels: int, x_init: Tensor, x: Tensor) -> tuple[bool, ...]:
    """Initialise ``cls(channels)`` on ``x_init``, evaluate the training batch ``x`` data→base (the direction of
    the log-likelihood) and report which parameters its points and its log-det reach by autograd."""
    layer = cls(channels).double()
    layer.inverse(x_init)
    z, logdet = layer.inverse(x)
    return _gradient_flags(layer, z, logdet, _ACTNORM_PARAMETERS, ("log_scale",), seed=280)


ACTNORM_TRAINS_MISTAKES = [
    Mistake("normalisation inside torch.no_grad()",
            "only the initialisation belongs in the `with torch.no_grad():` block; compute z after it (dedent it): "
            "under no_grad, z carries no gradient, so training never moves bias and log_scale after their "
            "initial values",
            lambda ref, kw: (False, False, True)),
    Mistake("log-det detached from log_scale",
            "build the log-det from the tensor self.log_scale (h·w·self.log_scale.sum(), then .expand(batch)): "
            "`.item()`, `float(…)` or `torch.full(…, value)` cut it out of the graph, so the log-det term of the "
            "loss never trains log_scale",
            lambda ref, kw: (True, True, False)),
    Mistake("bias and log_scale not registered as parameters",
            "wrap them in nn.Parameter(torch.zeros(channels)): a plain tensor, even with requires_grad=True, is not "
            "in layer.parameters(), so the optimiser never updates it (and state_dict does not save it)",
            lambda ref, kw: (False, False, False)),
]


# --- the log-determinants of a 1x1 convolution ------------------------------------------------------------


def _negative_det(c: int, seed: int) -> Tensor:
    W = randn(c, c, seed=seed)  # noqa: N806 - the paper's name
    if torch.linalg.det(W) > 0:
        W = W[[1, 0, *range(2, c)]]  # noqa: N806 - swapping two rows flips the sign of det W
    return W


CONV_LOGDET_CASES = [
    Case("practice problem 4 as a dense W = diag(2, 0.5, 0.8), 32×32 pixels",
         lambda: {"W": torch.diag(tensor([2.0, 0.5, 0.8])), "h": 32, "w": 32}),
    Case("a random 4×4 W with det W < 0, 3×5 pixels", lambda: {"W": _negative_det(4, seed=300), "h": 3, "w": 5}),
    Case("a random 6×6 W, 1×7 pixels", lambda: {"W": randn(6, 6, seed=310), "h": 1, "w": 7}),
    Case("one channel, W = (−0.5), 2×2 pixels", lambda: {"W": tensor([[-0.5]]), "h": 2, "w": 2}),
]


CONV_LOGDET_MISTAKES = [
    Mistake("missing h·w factor",
            "the same W acts on the channel vector of EVERY pixel: the Jacobian is block-diagonal with h·w "
            "copies of W, so log|det| = h·w·log|det W| — counting it once is off by the factor h·w",
            lambda ref, kw: ref.conv1x1_logdet(kw["W"], 1, 1)),
    Mistake("log of det without abs",
            "det W may be negative (W can reflect): the volume factor is |det W|, so use slogdet's logabsdet "
            "— log(det W) is NaN when det W < 0",
            lambda ref, kw: kw["h"] * kw["w"] * torch.log(torch.linalg.det(kw["W"]))),
    Mistake("counted once per channel as well (h·w·C)",
            "log|det W| already covers all C channels of a pixel: multiply by the number of pixels h·w only",
            lambda ref, kw: kw["W"].shape[0] * ref.conv1x1_logdet(kw["W"], kw["h"], kw["w"])),
]

_PRACTICE_4 = tensor([2.0, 0.5, 0.8])

LU_LOGDET_CASES = [
    Case("practice problem 4: diag U = (2, 0.5, 0.8), 32×32 pixels",
         lambda: {"log_abs_diag_u": torch.log(_PRACTICE_4), "h": 32, "w": 32}),
    Case("6 channels, random log|U_ii|, 3×5 pixels", lambda: {"log_abs_diag_u": randn(6, seed=320), "h": 3, "w": 5}),
    Case("one channel, log|U_11| = −1.3, 1×1 pixel", lambda: {"log_abs_diag_u": tensor([-1.3]), "h": 1, "w": 1}),
    Case("64 channels, 16×16 pixels", lambda: {"log_abs_diag_u": 0.2 * randn(64, seed=330), "h": 16, "w": 16}),
]

LU_LOGDET_MISTAKES = [
    Mistake("missing h·w factor",
            "Σ log|U_ii| is log|det W| for ONE pixel; the 1×1 convolution applies W at all h·w pixels: "
            "multiply by h·w",
            lambda ref, kw: ref.lu_logdet(kw["log_abs_diag_u"], 1, 1)),
    Mistake("mean instead of sum over the diagonal",
            "det U is the PRODUCT of the diagonal, so its log is the SUM of log|U_ii|, not their mean",
            lambda ref, kw: ref.lu_logdet(kw["log_abs_diag_u"], kw["h"], kw["w"]) / kw["log_abs_diag_u"].numel()),
    Mistake("log taken twice",
            "the argument already holds log|U_ii|: sum it, do not take its log again",
            lambda ref, kw: kw["h"] * kw["w"] * torch.log(kw["log_abs_diag_u"].abs()).sum()),
]

PRACTICE_4_MISTAKES = [
    Mistake("missing h·w factor",
            "log|det W| = log 2 + log 0.5 + log 0.8 ≈ −0.2231 is the log-det at ONE pixel; the image has "
            "32·32 = 1024 pixels", lambda ref, kw: ref.practice_4_logdet_forward / 1024),
    Mistake("h instead of h·w", "the image has h·w = 32·32 = 1024 pixels, not 32",
            lambda ref, kw: ref.practice_4_logdet_forward / 32),
    Mistake("counted once per channel as well (h·w·C)",
            "log|det W| already covers the 3 channels: multiply by h·w = 1024 only",
            lambda ref, kw: 3 * ref.practice_4_logdet_forward),
]


# --- the LU-parametrised 1x1 convolution --------------------------------------------------------------------


def _lu_state(c: int, seed: int, junk: float = 1.0) -> dict[str, Tensor]:
    """Seeded factors in the layer's parametrisation; the masked-out entries hold ``junk``-sized noise."""
    perm = torch.randperm(c, generator=torch.Generator().manual_seed(seed))
    signs = torch.where(randn(c, seed=seed + 1) < 0, -1.0, 1.0).to(_F64)
    signs[0] = -1.0  # at least one negative U_ii: sign(s) matters
    lower = torch.tril(0.6 * randn(c, c, seed=seed + 2), -1) + junk * torch.triu(randn(c, c, seed=seed + 3))
    upper = torch.triu(0.6 * randn(c, c, seed=seed + 4), 1) + junk * torch.tril(randn(c, c, seed=seed + 5))
    return {"P": torch.eye(c, dtype=_F64)[perm], "sign_s": signs, "lower": lower, "upper": upper,
            "log_abs_s": 0.5 * randn(c, seed=seed + 6)}


def _lu_inputs(c: int, h: int, w: int, batch: int, seed: int) -> dict[str, Any]:
    return {"channels": c, "state": _lu_state(c, seed), "z": randn(batch, c, h, w, seed=seed + 10),
            "x": 2.0 * randn(batch, c, h, w, seed=seed + 11)}


LU_CASES = [
    Case("3 channels, 4×5 pixels, batch of 2", lambda: _lu_inputs(3, 4, 5, 2, seed=400)),
    Case("5 channels, 3×2 pixels, batch of 3", lambda: _lu_inputs(5, 3, 2, 3, seed=410)),
    Case("batch of 1, 2 channels, 2×2 pixels", lambda: _lu_inputs(2, 2, 2, 1, seed=420)),
    Case("16 channels, 4×4 pixels, batch of 2", lambda: _lu_inputs(16, 4, 4, 2, seed=430)),
]

_DENSE_DETERMINANTS = ((torch.linalg, "slogdet"), (torch.linalg, "det"), (torch, "det"), (torch, "logdet"),
                       (torch, "slogdet"), (torch.Tensor, "det"), (torch.Tensor, "logdet"), (torch.Tensor, "slogdet"))
_NO_DENSE = "log-det from the factors (no dense determinant)"
_DENSE = "called a dense determinant (slogdet/det) of W"


@contextmanager
def _counting_dense_determinants() -> Iterator[list[int]]:
    """Count calls of torch's dense determinants inside the block (restored afterwards, even on error)."""
    calls = [0]
    saved = [(owner, name, getattr(owner, name)) for owner, name in _DENSE_DETERMINANTS]

    def counted(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return fn(*args, **kwargs)
        return wrapper

    try:
        for owner, name, fn in saved:
            setattr(owner, name, counted(fn))
        yield calls
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def _lu_protocol(cls: Any, channels: int, state: Mapping[str, Tensor], z: Tensor,
                 x: Tensor) -> tuple[Any, ...]:
    """Build ``cls(channels)``, load the factors ``state``; return ``forward(z)``, ``inverse(x)`` and whether
    a dense determinant was computed on the way."""
    layer = cls(channels).to(_F64)
    layer.load_state_dict(dict(state))
    with _counting_dense_determinants() as calls:
        x_out, logdet = layer(z)
        z_out, logdet_inverse = layer.inverse(x)
    return x_out, logdet, z_out, logdet_inverse, _DENSE if calls[0] else _NO_DENSE


def _key_lu(ref: Any, kw: Mapping[str, Any]) -> Any:
    """The key's LU layer with the case's factors loaded."""
    layer = ref.LUInvertible1x1Conv(kw["channels"]).to(_F64)
    layer.load_state_dict(dict(kw["state"]))
    return layer


def _key_dense(ref: Any, W: Tensor) -> Any:  # noqa: N803 - the paper's name
    """The key's dense 1×1 convolution with the weight ``W``: ``forward`` applies W, ``inverse`` W⁻¹."""
    layer = ref.Invertible1x1Conv(W.shape[0]).to(_F64)
    with torch.no_grad():
        layer.weight.copy_(W)
    return layer


def _lu_mistaken(ref: Any, kw: Mapping[str, Any], *, pixels: bool = True, swap: bool = False,
                 transpose_inverse: bool = False) -> tuple[Any, ...]:
    """The protocol's outputs from the key's LU layer, with one classic mistake switched on."""
    z, x = kw["z"], kw["x"]
    with torch.no_grad():
        layer = _key_lu(ref, kw)
        x_out, logdet = layer.inverse(z) if swap else layer(z)
        z_out, logdet_inverse = layer(x) if swap else layer.inverse(x)
        if transpose_inverse:
            z_out = _key_dense(ref, layer.weight().T)(x)[0]
        if not pixels:  # Σ log|s_i| counted once instead of at each of the h·w pixels
            once = ref.lu_logdet(layer.log_abs_s, 1, 1)
            logdet, logdet_inverse = once.expand(z.shape[0]), -once.expand(x.shape[0])
    return x_out, logdet, z_out, logdet_inverse, _NO_DENSE


def _with_factors(ref: Any, kw: Mapping[str, Any], *, l_diagonal: bool = False, u_diagonal: bool = False,
                  signs: bool = True) -> tuple[Any, ...]:
    """The key's log-dets, but W built from mistaken factors (the key's factors plus the mistake's change)."""
    z, x = kw["z"], kw["x"]
    with torch.no_grad():
        layer = _key_lu(ref, kw)
        P, L, U = layer.factors()  # noqa: N806
        if l_diagonal:  # the diagonal of `lower` kept: L's diagonal is 1 + lower_ii
            L = L + torch.diag(torch.diagonal(layer.lower))  # noqa: N806
        if u_diagonal:  # the diagonal of `upper` added to sign_s·exp(log_abs_s)
            U = U + torch.diag(torch.diagonal(layer.upper))  # noqa: N806
        if not signs:  # U_ii = exp(log_abs_s_i), the fixed signs dropped
            U = U + torch.diag(torch.diagonal(U).abs() - torch.diagonal(U))  # noqa: N806
        dense = _key_dense(ref, P @ L @ U)
        return dense(z)[0], layer(z)[1], dense.inverse(x)[0], layer.inverse(x)[1], _NO_DENSE


LU_MISTAKES = [
    Mistake("dense slogdet for W",
            "the point of W = PLU is that log|det W| = Σ log|U_ii| = Σ log|s_i| costs O(C): calling slogdet/det "
            "on W costs O(C³) and, in float32 for an ill-conditioned W, loses accuracy that h·w then multiplies",
            lambda ref, kw: (*_lu_protocol(ref.LUInvertible1x1Conv, **kw)[:4], _DENSE)),
    Mistake("missing h·w factor",
            "Σ log|s_i| is log|det W| at one pixel; the layer applies W at all h·w pixels: "
            "log-det = h·w·Σ log|s_i|",
            lambda ref, kw: _lu_mistaken(ref, kw, pixels=False)),
    Mistake("forward applies W⁻¹ (direction swapped)",
            "forward is base→data and applies W itself, x = W z, with log-det +h·w·Σ log|s|; the inverse "
            "applies W⁻¹ (normflows' Invertible1x1Conv.forward applies W⁻¹ — a name that lies)",
            lambda ref, kw: _lu_mistaken(ref, kw, swap=True)),
    Mistake("inverse applies Wᵀ",
            "W starts as a rotation, where W⁻¹ = Wᵀ, but training moves it away: undo W with W⁻¹ = U⁻¹L⁻¹Pᵀ "
            "(triangular solves), not with its transpose",
            lambda ref, kw: _lu_mistaken(ref, kw, transpose_inverse=True)),
    Mistake("L's diagonal not fixed at 1",
            "L is UNIT lower-triangular: take the strictly lower part, torch.tril(lower, -1), and add the "
            "identity — otherwise det L ≠ 1 and Σ log|s_i| is no longer log|det W|",
            lambda ref, kw: _with_factors(ref, kw, l_diagonal=True)),
    Mistake("U's diagonal taken from `upper`",
            "U's strictly upper part comes from torch.triu(upper, 1); its diagonal is sign_s·exp(log_abs_s), "
            "which keeps every U_ii away from 0",
            lambda ref, kw: _with_factors(ref, kw, u_diagonal=True)),
    Mistake("sign of U_ii ignored",
            "U_ii = sign_s_i·exp(log_abs_s_i): without the fixed signs, W is a different matrix (its log|det| is "
            "the same, its action is not)",
            lambda ref, kw: _with_factors(ref, kw, signs=False)),
]


_LU_PARAMETERS = ("lower", "upper", "log_abs_s")


def _lu_trains_inputs(c: int, h: int, w: int, batch: int, seed: int, requires_grad: bool = False) -> dict[str, Any]:
    x = 2.0 * randn(batch, c, h, w, seed=seed + 11)
    if requires_grad:
        x.requires_grad_(True)
    return {"channels": c, "state": _lu_state(c, seed), "x": x}


LU_TRAINS_CASES = [
    Case("3 channels, 4×5 pixels, batch of 2", lambda: _lu_trains_inputs(3, 4, 5, 2, seed=440)),
    Case("6 channels, 2×2 pixels, batch of 3", lambda: _lu_trains_inputs(6, 2, 2, 3, seed=450)),
    Case("2 channels, 3×3 pixels, a data batch that requires grad (x.requires_grad_())",
         lambda: _lu_trains_inputs(2, 3, 3, 2, seed=460, requires_grad=True)),
]


def _lu_trains_protocol(cls: Any, channels: int, state: Mapping[str, Tensor], x: Tensor) -> tuple[bool, ...]:
    """Load the factors ``state`` into ``cls(channels)``, evaluate ``x`` data→base and report which parameters
    its points and its log-det reach by autograd."""
    layer = cls(channels).to(_F64)
    layer.load_state_dict(dict(state))
    z, logdet = layer.inverse(x)
    return _gradient_flags(layer, z, logdet, _LU_PARAMETERS, ("log_abs_s",), seed=470)


LU_TRAINS_MISTAKES = [
    Mistake("W⁻¹ computed outside autograd",
            "the inverse matrix must stay in the graph: build W⁻¹ from the factors with torch operations and no "
            "`torch.no_grad()`, `.detach()`, `.data` or NumPy — otherwise z = W⁻¹x carries no gradient and lower, "
            "upper and log_abs_s are trained by the log-det alone (lower and upper never move)",
            lambda ref, kw: (False, False, False, True)),
    Mistake("log-det detached from log_abs_s",
            "return the log-det as a tensor built from self.log_abs_s (your lu_logdet, then .expand(batch)): "
            "`.item()`, `float(…)` or `torch.full(…, value)` cut it out of the graph, so the log-det term of the "
            "loss never trains log_abs_s",
            lambda ref, kw: (True, True, True, False)),
]


# --- squeeze ------------------------------------------------------------------------------------------------


def _arange_image(*shape: int) -> Tensor:
    return torch.arange(math.prod(shape), dtype=_F64).reshape(shape)


SQUEEZE_CASES = [
    Case("one 1×4×4 image holding 0, 1, …, 15 (row by row)", lambda: {"x": _arange_image(1, 1, 4, 4)}),
    Case("batch of 2, 3 channels, 4×6 pixels", lambda: {"x": randn(2, 3, 4, 6, seed=500)}),
    Case("batch of 1, 2 channels, 2×2 pixels", lambda: {"x": randn(1, 2, 2, 2, seed=510)}),
    Case("batch of 3, 1 channel, 8×8 pixels (digit-sized)", lambda: {"x": randn(3, 1, 8, 8, seed=520)}),
]

UNSQUEEZE_CASES = [
    Case("one 4×2×2 image holding 0, 1, …, 15", lambda: {"x": _arange_image(1, 4, 2, 2)}),
    Case("batch of 2, 12 channels, 2×3 pixels", lambda: {"x": randn(2, 12, 2, 3, seed=530)}),
    Case("batch of 1, 8 channels, 1×1 pixel", lambda: {"x": randn(1, 8, 1, 1, seed=540)}),
    Case("batch of 3, 4 channels, 4×4 pixels", lambda: {"x": randn(3, 4, 4, 4, seed=550)}),
]


def _channel_order(c: int, order: str) -> list[int]:
    """For each channel ``4c + 2i + j`` of the key's :func:`squeeze` (block position ``(i, j)`` of channel
    ``c``), the channel where a mistaken ordering puts it: ``"j-major"`` 4c + 2j + i, ``"subpixel-major"``
    (2i + j)·C + c."""
    where = {"j-major": lambda ch, i, j: 4 * ch + 2 * j + i, "subpixel-major": lambda ch, i, j: (2 * i + j) * c + ch}
    return [where[order](ch, i, j) for ch in range(c) for i in range(2) for j in range(2)]


def _squeezed_as(ref: Any, x: Tensor, order: str) -> Tensor:
    """The key's squeeze of ``x`` with its channels laid out in the mistaken ``order``."""
    s = ref.squeeze(x)
    out = torch.empty_like(s)
    out[:, _channel_order(x.shape[1], order)] = s
    return out


def _unsqueezed_as(ref: Any, s: Tensor, order: str) -> Tensor:
    """The key's unsqueeze of ``s`` read as if its channels were laid out in the mistaken ``order``."""
    return ref.unsqueeze(s[:, _channel_order(s.shape[1] // 4, order)])


SQUEEZE_MISTAKES = [
    Mistake("plain reshape instead of 2×2 blocks",
            "x.reshape(b, 4C, H/2, W/2) regroups whole rows, not neighbouring pixels: cut each channel into 2×2 "
            "blocks (reshape to (b, C, H/2, 2, W/2, 2)), move the two block axes next to the channel axis "
            "(permute), then merge",
            lambda ref, kw: kw["x"].reshape(kw["x"].shape[0], -1, kw["x"].shape[2] // 2, kw["x"].shape[3] // 2)),
    Mistake("column offset before row offset (4c + 2j + i)",
            "within a block, the row offset i comes first: out[b, 4c + 2i + j, h, w] = x[b, c, 2h + i, 2w + j]",
            lambda ref, kw: _squeezed_as(ref, kw["x"], "j-major")),
    Mistake("block position before channel ((2i + j)·C + c)",
            "the four pixels of one channel's block stay together: channel c becomes channels 4c … 4c + 3, "
            "out[b, 4c + 2i + j, h, w] = x[b, c, 2h + i, 2w + j]",
            lambda ref, kw: _squeezed_as(ref, kw["x"], "subpixel-major")),
]

UNSQUEEZE_MISTAKES = [
    Mistake("plain reshape instead of 2×2 blocks",
            "x.reshape(b, C/4, 2H, 2W) is not the inverse of squeeze: split the channels into (C/4, 2, 2), move "
            "the two block axes next to the pixel axes (permute), then merge",
            lambda ref, kw: kw["x"].reshape(kw["x"].shape[0], -1, kw["x"].shape[2] * 2, kw["x"].shape[3] * 2)),
    Mistake("column offset before row offset (4c + 2j + i)",
            "undo squeeze's ordering exactly: x[b, c, 2h + i, 2w + j] = s[b, 4c + 2i + j, h, w]",
            lambda ref, kw: _unsqueezed_as(ref, kw["x"], "j-major")),
    Mistake("block position before channel ((2i + j)·C + c)",
            "channels 4c … 4c + 3 are the four pixels of channel c's block: x[b, c, 2h + i, 2w + j] = "
            "s[b, 4c + 2i + j, h, w]",
            lambda ref, kw: _unsqueezed_as(ref, kw["x"], "subpixel-major")),
]


def _two_way_protocol(layer: Any, z: Tensor, x: Tensor) -> tuple[Any, Any, Any, Any]:
    x_out, logdet = layer(z)
    z_out, logdet_inverse = layer.inverse(x)
    return x_out, logdet, z_out, logdet_inverse


def _squeeze_protocol(cls: Any, z: Tensor, x: Tensor) -> tuple[Any, ...]:
    """``cls()``'s ``forward(z)`` and ``inverse(x)``."""
    return _two_way_protocol(cls(), z, x)


SQUEEZE_LAYER_CASES = [
    Case("z: batch of 2, 4 channels, 4×4 pixels; x: batch of 3, 16 channels, 2×2 pixels",
         lambda: {"z": randn(2, 4, 4, 4, seed=600), "x": randn(3, 16, 2, 2, seed=601)}),
    Case("z: one 4×8×8 image; x: batch of 2, 4 channels, 4×4 pixels",
         lambda: {"z": randn(1, 4, 8, 8, seed=610), "x": randn(2, 4, 4, 4, seed=611)}),
    Case("z: batch of 2, 8 channels, 2×6 pixels; x: one 8×2×2 image",
         lambda: {"z": randn(2, 8, 2, 6, seed=620), "x": randn(1, 8, 2, 2, seed=621)}),
]


def _zeros(v: Tensor) -> Tensor:
    return v.new_zeros(v.shape[0])


SQUEEZE_LAYER_MISTAKES = [
    Mistake("Squeeze.forward un-squeezes (direction named wrongly)",
            "a layer is named after what its FORWARD (base→data) map does: Squeeze.forward is space-to-depth, "
            "(C, H, W) → (4C, H/2, W/2), and its inverse un-squeezes (normflows' Squeeze has it the other way "
            "round — a name that lies about the direction)",
            lambda ref, kw: (ref.unsqueeze(kw["z"]), _zeros(kw["z"]), ref.squeeze(kw["x"]),
                             _zeros(kw["x"]))),
]


# --- multi-scale: factor out half the channels -------------------------------------------------------------


class _PixelSinh(nn.Module):
    r"""A fixed non-linear flow on ``(C, H, W)`` images: :math:`x = \sinh(z)\,e^{a} + b` elementwise (float64).

    Log-det :math:`\sum (a + \log\cosh z)` forward, its negative inverse.
    """

    def __init__(self, channels: int, h: int, w: int, seed: int) -> None:
        super().__init__()
        self.register_buffer("a", 0.5 * randn(channels, h, w, seed=seed))
        self.register_buffer("b", randn(channels, h, w, seed=seed + 1))
        self.label = f"x = sinh(z)·exp(a) + b on {channels}×{h}×{w} images (seed {seed})"

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.sinh(z) * torch.exp(self.a) + self.b
        return x, (self.a + torch.log(torch.cosh(z))).flatten(1).sum(1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = torch.asinh((x - self.b) * torch.exp(-self.a))
        return z, -(self.a + torch.log(torch.cosh(z))).flatten(1).sum(1)

    def __repr__(self) -> str:
        return self.label


def _factor_out_inputs(c: int, h: int, w: int, batch: int, seed: int) -> dict[str, Any]:
    return {"channels": c, "inner": _PixelSinh(c - c // 2, h, w, seed),
            "z": randn(batch, c, h, w, seed=seed + 10), "x": 2.0 * randn(batch, c, h, w, seed=seed + 11)}


FACTOR_OUT_CASES = [
    Case("4 channels (2 leave, 2 go on), 3×3 pixels, batch of 2", lambda: _factor_out_inputs(4, 3, 3, 2, seed=700)),
    Case("2 channels, 4×2 pixels, batch of 1", lambda: _factor_out_inputs(2, 4, 2, 1, seed=710)),
    Case("8 channels, 2×2 pixels, batch of 3", lambda: _factor_out_inputs(8, 2, 2, 3, seed=720)),
    Case("an odd count: 5 channels (the first 2 leave, 3 go on), 1×3 pixels",
         lambda: _factor_out_inputs(5, 1, 3, 2, seed=730)),
]


def _factor_out_protocol(cls: Any, inner: nn.Module, channels: int, z: Tensor, x: Tensor) -> tuple[Any, ...]:
    """``cls(inner, channels)``'s ``forward(z)`` and ``inverse(x)``."""
    return _two_way_protocol(cls(inner, channels), z, x)


class _Altered(nn.Module):
    """``inner`` with its inverse replaced by its forward, or with its log-dets dropped (a mistake's inner)."""

    def __init__(self, inner: nn.Module, *, forward_in_inverse: bool = False, no_logdet: bool = False) -> None:
        super().__init__()
        self.inner, self.forward_in_inverse, self.no_logdet = inner, forward_in_inverse, no_logdet

    def _out(self, out: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return (out[0], torch.zeros_like(out[1])) if self.no_logdet else out

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._out(self.inner(z))

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._out(self.inner(x) if self.forward_in_inverse else self.inner.inverse(x))


def _factor_out_mistaken(ref: Any, kw: Mapping[str, Any], *, second_half: bool = False,
                         **altered: bool) -> tuple[Tensor, ...]:
    """The protocol's outputs from the key's :class:`FactorOut`, with one classic mistake switched on."""
    inner, c = _Altered(kw["inner"], **altered), kw["channels"]
    layer = ref.FactorOut(inner, c)
    if not second_half:
        return _two_way_protocol(layer, kw["z"], kw["x"])
    # the last C//2 channels leave, inner moves the first C − C//2: rotate them to where the key expects them
    kept = c - c // 2

    def run(direction: Callable[[Tensor], tuple[Tensor, Tensor]], v: Tensor) -> tuple[Tensor, Tensor]:
        out, logdet = direction(torch.roll(v, -kept, dims=1))
        return torch.roll(out, kept, dims=1), logdet

    return (*run(layer.forward, kw["z"]), *run(layer.inverse, kw["x"]))


FACTOR_OUT_MISTAKES = [
    Mistake("the second half factored out",
            "the FIRST C//2 channels leave the flow (they go straight to the Gaussian); `inner` transforms the "
            "remaining C − C//2 channels: z_out, z_rest = z.split([C//2, C − C//2], dim=1)",
            lambda ref, kw: _factor_out_mistaken(ref, kw, second_half=True)),
    Mistake("inner's forward used in the inverse",
            "the data→base pass undoes inner: call inner.inverse on the kept channels, and return its log-det",
            lambda ref, kw: _factor_out_mistaken(ref, kw, forward_in_inverse=True)),
    Mistake("inner's log-det dropped",
            "the factored-out channels contribute log-det 0, but the channels that go on are transformed by "
            "inner: return inner's log-det",
            lambda ref, kw: _factor_out_mistaken(ref, kw, no_logdet=True)),
]


# --- units: bits per dimension -------------------------------------------------------------------------------

_LN2 = math.log(2)
_MEAN_LOG_DENSITY = 85.0  # nats per dequantised 8x8 digit, the question's number
_DIMS = 64  # pixels of a digit


# each mistake below is the key's answer, bpd = (−log p + 64·log 17)/(64·ln 2), with the mistake's change


BPD_MISTAKES = [
    Mistake("nats per dimension, not bits",
            "bits = nats / ln 2: divide by 64·ln 2, not by 64",
            lambda ref, kw: ref.quiz_04_bits_per_dim * _LN2),
    Mistake("bits per image, not per dimension",
            "per DIMENSION: divide the bits of a whole image by its 64 pixels",
            lambda ref, kw: ref.quiz_04_bits_per_dim * _DIMS),
    Mistake("dequantisation term missing",
            "the density lives on [0, 1)^64 after dividing by 17: add 64·log 17 (the volume of the rescaling) before "
            "converting, bpd = (−log p + 64·log 17)/(64·ln 2)",
            lambda ref, kw: ref.quiz_04_bits_per_dim - math.log2(17)),
    Mistake("256 levels instead of 17",
            "the digits have 17 grey levels (0..16), not 256: the rescaling term is 64·log 17",
            lambda ref, kw: ref.quiz_04_bits_per_dim + math.log2(256) - math.log2(17)),
    Mistake("log-density not negated",
            "bits/dim measure a COST: −log p, so a higher density gives fewer bits",
            lambda ref, kw: ref.quiz_04_bits_per_dim + 2 * _MEAN_LOG_DENSITY / (_DIMS * _LN2)),
]

NATS_PER_IMAGE_MISTAKES = [
    Mistake("bits per image, not nats",
            "2.18 bits/dim × 64 dims is the cost in BITS per image; nats = bits × ln 2",
            lambda ref, kw: ref.quiz_04_nats_per_image / _LN2),
    Mistake("nats per dimension, not per image",
            "per image: multiply by the 64 dimensions too", lambda ref, kw: ref.quiz_04_nats_per_image / _DIMS),
    Mistake("the dequantised density's −log p(y)",
            "that is −log p(y), the density of the dequantised pixels y in [0, 1)^64; the question asks for the "
            "discrete image's −log P(x) ≈ −log p(y) + 64·log 17, which is what bits per dimension convert",
            lambda ref, kw: ref.quiz_04_nats_per_image - _DIMS * math.log(17)),
]

CHECKS = [
    Check("actnorm_init", cases=ACTNORM_INIT_CASES, mistakes=ACTNORM_INIT_MISTAKES,
          outputs=("bias", "log_scale")),
    Check("ActNorm", cases=ACTNORM_CASES, mistakes=ACTNORM_MISTAKES,
          protocol=_actnorm_protocol, outputs=ACTNORM_OUTPUTS),
    Check("ActNorm_trains", key="ActNorm", cases=ACTNORM_TRAINS_CASES, mistakes=ACTNORM_TRAINS_MISTAKES,
          protocol=_actnorm_trains_protocol, outputs=_gradient_outputs(_ACTNORM_PARAMETERS, ("log_scale",))),
    Check("conv1x1_logdet", cases=CONV_LOGDET_CASES,
          mistakes=CONV_LOGDET_MISTAKES),
    Check("lu_logdet", cases=LU_LOGDET_CASES, mistakes=LU_LOGDET_MISTAKES),
    Check("practice_4_logdet_forward", mistakes=PRACTICE_4_MISTAKES,
          atol=0.05, rtol=0.0),
    Check("practice_4_logdet_inverse",
          mistakes=[Mistake(m.name, m.hint, (lambda ref, kw, m=m: -m.output(ref, kw))) for m in PRACTICE_4_MISTAKES],
          atol=0.05, rtol=0.0),
    Check("LUInvertible1x1Conv", cases=LU_CASES, mistakes=LU_MISTAKES,
          protocol=_lu_protocol,
          outputs=("x = forward(z)", "forward log-det", "z = inverse(x)", "inverse log-det",
                   "how the log-det is computed")),
    Check("LUInvertible1x1Conv_trains", key="LUInvertible1x1Conv", cases=LU_TRAINS_CASES,
          mistakes=LU_TRAINS_MISTAKES, protocol=_lu_trains_protocol,
          outputs=_gradient_outputs(_LU_PARAMETERS, ("log_abs_s",))),
    Check("squeeze", cases=SQUEEZE_CASES, mistakes=SQUEEZE_MISTAKES, atol=0.0, rtol=0.0),
    Check("unsqueeze", cases=UNSQUEEZE_CASES, mistakes=UNSQUEEZE_MISTAKES, atol=0.0,
          rtol=0.0),
    Check("Squeeze", cases=SQUEEZE_LAYER_CASES, mistakes=SQUEEZE_LAYER_MISTAKES,
          protocol=_squeeze_protocol, outputs=("x = forward(z)", "forward log-det", "z = inverse(x)",
                                               "inverse log-det")),
    Check("FactorOut", cases=FACTOR_OUT_CASES, mistakes=FACTOR_OUT_MISTAKES,
          protocol=_factor_out_protocol, outputs=("x = forward(z)", "forward log-det", "z = inverse(x)",
                                                  "inverse log-det")),
    Check("quiz_04_bits_per_dim", mistakes=BPD_MISTAKES, atol=5e-3,
          rtol=0.0),
    Check("quiz_04_nats_per_image", mistakes=NATS_PER_IMAGE_MISTAKES,
          atol=0.05, rtol=0.0),
    Check("quiz_04_squeeze_name"),
    Check("quiz_04_actnorm_reload"),
    Check("quiz_04_lu_cost"),
    Check("quiz_04_level_dims",
          mistakes=[Mistake("channels instead of coordinates",
                            "count coordinates C·H·W, not channels: level 3 receives 4×2×2 = 16 coordinates, and its "
                            "squeeze (16×1×1) keeps every one of them", lambda ref, kw: 4),
                    Mistake("halved once too often",
                            "the last level factors out nothing before its steps: 64 → 32 → 16 coordinates at levels "
                            "1, 2, 3", lambda ref, kw: 8),
                    Mistake("level 2's count",
                            "level 1 works on 64 coordinates and factors out 32; level 2 works on 32 and factors out "
                            "16; level 3 works on what is left", lambda ref, kw: 32)],
          atol=0.0, rtol=0.0),
]
