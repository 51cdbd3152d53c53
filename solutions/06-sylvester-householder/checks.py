"""Hidden checks of lesson 06, Sylvester and Householder flows (answer key: ``key.py`` beside the notebook).

Every Sylvester case uses parameters of order 1 or larger — never the identity — because a log-det
checked near the identity cannot fail (pyro's Sylvester log-det was wrong by nats away from its
initialisation while its test, run at initialisation, passed). The mistakes are the lesson's classic ones:
I_d vs I_m (A Bᵀ where Bᵀ A belongs), a missing h′, the triangular shortcut on a matrix that is not
triangular, row/column transposes (pyro's bug), an unnormalised Householder vector, reflections in the
wrong order, and log(det H) = log(−1). A mistake's output calls the key (``ref``) for every piece it gets
right and computes only the piece it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from flowcourse_instructor.grading.spec import Case, Check, KeyRef, Mistake, randn, tensor

# --- helpers ------------------------------------------------------------------------------------------------


def _trainable(kw: Mapping[str, Any]) -> dict[str, Any]:
    """The same inputs with every tensor a leaf that requires grad, as in a layer being trained: an in-place
    edit of one raises (or changes the caller's tensor), which the judge names."""
    return {k: v.requires_grad_() if isinstance(v, Tensor) else v for k, v in kw.items()}


def _act(kw: Mapping[str, Any]) -> tuple[str, float]:
    return kw.get("activation", "tanh"), kw.get("negative_slope", 0.01)


def _h_dh(ref: KeyRef, a: Tensor, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    return ref.lesson_05.planar_activation(a, *_act(kw))


def _identity_activation(kw: Mapping[str, Any]) -> dict[str, Any]:
    """The same inputs with h(a) = a, so h′ = 1 (a leaky ReLU of slope 1): the key's answer without h′."""
    return {**kw, "activation": "leaky_relu", "negative_slope": 1.0}


def _swapped(kw: Mapping[str, Any]) -> dict[str, Any]:
    """The same inputs with A and B exchanged: the key's answer for a student who swaps them."""
    return {**kw, "A": kw["B"], "B": kw["A"]}


def _small_logdet(factor: Tensor, M: Tensor) -> Tensor:
    """log|det(I + diag(factor) M)| per row of ``factor`` (batch, m), for the square ``M`` a mistake puts there."""
    m = factor.shape[1]
    if tuple(M.shape) != (m, m):
        raise ValueError("shapes do not fit: this mistake cannot be formed for this case")
    return torch.linalg.slogdet(torch.eye(m, dtype=M.dtype) + factor.unsqueeze(2) * M).logabsdet


def _sylvester_inputs(seed: int, d: int, m: int, batch: int, scale: float = 1.5, z_scale: float = 1.0,
                      **extra: Any) -> dict[str, Any]:
    return {"z": randn(batch, d, seed=seed) * z_scale, "A": randn(d, m, seed=seed + 1) * scale,
            "B": randn(d, m, seed=seed + 2) * scale, "b": randn(m, seed=seed + 3) * 0.5, **extra}


def _worked_example_3() -> dict[str, Tensor]:
    # lesson 05's worked example 3 as a one-neuron Sylvester layer: A = u = (1, 0), B = w = (1, 2), b = 0
    return {"z": tensor([[0.5, -0.5]]), "A": tensor([[1.0], [0.0]]), "B": tensor([[1.0], [2.0]]),
            "b": tensor([0.0])}


SYLVESTER_CASES = [
    Case("lesson 05's worked example 3 as a one-neuron layer (log|det| = 0.580)", _worked_example_3),
    Case("d = 5, m = 3 neurons, batch of 6, entries of A, B of size ~1.5", lambda: _sylvester_inputs(600, 5, 3, 6)),
    Case("square: d = m = 4, batch of 5", lambda: _sylvester_inputs(610, 4, 4, 5)),
    Case("more neurons than dimensions: d = 3, m = 6", lambda: _sylvester_inputs(620, 3, 6, 4)),
    Case("batch of 1, d = 6, m = 2, leaky ReLU with slope 0.2",
         lambda: _sylvester_inputs(630, 6, 2, 1, activation="leaky_relu", negative_slope=0.2)),
    Case("ReLU, d = 4, m = 4, batch of 5", lambda: _sylvester_inputs(640, 4, 4, 5, scale=1.0, activation="relu")),
    # small z keeps B^T z + b out of tanh's flat tails, so that h' (and the log-det) stay far from 0
    Case("large entries: A, B of size ~4, |z| ~ 0.1, d = 5, m = 2, batch of 4",
         lambda: _sylvester_inputs(650, 5, 2, 4, scale=4.0, z_scale=0.1)),
    Case("z, A, B and b require grad (as in training), d = 4, m = 2, batch of 3",
         lambda: _trainable(_sylvester_inputs(660, 4, 2, 3))),
]


def _h_instead_of_dh(ref: KeyRef, kw: Mapping[str, Any]) -> Tensor:
    """log|det(I_m + diag(h) BᵀA)|: the activation where its derivative belongs."""
    h, _ = _h_dh(ref, kw["z"] @ kw["B"] + kw["b"], kw)
    return _small_logdet(h, kw["B"].T @ kw["A"])


def _a_bt_logdet(ref: KeyRef, kw: Mapping[str, Any]) -> Tensor:
    """log|det(I + diag(h′) ABᵀ)|: the d×d product where the m×m one belongs (forms only when m = d)."""
    _, dh = _h_dh(ref, kw["z"] @ kw["B"] + kw["b"], kw)
    return _small_logdet(dh, kw["A"] @ kw["B"].T)


def _triangular_shortcut(ref: KeyRef, kw: Mapping[str, Any]) -> Tensor:
    _, dh = _h_dh(ref, kw["z"] @ kw["B"] + kw["b"], kw)
    return torch.log(torch.abs(1 + dh * torch.diagonal(kw["B"].T @ kw["A"]))).sum(dim=1)


def _sylvester_x(fn: Any, **kw: Any) -> Any:
    """What ``sylvester_forward`` is graded on: the points ``x`` (its log-det is ``sylvester_logdet``'s check)."""
    out = fn(**kw)
    return out[0] if isinstance(out, (tuple, list)) and len(out) == 2 else out


def _a_not_transposed(ref: KeyRef, kw: Mapping[str, Any]) -> Tensor:
    """x = z + h @ A (forms only when m = d) where h @ A.T belongs."""
    h, _ = _h_dh(ref, kw["z"] @ kw["B"] + kw["b"], kw)
    return kw["z"] + h @ kw["A"]


# --- the triangular (QR) parameterisation -------------------------------------------------------------------


def _triangular(m: int, seed: int, diagonal: Tensor) -> Tensor:
    return torch.triu(randn(m, m, seed=seed), diagonal=1) + torch.diag(diagonal)


def _qr_inputs(seed: int, d: int, m: int, batch: int, *, raw_diagonal: bool = False,
               rotation_q: bool = False, **extra: Any) -> dict[str, Any]:
    if rotation_q:  # exp of a skew-symmetric matrix: a rotation, not a QR factor
        S = randn(d, d, seed=seed)
        Q = torch.linalg.matrix_exp(S - S.T)[:, :m]
    else:
        Q = torch.linalg.qr(randn(d, m, seed=seed)).Q
    if raw_diagonal:  # unconstrained diagonals: products below -1, so 1 + h' R~_ii R_ii changes sign
        r_diag, rt_diag = randn(m, seed=seed + 1) * 1.5 + 0.5, -(randn(m, seed=seed + 2).abs() * 1.5 + 1.2)
    else:  # the layer's constraint R_ii = tanh(ρ_i), with ρ of size ~2 so that |R~_ii R_ii| is far from 0
        r_diag, rt_diag = torch.tanh(2 * randn(m, seed=seed + 1)), torch.tanh(2 * randn(m, seed=seed + 2))
    return {"z": randn(batch, d, seed=seed + 3), "Q": Q, "R": _triangular(m, seed + 4, r_diag),
            "R_tilde": _triangular(m, seed + 5, rt_diag), "b": randn(m, seed=seed + 6) * 0.5, **extra}


QR_CASES = [
    Case("d = 5, m = 3, batch of 6, tanh-bounded diagonals", lambda: _qr_inputs(700, 5, 3, 6)),
    Case("d = m = 4, Q = exp(S − Sᵀ) a rotation, batch of 5",
         lambda: _qr_inputs(710, 4, 4, 5, rotation_q=True)),
    Case("diagonal products R~_ii R_ii below -1 (1 + h'R~_ii R_ii changes sign), d = m = 3",
         lambda: _qr_inputs(720, 3, 3, 6, raw_diagonal=True)),
    Case("batch of 1, d = 6, m = 2, ReLU", lambda: _qr_inputs(730, 6, 2, 1, activation="relu")),
    Case("leaky ReLU with slope 0.3, d = 4, m = 2, batch of 4",
         lambda: _qr_inputs(740, 4, 2, 4, activation="leaky_relu", negative_slope=0.3)),
]


def _qr_logdet(factor: Tensor, kw: Mapping[str, Any], *, absolute: bool = True) -> Tensor:
    """Σ_i log|1 + factor_i R̃_ii R_ii| (or log without the abs) for the factor a mistake puts there."""
    inner = 1 + factor * torch.diagonal(kw["R_tilde"]) * torch.diagonal(kw["R"])
    return torch.log(torch.abs(inner) if absolute else inner).sum(dim=1)


def _qr_h_dh(ref: KeyRef, kw: Mapping[str, Any], pre: str = "right") -> tuple[Tensor, Tensor]:
    """h and h′ at the pre-activation: right (z @ Q @ R̃ᵀ + b), R̃ not transposed, or the column form R̃Qᵀ."""
    z, Q, Rt, b = kw["z"], kw["Q"], kw["R_tilde"], kw["b"]
    a = {"right": lambda: z @ Q @ Rt.T, "Rt_not_transposed": lambda: z @ Q @ Rt,
         "column_form": lambda: z @ (Rt @ Q.T)}[pre]() + b  # the column form only forms when m = d
    return _h_dh(ref, a, kw)


def _qr_with(ref: KeyRef, kw: Mapping[str, Any], *, pre: str, out: str = "right") -> tuple[Tensor, Tensor]:
    """The triangular layer with a wrong pre-activation (and maybe output matrix), its log-det formula kept."""
    h, dh = _qr_h_dh(ref, kw, pre)
    QR = kw["Q"] @ kw["R"]
    return kw["z"] + (h @ QR.T if out == "right" else h @ QR), _qr_logdet(dh, kw)


# --- Householder ------------------------------------------------------------------------------------------


def _reflect_scaled(ref: KeyRef, kw: Mapping[str, Any], scale: Any) -> Tensor:
    """z − scale·(z − Hz), with Hz the key's reflection: since z − Hz = 2(vᵀz)v/‖v‖², scale ‖v‖² is the
    unnormalised z − 2(vᵀz)v, scale ‖v‖ divides by ‖v‖ once, and scale ½ is the projection onto the mirror."""
    z = kw["z"]
    return z - scale(torch.linalg.vector_norm(kw["v"])) * (z - ref.householder_reflect(**kw))


REFLECT_CASES = [
    Case("v = (3, -1, 2, 0.5), not a unit vector, batch of 5 in 4-D",
         lambda: {"z": randn(5, 4, seed=80), "v": tensor([3.0, -1.0, 2.0, 0.5])}),
    Case("random v of length ~7 in 6-D, batch of 4", lambda: {"z": randn(4, 6, seed=81), "v": randn(6, seed=82) * 3}),
    Case("batch of 1 in 2-D: (1, 0) reflected across the mirror orthogonal to v = (1, 1)",
         lambda: {"z": tensor([[1.0, 0.0]]), "v": tensor([1.0, 1.0])}),
    Case("1-D, v = (2): the reflection z -> -z", lambda: {"z": tensor([[1.5], [-0.3]]), "v": tensor([2.0])}),
    Case("large magnitudes: |v| ~ 10³, |z| ~ 10², 3-D",
         lambda: {"z": randn(3, 3, seed=83) * 100, "v": randn(3, seed=84) * 1000}),
    Case("z and v require grad (as in training), batch of 3 in 4-D",
         lambda: _trainable({"z": randn(3, 4, seed=85), "v": randn(4, seed=86) * 2})),
]

GRADIENT_CASES = [
    Case("v = (3, -1, 2, 0.5), batch of 5 in 4-D, random output weights",
         lambda: {"z": randn(5, 4, seed=87), "v": tensor([3.0, -1.0, 2.0, 0.5]), "weights": randn(5, 4, seed=88)}),
    Case("random v of length ~5 in 6-D, batch of 3",
         lambda: {"z": randn(3, 6, seed=89), "v": randn(6, seed=90) * 2, "weights": randn(3, 6, seed=91)}),
]


def _reflect_gradients(fn: Any, z: Tensor, v: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """What training sees: the gradients of Σ weights·(Hz) with respect to z and to v (zeros where none
    reaches them). The direction of v is the trained parameter of a Householder flow."""
    z, v = z.detach().clone().requires_grad_(), v.detach().clone().requires_grad_()
    out = fn(z, v)
    if not (isinstance(out, Tensor) and out.requires_grad):
        return torch.zeros_like(z), torch.zeros_like(v)
    grads = torch.autograd.grad((out * weights).sum(), (z, v), allow_unused=True)
    return tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, (z, v), strict=True))


def _norm_detached(ref: KeyRef, z: Tensor, v: Tensor) -> Tensor:
    """z − 2(vᵀz)v/c² with c = ‖v‖ a constant: the key's reflection rescaled by ‖v‖²/c² (see _reflect_scaled)."""
    return _reflect_scaled(ref, {"z": z, "v": v}, lambda norm: norm**2 / norm.detach() ** 2)

PRODUCT_CASES = [
    Case("three vectors in 4-D", lambda: {"vs": randn(3, 4, seed=90) * 2}),
    Case("one vector in 3-D: Q = H_1", lambda: {"vs": randn(1, 3, seed=91)}),
    Case("five vectors in 3-D (more reflections than dimensions)", lambda: {"vs": randn(5, 3, seed=92)}),
    Case("v_1 = (1, 0), v_2 = (1, 1) in 2-D: a rotation by 90°", lambda: {"vs": tensor([[1.0, 0.0], [1.0, 1.0]])}),
]


def _flow_inputs(name: str, seed: int, k: int, d: int, batch: int, scale: float = 1.0) -> dict[str, Tensor]:
    return {name: randn(batch, d, seed=seed), "vs": randn(k, d, seed=seed + 1) * scale}


def _flow_cases(name: str) -> list[Case]:
    return [
        Case("three reflections in 4-D, batch of 5", lambda: _flow_inputs(name, 1000, 3, 4, 5)),
        Case(f"{name} and vs require grad (as in training), two reflections in 3-D",
             lambda: _trainable(_flow_inputs(name, 1040, 2, 3, 4))),
        Case("one reflection in 2-D, batch of 1", lambda: _flow_inputs(name, 1010, 1, 2, 1)),
        Case("two reflections in 3-D, batch of 4", lambda: _flow_inputs(name, 1020, 2, 3, 4)),
        Case("five reflections in 6-D, vectors of length ~7", lambda: _flow_inputs(name, 1030, 5, 6, 3, scale=3.0)),
    ]


def _log_det_h(kw: Mapping[str, Any], name: str) -> Tensor:
    """Σ_k log(det H_k) = Σ_k log(−1): NaN. (Taking log det of the whole product instead gives NaN only for an
    odd number of reflections, and the right 0 for an even one, so the even cases need no name.)"""
    return torch.full((kw[name].shape[0],), float("nan"), dtype=torch.float64)


def _det_h(kw: Mapping[str, Any], name: str) -> Tensor:
    k, batch = kw["vs"].shape[0], kw[name].shape[0]
    return torch.full((batch,), (-1.0) ** k, dtype=torch.float64)


# --- the checks -------------------------------------------------------------------------------------------

CHECKS = [
    Check(
        "sylvester_logdet",
        cases=SYLVESTER_CASES,
        mistakes=[
            Mistake("missing h′",
                    "the Jacobian is I_d + A·diag(h′(Bᵀz + b))·Bᵀ, so the small matrix is I_m + diag(h′)·BᵀA: "
                    "without h′ the log-det is the same for every point",
                    lambda ref, kw: ref.sylvester_logdet(**_identity_activation(kw))),
            Mistake("h instead of h′",
                    "the Jacobian holds the derivative h′(a) (for tanh: 1 − tanh²a), not the activation h(a) itself",
                    _h_instead_of_dh),
            Mistake("A Bᵀ where Bᵀ A belongs (I_d vs I_m)",
                    "Sylvester's identity pairs I_d with A·Bᵀ (d×d) and I_m with Bᵀ·A (m×m): the small determinant is "
                    "det(I_m + diag(h′)·BᵀA)",
                    _a_bt_logdet),
            Mistake("triangular shortcut on a matrix that is not triangular",
                    "Σ log|1 + h′_i (BᵀA)_ii| only holds when BᵀA is triangular (the QR form of section 4); for free "
                    "A, B take the full m×m determinant — this is the kind of slip pyro's Sylvester log-det made",
                    _triangular_shortcut),
            Mistake("A and B swapped",
                    "B reads the input (a = Bᵀz + b) and A writes the output; with them swapped h′ is evaluated at the "
                    "wrong pre-activations",
                    lambda ref, kw: ref.sylvester_logdet(**_swapped(kw))),
        ],
    ),
    Check(
        "sylvester_forward",
        cases=SYLVESTER_CASES,
        protocol=_sylvester_x,
        mistakes=[
            Mistake("A and B swapped",
                    "x = z + A·h(Bᵀz + b): B reads the input, A writes the output",
                    lambda ref, kw: ref.sylvester_forward(**_swapped(kw))[0]),
            Mistake("A not transposed in row form",
                    "for a batch of rows, A·h(a) is h @ A.T, not h @ A",
                    _a_not_transposed),
        ],
    ),
    Check(
        "qr_sylvester_forward",
        cases=QR_CASES,
        outputs=("x", "log-det"),
        mistakes=[
            Mistake("missing h′",
                    "each diagonal entry of I_m + diag(h′)·R̃R is 1 + h′(a_i)·R̃_ii·R_ii: the derivative at the "
                    "point's own pre-activation is part of it",
                    lambda ref, kw: (ref.qr_sylvester_forward(**kw)[0],
                                     ref.qr_sylvester_forward(**_identity_activation(kw))[1])),
            Mistake("h instead of h′",
                    "the log-det holds the derivative h′(a_i) (for tanh: 1 − tanh²a_i), not h(a_i)",
                    lambda ref, kw: (ref.qr_sylvester_forward(**kw)[0], _qr_logdet(_qr_h_dh(ref, kw)[0], kw))),
            Mistake("log without abs",
                    "1 + h′R̃_iiR_ii is negative where R̃_iiR_ii < −1/h′: the log-det is Σ log|1 + h′R̃_iiR_ii|",
                    lambda ref, kw: (ref.qr_sylvester_forward(**kw)[0],
                                     _qr_logdet(_qr_h_dh(ref, kw)[1], kw, absolute=False))),
            Mistake("R̃ not transposed in the pre-activation",
                    "in row form a = R̃Qᵀz + b is z @ Q @ R_tilde.T + b",
                    lambda ref, kw: _qr_with(ref, kw, pre="Rt_not_transposed")),
            Mistake("column-vector matrices in row-vector code (pyro's bug)",
                    "in row form a = R̃Qᵀz + b is z @ Q @ R_tilde.T + b and QR·h is h @ (Q @ R).T; with the "
                    "column-form matrices BᵀA is no longer triangular and the diagonal formula is wrong",
                    lambda ref, kw: _qr_with(ref, kw, pre="column_form", out="not_transposed")),
            Mistake("QR not transposed in the output",
                    "for a batch of rows, QR·h(a) is h @ (Q @ R).T",
                    lambda ref, kw: (kw["z"] + _qr_h_dh(ref, kw)[0] @ (kw["Q"] @ kw["R"]),
                                     ref.qr_sylvester_forward(**kw)[1])),
        ],
    ),
    Check(
        "householder_reflect",
        cases=REFLECT_CASES,
        mistakes=[
            Mistake("v not normalised",
                    "H = I − 2vvᵀ/‖v‖²: the lesson notes' z − 2vvᵀz assumes vᵀv = 1, which a free vector v does not "
                    "satisfy — divide by ‖v‖² (or use v/‖v‖)",
                    lambda ref, kw: _reflect_scaled(ref, kw, lambda norm: norm**2)),
            Mistake("divided by ‖v‖ instead of ‖v‖²",
                    "v vᵀ contains v twice, so normalise by ‖v‖² (equivalently, use the unit vector v/‖v‖ twice)",
                    lambda ref, kw: _reflect_scaled(ref, kw, lambda norm: norm)),
            Mistake("projection instead of reflection (factor 2 missing)",
                    "z − (v̂ᵀz)v̂ projects onto the mirror; the reflection goes as far again: z − 2(v̂ᵀz)v̂",
                    lambda ref, kw: _reflect_scaled(ref, kw, lambda norm: 0.5)),
        ],
        atol=1e-8,
    ),
    Check(
        "householder_reflect_gradient",
        key="householder_reflect",
        cases=GRADIENT_CASES,
        protocol=_reflect_gradients,
        outputs=("the gradient with respect to z", "the gradient with respect to v"),
        mistakes=[
            Mistake("norm taken out of the graph (.item(), float(), .detach())",
                    "the values are right, but ‖v‖ turned into a plain number is a constant to autograd, so the "
                    "gradient that trains v is wrong (it should be orthogonal to v: only v's direction matters); "
                    "normalise with tensor operations, v / torch.linalg.vector_norm(v)",
                    lambda ref, kw: _reflect_gradients(lambda z, v: _norm_detached(ref, z, v), **kw)),
            Mistake("no gradient reaches z or v",
                    "the reflection was computed outside autograd (torch.no_grad(), .detach(), NumPy): a "
                    "Householder flow built on it can never train its vectors",
                    lambda ref, kw: (torch.zeros_like(kw["z"]), torch.zeros_like(kw["v"]))),
        ],
        atol=1e-8,
    ),
    Check(
        "householder_product",
        cases=PRODUCT_CASES,
        mistakes=[
            Mistake("reflections multiplied in reverse order",
                    "Q = H_1 H_2 ⋯ H_K, with H_1 from vs[0] on the left; you returned H_K ⋯ H_1 = Qᵀ",
                    lambda ref, kw: ref.householder_product(kw["vs"].flip(0))),
            Mistake("v not normalised",
                    "each factor is H_k = I − 2v_kv_kᵀ/‖v_k‖²; without the division it is not orthogonal",
                    lambda ref, kw: _unnormalised_product(kw["vs"])),
        ],
        atol=1e-9,
    ),
    Check(
        "householder_forward",
        cases=_flow_cases("z"),
        outputs=("x", "log-det"),
        mistakes=[
            Mistake("log-det of a reflection taken as log(−1)",
                    "det H = −1 but the change of variables needs log|det H| = log 1 = 0: reflections reverse "
                    "orientation, they do not change volume",
                    lambda ref, kw: (ref.householder_forward(**kw)[0], _log_det_h(kw, "z"))),
            Mistake("determinant returned instead of log|det|",
                    "the flow returns log|det ∂x/∂z| = Σ log|det H_k| = 0, not det = (−1)^K",
                    lambda ref, kw: (ref.householder_forward(**kw)[0], _det_h(kw, "z"))),
            Mistake("reflections applied in reverse order",
                    "the forward flow applies vs[0] first: x = H_K ⋯ H_1 z; reflections do not commute",
                    lambda ref, kw: ref.householder_forward(kw["z"], kw["vs"].flip(0))),
        ],
        atol=1e-9,
    ),
    Check(
        "householder_inverse",
        cases=_flow_cases("x"),
        outputs=("z", "log-det"),
        mistakes=[
            Mistake("reflections undone in the wrong order",
                    "each H_k is its own inverse, but the last one applied must be undone first: "
                    "z = H_1 H_2 ⋯ H_K x, i.e. loop over vs in reverse",
                    lambda ref, kw: ref.householder_forward(kw["x"], kw["vs"])),
            Mistake("log-det of a reflection taken as log(−1)",
                    "det H = −1 but the log-det is log|det H| = 0",
                    lambda ref, kw: (ref.householder_inverse(**kw)[0], _log_det_h(kw, "x"))),
        ],
        atol=1e-9,
    ),
    Check("quiz_06_identity_test"),
    Check("quiz_06_householder_training"),
    Check("quiz_06_cost"),
    Check("quiz_06_orthogonal_m"),
    Check(
        "quiz_06_det_three_reflections",
        atol=1e-9,
        mistakes=[
            Mistake("|det| instead of det",
                    "each reflection has det H = −1 (it flips one direction); |det| = 1 makes it volume-preserving",
                    lambda ref, kw: 1.0),
            Mistake("log|det| instead of det",
                    "log|det| of the product is 0, but the question asks for the determinant itself: (−1)³",
                    lambda ref, kw: 0.0),
        ],
    ),
]


def _unnormalised_product(vs: Tensor) -> Tensor:
    d = vs.shape[1]
    Q = torch.eye(d, dtype=vs.dtype)
    for v in vs:
        Q = Q @ (torch.eye(d, dtype=vs.dtype) - 2 * torch.outer(v, v))
    return Q

