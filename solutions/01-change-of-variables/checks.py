"""Hidden checks of lesson 01, the change of variables (answer key: ``key.py`` beside the notebook)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from flowcourse_instructor.grading.spec import Case, Check, Mistake, randn, tensor

_LOG_2PI = math.log(2 * math.pi)


def _affine_inputs(seed: int, d: int, batch: int) -> dict[str, Tensor]:
    a = randn(d, seed=seed + 1) * 1.5
    a[0] = -abs(a[0]) - 0.3  # one negative scale: log|a| needs the absolute value
    return {"z": randn(batch, d, seed=seed), "a": a, "b": randn(d, seed=seed + 2)}


def _as_x(inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {"x": inputs["z"] * 2 + 0.5, "a": inputs["a"], "b": inputs["b"]}


_AFFINE_CASES = [
    Case("batch of 4 points in 3-D, one negative scale a", lambda: _affine_inputs(10, 3, 4)),
    Case("scalar a = 0.5, b = -1 on 5 points in 1-D", lambda: {"z": randn(5, 1, seed=20), "a": tensor(0.5),
                                                               "b": tensor(-1.0)}),
    Case("one point in 2-D, a = (-2, 3)", lambda: {"z": tensor([[0.3, -1.2]]), "a": tensor([-2.0, 3.0]),
                                                   "b": tensor([1.0, 0.0])}),
]
_AFFINE_X_CASES = [Case(c.label.replace("points", "data points"), (lambda c=c: _as_x(c.inputs())))
                   for c in _AFFINE_CASES]


def _sinh_inverse(x: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of the flow x = sinh(z): z = asinh(x), log|dz/dx| = -1/2 Σ log(1 + x²)."""
    return torch.asinh(x), -0.5 * torch.log1p(x**2).sum(dim=1)


def _exp_inverse(x: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of the flow x = exp(z) onto the positive reals: z = log x, log|dz/dx| = -Σ log x."""
    return torch.log(x), -torch.log(x).sum(dim=1)


def _cov_parts(ref: Any, inputs: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """The base log-density at f⁻¹(x) (the key's) and the inverse's log-det, not yet added."""
    z, logdet = inputs["inverse"](inputs["x"])
    return ref.standard_normal_log_prob(z), logdet


def _affine_parts(ref: Any, inputs: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """The key's log p_Z((x - b)/a) and its inverse's log-det -Σ log|a|, not yet added."""
    z, logdet = ref.scalar_affine_inverse(**inputs)
    return ref.standard_normal_log_prob(z), logdet


def _layers() -> list[Any]:
    return [
        lambda v: (torch.exp(v), v.sum(dim=1)),
        lambda v: (v**3 + v, torch.log(3 * v**2 + 1).sum(dim=1)),
        lambda v: (torch.sinh(v), torch.log(torch.cosh(v)).sum(dim=1)),
    ]


CHECKS = [
    Check(
        "standard_normal_log_prob",
        cases=[
            Case("batch of 5 points in 3-D", lambda: {"z": randn(5, 3, seed=1)}),
            Case("the origin in 2-D (log p = -log 2π)", lambda: {"z": tensor([[0.0, 0.0]])}),
            Case("batch of 2 points in 1-D", lambda: {"z": tensor([[1.0], [-2.0]])}),
        ],
        mistakes=[
            Mistake("missing normalising constant",
                    "log N(z; 0, I) includes -d/2·log(2π); without it the density does not integrate to 1",
                    lambda ref, kw: ref.standard_normal_log_prob(kw["z"]) + 0.5 * kw["z"].shape[1] * _LOG_2PI),
            Mistake("constant counted once, not per dimension",
                    "the constant is -½·log(2π) for EACH of the d coordinates: -d/2·log(2π)",
                    lambda ref, kw: ref.standard_normal_log_prob(kw["z"])
                    + 0.5 * (kw["z"].shape[1] - 1) * _LOG_2PI),
        ],
    ),
    Check(
        "scalar_affine",
        cases=_AFFINE_CASES,
        mistakes=[
            Mistake("log without abs",
                    "the log-det is Σ log|a|: with a negative scale, log(a) is NaN — take the absolute value",
                    lambda ref, kw: (ref.scalar_affine(**kw)[0],
                                     torch.log(kw["a"]).expand_as(kw["z"]).sum(dim=1))),
            Mistake("log-det of one coordinate only",
                    "every coordinate is scaled, so the log-det sums log|a_i| over all d coordinates",
                    lambda ref, kw: (ref.scalar_affine(**kw)[0],
                                     torch.log(kw["a"].abs()).expand_as(kw["z"])[:, 0])),
        ],
    ),
    Check(
        "scalar_affine_inverse",
        cases=_AFFINE_X_CASES,
        mistakes=[
            Mistake("forward log-det returned by the inverse",
                    "the inverse z = (x - b)/a stretches by 1/a: its log-det is -Σ log|a|, the forward's negated",
                    lambda ref, kw: (ref.scalar_affine_inverse(**kw)[0], -ref.scalar_affine_inverse(**kw)[1])),
        ],
    ),
    Check(
        "change_of_variables_log_prob",
        cases=[
            Case("x = exp(z) on 4 points in 2-D", lambda: {"x": torch.exp(randn(4, 2, seed=30)),
                                                          "inverse": _exp_inverse}),
            Case("x = sinh(z) on 5 points in 3-D", lambda: {"x": randn(5, 3, seed=31) * 3,
                                                           "inverse": _sinh_inverse}),
        ],
        mistakes=[
            Mistake("sign of the log-det",
                    "inverse(x) returns log|det ∂f⁻¹/∂x|, which is ADDED: "
                    "log p_X(x) = log p_Z(f⁻¹(x)) + log|det ∂f⁻¹/∂x|",
                    lambda ref, kw: _cov_parts(ref, kw)[0] - _cov_parts(ref, kw)[1]),
            Mistake("missing log-det",
                    "the density must be corrected for the change of volume: add the inverse's log-det",
                    lambda ref, kw: _cov_parts(ref, kw)[0]),
            Mistake("base density evaluated at x instead of f⁻¹(x)",
                    "p_Z is evaluated at z = f⁻¹(x), the point x came from, not at x itself",
                    lambda ref, kw: ref.standard_normal_log_prob(kw["x"]) + _cov_parts(ref, kw)[1]),
        ],
    ),
    Check(
        "scalar_affine_log_prob",
        cases=_AFFINE_X_CASES,
        mistakes=[
            Mistake("missing log-det",
                    "worked example 1: p_X(x) = p_Z((x - b)/a) · 1/|a| — the factor 1/|a| corrects for the stretch",
                    lambda ref, kw: _affine_parts(ref, kw)[0]),
            Mistake("f instead of f⁻¹ (log-det of the forward map added)",
                    "the inverse's log-det is -Σ log|a|; adding +Σ log|a| is the forward direction's",
                    lambda ref, kw: _affine_parts(ref, kw)[0] - _affine_parts(ref, kw)[1]),
            Mistake("log without abs",
                    "log|a|, not log(a): a negative scale flips the line but the density stays positive",
                    lambda ref, kw: _affine_parts(ref, kw)[0] - torch.log(kw["a"]).expand_as(kw["x"]).sum(dim=1)),
        ],
    ),
    Check(
        "compose_forward",
        cases=[
            Case("three layers (exp, z³+z, sinh) on 4 points in 2-D",
                 lambda: {"z": randn(4, 2, seed=40) * 0.5, "layers": _layers()}),
            Case("a single layer", lambda: {"z": randn(3, 2, seed=41), "layers": _layers()[1:2]}),
            Case("layers in the other order", lambda: {"z": randn(4, 2, seed=42) * 0.5,
                                                       "layers": _layers()[::-1]}),
        ],
        mistakes=[
            Mistake("only the last layer's log-det",
                    "log-dets of composed layers ADD: keep a running total over all layers",
                    lambda ref, kw: (ref.compose_forward(kw["z"], kw["layers"])[0],
                                     kw["layers"][-1](ref.compose_forward(kw["z"], kw["layers"][:-1])[0])[1])),
            Mistake("layers applied in reverse order",
                    "layers[0] acts first: x = f_K(…f_2(f_1(z)))",
                    lambda ref, kw: ref.compose_forward(kw["z"], kw["layers"][::-1])),
        ],
    ),
    Check(
        "rotation_matrix",
        cases=[
            Case("theta = 0.7", lambda: {"theta": tensor(0.7)}),
            Case("theta = π/2 (quarter turn)", lambda: {"theta": tensor(math.pi / 2)}),
            Case("theta = -2.5", lambda: {"theta": tensor(-2.5)}),
        ],
        mistakes=[
            Mistake("clockwise rotation (matrix transposed)",
                    "R(θ) = [[cos θ, -sin θ], [sin θ, cos θ]] turns counter-clockwise; you returned its transpose",
                    lambda ref, kw: ref.rotation_matrix(kw["theta"]).T),
        ],
        atol=1e-9,
    ),
    Check("practice_3_rotation_logdet", atol=1e-9),
    Check("quiz_01_positive_log_prob"),
    Check("quiz_01_q1"),
    Check("quiz_01_q5"),
    Check("quiz_01_q7"),
]
