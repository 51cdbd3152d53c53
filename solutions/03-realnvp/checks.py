"""Hidden checks of lesson 03, RealNVP affine coupling (answer key: ``reference.coupling``).

The coupling functions are checked on the seeds' worked example 2 and on random non-identity scales and
shifts whose entries on the *kept* coordinates are nonzero, so a log-det that also sums the kept half,
or a map that moves it, cannot pass. The layer class is exercised through :func:`_layer_protocol` with a
fixed, seeded conditioner network, in both directions, on inputs that are not each other's images (so a
forward error and an inverse error are graded separately). Practice problem 2 (``s ≠ 0``) is graded by
:func:`_outcome`, which records whether the student's function raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from flowcourse_instructor.grading.spec import Case, Check, Mistake, rand, randn, tensor

# --- the two coupling functions ------------------------------------------------------------------------


def _worked_example_2(point: str) -> dict[str, Tensor]:
    # the seeds' worked example 2: z = (1, 3), z_1 kept, s = exp(0.5), t = 2  ->  x = (1, 6.946)
    value = [[1.0, 3.0]] if point == "z" else [[1.0, 6.946]]
    return {point: tensor(value), "mask": tensor([1.0, 0.0]), "log_s": tensor(0.5), "t": tensor(2.0)}


def _random_batch(point: str) -> dict[str, Tensor]:
    return {point: randn(5, 4, seed=31), "mask": tensor([1.0, 0.0, 1.0, 0.0]),
            "log_s": 1.5 * randn(5, 4, seed=32), "t": 2.0 * randn(5, 4, seed=33)}


def _one_point(point: str) -> dict[str, Tensor]:
    return {point: tensor([[0.7, -1.2, 2.0]]), "mask": tensor([0.0, 1.0, 1.0]),
            "log_s": tensor([-1.3, 0.4, 2.2]), "t": tensor([0.5, -3.0, 1.0])}


def _large(point: str) -> dict[str, Tensor]:
    return {point: 100.0 * randn(6, 2, seed=34), "mask": tensor([0.0, 1.0]),
            "log_s": rand(6, 2, seed=35, low=-5.0, high=5.0), "t": 10.0 * randn(6, 2, seed=36)}


def _float32(point: str) -> dict[str, Tensor]:
    # the training of section 7 runs in float32: the outputs must stay float32 (same_dtype)
    f32 = torch.float32
    return {point: randn(4, 2, seed=37, dtype=f32), "mask": tensor([0.0, 1.0], dtype=f32),
            "log_s": randn(4, 2, seed=38, dtype=f32), "t": randn(4, 2, seed=39, dtype=f32)}


def _trained(point: str) -> dict[str, Tensor]:
    # inside a layer being trained, z (or x), log s and t carry gradients: an in-place edit of them raises
    return {k: v.requires_grad_() if k != "mask" else v for k, v in _random_batch(point).items()}


def _coupling_cases(point: str) -> list[Case]:
    worked = "worked example 2: z = (1, 3), z_1 kept, log s = 0.5, t = 2" if point == "z" else \
        "worked example 2 backwards: x = (1, 6.946), x_1 kept, log s = 0.5, t = 2"
    return [
        Case(worked, lambda: _worked_example_2(point)),
        Case("batch of 5 in 4-D, mask (1, 0, 1, 0), log s and t per sample (their kept entries must be ignored)",
             lambda: _random_batch(point)),
        Case("batch of 1 in 3-D, mask (0, 1, 1): only coordinate 1 moves, negative log s",
             lambda: _one_point(point)),
        Case("large magnitudes: |values| ~ 100, log s in (−5, 5), 6 points in 2-D, mask (0, 1)",
             lambda: _large(point)),
        Case("float32 inputs, batch of 4 in 2-D, mask (0, 1): the outputs must be float32 too",
             lambda: _float32(point)),
        Case(f"inputs that require gradients, as inside a layer being trained ({point}, log s and t): "
             "none of them may be edited in place", lambda: _trained(point)),
    ]


def _parts(kw: Mapping[str, Tensor], point: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(v, m, log_s, t)`` broadcast to the batch's shape."""
    v = kw[point]
    return v, kw["mask"].expand_as(v), kw["log_s"].expand_as(v), kw["t"].expand_as(v)


def _summed(per_coordinate: Tensor) -> Tensor:
    return per_coordinate.flatten(1).sum(1)


def _forward_with(ref: Any, kw: Mapping[str, Tensor], x: Tensor | None = None,
                  logdet: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """The answer key's forward with ``x`` and/or the log-det replaced (to form a wrong answer)."""
    right_x, right_logdet = ref.coupling_forward(**kw)
    return (right_x if x is None else x), (right_logdet if logdet is None else logdet)


def _inverse_with(ref: Any, kw: Mapping[str, Tensor], z: Tensor | None = None,
                  logdet: Tensor | None = None) -> tuple[Tensor, Tensor]:
    right_z, right_logdet = ref.coupling_inverse(**kw)
    return (right_z if z is None else z), (right_logdet if logdet is None else logdet)


def _flipped(kw: Mapping[str, Tensor]) -> dict[str, Tensor]:
    return {**kw, "mask": 1 - kw["mask"]}


def _forward_mistakes() -> list[Mistake]:
    def logdet_all(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        _, _, log_s, _ = _parts(kw, "z")
        return _forward_with(ref, kw, logdet=_summed(log_s))

    def logdet_per_coordinate(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        _, m, log_s, _ = _parts(kw, "z")
        return _forward_with(ref, kw, logdet=(1 - m) * log_s)

    def log_s_as_scale(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        # the key's coupling with the scale given directly, handed log s as the scale
        x, _ = ref.coupling_forward_scale(kw["z"], kw["mask"], kw["log_s"], kw["t"])
        return _forward_with(ref, kw, x=x)

    def shift_everywhere(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        _, m, _, t = _parts(kw, "z")
        return _forward_with(ref, kw, x=ref.coupling_forward(**kw)[0] + m * t)

    return [
        Mistake("wrong mask half (the kept half transformed)",
                "mask 1 marks the KEPT half z_a, which passes through unchanged; only the coordinates with "
                "mask 0 are scaled and shifted: x = m⊙z + (1−m)⊙(z⊙exp(log s) + t)",
                lambda ref, kw: ref.coupling_forward(**_flipped(kw))),
        Mistake("log-det summed over the kept half too",
                "the Jacobian's diagonal is 1 on the kept coordinates, exp(log s_i) on the transformed ones: "
                "log|det| = Σ (1−m_i)·log s_i — the network's log s entries on kept coordinates are ignored",
                logdet_all),
        Mistake("log-det not summed over the coordinates",
                "return ONE log-det per sample, shape (batch,): sum (1−m)⊙log s over the coordinates",
                logdet_per_coordinate),
        Mistake("log s used as the scale",
                "the scale is s = exp(log s): multiply z_b by exp(log s), not by log s itself",
                log_s_as_scale),
        Mistake("shift added to the kept half too",
                "the kept half is copied exactly, x_a = z_a: mask the shift as well, (1−m)⊙t",
                shift_everywhere),
    ]


def _inverse_mistakes() -> list[Mistake]:
    def forward_logdet(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        return _inverse_with(ref, kw, logdet=-ref.coupling_inverse(**kw)[1])

    def divide_by_log_s(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        # the key's inverse with the scale given directly, handed log s as the scale
        z, _ = ref.coupling_inverse_scale(kw["x"], kw["mask"], kw["log_s"], kw["t"])
        return _inverse_with(ref, kw, z=z)

    def unscale_then_unshift(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        _, m, _, t = _parts(kw, "x")
        unscaled, _ = ref.coupling_inverse(**{**kw, "t": torch.zeros_like(kw["t"])})
        return _inverse_with(ref, kw, z=unscaled - (1 - m) * t)

    def scale_again(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        return _inverse_with(ref, kw, z=ref.coupling_inverse(**{**kw, "log_s": -kw["log_s"]})[0])

    return [
        Mistake("forward log-det returned by the inverse (sign / direction)",
                "the inverse shrinks where the forward stretches: log|det ∂z/∂x| = −Σ (1−m_i)·log s_i",
                forward_logdet),
        Mistake("divides by log s instead of multiplying by exp(−log s)",
                "the scale is s = exp(log s), so undoing it is z_b = (x_b − t)⊙exp(−log s); dividing by log s "
                "confuses the scale with its logarithm",
                divide_by_log_s),
        Mistake("shift removed after unscaling",
                "undo the forward in reverse order: subtract t FIRST, then unscale — z_b = (x_b − t)⊙exp(−log s)",
                unscale_then_unshift),
        Mistake("scaled by exp(+log s) again",
                "the inverse divides by the scale: multiply by exp(−log s), not exp(+log s)",
                scale_again),
        Mistake("wrong mask half (the kept half transformed)",
                "mask 1 marks the kept half, which the inverse copies unchanged: z_a = x_a",
                lambda ref, kw: ref.coupling_inverse(**_flipped(kw))),
    ]


# --- practice problem 2: the scale given directly, and s = 0 ----------------------------------------------


def _scale_parts(kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """``(m, s, z)`` with the mask and the scale broadcast to the batch's shape."""
    z = kw["z"]
    return kw["mask"].expand_as(z), kw["s"].expand_as(z), kw["z"]


def _scale_mistakes() -> list[Mistake]:
    def log_without_abs(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        m, s, _ = _scale_parts(kw)
        log_s = torch.where(m == 0, torch.log(s), torch.zeros_like(s))
        return ref.coupling_forward_scale(**kw)[0], _summed(log_s)

    def zero_times_log_zero(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        m, s, _ = _scale_parts(kw)
        return ref.coupling_forward_scale(**kw)[0], _summed((1 - m) * torch.log(s.abs()))

    def logdet_all(ref: Any, kw: Mapping[str, Tensor]) -> Any:
        _, s, _ = _scale_parts(kw)
        return ref.coupling_forward_scale(**kw)[0], _summed(torch.log(s.abs()))

    return [
        Mistake("log without abs",
                "a negative scale is allowed (it reflects z_b, still invertible) and its volume factor is |s|: "
                "the log-det is Σ log|s_i| — log(s) is NaN for s < 0",
                log_without_abs),
        Mistake("0 · log 0 = NaN on a kept coordinate",
                "an entry of s on a KEPT coordinate is ignored, even a zero: multiplying log|0| = −inf by the "
                "mask's 0 gives NaN — select with torch.where(mask == 0, log|s|, 0) instead",
                zero_times_log_zero),
        Mistake("log-det summed over the kept half too",
                "only the transformed coordinates (mask 0) are scaled: log|det| = Σ (1−m_i)·log|s_i|",
                logdet_all),
    ]


def _outcome(fn: Callable[..., Any], **inputs: Any) -> str:
    """Whether ``fn(**inputs)`` raises (and what) or returns: practice problem 2 asks for a ValueError."""
    try:
        fn(**inputs)
    except Exception as exc:  # noqa: BLE001 - the type of the exception is the evidence
        return f"raises {type(exc).__name__}"
    return "returns a value"


# --- the layer ---------------------------------------------------------------------------------------------


class _Conditioner(nn.Sequential):
    """A fixed, seeded MLP ``R^d -> R^{2d}`` standing in for a trained conditioner (float64)."""

    def __init__(self, d: int, hidden: int, seed: int, scale: float) -> None:
        # float64 from the start: the kernel and the judge run under different default dtypes
        f64 = torch.float64
        super().__init__(nn.Linear(d, hidden, dtype=f64), nn.Tanh(), nn.Linear(hidden, 2 * d, dtype=f64))
        self.label = f"seeded MLP {d}→{hidden}→{2 * d} (seed {seed}, output scale {scale:g})"
        with torch.no_grad():
            for k, p in enumerate(self.parameters()):
                p.copy_(randn(*p.shape, seed=seed + k))
            self[2].weight.mul_(scale / math.sqrt(hidden))
            self[2].bias.mul_(scale)

    def __repr__(self) -> str:
        return self.label


def _layer_inputs(mask: list[float], clamp: float | None, *, batch: int, seed: int, scale: float,
                  magnitude: float = 1.0) -> dict[str, Any]:
    d = len(mask)
    return {"mask": tensor(mask), "clamp": clamp, "net": _Conditioner(d, 16, seed, scale),
            "z": magnitude * randn(batch, d, seed=seed + 10), "x": magnitude * randn(batch, d, seed=seed + 11)}


LAYER_CASES = [
    Case("2-D, mask (1, 0), clamp 2, batch of 5", lambda: _layer_inputs([1.0, 0.0], 2.0, batch=5, seed=40,
                                                                        scale=2.0)),
    Case("4-D, mask (0, 1, 0, 1), clamp 1.5, batch of 4",
         lambda: _layer_inputs([0.0, 1.0, 0.0, 1.0], 1.5, batch=4, seed=50, scale=2.0)),
    Case("batch of 1 in 3-D, mask (1, 0, 1), clamp 3",
         lambda: _layer_inputs([1.0, 0.0, 1.0], 3.0, batch=1, seed=60, scale=2.0)),
    Case("large raw log-scales (|log s| up to ~20 before the clamp), 2-D, mask (0, 1), clamp 2",
         lambda: _layer_inputs([0.0, 1.0], 2.0, batch=6, seed=70, scale=12.0, magnitude=3.0)),
]


def _layer_protocol(cls: Any, mask: Tensor, clamp: float | None, net: nn.Module, z: Tensor,
                    x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Build ``cls(mask, clamp=clamp, net=net)``; return ``forward(z)`` and ``inverse(x)``."""
    layer = cls(mask, clamp=clamp, net=net)
    x_out, logdet = layer(z)
    z_out, logdet_inverse = layer.inverse(x)
    return x_out, logdet, z_out, logdet_inverse


def _layer_gradients(cls: Any, mask: Tensor, clamp: float | None, net: nn.Module, z: Tensor,
                     x: Tensor) -> tuple[bool, bool]:
    """Build the layer, backpropagate the sum of ``forward(z)`` and ``inverse(x)``; return whether the network's
    log-s outputs and its t outputs received a gradient (rows of its last linear layer): a layer whose
    network is cut from the graph computes the right values and never trains. The layer gets copies of ``z``
    and ``x``: an in-place edit is graded by the value check (and its helper's), not again here."""
    layer = cls(mask, clamp=clamp, net=net)
    total = sum(out.sum() for out in (*layer(z.clone()), *layer.inverse(x.clone())))
    if total.requires_grad:
        total.backward()
    grad, d = net[-1].weight.grad, mask.numel()
    if grad is None:
        return False, False
    return bool((grad[:d] != 0).any()), bool((grad[d:] != 0).any())


TRAIN_CASES = [LAYER_CASES[0], LAYER_CASES[1], LAYER_CASES[3]]

TRAIN_MISTAKES = [
    Mistake("network output detached (the conditioner never trains)",
            "the values are right, but no gradient reaches the network: `.detach()`, `.data` or `torch.no_grad()` "
            "cut log s and t from the graph, so maximum likelihood never updates the conditioner — keep "
            "self.net(self.mask * z) in the graph",
            lambda ref, kw: (False, False)),
]


def _layer_with(ref: Any, kw: Mapping[str, Any], *, sees_all: bool = False, flip: bool = False,
                clamp: Callable[[Tensor, float], Tensor] | None = None,
                swapped: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The layer's outputs built from the answer key's functions, with one classic mistake switched on."""
    mask, net, bound = kw["mask"], kw["net"], kw["clamp"]
    squash = clamp or ref.soft_clamp

    def conditioner(v: Tensor) -> tuple[Tensor, Tensor]:
        log_s, t = net(v if sees_all else mask * v).chunk(2, dim=1)
        if swapped:
            log_s, t = t, log_s
        return (log_s if bound is None else squash(log_s, bound)), t

    m = 1 - mask if flip else mask
    x, logdet = ref.coupling_forward(kw["z"], m, *conditioner(kw["z"]))
    z, logdet_inverse = ref.coupling_inverse(kw["x"], m, *conditioner(kw["x"]))
    return x, logdet, z, logdet_inverse


def _hard_clamp(log_s: Tensor, bound: float) -> Tensor:
    return log_s.clamp(-bound, bound)


LAYER_MISTAKES = [
    Mistake("unbounded scale (no soft clamp)",
            "pass the network's log s through soft_clamp(log_s, self.clamp) before exponentiating: an unbounded "
            "log s overflows exp (inf, then NaN losses) and the inverse divides by a vanishing scale",
            lambda ref, kw: _layer_protocol(ref.AffineCoupling, **{**kw, "clamp": None})),
    Mistake("conditioner sees the transformed half",
            "feed the network mask ⊙ z, the kept half only: if log s and t depend on z_b the Jacobian is no longer "
            "triangular, Σ log s is not its log-det, and the inverse cannot recompute (log s, t) from x_a = z_a",
            lambda ref, kw: _layer_with(ref, kw, sees_all=True)),
    Mistake("wrong mask half (the kept half transformed)",
            "the network reads the kept half (mask 1); the half it transforms must be the other one (mask 0) — "
            "otherwise the layer moves the very coordinates its scale and shift depend on",
            lambda ref, kw: _layer_with(ref, kw, flip=True)),
    Mistake("(log s, t) read in the wrong order",
            "the network's output splits as log_s, t = net(...).chunk(2, dim=1): log s is the FIRST half",
            lambda ref, kw: _layer_with(ref, kw, swapped=True)),
    Mistake("hard clamp instead of the soft clamp",
            "torch.clamp has zero gradient outside the bound and a kink at it; use the smooth b·tanh(log s / b)",
            lambda ref, kw: _layer_with(ref, kw, clamp=_hard_clamp)),
]


# --- soft clamp and masks -----------------------------------------------------------------------------------


MASK_CASES = [
    Case("d = 2, 3 layers", lambda: {"d": 2, "n_layers": 3}),
    Case("d = 5, 4 layers", lambda: {"d": 5, "n_layers": 4}),
    Case("d = 3, 2 layers", lambda: {"d": 3, "n_layers": 2}),
    Case("d = 6, 5 layers", lambda: {"d": 6, "n_layers": 5}),
]


def _same_mask(ref: Any, kw: Mapping[str, int]) -> Tensor:
    return ref.alternating_masks(kw["d"], 1).expand(kw["n_layers"], kw["d"])


def _first_half_then_second(ref: Any, kw: Mapping[str, int]) -> Tensor:
    d = kw["d"]
    first = (torch.arange(d) < d // 2).float()
    return torch.stack([first if k % 2 == 0 else 1 - first for k in range(kw["n_layers"])])


_NATS_PER_POINT = -2.36  # the quiz's mean held-out log-likelihood of a 2-D flow, in nats per data point

CHECKS = [
    Check("coupling_forward", cases=_coupling_cases("z"),
          mistakes=_forward_mistakes(), outputs=("x", "log-det"), same_dtype=True),
    Check("coupling_inverse", cases=_coupling_cases("x"),
          mistakes=_inverse_mistakes(), outputs=("z", "log-det"), same_dtype=True),
    Check(
        "coupling_forward_scale",
        cases=[
            Case("worked example 2 with the scale given directly: s = exp(0.5) ≈ 1.649",
                 lambda: {"z": tensor([[1.0, 3.0]]), "mask": tensor([1.0, 0.0]), "s": tensor(math.exp(0.5)),
                          "t": tensor(2.0)}),
            Case("a reflection: s = −2 on the transformed coordinate, one point",
                 lambda: {"z": tensor([[0.4, -1.5]]), "mask": tensor([0.0, 1.0]), "s": tensor([-2.0, 3.0]),
                          "t": tensor([1.0, -1.0])}),
            Case("batch of 4 in 4-D, mask (1, 0, 1, 0), per-sample s of both signs",
                 lambda: {"z": randn(4, 4, seed=80), "mask": tensor([1.0, 0.0, 1.0, 0.0]),
                          "s": 2.0 * randn(4, 4, seed=81), "t": randn(4, 4, seed=82)}),
            # per-sample signs: log(s) without abs is NaN in the negative sample only, 0·log|0| in every sample
            Case("s = 0 on a KEPT coordinate only (ignored), per-sample s of both signs on the transformed one",
                 lambda: {"z": randn(3, 2, seed=83), "mask": tensor([1.0, 0.0]),
                          "s": tensor([[0.0, -0.5], [0.0, 2.0], [0.0, 0.3]]), "t": tensor([7.0, 0.25])}),
        ],
        mistakes=_scale_mistakes(),
        outputs=("x", "log-det"),
    ),
    Check(
        "coupling_forward_scale_rejects_zero", key="coupling_forward_scale",
        cases=[
            Case("worked example 2 with s = 0", lambda: {"z": tensor([[1.0, 3.0]]), "mask": tensor([1.0, 0.0]),
                                                         "s": tensor(0.0), "t": tensor(2.0)}),
            Case("batch of 3 in 4-D, s = 0 on transformed coordinate 1 only",
                 lambda: {"z": randn(3, 4, seed=84), "mask": tensor([1.0, 0.0, 1.0, 0.0]),
                          "s": tensor([1.5, 0.0, 2.0, -0.7]), "t": randn(4, seed=85)}),
            Case("per-sample s with a single zero, in the last sample's transformed coordinate",
                 lambda: {"z": randn(3, 2, seed=86), "mask": tensor([0.0, 1.0]),
                          "s": tensor([[1.0, 2.0], [-3.0, 0.5], [0.0, 1.0]]), "t": randn(3, 2, seed=87)}),
        ],
        mistakes=[
            Mistake("s = 0 accepted",
                    "with s_i = 0 the layer sends every z_i to t_i (not invertible) and log|s_i| = −inf: check "
                    "the transformed coordinates and raise ValueError naming the problem",
                    lambda ref, kw: "returns a value"),
        ],
        protocol=_outcome,
    ),
    Check(
        "soft_clamp",
        cases=[
            Case("random log-scales of size ~3, bound 2", lambda: {"log_s": 3.0 * randn(4, 3, seed=90),
                                                                   "bound": 2.0}),
            Case("huge log-scales ±10⁴ next to 0 and moderate ones, bound 3",
                 lambda: {"log_s": tensor([-1e4, -50.0, -2.5, 0.0, 1.0, 50.0, 1e4]), "bound": 3.0}),
            Case("log-scales of size ~0.1 (well inside the bound), bound 0.5",
                 lambda: {"log_s": 0.1 * randn(6, seed=91), "bound": 0.5}),
        ],
        mistakes=[
            Mistake("hard clamp",
                    "torch.clamp cuts at ±bound with zero gradient beyond it; the soft clamp is b·tanh(log s / b)",
                    lambda ref, kw: kw["log_s"].clamp(-kw["bound"], kw["bound"])),
            Mistake("b·tanh(log s) (missing the division by b)",
                    "divide inside the tanh so the slope at 0 is 1: b·tanh(log s / b)",
                    lambda ref, kw: kw["bound"] * torch.tanh(kw["log_s"])),
            Mistake("tanh(log s / b) (missing the factor b)",
                    "multiply by b so the range is (−b, b): b·tanh(log s / b)",
                    lambda ref, kw: torch.tanh(kw["log_s"] / kw["bound"])),
        ],
        atol=1e-9,
    ),
    Check(
        "alternating_masks",
        cases=MASK_CASES,
        mistakes=[
            Mistake("same mask in every layer",
                    "layer k must keep the coordinates with i + k even: consecutive masks are complementary, "
                    "otherwise the same half is transformed in every layer and the other half never moves",
                    _same_mask),
            Mistake("masks start with the odd coordinates",
                    "layer 0 keeps the EVEN coordinates (mask 1 where i is even): (1, 0, 1, …)",
                    lambda ref, kw: 1 - ref.alternating_masks(kw["d"], kw["n_layers"])),
            Mistake("first half / second half instead of alternating coordinates",
                    "this function's masks alternate coordinate by coordinate: layer k keeps i when i + k is even "
                    "(swapping halves is a valid RealNVP too, but it is a different function)",
                    _first_half_then_second),
        ],
        atol=0.0,
        rtol=0.0,
    ),
    Check("AffineCoupling", cases=LAYER_CASES, mistakes=LAYER_MISTAKES,
          protocol=_layer_protocol, outputs=("x = forward(z)", "forward log-det", "z = inverse(x)",
                                             "inverse log-det")),
    Check("AffineCoupling_trains", key="AffineCoupling", cases=TRAIN_CASES, mistakes=TRAIN_MISTAKES,
          protocol=_layer_gradients, outputs=("a gradient reaches the network's log-s outputs",
                                              "a gradient reaches the network's t outputs")),
    Check(
        "quiz_03_q3",
        mistakes=[
            Mistake("any real scale", "s = 0 makes x_b = t constant in z_b: the layer is no longer invertible",
                    lambda ref, kw: "A"),
            Mistake("s ≡ 1 (NICE)",
                    "s ≡ 1 is NICE's additive coupling: volume-preserving (log-det 0), so it cannot change density "
                    "values (the seeds' explanation wrongly calls it non-volume-preserving). The rule is only "
                    "that s must be nonzero", lambda ref, kw: "D"),
        ],
    ),
    Check("quiz_03_same_mask"),
    Check("quiz_03_inverse_passes"),
    Check(
        "quiz_03_nice",
        mistakes=[
            Mistake("volume-preserving taken to mean Gaussian (the seeds' claim)",
                    "log-det 0 keeps density VALUES, not the Gaussian shape: x_2 = z_2 + z_1² has log-det 0 and is "
                    "a banana; what it cannot do is raise the peak density above the base's 1/(2π)",
                    lambda ref, kw: "B"),
            Mistake("NICE called non-volume-preserving",
                    "additive coupling has log-det 0, so NICE is volume-preserving; 'non-volume-preserving' is the "
                    "NVP of RealNVP, named for the scale it adds",
                    lambda ref, kw: "C"),
        ],
    ),
    Check(
        "quiz_03_nice_peak",
        mistakes=[
            Mistake("the 1-D peak", "in d = 2 the standard normal's peak is 1/(2π)^{d/2} = 1/(2π), not 1/√(2π)",
                    lambda ref, kw: 1 / math.sqrt(2 * math.pi)),
            Mistake("a log-density", "the question asks for the density value itself, not its logarithm",
                    lambda ref, kw: -math.log(2 * math.pi)),
        ],
        atol=1e-3,
        rtol=0.0,
    ),
    Check(
        "quiz_03_nats_per_dim",
        mistakes=[
            Mistake("per data point, not per dimension",
                    "nats per DIMENSION divide the per-point log-likelihood by d = 2", lambda ref, kw: _NATS_PER_POINT),
            Mistake("multiplied by d", "divide by d = 2, do not multiply", lambda ref, kw: 2 * _NATS_PER_POINT),
            Mistake("sign dropped", "a log-likelihood of −2.36 per point stays negative per dimension",
                    lambda ref, kw: -_NATS_PER_POINT / 2),
        ],
        atol=5e-3,
        rtol=0.0,
    ),
]
