"""Hidden checks of lesson 02, triangular Jacobians and autoregressive flows.

Answer key: the lesson's ``key.py`` (``triangular_logdet``, MADE degrees and masks, the affine
autoregressive step both ways, the sequential inverse, MAF and IAF in both directions); mistakes reach it
through ``ref``.
The flow functions take a ``conditioner``; the checks hand them a :class:`_Conditioner` that counts its
calls, and compare the pass count with the answer key's, so "sampling a MAF takes d passes, its density
one" is graded, not just the numbers. The sequential inverse is run on a softplus-scaled step, not on the
graded affine step, so no case input carries an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from flowcourse_instructor.grading.spec import Case, Check, Mistake, randn, tensor

# --- triangular log-determinant ---------------------------------------------------------------------------


def _lower(batch: tuple[int, ...], d: int, seed: int, scale: float = 1.0) -> Tensor:
    """Random lower-triangular matrices whose diagonal is bounded away from 0 and partly negative."""
    J = randn(*batch, d, d, seed=seed).tril(-1)
    diagonal = (randn(*batch, d, seed=seed + 1).abs() + 0.2) * scale
    sign = torch.where(randn(*batch, d, seed=seed + 2) < 0, -1.0, 1.0).to(diagonal.dtype)
    return J + torch.diag_embed(diagonal * sign)


def _worked_triangular() -> dict[str, Tensor]:
    # det = 2 · 0.5 · (−4) = −4, so log|det| = log 4
    return {"J": tensor([[2.0, 0.0, 0.0], [-1.0, 0.5, 0.0], [3.0, 7.0, -4.0]])}


def _diagonal(kw: Mapping[str, Tensor]) -> Tensor:
    return kw["J"].diagonal(dim1=-2, dim2=-1)


TRIANGULAR_CASES = [
    Case("3×3 lower-triangular, diagonal (2, 0.5, −4): log|det| = log 4", _worked_triangular),
    Case("batch of 4 random lower-triangular 5×5 with negative diagonal entries",
         lambda: {"J": _lower((4,), 5, seed=11)}),
    Case("batch (2, 3) of upper-triangular 4×4", lambda: {"J": _lower((2, 3), 4, seed=12).transpose(-1, -2)}),
    Case("a batch of two 1×1 matrices, [[−3]] and [[0.5]]", lambda: {"J": tensor([[[-3.0]], [[0.5]]])}),
    Case("large magnitudes: 300×300 lower-triangular, diagonal entries of size ~10³ (det overflows float64)",
         lambda: {"J": _lower((), 300, seed=13, scale=1000.0)}),
]

# --- MADE --------------------------------------------------------------------------------------------------

DEGREE_CASES = [
    Case("d = 4, natural order", lambda: {"d": 4, "order": None}),
    Case("d = 5, order [2, 0, 3, 1, 4]", lambda: {"d": 5, "order": [2, 0, 3, 1, 4]}),
    Case("d = 6, order [5, 3, 0, 4, 1, 2]", lambda: {"d": 6, "order": [5, 3, 0, 4, 1, 2]}),
    Case("d = 2, reversed order [1, 0]", lambda: {"d": 2, "order": [1, 0]}),
]

MASK_CASES = [
    Case("d = 3, one hidden layer of 2 units, natural order", lambda: {"d": 3, "hidden_sizes": [2], "order": None}),
    Case("d = 5, hidden [8, 6], order [2, 0, 3, 1, 4]",
         lambda: {"d": 5, "hidden_sizes": [8, 6], "order": [2, 0, 3, 1, 4]}),
    Case("d = 6, hidden [3] (fewer units than d − 1), order [5, 3, 0, 4, 1, 2]",
         lambda: {"d": 6, "hidden_sizes": [3], "order": [5, 3, 0, 4, 1, 2]}),
    Case("d = 4, no hidden layer (a single 4×4 mask)", lambda: {"d": 4, "hidden_sizes": [], "order": None}),
    Case("d = 2, three hidden layers [4, 4, 4], order [1, 0]",
         lambda: {"d": 2, "hidden_sizes": [4, 4, 4], "order": [1, 0]}),
]


def _order(d: int, order: Sequence[int] | None) -> Tensor:
    return torch.arange(d) if order is None else torch.as_tensor(order)


def _hidden_degrees(size: int, d: int) -> Tensor:
    return torch.arange(size) % (d - 1) + 1


def _masks_with(ref: Any, kw: Mapping[str, Any], *,
                hidden: Callable[[Tensor, Tensor], Tensor] = torch.ge,
                out: Callable[[Tensor, Tensor], Tensor] = torch.gt,
                hidden_degrees: Callable[[int, int], Tensor] = _hidden_degrees) -> list[Tensor]:
    """MADE masks with one rule changed (the key's input degrees): the building block of the mask mistakes."""
    d = kw["d"]
    degrees = ref.made_degrees(d, kw["order"])
    masks, previous = [], degrees
    for size in kw["hidden_sizes"]:
        current = hidden_degrees(size, d)
        masks.append(hidden(current[:, None], previous[None, :]).float())
        previous = current
    masks.append(out(degrees[:, None], previous[None, :]).float())
    return masks


def _degrees_not_inverted(kw: Mapping[str, Any]) -> Tensor:
    return _order(kw["d"], kw["order"]).long() + 1


# --- affine autoregressive step ----------------------------------------------------------------------------


def _affine_inputs(name: str, batch: int, d: int, seed: int, scale: float = 1.0) -> dict[str, Tensor]:
    return {name: randn(batch, d, seed=seed) * 2, "shift": randn(batch, d, seed=seed + 1),
            "log_scale": randn(batch, d, seed=seed + 2) * scale}


def _trainable(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same inputs as leaf tensors that require grad, as in a layer being trained: an in-place edit of
    one of them raises (or changes the caller's tensor), which the judge names."""
    return {k: v.requires_grad_() for k, v in inputs.items()}


def _affine_cases(name: str) -> list[Case]:
    return [
        Case("batch of 5 in 4-D", lambda: _affine_inputs(name, 5, 4, seed=21)),
        Case("batch of 1 in 3-D", lambda: _affine_inputs(name, 1, 3, seed=22)),
        Case("large log-scales (|α| up to ~10) in 6-D", lambda: _affine_inputs(name, 3, 6, seed=23, scale=4.0)),
        Case(f"{name}, shift and log_scale require grad (as in training), batch of 4 in 3-D",
             lambda: _trainable(_affine_inputs(name, 4, 3, seed=24))),
    ]


# --- conditioners and the flows built on them --------------------------------------------------------------


class _Conditioner:
    r"""A fixed autoregressive conditioner :math:`y \mapsto (\mu(y), \alpha(y))` that counts its calls.

    Coordinate ``order[k]`` of both outputs reads only ``y[:, order[:k]]`` (strictly lower-triangular
    weights in the order, then ``tanh``); random, non-linear and far from the identity, so one pass too few
    or the wrong variable read gives a visibly wrong answer.
    """

    def __init__(self, d: int, seed: int, order: Sequence[int] | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        rank = torch.empty(d, dtype=torch.long)
        rank[_order(d, order)] = torch.arange(d)
        allowed = (rank[None, :] < rank[:, None]).to(dtype)  # allowed[i, j]: j comes before i
        self.A = randn(d, d, seed=seed, dtype=dtype) * allowed
        self.B = randn(d, d, seed=seed + 1, dtype=dtype) * allowed
        self.mu0 = randn(d, seed=seed + 2, dtype=dtype)
        self.alpha0 = randn(d, seed=seed + 3, dtype=dtype) * 0.3
        self.passes = 0

    def __call__(self, y: Tensor) -> tuple[Tensor, Tensor]:
        self.passes += 1
        if y.dtype != self.A.dtype:  # a float64 tensor made with the default dtype, fed to a float32 conditioner
            raise TypeError(f"the conditioner works in {str(self.A.dtype).removeprefix('torch.')} like y, but was "
                            f"given {str(y.dtype).removeprefix('torch.')}: make new tensors in y's dtype "
                            "(torch.zeros_like(y), y.new_zeros(...))")
        return 1.5 * torch.tanh(y @ self.A.T) + self.mu0, 0.8 * torch.tanh(y @ self.B.T) + self.alpha0

    def __repr__(self) -> str:
        return f"<autoregressive conditioner on {self.A.shape[0]} dimensions>"


def _flow_inputs(name: str, batch: int, d: int, seed: int, order: Sequence[int] | None = None,
                 scale: float = 1.0) -> dict[str, Any]:
    return {name: randn(batch, d, seed=seed) * scale, "conditioner": _Conditioner(d, seed + 100, order)}


def _flow_cases(name: str) -> list[Case]:
    return [
        Case("d = 3, natural order, batch of 4", lambda: _flow_inputs(name, 4, 3, seed=31)),
        Case("d = 5, order [3, 0, 4, 2, 1], batch of 6", lambda: _flow_inputs(name, 6, 5, seed=32,
                                                                              order=[3, 0, 4, 2, 1])),
        Case("d = 2, reversed order [1, 0], batch of 2", lambda: _flow_inputs(name, 2, 2, seed=33, order=[1, 0])),
        Case("batch of 1, d = 8, reversed order, inputs of size ~5",
             lambda: _flow_inputs(name, 1, 8, seed=34, order=list(range(7, -1, -1)), scale=5.0)),
    ]


def _with_passes(fn: Callable[..., Any], **inputs: Any) -> Any:
    """What the flow checks compare: the function's ``(points, logdet)`` and how many passes it made."""
    out = fn(**inputs)
    passes = inputs["conditioner"].passes
    return (*out, passes) if isinstance(out, tuple) else (out, passes)


def _softplus_step(y: Tensor, shift: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """An elementwise step other than the graded affine one: u = y·softplus(α) + μ, log-det Σ log softplus(α)."""
    scale = F.softplus(log_scale)
    return y * scale + shift, scale.log().sum(-1)


def _softplus_step_inverse(y: Tensor, shift: Tensor, log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """Its inverse: u = (y − μ) / softplus(α), log-det −Σ log softplus(α)."""
    scale = F.softplus(log_scale)
    return (y - shift) / scale, -scale.log().sum(-1)


def _sequential_inputs(step: Callable[..., Any], batch: int, d: int, seed: int,
                       order: Sequence[int] | None = None, dtype: torch.dtype = torch.float64) -> dict[str, Any]:
    return {"conditioner": _Conditioner(d, seed + 100, order, dtype), "step": step,
            "y": randn(batch, d, seed=seed, dtype=dtype)}


SEQUENTIAL_CASES = [
    Case("step u = y·softplus(α) + μ, d = 4, natural order, batch of 5",
         lambda: _sequential_inputs(_softplus_step, 5, 4, seed=41)),
    Case("step u = (y − μ) / softplus(α), d = 5, order [2, 0, 4, 1, 3], batch of 3",
         lambda: _sequential_inputs(_softplus_step_inverse, 3, 5, seed=42, order=[2, 0, 4, 1, 3])),
    Case("d = 2, step u = (y − μ) / softplus(α), batch of 3",
         lambda: _sequential_inputs(_softplus_step_inverse, 3, 2, seed=43)),
    Case("batch of 1, d = 6, reversed order, step u = y·softplus(α) + μ",
         lambda: _sequential_inputs(_softplus_step, 1, 6, seed=44, order=[5, 4, 3, 2, 1, 0])),
    Case("float32 (as in the MAF demo): y and the conditioner in float32, d = 3, batch of 4",
         lambda: _sequential_inputs(_softplus_step, 4, 3, seed=45, dtype=torch.float32)),
]


def _passes_loop(kw: Mapping[str, Any], passes: int) -> tuple[Tensor, Tensor, int]:
    """The sequential inverse stopped after ``passes`` passes (the pass-count mistakes)."""
    y = kw["y"]
    u, logdet = torch.zeros_like(y), y.new_zeros(y.shape[0])
    for _ in range(passes):
        u, logdet = kw["step"](y, *kw["conditioner"](u))
    return u, logdet, passes


def _d(kw: Mapping[str, Any], name: str) -> int:
    return kw[name].shape[-1]


def _flow_as(ref_fn: Callable[..., Any], name: str, passes: Callable[[int], int]) -> Callable[..., Any]:
    """A mistake: the other flow's map (or the right map) computed with ``passes(d)`` passes."""
    def output(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, int]:
        points, logdet = ref_fn(ref)(kw[name], kw["conditioner"])
        return points, logdet, passes(_d(kw, name))
    return output


def _early_stop(name: str, step: Callable[[Any], Any]) -> Callable[..., Any]:
    """A mistake: the flow's d-pass direction through a sequential inverse that stops after d − 1 passes."""
    def output(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, int]:
        return _passes_loop({"y": kw[name], "step": step(ref), "conditioner": kw["conditioner"]}, _d(kw, name) - 1)
    return output


_EARLY_STOP = ("your sequential_inverse stops one pass early (d − 1 passes)",
               "the last coordinate in the order is never exact: fix sequential_inverse first (see its own check); "
               "this function is right on top of it")

_MAF_SAMPLE_HINT = ("a MAF's μ and α read the data x, which does not exist yet when you sample: build x one "
                    "coordinate per pass — d passes (sequential_inverse with affine_autoregressive)")
_IAF_DENSITY_HINT = ("an IAF's μ and α read the base point z, which is what you are solving for: recover z one "
                     "coordinate per pass — d passes (sequential_inverse with affine_autoregressive_inverse)")


CHECKS = [
    Check(
        "triangular_logdet",
        cases=TRIANGULAR_CASES,
        mistakes=[
            Mistake("log without abs",
                    "log|det J| = Σ log|J_ii|: a negative diagonal entry is fine (it flips an axis), "
                    "but its log is NaN — take the absolute value first",
                    lambda ref, kw: _diagonal(kw).log().sum(-1)),
            Mistake("trace instead of log-det",
                    "the determinant of a triangular matrix is the PRODUCT of its diagonal, so the log-det is "
                    "the sum of the LOGS of the diagonal entries, not the sum of the entries",
                    lambda ref, kw: _diagonal(kw).sum(-1)),
            Mistake("product of the diagonal before the log (overflow)",
                    "multiplying 300 entries of size 10³ overflows float64 to inf: sum the logs, Σ log|J_ii|, "
                    "never take log(Π J_ii)",
                    lambda ref, kw: _diagonal(kw).prod(-1).abs().log()),
        ],
    ),
    Check(
        "made_degrees",
        cases=DEGREE_CASES,
        mistakes=[
            Mistake("degree[k] = order[k] + 1 (order not inverted)",
                    "order lists the dimensions in generation order, so dimension order[k] gets degree k + 1: "
                    "degree[order[k]] = k + 1, not degree[k] = order[k] + 1",
                    lambda ref, kw: _degrees_not_inverted(kw)),
            Mistake("degrees start at 0",
                    "MADE degrees run from 1 to d: the first dimension in the order has degree 1",
                    lambda ref, kw: ref.made_degrees(kw["d"], kw["order"]) - 1),
        ],
    ),
    Check(
        "made_masks",
        cases=MASK_CASES,
        mistakes=[
            Mistake("MADE mask off by one, output sees its own input (≥ instead of > in the output mask)",
                    "the OUTPUT mask needs a strict >: with ≥ the output of degree m reads hidden units of degree "
                    "m, which read input m itself — x_i then depends on z_i through μ_i and α_i, the Jacobian is "
                    "no longer triangular with diagonal e^α, and Σα is not the log-det",
                    lambda ref, kw: _masks_with(ref, kw, out=torch.ge)),
            Mistake("MADE hidden masks strict (> instead of ≥)",
                    "hidden units may read inputs of their OWN degree (≥); with > every dependency on the "
                    "immediately preceding coordinate is lost and the first hidden degree reads nothing",
                    lambda ref, kw: _masks_with(ref, kw, hidden=torch.gt)),
            Mistake("order ignored",
                    "the degrees must follow the given order: dimension order[k] has degree k + 1",
                    lambda ref, kw: ref.made_masks(kw["d"], kw["hidden_sizes"], None)),
            Mistake("hidden degrees up to d",
                    "hidden degrees cycle through 1..d−1, i.e. (k mod (d−1)) + 1: a hidden unit of degree d could "
                    "only feed outputs of degree > d, and there are none",
                    lambda ref, kw: _masks_with(ref, kw,
                                                hidden_degrees=lambda size, d: torch.arange(size) % d + 1)),
            Mistake("masks transposed",
                    "each mask is shaped like nn.Linear.weight, (out_features, in_features): rows are the units "
                    "of the layer, columns the units it reads",
                    lambda ref, kw: [m.T for m in ref.made_masks(kw["d"], kw["hidden_sizes"],
                                                                                 kw["order"])]),
        ],
    ),
    Check(
        "affine_autoregressive",
        cases=_affine_cases("z"),
        outputs=("x", "the log-det"),
        mistakes=[
            Mistake("α used as the scale",
                    "the scale is e^α (always positive): x = z·e^α + μ, and the log-det is Σ α",
                    lambda ref, kw: (kw["z"] * kw["log_scale"] + kw["shift"],
                                     kw["log_scale"].abs().log().sum(-1))),
            Mistake("log-det Σ e^α instead of Σ α",
                    "∂x_i/∂z_i = e^{α_i}, whose log is α_i: the log-det is Σ α_i",
                    lambda ref, kw: (ref.affine_autoregressive(**kw)[0], kw["log_scale"].exp().sum(-1))),
        ],
    ),
    Check(
        "affine_autoregressive_inverse",
        cases=_affine_cases("x"),
        outputs=("z", "the log-det"),
        mistakes=[
            Mistake("shift removed after unscaling",
                    "undo the steps in reverse order: first subtract μ, then divide by e^α: z = (x − μ)·e^−α",
                    lambda ref, kw: (kw["x"] * (-kw["log_scale"]).exp() - kw["shift"],
                                     ref.affine_autoregressive_inverse(**kw)[1])),
            Mistake("multiplied by e^α instead of dividing",
                    "the inverse undoes the scaling: z = (x − μ)·e^−α",
                    lambda ref, kw: ((kw["x"] - kw["shift"]) * kw["log_scale"].exp(),
                                     ref.affine_autoregressive_inverse(**kw)[1])),
            Mistake("inverse log-det not negated (+Σ α)",
                    "the inverse divides by e^α, so ∂z_i/∂x_i = e^{−α_i}: its log-det is −Σ α, the negative of "
                    "the forward step's",
                    lambda ref, kw: (ref.affine_autoregressive_inverse(**kw)[0], kw["log_scale"].sum(-1))),
        ],
    ),
    Check(
        "sequential_inverse",
        cases=SEQUENTIAL_CASES,
        protocol=_with_passes,
        outputs=("u", "the log-det", "the number of conditioner passes"),
        same_dtype=True,
        mistakes=[
            Mistake("one pass from u = 0",
                    "one pass only fixes the first coordinate in the order; repeat u = step(y, *conditioner(u)) "
                    "d times, each pass fixing one more coordinate",
                    lambda ref, kw: _passes_loop(kw, 1)),
            Mistake("conditioner fed y instead of u (one pass, the MAF/IAF direction confused)",
                    "the parameters must be computed from the unknown u you are solving for, not from the given "
                    "y; that is why this direction needs d passes",
                    lambda ref, kw: (*kw["step"](kw["y"], *kw["conditioner"](kw["y"])), 1)),
            Mistake("d − 1 passes (off by one)",
                    "after pass k the first k coordinates in the order are exact: the last coordinate needs "
                    "pass d",
                    lambda ref, kw: _passes_loop(kw, _d(kw, "y") - 1)),
            Mistake("d + 1 passes",
                    "the log-det returned by the d-th pass is already exact: reuse it instead of calling the "
                    "conditioner once more — exactly d passes",
                    lambda ref, kw: (*ref.sequential_inverse(kw["conditioner"], kw["step"], kw["y"]),
                                     _d(kw, "y") + 1)),
        ],
    ),
    Check(
        "maf_forward",
        cases=_flow_cases("z"),
        protocol=_with_passes,
        outputs=("x", "the log-det", "the number of conditioner passes"),
        mistakes=[
            Mistake("MAF vs IAF direction, MAF sampled in one pass (that is the IAF's forward)",
                    _MAF_SAMPLE_HINT, _flow_as(lambda ref: ref.iaf_forward, "z", lambda d: 1)),
            Mistake(*_EARLY_STOP, _early_stop("z", lambda ref: ref.affine_autoregressive)),
        ],
    ),
    Check(
        "maf_inverse",
        cases=_flow_cases("x"),
        protocol=_with_passes,
        outputs=("z", "the log-det", "the number of conditioner passes"),
        mistakes=[
            Mistake("MAF vs IAF direction, MAF density in d passes (that is the IAF's inverse)",
                    "a MAF's μ and α read the data x, which you are given: one conditioner pass gives all of "
                    "them, z = (x − μ(x))·e^−α(x)",
                    _flow_as(lambda ref: ref.iaf_inverse, "x", lambda d: d)),
            Mistake("MAF density right but in d passes",
                    "every parameter reads the given x, so ONE conditioner pass is enough for the density — "
                    "the speed that makes a MAF good for maximum likelihood",
                    _flow_as(lambda ref: ref.maf_inverse, "x", lambda d: d)),
        ],
    ),
    Check(
        "iaf_forward",
        cases=_flow_cases("z"),
        protocol=_with_passes,
        outputs=("x", "the log-det", "the number of conditioner passes"),
        mistakes=[
            Mistake("MAF vs IAF direction, IAF sampled in d passes (that is the MAF's forward)",
                    "an IAF's μ and α read the base point z, which you are given: one pass, x = z·e^α(z) + μ(z)",
                    _flow_as(lambda ref: ref.maf_forward, "z", lambda d: d)),
            Mistake("IAF sample right but in d passes",
                    "every parameter reads the given z, so ONE conditioner pass is enough for sampling — "
                    "the speed that makes an IAF good for variational inference",
                    _flow_as(lambda ref: ref.iaf_forward, "z", lambda d: d)),
        ],
    ),
    Check(
        "iaf_inverse",
        cases=_flow_cases("x"),
        protocol=_with_passes,
        outputs=("z", "the log-det", "the number of conditioner passes"),
        mistakes=[
            Mistake("MAF vs IAF direction, IAF density in one pass (that is the MAF's inverse)",
                    _IAF_DENSITY_HINT, _flow_as(lambda ref: ref.maf_inverse, "x", lambda d: 1)),
            Mistake(*_EARLY_STOP, _early_stop("x", lambda ref: ref.affine_autoregressive_inverse)),
        ],
    ),
    Check("quiz_02_q2",
          mistakes=[Mistake("orthogonal Jacobian",
                            "an orthogonal Jacobian has |det| = 1 (a rotation); an autoregressive Jacobian is "
                            "triangular, and its determinant is the product of the diagonal",
                            lambda ref, kw: "C")]),
    Check("quiz_02_maf_sample_passes", atol=0.0, rtol=0.0,
          mistakes=[Mistake("one pass per sample",
                            "a pass processes the whole batch at once; the d passes come from the d coordinates",
                            lambda ref, kw: 64_000),
                    Mistake("MAF sampling in one pass",
                            "one pass is the MAF's density direction; sampling builds x coordinate by coordinate",
                            lambda ref, kw: 1)]),
    Check("quiz_02_vae_posterior"),
    Check("quiz_02_leaky_mask"),
]
