r"""Hidden checks of lesson 05, planar and radial flows (answer key: this lesson's ``key.py``, reached via ``ref``).

Every case uses parameters far from any initialisation: random ``u, w`` with :math:`w^\top u` both above
and below :math:`-1`, non-zero biases, contracting and expanding radial layers. The planar layer class is
exercised through :func:`_planar_protocol`, which sets the student's parameters ``u, w, b`` to the case's
values and also reports the number of trainable parameters, so a bias vector (pyro PR #2192) is caught
even though it gives the right numbers once all its entries are equal. ``Planar_trains`` backpropagates
through the student's layer and asks whether a gradient reaches each parameter: a û cut off from ``u``
(``.detach()``) gives the right values but never trains ``u``. Cases with inputs that require gradients
(like a layer's parameters) make an in-place edit of an input raise, as it would in training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from flowcourse_instructor.grading.spec import Case, Check, KeyRef, Mistake, randn, tensor

# --- planar: inputs ---------------------------------------------------------------------------------------


def _worked_example_3() -> dict[str, Tensor]:
    """Worked example 3 of the lesson notes: log|det J| = log(1 + sech²(-0.5)) ≈ 0.580 with the raw u."""
    return {"z": tensor([[0.5, -0.5]]), "u": tensor([1.0, 0.0]), "w": tensor([1.0, 2.0]), "b": tensor(0.0)}


def _planar_random(batch: int, d: int, seed: int, b: float, scale: float = 1.0) -> dict[str, Tensor]:
    return {"z": randn(batch, d, seed=seed) * scale, "u": randn(d, seed=seed + 1), "w": randn(d, seed=seed + 2),
            "b": tensor(b)}


def _planar_folding(batch: int, d: int, seed: int) -> dict[str, Tensor]:
    """Raw u with wᵀu = -3: near the hyperplane 1 + h'·wᵀu < 0, so the bracket of the log-det is negative."""
    w = randn(d, seed=seed + 2)
    other = randn(d, seed=seed + 1)
    other = other - (other @ w) / (w @ w) * w  # orthogonal to w, so wᵀu stays exactly -3
    return {"z": randn(batch, d, seed=seed) * 0.3, "u": -3.0 * w / (w @ w) + other, "w": w, "b": tensor(0.1)}


def _planar_saturated() -> dict[str, Tensor]:
    """Large |wᵀz + b|: tanh saturates, h' underflows towards 0 and the log-det towards 0."""
    return {"z": randn(4, 3, seed=61) * 20, "u": randn(3, seed=62), "w": randn(3, seed=63) * 10, "b": tensor(-2.0)}


def _as_float32(inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.float() for k, v in inputs.items()}


def _requiring_grad(inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Leaf tensors that require gradients, like a layer's parameters: an in-place edit of one raises."""
    return {k: v.requires_grad_() for k, v in inputs.items()}


PLANAR_CASES = [
    Case("worked example 3: z = (0.5, -0.5), u = (1, 0), w = (1, 2), b = 0", _worked_example_3),
    Case("random batch of 5 in 2-D, b = 0.3", lambda: _planar_random(5, 2, seed=510, b=0.3)),
    Case("batch of 1 in 5-D, b = -0.7", lambda: _planar_random(1, 5, seed=520, b=-0.7)),
    Case("raw u with wᵀu = -3 (the layer folds: 1 + h'·wᵀu < 0 near the hyperplane), 6 points in 3-D",
         lambda: _planar_folding(6, 3, seed=530)),
    Case("large |wᵀz + b| (tanh saturated), 4 points in 3-D", _planar_saturated),
]

PLANAR_FORWARD_CASES = [
    *PLANAR_CASES,
    Case("batch of 3 in 3-D (batch size = dimension)", lambda: _planar_random(3, 3, seed=540, b=0.5, scale=1.5)),
    Case("float32 batch of 4 in 2-D", lambda: _as_float32(_planar_random(4, 2, seed=550, b=-0.2))),
    Case("z, u, w, b requiring gradients (as in training), batch of 4 in 3-D",
         lambda: _requiring_grad(_planar_random(4, 3, seed=560, b=0.2))),
]

# --- planar: mistakes ---------------------------------------------------------------------------------------


def _pre(kw: Mapping[str, Tensor]) -> Tensor:
    return kw["z"] @ kw["w"] + kw["b"]


def _logdet_with(kw: Mapping[str, Tensor], dh: Tensor, keep_abs: bool = True) -> Tensor:
    """The lemma's log|1 + h'·wᵀu| with a wrong h' (or without the abs): the mistaken part itself."""
    bracket = 1 + dh * (kw["w"] @ kw["u"])
    return torch.log(bracket.abs() if keep_abs else bracket)


def _sech2(a: Tensor) -> Tensor:
    return 1 - torch.tanh(a) ** 2


PLANAR_LOGDET_MISTAKES = [
    Mistake("tanh instead of its derivative",
            "the Jacobian is I + h'(wᵀz + b)·u wᵀ, so the log-det needs h' = 1 - tanh², not tanh itself",
            lambda ref, kw: _logdet_with(kw, torch.tanh(_pre(kw)))),
    Mistake("derivative of tanh without the square",
            "d/da tanh(a) = 1 - tanh(a)² (= sech² a), not 1 - tanh(a)",
            lambda ref, kw: _logdet_with(kw, 1 - torch.tanh(_pre(kw)))),
    Mistake("log without abs",
            "with a raw u the bracket 1 + h'·wᵀu can be negative (the layer folds); log|det| needs the "
            "absolute value: log|1 + h'·wᵀu|",
            lambda ref, kw: _logdet_with(kw, _sech2(_pre(kw)), keep_abs=False)),
    Mistake("bias left out of h'",
            "h' is evaluated at the same pre-activation as h: a = wᵀz + b, bias included",
            lambda ref, kw: ref.planar_logdet(**dict(kw, b=torch.zeros_like(kw["b"])))),
]


def _forward_with(ref: KeyRef, kw: Mapping[str, Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """A wrong ``x`` with the key's (right) log-det: the slip is in the map only."""
    return x, ref.planar_logdet(**kw)


PLANAR_FORWARD_MISTAKES = [
    Mistake("u·h broadcast along the wrong axis",
            "h(wᵀz + b) has one value per sample, shape (batch,); make it a column, h[:, None] * u, so that "
            "each row z_i moves along u by h_i (with batch = d, u * h silently multiplies entry by entry)",
            lambda ref, kw: _forward_with(ref, kw, kw["z"] + kw["u"] * torch.tanh(_pre(kw)))),
    Mistake("points moved along w instead of u",
            "w sets the hyperplane (which points move how much); u is the direction they move: x = z + u·h",
            lambda ref, kw: _forward_with(ref, kw, ref.planar_forward(**dict(kw, u=kw["w"]))[0])),
    Mistake("tanh instead of its derivative (in the log-det)",
            "the Jacobian is I + h'(wᵀz + b)·u wᵀ, so the log-det needs h' = 1 - tanh², not tanh itself",
            lambda ref, kw: (ref.planar_forward(**kw)[0], _logdet_with(kw, torch.tanh(_pre(kw))))),
    Mistake("log without abs (in the log-det)",
            "with a raw u the bracket 1 + h'·wᵀu can be negative; log|det| needs the absolute value",
            lambda ref, kw: (ref.planar_forward(**kw)[0],
                             _logdet_with(kw, _sech2(_pre(kw)), keep_abs=False))),
]

# --- û -----------------------------------------------------------------------------------------------------


def _u_hat_inputs(d: int, seed: int, wu: float, w_norm: float | None = None,
                  dtype: torch.dtype = torch.float64) -> dict[str, Tensor]:
    """Random u, w with a prescribed wᵀu (and ‖w‖ if given)."""
    w = randn(d, seed=seed)
    if w_norm is not None:
        w = w / w.norm() * w_norm
    other = randn(d, seed=seed + 1)
    other = other - (other @ w) / (w @ w) * w
    return {"u": (wu * w / (w @ w) + other).to(dtype), "w": w.to(dtype)}


U_HAT_CASES = [
    Case("worked example 3: u = (1, 0), w = (1, 2)", lambda: {"u": tensor([1.0, 0.0]), "w": tensor([1.0, 2.0])}),
    Case("3-D, wᵀu = -2.5 (raw layer not invertible)", lambda: _u_hat_inputs(3, seed=710, wu=-2.5)),
    Case("5-D, wᵀu = 1.7", lambda: _u_hat_inputs(5, seed=720, wu=1.7)),
    Case("small ‖w‖ = 0.2 with wᵀu = -4 in 2-D", lambda: _u_hat_inputs(2, seed=730, wu=-4.0, w_norm=0.2)),
    Case("large ‖w‖ = 6 with wᵀu = -30 in 4-D", lambda: _u_hat_inputs(4, seed=740, wu=-30.0, w_norm=6.0)),
    Case("huge wᵀu = 1000 in float64 (e^1000 overflows)", lambda: _u_hat_inputs(3, seed=750, wu=1000.0)),
    Case("wᵀu = 100 in float32 (e^100 overflows float32)",
         lambda: _u_hat_inputs(2, seed=760, wu=100.0, dtype=torch.float32)),
    Case("u, w requiring gradients (a layer's parameters), wᵀu = -2 in 3-D",
         lambda: _requiring_grad(_u_hat_inputs(3, seed=770, wu=-2.0))),
]


def _u_hat_moved(ref: KeyRef, kw: Mapping[str, Tensor], dm: Tensor | float) -> Tensor:
    """û with m(wᵀu) off by ``dm``: the key's û moved by dm·w/‖w‖² (then wᵀû = m(wᵀu) + dm)."""
    w = kw["w"]
    return ref.planar_u_hat(kw["u"], w) + dm * w / (w @ w)


def _u_hat_norm_not_squared(ref: KeyRef, u: Tensor, w: Tensor) -> Tensor:
    """û with ‖w‖ where ‖w‖² belongs: u + (m - wᵀu)·w/‖w‖ = u + ‖w‖·(û - u), from the key's û."""
    return u + torch.linalg.vector_norm(w) * (ref.planar_u_hat(u, w) - u)


def _u_hat_without_minus_one(ref: KeyRef, kw: Mapping[str, Tensor]) -> Tensor:
    """û with m(a) = softplus(a); refused where that leaves u unchanged (softplus(a) = a for large a),
    since such a case cannot tell this mistake from "û not applied"."""
    out = _u_hat_moved(ref, kw, 1.0)
    if torch.allclose(out, kw["u"], rtol=1e-5, atol=1e-6):
        raise ValueError("here m(a) without the -1 gives u itself: indistinguishable from û not applied")
    return out


def _u_unchanged(ref: KeyRef, kw: Mapping[str, Tensor]) -> Tensor:
    """u itself; refused (as :func:`_u_hat_without_minus_one`) where the two mistakes coincide."""
    _u_hat_without_minus_one(ref, kw)
    return kw["u"].clone()


def _log1p_exp_minus_softplus(a: Tensor) -> Tensor:
    """log(1 + e^a) - softplus(a): rounding-level where e^a is finite, inf where it overflows."""
    return torch.log(1 + torch.exp(a)) - F.softplus(a)


U_HAT_MISTAKES = [
    Mistake("‖w‖ instead of ‖w‖²",
            "û = u + (m(wᵀu) - wᵀu)·w/‖w‖²: with the squared norm wᵀû = m(wᵀu) > -1; with ‖w‖ it is not, and "
            "the layer can still fold (the bug fixed in pyro PR #2192)",
            lambda ref, kw: _u_hat_norm_not_squared(ref, kw["u"], kw["w"])),
    Mistake("log(1 + exp(·)) instead of softplus",
            "log(1 + exp(a)) overflows to inf for large a (a > 88 in float32, a > 709 in float64) and û becomes "
            "inf/NaN; torch.nn.functional.softplus computes the same function without overflow",
            lambda ref, kw: _u_hat_moved(ref, kw, _log1p_exp_minus_softplus(kw["w"] @ kw["u"]))),
    Mistake("û not applied (u returned unchanged)",
            "û must move u along w until wᵀû = m(wᵀu) = -1 + softplus(wᵀu)",
            _u_unchanged),
    Mistake("m(a) without the -1",
            "m(a) = -1 + softplus(a) ranges over (-1, ∞), exactly the allowed values of wᵀû; softplus alone "
            "needlessly forbids wᵀû ∈ (-1, 0]",
            _u_hat_without_minus_one),
]

# --- the Planar class ----------------------------------------------------------------------------------------


def _planar_protocol(cls: Any, d: int, reparameterize: bool, z: Tensor, u: Tensor, w: Tensor,
                     b: Tensor) -> tuple[Tensor, Tensor, int]:
    """Build ``cls(d, reparameterize=...)``, set its ``u, w, b``, return ``(x, log-det, #parameters)``.

    The layer gets a copy of ``z``: an in-place edit of the points is charged once, by ``planar_forward``'s check
    when the layer calls it, else by ``Planar_trains`` (backpropagating through an edited tensor raises)."""
    layer = cls(d, reparameterize=reparameterize).double()
    with torch.no_grad():
        layer.u.copy_(u)
        layer.w.copy_(w)
        layer.b.copy_(b)
    x, logdet = layer(z.clone())
    count = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    return x.detach(), logdet.detach(), count


def _layer_inputs(d: int, reparameterize: bool, base: Mapping[str, Tensor]) -> dict[str, Any]:
    return {"d": d, "reparameterize": reparameterize, **base}


PLANAR_CLASS_CASES = [
    Case("raw u (reparameterize=False), worked example 3: log-det 0.580",
         lambda: _layer_inputs(2, False, _worked_example_3())),
    Case("û (reparameterize=True), worked example 3: log-det 0.2202",
         lambda: _layer_inputs(2, True, _worked_example_3())),
    Case("û, raw wᵀu = -3 in 3-D (û makes the layer invertible)",
         lambda: _layer_inputs(3, True, _planar_folding(6, 3, seed=810))),
    Case("raw u, random 4-D batch of 5", lambda: _layer_inputs(4, False, _planar_random(5, 4, seed=820, b=0.4))),
    Case("û, batch of 1 in 5-D, b = -1.2", lambda: _layer_inputs(5, True, _planar_random(1, 5, seed=830, b=-1.2))),
]


def _with_other_u_hat(ref: KeyRef, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, int]:
    flipped = dict(kw, reparameterize=not kw["reparameterize"])
    return _planar_protocol(ref.Planar, **flipped)


def _with_bias_vector(ref: KeyRef, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, int]:
    x, logdet, _ = _planar_protocol(ref.Planar, **kw)
    return x, logdet, 3 * kw["d"]


def _layer_logdet_with(ref: KeyRef, kw: Mapping[str, Any], *, tanh: bool = False,
                       keep_abs: bool = True) -> tuple[Tensor, Tensor, int]:
    """The key's layer (x, parameter count) with a slip in its log-det: h' = tanh, or no abs."""
    x, _, count = _planar_protocol(ref.Planar, **kw)
    u = ref.planar_u_hat(kw["u"], kw["w"]) if kw["reparameterize"] else kw["u"]
    a = kw["z"] @ kw["w"] + kw["b"]
    return x, _logdet_with({"u": u, "w": kw["w"]}, torch.tanh(a) if tanh else _sech2(a), keep_abs), count


def _layer_u_hat_norm_not_squared(ref: KeyRef, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, int]:
    """The key's raw-u layer applied to û computed with ‖w‖ instead of ‖w‖² (when reparameterize)."""
    if not kw["reparameterize"]:
        return _planar_protocol(ref.Planar, **kw)
    u = _u_hat_norm_not_squared(ref, kw["u"], kw["w"])
    return _planar_protocol(ref.Planar, **dict(kw, reparameterize=False, u=u))


PLANAR_CLASS_MISTAKES = [
    Mistake("raw u vs û",
            "with reparameterize=True the layer must apply û = planar_u_hat(u, w) (as normflows and pyro always "
            "do), and with reparameterize=False the raw u; on worked example 3 the two give 0.2202 and 0.580",
            _with_other_u_hat),
    Mistake("bias as a vector",
            "a planar layer has one hidden unit, so one scalar bias b (shape ()): 2d + 1 parameters, not 3d; with a "
            "vector b the pre-activation wᵀz + b becomes a vector and the layer is no longer planar",
            _with_bias_vector),
    Mistake("tanh instead of its derivative (in the log-det)",
            "the Jacobian is I + h'(wᵀz + b)·u wᵀ, so the log-det needs h' = 1 - tanh², not tanh itself",
            lambda ref, kw: _layer_logdet_with(ref, kw, tanh=True)),
    Mistake("log without abs (in the log-det)",
            "with a raw u the bracket 1 + h'·wᵀu can be negative; log|det| needs the absolute value",
            lambda ref, kw: _layer_logdet_with(ref, kw, keep_abs=False)),
    Mistake("‖w‖ instead of ‖w‖² (in û)",
            "û = u + (m(wᵀu) - wᵀu)·w/‖w‖², with the squared norm, so that wᵀû = m(wᵀu) > -1",
            _layer_u_hat_norm_not_squared),
]


def _planar_gradient_protocol(cls: Any, d: int, z: Tensor, u: Tensor, w: Tensor, b: Tensor) -> tuple[bool, ...]:
    """Build ``cls(d)`` (û, the default), set ``u, w, b``, backpropagate the sum of ``x`` and the log-det and
    report, for ``u``, ``w`` and ``b``, whether a non-zero gradient reached it (what training needs)."""
    layer = cls(d).double()
    with torch.no_grad():
        layer.u.copy_(u)
        layer.w.copy_(w)
        layer.b.copy_(b)
    with torch.enable_grad():
        x, logdet = layer(z)
        (x.sum() + logdet.sum()).backward()
    grads = [getattr(layer, name).grad for name in ("u", "w", "b")]
    return tuple(g is not None and bool(g.ne(0).any()) for g in grads)


# batch = d or 1: a broadcast slip in planar_forward (charged there) does not raise here
PLANAR_GRADIENT_CASES = [
    Case("û layer, worked example 3", lambda: {"d": 2, **_worked_example_3()}),
    Case("û layer, raw wᵀu = -3 in 3-D, 3 points", lambda: {"d": 3, **_planar_folding(3, 3, seed=850)}),
    Case("û layer, random batch of 4 in 4-D, b = 0.4", lambda: {"d": 4, **_planar_random(4, 4, seed=860, b=0.4)}),
]

PLANAR_GRADIENT_MISTAKES = [
    Mistake("û detached from u",
            "û = planar_u_hat(self.u, self.w) must stay connected to the parameter u: with `.detach()` (or "
            "`.data`, or û computed under torch.no_grad()) no gradient reaches u, so u never trains — compute "
            "û from self.u inside forward, with autograd on",
            lambda ref, kw: (False, True, True)),
]

# --- radial ----------------------------------------------------------------------------------------------------


def _radial(name: str, batch: int, d: int, seed: int, alpha: float, beta: float,
            scale: float = 1.0) -> dict[str, Tensor]:
    return {name: randn(batch, d, seed=seed) * scale, "z0": randn(d, seed=seed + 1), "alpha": tensor(alpha),
            "beta": tensor(beta)}


def _radial_cases(name: str) -> list[Case]:
    hand = {"z": [[1.0, 0.0]], "x": [[2.0, 0.0]]}[name]  # f(1, 0) = (2, 0) for α = 1, β = 2, z0 = 0
    return [
        Case(f"{name} = {tuple(hand[0])}, z0 = 0, α = 1, β = 2",
             lambda: {name: tensor(hand), "z0": tensor([0.0, 0.0]), "alpha": tensor(1.0), "beta": tensor(2.0)}),
        Case("expanding (α = 0.7, β = 1.5), 5 points in 3-D", lambda: _radial(name, 5, 3, seed=910, alpha=0.7,
                                                                             beta=1.5)),
        Case("contracting (α = 1.2, β = -1.0), 6 points in 2-D", lambda: _radial(name, 6, 2, seed=920, alpha=1.2,
                                                                                beta=-1.0)),
        Case("β = -α (the edge of invertibility), batch of 1 in 6-D",
             lambda: _radial(name, 1, 6, seed=930, alpha=0.5, beta=-0.5)),
        Case("1-D, 4 points, α = 2, β = 3", lambda: _radial(name, 4, 1, seed=940, alpha=2.0, beta=3.0)),
        Case("far from z0 (‖·‖ ~ 100), 3 points in 4-D", lambda: _radial(name, 3, 4, seed=950, alpha=0.3, beta=2.0,
                                                                         scale=60.0)),
    ]


def _radial_inverse_centre() -> dict[str, Tensor]:
    z0 = randn(3, seed=960)
    x = torch.cat([z0[None], randn(2, 3, seed=970)])
    return {"x": x, "z0": z0, "alpha": tensor(0.8), "beta": tensor(-0.6)}


def _radial_logdet_at_origin(ref: KeyRef, kw: Mapping[str, Tensor]) -> Tensor:
    """The key's radial log-det with z0 = 0: distances measured from the origin."""
    return ref.radial_logdet(kw["z"], torch.zeros_like(kw["z0"]), kw["alpha"], kw["beta"])


def _h(kw: Mapping[str, Tensor], centre: bool = True) -> Tensor:
    diff = kw["z"] - kw["z0"] if centre else kw["z"]
    return 1 / (kw["alpha"] + diff.norm(dim=1))


def _radial_logdet_with(kw: Mapping[str, Tensor], *, tangential: int, radial: str) -> Tensor:
    """A wrong radial log-det: ``tangential`` factors 1 + βh, and the radial one with h' = +h² or left out."""
    h = _h(kw)
    beta = kw["beta"]
    r = (kw["z"] - kw["z0"]).norm(dim=1)
    along = torch.log1p(beta * h + beta * h**2 * r) if radial == "plus" else torch.zeros_like(h)
    return tangential * torch.log1p(beta * h) + along


RADIAL_LOGDET_MISTAKES = [
    Mistake("Jacobian taken as (1 + βh)·I",
            "the Jacobian is (1 + βh)I + βh'·r·êêᵀ: d - 1 directions are scaled by 1 + βh, but the radial one by "
            "1 + βh + βh'r = 1 + βαh²",
            lambda ref, kw: _radial_logdet_with(kw, tangential=kw["z"].shape[1], radial="none")),
    Mistake("h' = +h² (sign of the derivative)",
            "h(r) = 1/(α + r) decreases: h'(r) = -h², so the radial factor is 1 + βh - βh²r = 1 + βαh²",
            lambda ref, kw: _radial_logdet_with(kw, tangential=kw["z"].shape[1] - 1, radial="plus")),
    Mistake("radial direction left out",
            "besides the d - 1 tangential factors 1 + βh, the direction along z - z0 contributes log(1 + βαh²)",
            lambda ref, kw: _radial_logdet_with(kw, tangential=kw["z"].shape[1] - 1, radial="none")),
    Mistake("distance measured from the origin",
            "r = ‖z - z0‖: the layer is centred at z0, not at 0",
            _radial_logdet_at_origin),
]

RADIAL_FORWARD_MISTAKES = [
    Mistake("distance measured from the origin",
            "r = ‖z - z0‖ and the shift is along z - z0: the layer is centred at z0, not at 0",
            lambda ref, kw: (kw["z"] + (kw["beta"] * _h(kw, centre=False))[:, None] * (kw["z"] - kw["z0"]),
                             ref.radial_logdet(**kw))),
    Mistake("shift along z instead of z - z0",
            "the radial layer moves points along the ray from z0: x = z + βh(r)·(z - z0)",
            lambda ref, kw: (kw["z"] + (kw["beta"] * _h(kw))[:, None] * kw["z"], ref.radial_logdet(**kw))),
    Mistake("Jacobian taken as (1 + βh)·I (in the log-det)",
            "d - 1 directions are scaled by 1 + βh, the radial one by 1 + βαh²",
            lambda ref, kw: (ref.radial_forward(**kw)[0],
                             _radial_logdet_with(kw, tangential=kw["z"].shape[1], radial="none"))),
]


def _negative_root(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The negative root r₋ of r² + (α + β - ρ)r - αρ = 0 and the z it gives, from the key's inverse.

    The roots' product is -αρ, so r₋ = -αρ/r₊ with r₊ = ‖z - z0‖ of the key's z; and on either root
    ρ = r·(1 + βh(r)), so z₋ = z0 + (x - z0)/(1 + βh(r₋)) = z0 + (x - z0)·r₋/ρ = z0 - α(x - z0)/r₊.
    """
    x, z0, alpha = kw["x"], kw["z0"], kw["alpha"]
    z, _ = ref.radial_inverse(**kw)
    r_pos = torch.linalg.vector_norm(z - z0, dim=1)
    rho = torch.linalg.vector_norm(x - z0, dim=1)
    return -alpha * rho / r_pos, z0 - alpha * (x - z0) / r_pos[:, None]


def _inverse_other_root(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    _, z = _negative_root(ref, kw)
    return z, -ref.radial_logdet(z, kw["z0"], kw["alpha"], kw["beta"])


def _inverse_other_root_in_logdet(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The negative root, and the log-det's h = 1/(α + r) taken at that negative r as well."""
    r, z = _negative_root(ref, kw)
    h = 1 / (kw["alpha"] + r)
    d = z.shape[1]
    return z, -((d - 1) * torch.log1p(kw["beta"] * h) + torch.log1p(kw["beta"] * kw["alpha"] * h**2))


def _inverse_logdet_at_x(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    z, _ = ref.radial_inverse(**kw)
    return z, -ref.radial_logdet(kw["x"], kw["z0"], kw["alpha"], kw["beta"])


def _inverse_by_subtraction(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """z = x - (f(x) - x): the shift βh(ρ)(x - z0) that the key's layer gives at x, subtracted."""
    x, z0, alpha, beta = kw["x"], kw["z0"], kw["alpha"], kw["beta"]
    return 2 * x - ref.radial_forward(x, z0, alpha, beta)[0], -ref.radial_logdet(x, z0, alpha, beta)


def _inverse_scalar_jacobian(ref: KeyRef, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    z, _ = ref.radial_inverse(**kw)
    at_z = {"z": z, "z0": kw["z0"], "alpha": kw["alpha"], "beta": kw["beta"]}
    return z, -_radial_logdet_with(at_z, tangential=z.shape[1], radial="none")


RADIAL_INVERSE_MISTAKES = [
    Mistake("the negative root of the quadratic",
            "a radius is non-negative: of the two roots of r² + (α + β - ρ)r - αρ = 0 take the one ≥ 0, "
            "r = ((ρ - α - β) + √((α + β - ρ)² + 4αρ)) / 2",
            _inverse_other_root),
    Mistake("the negative root of the quadratic, also in the log-det",
            "a radius is non-negative: of the two roots of r² + (α + β - ρ)r - αρ = 0 take the one ≥ 0, "
            "r = ((ρ - α - β) + √((α + β - ρ)² + 4αρ)) / 2; the log-det's h = 1/(α + r) then uses that r",
            _inverse_other_root_in_logdet),
    Mistake("log-det of the inverse evaluated at x",
            "log|det ∂z/∂x| = -log|det ∂f/∂z| evaluated at z = f⁻¹(x) (with h = 1/(α + r), r = ‖z - z0‖), not at x",
            _inverse_logdet_at_x),
    Mistake("inverted by subtracting the shift computed at x",
            "z = x - βh(ρ)(x - z0) is not the inverse: h must be taken at the unknown radius r = ‖z - z0‖, "
            "found from the quadratic",
            _inverse_by_subtraction),
    Mistake("Jacobian taken as (1 + βh)·I (in the log-det)",
            "d - 1 directions are scaled by 1 + βh, the radial one by 1 + βαh²; the inverse's log-det is minus "
            "(d - 1)·log(1 + βh) + log(1 + βαh²) at z",
            _inverse_scalar_jacobian),
]

def _worked_from_wrong_planar_logdet(u_hat: bool) -> list[Mistake]:
    """Worked example 3's number as a ``planar_logdet`` with one of its classic mistakes gives it (the mistake's
    own output on the worked example's inputs, with the key's û where asked): the hint sends the student back
    to ``planar_logdet``, where the points for the mistake are charged."""

    def output(mistake: Mistake) -> Any:
        def worked(ref: KeyRef, kw: Mapping[str, Any]) -> float:
            ex = _worked_example_3()
            if u_hat:
                ex = dict(ex, u=ref.planar_u_hat(ex["u"], ex["w"]))
            return float(mistake.output(ref, ex)[0])
        return worked

    return [Mistake(m.name, f"{m.hint} — this is the number a planar_logdet with that mistake gives here: if "
                            "yours computed it, fix planar_logdet (exercise 1) and rerun this cell", output(m))
            for m in PLANAR_LOGDET_MISTAKES
            if m.name in ("tanh instead of its derivative", "derivative of tanh without the square")]


def _worked_u_hat_norm_not_squared(ref: KeyRef, kw: Mapping[str, Any]) -> float:
    """Worked example 3's log-det by the key, with û computed with ‖w‖ instead of ‖w‖²."""
    ex = _worked_example_3()
    return float(ref.planar_logdet(**dict(ex, u=_u_hat_norm_not_squared(ref, ex["u"], ex["w"])))[0])


CHECKS = [
    Check("planar_logdet", cases=PLANAR_CASES, mistakes=PLANAR_LOGDET_MISTAKES),
    Check("planar_forward", cases=PLANAR_FORWARD_CASES,
          mistakes=PLANAR_FORWARD_MISTAKES, outputs=("x", "log-det")),
    Check("worked_05_logdet_raw_u", atol=1e-3, rtol=0,
          mistakes=[
              Mistake("û where the raw u was asked",
                      "worked example 3 uses the raw u = (1, 0): log(1 + sech²(-0.5)·1) ≈ 0.580; 0.2202 is the "
                      "log-det of the û layer",
                      lambda ref, kw: ref.worked_05_logdet_u_hat),
              *_worked_from_wrong_planar_logdet(u_hat=False),
          ]),
    Check("planar_u_hat", cases=U_HAT_CASES, mistakes=U_HAT_MISTAKES),
    Check("worked_05_logdet_u_hat", atol=1e-3, rtol=0,
          mistakes=[
              Mistake("raw u vs û",
                      "with û = planar_u_hat(u, w) the same inputs give 0.2202 (wᵀû = m(1) ≈ 0.3133); 0.580 is the "
                      "raw-u layer of worked example 3",
                      lambda ref, kw: ref.worked_05_logdet_raw_u),
              *_worked_from_wrong_planar_logdet(u_hat=True),
              Mistake("‖w‖ instead of ‖w‖²",
                      "û = u + (m(wᵀu) - wᵀu)·w/‖w‖², with the squared norm",
                      _worked_u_hat_norm_not_squared),
          ]),
    Check("Planar", cases=PLANAR_CLASS_CASES, mistakes=PLANAR_CLASS_MISTAKES,
          protocol=_planar_protocol, outputs=("x", "log-det", "number of trainable parameters")),
    Check("Planar_trains", key="Planar", cases=PLANAR_GRADIENT_CASES, mistakes=PLANAR_GRADIENT_MISTAKES,
          protocol=_planar_gradient_protocol,
          outputs=("a gradient reaches u", "a gradient reaches w", "a gradient reaches b")),
    Check("radial_logdet", cases=_radial_cases("z"),
          mistakes=RADIAL_LOGDET_MISTAKES),
    Check("radial_forward", cases=_radial_cases("z"),
          mistakes=RADIAL_FORWARD_MISTAKES, outputs=("x", "log-det")),
    Check("radial_inverse",
          cases=[*_radial_cases("x"), Case("x = z0 (the centre maps to itself) and 2 more points in 3-D, "
                                           "contracting", _radial_inverse_centre)],
          mistakes=RADIAL_INVERSE_MISTAKES, outputs=("z", "log-det")),
    Check("quiz_05_fold"),
    Check("quiz_05_cost"),
    Check("quiz_05_reverse_kl"),
    Check("quiz_05_radial_beta"),
    Check("quiz_05_mode_seeking"),
]
