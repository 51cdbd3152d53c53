"""Hidden checks of lesson 09, neural spline flows (answer key: ``key.py`` of this lesson).

The spline's pieces are checked on random parameters in float64 and float32, with knots built from sorted
random numbers (never from a graded function): the knot construction on crushed bins, the bin search on the
knots themselves and the right end, the root of the inverse's quadratic on straight and nearly straight bins
(where the textbook root loses its digits), the spline on points inside and far outside :math:`[-B, B]`. The
layers are built by the student's own constructor and then given seeded random weights
(:func:`_randomise`), in both directions, on inputs that are not each other's images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from flowcourse_instructor.grading.spec import Case, Check, Mistake, rand, randn, tensor

F32 = torch.float32
F64 = torch.float64

# --- knots ------------------------------------------------------------------------------------------------


def _raw(lead: tuple[int, ...], bins: int, seed: int, *, scale: float = 1.0, dtype: torch.dtype = F64,
         bound: float = 3.0) -> dict[str, Any]:
    return {"widths": scale * randn(*lead, bins, seed=seed, dtype=dtype),
            "heights": scale * randn(*lead, bins, seed=seed + 1, dtype=dtype),
            "derivatives": scale * randn(*lead, bins - 1, seed=seed + 2, dtype=dtype), "bound": bound}


KNOT_CASES = [
    Case("4 splines, K = 6 bins on [-2, 2], random parameters", lambda: _raw((4,), 6, 10, bound=2.0)),
    Case("one spline, K = 3 on [-3, 3], parameters ±40: a crushed bin and a crushed derivative",
         lambda: {"widths": tensor([-40.0, 0.0, 40.0]), "heights": tensor([40.0, -40.0, 0.0]),
                  "derivatives": tensor([-40.0, 40.0]), "bound": 3.0}),
    Case("a (2, 3) batch of splines, K = 5 on [-1.5, 1.5], parameters of size ~2",
         lambda: _raw((2, 3), 5, 20, scale=2.0, bound=1.5)),
    Case("float32, 3 splines, K = 8 on [-3, 3]: the outputs must be float32 too",
         lambda: _raw((3,), 8, 30, dtype=F32)),
]


def _knots_unrescaled(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    # widths 2B(min + softmax): the same as the key's knots on a larger interval B' = B(1 + K min), with the
    # minimum min / (1 + K min), started at -B instead of -B'
    bound, grow = kw["bound"], 1 + kw["widths"].shape[-1] * ref.MIN_BIN_WIDTH
    kx, ky, kd = ref.rq_knots(kw["widths"], kw["heights"], kw["derivatives"], bound * grow,
                              min_bin_width=ref.MIN_BIN_WIDTH / grow, min_bin_height=ref.MIN_BIN_HEIGHT / grow)
    return kx + bound * (grow - 1), ky + bound * (grow - 1), kd


def _knots_unscaled(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    # bins that sum to 1 instead of 2B: the key's knots on [-1/2, 1/2], started at -B
    kx, ky, kd = ref.rq_knots(kw["widths"], kw["heights"], kw["derivatives"], 0.5)
    return kx - kw["bound"] + 0.5, ky - kw["bound"] + 0.5, kd


def _knots_boundary_zero(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    kx, ky, kd = ref.rq_knots(**kw)
    kd = kd.clone()
    kd[..., 0] = kd[..., -1] = 0.0  # F.pad's default value
    return kx, ky, kd


def _knots_boundary_softplus(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor]:
    kx, ky, kd = ref.rq_knots(**kw)
    kd = kd.clone()
    kd[..., 0] = kd[..., -1] = ref.MIN_DERIVATIVE + math.log(2)  # min + softplus(0) on a zero-padded end
    return kx, ky, kd


KNOT_MISTAKES = [
    Mistake("bins do not sum to 2B (minimum added without rescaling)",
            "w = 2B·(w_min + softmax) makes the bins sum to 2B(1 + K·w_min), so the last knot overshoots B: scale "
            "the softmax by (1 − K·w_min) so that the minimum and the softmax together sum to 1",
            _knots_unrescaled),
    Mistake("bins do not sum to 2B (softmax not scaled by 2B)",
            "the normalised sizes sum to 1: multiply by 2B so the knots run from −B to B",
            _knots_unscaled),
    Mistake("boundary derivatives ≠ 1",
            "the derivatives at the two end knots are not learned: pad the interior ones with exactly 1 "
            "(F.pad(..., (1, 1), value=1.0)) after the softplus — the identity tails have slope 1, and any other "
            "value puts a kink in the map and a jump in the density at ±B",
            _knots_boundary_softplus),
    Mistake("boundary derivatives left at 0 (F.pad's default value)",
            "F.pad(t, (1, 1)) pads with 0: give value=1.0 — the end knots' slope must be 1 to meet the identity "
            "tails, and a slope of 0 makes the log-det −inf there",
            _knots_boundary_zero),
    Mistake("no minimum bin size or derivative",
            "add the minimums: w_min + (1 − K·w_min)·softmax for widths and heights, δ_min + softplus for the "
            "derivatives — otherwise a bin can collapse and the slope h/w inside it overflows",
            lambda ref, kw: ref.rq_knots(**kw, min_bin_width=0.0, min_bin_height=0.0, min_derivative=0.0)),
    Mistake("no minimum derivative",
            "the bins are right, the interior derivatives are not: δ = δ_min + softplus(δ̃) — without the minimum a "
            "very negative δ̃ gives a slope of ~0, and the inverse's slope 1/δ overflows",
            lambda ref, kw: ref.rq_knots(**kw, min_derivative=0.0)),
    Mistake("no minimum bin size",
            "the derivatives are right, the bins are not: sizes w_min + (1 − K·w_min)·softmax for widths and heights, "
            "so no bin collapses (the same minimum for both)",
            lambda ref, kw: ref.rq_knots(**kw, min_bin_width=0.0, min_bin_height=0.0)),
]

# --- bin search -------------------------------------------------------------------------------------------


def _sorted_knots(rows: int, bins: int, bound: float, seed: int, dtype: torch.dtype = F64) -> Tensor:
    inner = rand(rows, bins - 1, seed=seed, low=-bound, high=bound, dtype=dtype).sort(dim=-1).values
    ends = torch.full((rows, 1), bound, dtype=dtype)
    return torch.cat([-ends, inner, ends], dim=-1)


def _knots_at_knots() -> dict[str, Tensor]:
    knots = _sorted_knots(1, 4, 2.0, 41).expand(5, 5)
    return {"knots": knots, "v": knots[0].clone()}


SEARCH_CASES = [
    Case("two bins with knots (-1, 0, 1): v = -1, -0.5, 0, 0.5, 1 (the ends and the interior knot)",
         lambda: {"knots": tensor([-1.0, 0.0, 1.0]).expand(5, 3), "v": tensor([-1.0, -0.5, 0.0, 0.5, 1.0])}),
    Case("40 points strictly inside random knots, K = 7 on [-3, 3]",
         lambda: {"knots": _sorted_knots(40, 7, 3.0, 42), "v": rand(40, seed=43, low=-2.99, high=2.99)}),
    Case("every knot of a random K = 4 spline on [-2, 2], the right end included",
         _knots_at_knots),
    Case("a (2, 5) batch in float32, K = 6 on [-1, 1]",
         lambda: {"knots": _sorted_knots(10, 6, 1.0, 44, F32).reshape(2, 5, 7),
                  "v": rand(2, 5, seed=45, low=-1.0, high=1.0, dtype=F32)}),
]


def _search_no_clamp(ref: Any, kw: Mapping[str, Tensor]) -> Tensor:
    k = ref.search_bins(**kw)
    return torch.where(kw["v"] >= kw["knots"][..., -1], kw["knots"].shape[-1] - 1, k)


def _search_left_of_knot(ref: Any, kw: Mapping[str, Tensor]) -> Tensor:
    # a value exactly on an interior knot sent to the bin on its left (counting knots strictly below v)
    k = ref.search_bins(**kw)
    on_knot = (kw["v"] == kw["knots"].gather(-1, k.unsqueeze(-1)).squeeze(-1)) & (k > 0)
    return k - on_knot.long()


SEARCH_MISTAKES = [
    Mistake("off-by-one bin search",
            "the number of knots at or below v is k + 1 (the first knot is at or below every v): subtract 1",
            lambda ref, kw: ref.search_bins(**kw) + 1),
    Mistake("the right end B falls outside the last bin",
            "v = B has all K + 1 knots at or below it, so the count minus one is K, a bin that does not exist: "
            "clamp the index to 0..K − 1 so the right end belongs to the last bin (ξ = 1 there)",
            _search_no_clamp),
    Mistake("a value on an interior knot put in the bin on its left",
            "count the knots at or below v (v >= knots), not strictly below (v > knots): a value exactly on knot k "
            "belongs to bin k, on its right, where ξ = 0 (with torch.searchsorted: right=True, then minus one)",
            _search_left_of_knot),
]

# --- the forward and inverse spline inside [-B, B] ----------------------------------------------------------


def _knot_set(rows: int, bins: int, bound: float, seed: int, *, dtype: torch.dtype = F64, low: float = 0.2,
              high: float = 3.0) -> dict[str, Tensor]:
    return {"knots_x": _sorted_knots(rows, bins, bound, seed, dtype),
            "knots_y": _sorted_knots(rows, bins, bound, seed + 1, dtype),
            "derivatives": rand(rows, bins + 1, seed=seed + 2, low=low, high=high, dtype=dtype)}


def _inside(point: str, rows: int, bins: int, bound: float, seed: int, **options: Any) -> dict[str, Tensor]:
    knots = _knot_set(rows, bins, bound, seed, **options)
    dtype = options.get("dtype", F64)
    return {point: rand(rows, seed=seed + 3, low=-bound, high=bound, dtype=dtype), **knots}


def _at_knots(point: str) -> dict[str, Tensor]:
    knots = {k: v.expand(7, -1) for k, v in _knot_set(1, 6, 2.0, 54).items()}
    return {point: knots["knots_x" if point == "x" else "knots_y"][0].clone(), **knots}


def _steep(point: str) -> dict[str, Tensor]:
    knots = {k: v.reshape(3, 4, -1) for k, v in _knot_set(12, 4, 1.0, 57, low=0.05, high=20.0).items()}
    return {point: rand(3, 4, seed=60, low=-1.0, high=1.0), **knots}


def _spline_cases(point: str) -> list[Case]:
    return [
        Case("20 points, K = 6 on [-2, 2], random knots and derivatives in (0.2, 3)",
             lambda: _inside(point, 20, 6, 2.0, 50)),
        Case(f"{point} on every knot of a K = 6 spline (ξ = 0, and ξ = 1 at the right end)",
             lambda: _at_knots(point)),
        Case("a (3, 4) batch, K = 4 on [-1, 1], derivatives from 0.05 to 20 (steep and flat bins)",
             lambda: _steep(point)),
        Case("float32, 10 points, K = 8 on [-3, 3]: the outputs must be float32 too",
             lambda: _inside(point, 10, 8, 3.0, 63, dtype=F32)),
    ]


def _forward_slopes_swapped(ref: Any, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    # δ_k and δ_{k+1} exchanged: the key's map on each point's own bin alone (a one-bin spline), slopes reversed
    x, knots_x, knots_y, derivatives = kw["x"], kw["knots_x"], kw["knots_y"], kw["derivatives"]
    k = ref.search_bins(knots_x, x).unsqueeze(-1)

    def one_bin(t: Tensor, first: Tensor, second: Tensor) -> Tensor:
        return torch.cat([t.gather(-1, first), t.gather(-1, second)], dim=-1)

    return ref.rq_forward(x, one_bin(knots_x, k, k + 1), one_bin(knots_y, k, k + 1), one_bin(derivatives, k + 1, k))


def _inverse_x_knots(ref: Any, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    # the bin of y searched among knots_x: the key's inverse on each point's (wrong) bin alone, a one-bin spline
    y, knots_x, knots_y, derivatives = kw["y"], kw["knots_x"], kw["knots_y"], kw["derivatives"]
    k = ref.search_bins(knots_x, y).unsqueeze(-1)

    def one_bin(t: Tensor) -> Tensor:
        return torch.cat([t.gather(-1, k), t.gather(-1, k + 1)], dim=-1)

    return ref.rq_inverse(y, one_bin(knots_x), one_bin(knots_y), one_bin(derivatives))


def _inverse_sign(ref: Any, kw: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    x, logdet = ref.rq_inverse(**kw)
    return x, -logdet


# --- the root -----------------------------------------------------------------------------------------------


def _quadratics(n: int, seed: int, a_scale: float | None = None, dtype: torch.dtype = F64,
                root: Tensor | None = None) -> dict[str, Tensor]:
    b = rand(n, seed=seed, low=1.0, high=2.0, dtype=dtype)
    if a_scale is None:
        a = (rand(n, seed=seed + 1, dtype=dtype) - 0.5) * b  # |a| < b/2: the other root is outside [0, 1]
    else:
        a = a_scale * randn(n, seed=seed + 1, dtype=dtype)
    xi = rand(n, seed=seed + 2, dtype=dtype) if root is None else root.to(dtype)
    return {"a": a, "b": b, "c": -(a * xi**2 + b * xi)}


ROOT_CASES = [
    Case("12 random quadratics with a root in [0, 1], |a| < b/2", lambda: _quadratics(12, 70)),
    Case("straight bins: a = 0 exactly", lambda: {**_quadratics(5, 73, a_scale=0.0)}),
    Case("nearly straight bins in float64: |a| ~ 1e-12", lambda: _quadratics(6, 76, a_scale=1e-12)),
    Case("nearly straight bins in float32: |a| ~ 1e-4", lambda: _quadratics(6, 79, a_scale=1e-4, dtype=F32)),
    Case("roots at the ends of the bin: ξ = 0 (c = 0) and ξ = 1",
         lambda: _quadratics(4, 82, root=tensor([0.0, 1.0, 0.0, 1.0]))),
]


def _unstable_root(ref: Any, kw: Mapping[str, Tensor]) -> Tensor:
    a, b, c = kw["a"], kw["b"], kw["c"]
    return (-b + torch.sqrt(b * b - 4 * a * c)) / (2 * a)


def _other_root(ref: Any, kw: Mapping[str, Tensor]) -> Tensor:
    a, b, c = kw["a"], kw["b"], kw["c"]
    return 2 * c / (-b + torch.sqrt(b * b - 4 * a * c))


ROOT_MISTAKES = [
    Mistake("unstable root of the quadratic",
            "(−b + √(b² − 4ac)) / (2a) subtracts two nearly equal numbers when a is small (a nearly straight bin) "
            "and is 0/0 when a = 0: use the same root written as 2c / (−b − √(b² − 4ac)), which never cancels",
            _unstable_root),
    Mistake("the other root of the quadratic",
            "2c / (−b + √(b² − 4ac)) is the root outside [0, 1]: the spline's root is 2c / (−b − √(b² − 4ac))",
            _other_root),
]

# --- the spline with tails ------------------------------------------------------------------------------------


def _spline_inputs(point: str, lead: tuple[int, ...], bins: int, bound: float, seed: int, *, spread: float = 3.5,
                   dtype: torch.dtype = F64, edges: bool = False) -> dict[str, Any]:
    v = spread * randn(*lead, seed=seed + 5, dtype=dtype)
    if edges:
        v = v.clone()
        v.view(-1)[:2] = torch.tensor([-bound, bound], dtype=dtype)
    raw = _raw(lead, bins, seed, scale=1.5, dtype=dtype, bound=bound)
    return {point: v, **raw}


def _with_inverse(inputs: dict[str, Any]) -> dict[str, Any]:
    return {**inputs, "inverse": True}


def _rq_spline_cases(inverse: bool) -> list[Case]:
    point = "x"

    def make(**options: Any) -> Any:
        def build() -> dict[str, Any]:
            inputs = _spline_inputs(point, **options)
            return _with_inverse(inputs) if inverse else inputs
        return build

    return [
        Case("16 points of size ~3.5 (about a third in the tails), K = 8 on [-3, 3], the ends ±3 included",
             make(lead=(16,), bins=8, bound=3.0, seed=90, edges=True)),
        Case("a (3, 5) batch, K = 5 on [-1.5, 1.5], most points in the tails",
             make(lead=(3, 5), bins=5, bound=1.5, seed=100)),
        Case("huge inputs ±1e6 next to small ones, K = 4 on [-3, 3]: the tails must stay finite",
             lambda: {**({"inverse": True} if inverse else {}), "x": tensor([-1e6, -0.5, 0.7, 1e6]),
                      **_raw((4,), 4, 110, scale=1.5, bound=3.0)}),
        Case("float32, 12 points, K = 8 on [-3, 3]: the outputs must be float32 too",
             make(lead=(12,), bins=8, bound=3.0, seed=120, dtype=F32)),
    ]


def _tails(ref: Any, kw: Mapping[str, Any], tail: str) -> tuple[Tensor, Tensor]:
    x, bound, inverse = kw["x"], kw["bound"], kw.get("inverse", False)
    knots = ref.rq_knots(kw["widths"], kw["heights"], kw["derivatives"], bound)
    inside_map = ref.rq_inverse if inverse else ref.rq_forward
    if tail == "extrapolated":
        return inside_map(x, *knots)
    if tail == "clamped":
        return inside_map(x.clamp(-bound, bound), *knots)
    if tail == "log-det extrapolated":
        return ref.rq_spline(**kw)[0], inside_map(x, *knots)[1]
    y, logdet = ref.rq_spline(**kw)
    inside = (x >= -bound) & (x <= bound)
    return y, torch.where(inside, logdet, torch.ones_like(logdet))


TAIL_MISTAKES = [
    Mistake("tails not identity (the spline extrapolated)",
            "outside [−B, B] the map is the identity: evaluate the spline on x clamped into [−B, B] and select "
            "torch.where(inside, spline value, x) — the bins' formula extrapolated past ±B is not a bijection of "
            "the real line", lambda ref, kw: _tails(ref, kw, "extrapolated")),
    Mistake("tails not identity (x clamped to ±B)",
            "clamping x into [−B, B] is only for evaluating the spline: outside it, return x itself "
            "(torch.where(inside, spline value, x)), or every tail point is sent to ±B",
            lambda ref, kw: _tails(ref, kw, "clamped")),
    Mistake("tails' log-det not zero",
            "the identity has derivative 1, so its log-det is log 1 = 0 on the tails, not 1",
            lambda ref, kw: _tails(ref, kw, "log-det one")),
    Mistake("tails' log-det taken from the spline's formula",
            "the points are right, the log-det is not: outside [−B, B] select 0 "
            "(torch.where(inside, log-det, 0)) — the bins' formula extrapolated past ±B gives a slope that is not "
            "the identity's, or NaN", lambda ref, kw: _tails(ref, kw, "log-det extrapolated")),
]


def _knots_default_bound(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    # rq_knots called without the bound: knots on its default [-3, 3], the tails still at ±bound
    x, bound, inverse = kw["x"], kw["bound"], kw.get("inverse", False)
    knots = ref.rq_knots(kw["widths"], kw["heights"], kw["derivatives"])
    out, logdet = (ref.rq_inverse if inverse else ref.rq_forward)(x.clamp(-bound, bound), *knots)
    inside = (x >= -bound) & (x <= bound)
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))


BOUND_MISTAKE = Mistake(
    "bound not passed to rq_knots",
    "rq_knots(widths, heights, derivatives) uses its default B = 3 whatever the bound: pass bound on "
    "(rq_knots(..., bound)), so the knots run from −B to B", _knots_default_bound)


def _spline_inverse_sign(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    y, logdet = ref.rq_spline(**kw)
    return y, -logdet


# --- layers ---------------------------------------------------------------------------------------------------

HIDDEN = 16


def _randomise(layer: torch.nn.Module, seed: int, scale: float) -> None:
    """Seeded random weights, ~scale/√fan-in: a layer far from its identity start, the same in every process."""
    with torch.no_grad():
        for k, p in enumerate(layer.parameters()):
            fan_in = p.shape[-1] if p.dim() > 1 else 1
            p.copy_(scale / math.sqrt(fan_in) * randn(*p.shape, seed=seed + k, dtype=p.dtype))


def _coupling_protocol(cls: Any, dim: int, bins: int, bound: float, mask: Tensor | None, seed: int, scale: float,
                       z: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Build ``cls(dim, 16, bins, bound[, mask])`` in z's dtype with seeded weights; ``forward(z)``, ``inverse(x)``."""
    layer = (cls(dim, HIDDEN, bins, bound) if mask is None else cls(dim, HIDDEN, bins, bound, mask)).to(z.dtype)
    _randomise(layer, seed, scale)
    return (*layer(z), *layer.inverse(x))


def _layer_inputs(dim: int, bins: int, bound: float, seed: int, *, mask: list[float] | None = None, batch: int = 6,
                  magnitude: float = 2.0, scale: float = 1.5, dtype: torch.dtype = F64) -> dict[str, Any]:
    return {"dim": dim, "bins": bins, "bound": bound, "mask": None if mask is None else tensor(mask, dtype),
            "seed": seed, "scale": scale, "z": magnitude * randn(batch, dim, seed=seed + 50, dtype=dtype),
            "x": magnitude * randn(batch, dim, seed=seed + 51, dtype=dtype)}


COUPLING_CASES = [
    Case("dim 4, default mask (1, 0, 1, 0), K = 5 on [-3, 3], points in and outside [-3, 3]",
         lambda: _layer_inputs(4, 5, 3.0, 200)),
    Case("dim 5, mask (0, 0, 1, 1, 0), K = 4 on [-2, 2]",
         lambda: _layer_inputs(5, 4, 2.0, 220, mask=[0.0, 0.0, 1.0, 1.0, 0.0])),
    Case("dim 2, mask (0, 1), K = 8 on [-3, 3], batch of 1",
         lambda: _layer_inputs(2, 8, 3.0, 240, mask=[0.0, 1.0], batch=1)),
    Case("dim 6, default mask, K = 6 on [-3, 3], inputs of size ~4 (many in the tails)",
         lambda: _layer_inputs(6, 6, 3.0, 260, magnitude=4.0)),
    Case("float32 layer and inputs (as in training), dim 4, mask (0, 1, 1, 0), K = 8 on [-3, 3]",
         lambda: _layer_inputs(4, 8, 3.0, 280, mask=[0.0, 1.0, 1.0, 0.0], dtype=F32)),
]


def _coupling_transposed(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, ...]:
    # the network's output read as (batch, 3K - 1, n_moved) instead of (batch, n_moved, 3K - 1)
    dim, bins, bound, mask = kw["dim"], kw["bins"], kw["bound"], kw["mask"]
    layer = (ref.SplineCoupling(dim, HIDDEN, bins, bound) if mask is None
             else ref.SplineCoupling(dim, HIDDEN, bins, bound, mask)).to(kw["z"].dtype)
    _randomise(layer, kw["seed"], kw["scale"])
    out = []
    for v, inverse in ((kw["z"], False), (kw["x"], True)):
        params = layer.net(v[:, layer.kept]).reshape(v.shape[0], 3 * bins - 1, len(layer.moved)).transpose(1, 2)
        w, h, d = params.split([bins, bins, bins - 1], dim=-1)
        new, logdet = ref.rq_spline(v[:, layer.moved], w, h, d, bound, inverse)
        out += [v.index_copy(1, layer.moved, new), logdet.sum(dim=1)]
    return tuple(out)


def _coupling_default_bound(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, ...]:
    # rq_spline called without self.bound: every spline on the default [-3, 3]
    dim, bins, mask = kw["dim"], kw["bins"], kw["mask"]
    layer = (ref.SplineCoupling(dim, HIDDEN, bins, 3.0) if mask is None
             else ref.SplineCoupling(dim, HIDDEN, bins, 3.0, mask)).to(kw["z"].dtype)
    _randomise(layer, kw["seed"], kw["scale"])
    return (*layer(kw["z"]), *layer.inverse(kw["x"]))


def _coupling_gradients(cls: Any, dim: int, bins: int, bound: float, mask: Tensor | None, seed: int, scale: float,
                        z: Tensor, x: Tensor) -> bool:
    """Build the layer as :func:`_coupling_protocol` does, backpropagate the sum of ``forward(z)`` and ``inverse(x)``;
    return whether every parameter tensor of the layer received a nonzero gradient (a network cut from the graph
    computes the right values and never trains). The layer gets copies of ``z`` and ``x``."""
    layer = (cls(dim, HIDDEN, bins, bound) if mask is None else cls(dim, HIDDEN, bins, bound, mask)).to(z.dtype)
    _randomise(layer, seed, scale)
    total = sum(out.sum() for out in (*layer(z.clone()), *layer.inverse(x.clone())))
    if isinstance(total, Tensor) and total.requires_grad:
        total.backward()
    return all(p.grad is not None and bool((p.grad != 0).any()) for p in layer.parameters())


def _autoregressive_protocol(cls: Any, dim: int, bins: int, bound: float, seed: int, scale: float, z: Tensor,
                             x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Build ``cls(dim, 16, bins, bound)`` in z's dtype with seeded weights; ``forward(z)``, ``inverse(x)``."""
    layer = cls(dim, HIDDEN, bins, bound).to(z.dtype)
    _randomise(layer, seed, scale)
    return (*layer(z), *layer.inverse(x))


def _ar_inputs(dim: int, bins: int, bound: float, seed: int, batch: int = 5,
               dtype: torch.dtype = F64) -> dict[str, Any]:
    inputs = _layer_inputs(dim, bins, bound, seed, batch=batch, dtype=dtype)
    del inputs["mask"]
    return inputs


AUTOREGRESSIVE_CASES = [
    Case("dim 3, K = 5 on [-3, 3]", lambda: _ar_inputs(3, 5, 3.0, 300)),
    Case("dim 4, K = 4 on [-2, 2]", lambda: _ar_inputs(4, 4, 2.0, 320)),
    Case("dim 2, K = 8 on [-3, 3], batch of 1", lambda: _ar_inputs(2, 8, 3.0, 340, batch=1)),
    Case("float32 layer and inputs, dim 3, K = 6 on [-3, 3]", lambda: _ar_inputs(3, 6, 3.0, 360, dtype=F32)),
]


def _ar_one_pass(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, ...]:
    # the inverse's parameters computed from x (the MAF reading) instead of from the z being solved for
    layer = ref.SplineAutoregressive(kw["dim"], HIDDEN, kw["bins"], kw["bound"]).to(kw["z"].dtype)
    _randomise(layer, kw["seed"], kw["scale"])
    x_out, logdet = layer(kw["z"])
    z, logdet_inverse = ref.rq_spline(kw["x"], *layer._params(kw["x"]), kw["bound"], inverse=True)
    return x_out, logdet, z, logdet_inverse.sum(dim=1)


def _ar_one_pass_short(ref: Any, kw: Mapping[str, Any]) -> tuple[Tensor, ...]:
    # the inverse loop run dim - 1 times: the last coordinate's parameters still read a wrong z
    layer = ref.SplineAutoregressive(kw["dim"], HIDDEN, kw["bins"], kw["bound"]).to(kw["z"].dtype)
    _randomise(layer, kw["seed"], kw["scale"])
    x_out, logdet = layer(kw["z"])
    z = torch.zeros_like(kw["x"])
    for _ in range(kw["dim"] - 1):
        z, logdet_inverse = ref.rq_spline(kw["x"], *layer._params(z), kw["bound"], inverse=True)
    return x_out, logdet, z, logdet_inverse.sum(dim=1)


LAYER_OUTPUTS = ("x = forward(z)", "forward log-det", "z = inverse(x)", "inverse log-det")

CHECKS = [
    Check("rq_knots", cases=KNOT_CASES, mistakes=KNOT_MISTAKES,
          outputs=("knots_x", "knots_y", "knot derivatives"), same_dtype=True),
    Check("search_bins", cases=SEARCH_CASES, mistakes=SEARCH_MISTAKES, atol=0.0, rtol=0.0),
    Check("rq_forward", cases=_spline_cases("x"), outputs=("y", "log dy/dx"), same_dtype=True,
          mistakes=[Mistake("the two knot slopes of the bin exchanged",
                            "δ^(k) belongs to the bin's left knot (ξ = 0) and δ^(k+1) to its right knot (ξ = 1): "
                            "y uses δ^(k) in h[sξ² + δ^(k)ξ(1−ξ)], the derivative's numerator "
                            "δ^(k+1)ξ² + 2sξ(1−ξ) + δ^(k)(1−ξ)²", _forward_slopes_swapped)]),
    Check("rq_root", cases=ROOT_CASES, mistakes=ROOT_MISTAKES, same_dtype=True),
    Check("rq_inverse", cases=_spline_cases("y"), outputs=("x", "log dx/dy"), same_dtype=True,
          mistakes=[Mistake("log-det sign in the inverse",
                            "the inverse returns log dx/dy = −log dy/dx at the point found: negate the forward "
                            "formula's log-derivative", _inverse_sign),
                    Mistake("bin of y searched among the x-knots",
                            "y is a value of the spline: find its bin among knots_y (search_bins(knots_y, y)), not "
                            "knots_x — the two sets of knots differ, so the x-knots pick the wrong bin",
                            _inverse_x_knots)]),
    Check("rq_spline", cases=_rq_spline_cases(inverse=False), mistakes=[*TAIL_MISTAKES, BOUND_MISTAKE],
          outputs=("y", "log-det"), same_dtype=True),
    Check("rq_spline_inverse", key="rq_spline", cases=_rq_spline_cases(inverse=True), outputs=("x", "log-det"),
          same_dtype=True,
          mistakes=[*TAIL_MISTAKES,
                    Mistake("log-det sign in the inverse",
                            "rq_inverse already returns log dx/dy, the inverse's own log-det: do not negate it again",
                            _spline_inverse_sign),
                    BOUND_MISTAKE,
                    Mistake("inverse=True ignored (the forward spline)",
                            "with inverse=True call rq_inverse on the points inside [−B, B]: the forward spline "
                            "is not its own inverse", lambda ref, kw: ref.rq_spline(**{**kw, "inverse": False}))]),
    Check("SplineCoupling", cases=COUPLING_CASES, protocol=_coupling_protocol, outputs=LAYER_OUTPUTS,
          mistakes=[Mistake("network output read as (3K − 1, moved)",
                            "the network's output is (batch, n_moved·(3K − 1)): reshape it to (batch, n_moved, 3K − 1) "
                            "so each transformed coordinate gets its own K widths, K heights and K − 1 derivatives",
                            _coupling_transposed),
                    Mistake("bound not passed to rq_spline",
                            "rq_spline(..., self.bound): without it every spline lives on the default [−3, 3], "
                            "whatever bound the layer was built with", _coupling_default_bound)]),
    Check("SplineCoupling_trains", key="SplineCoupling", cases=COUPLING_CASES[:2], protocol=_coupling_gradients,
          outputs=("a gradient reaches every parameter",),
          mistakes=[Mistake("network output detached (the conditioner never trains)",
                            "the values are right, but no gradient reaches the network: `.detach()`, `.data` or "
                            "`torch.no_grad()` cut the spline parameters from the graph, so maximum likelihood never "
                            "updates the conditioner — keep self.net(...) in the graph",
                            lambda ref, kw: False)]),
    Check("SplineAutoregressive", cases=AUTOREGRESSIVE_CASES, protocol=_autoregressive_protocol,
          outputs=LAYER_OUTPUTS,
          mistakes=[Mistake("inverse in one pass (MADE run on x)",
                            "in this layer the MADE reads z, which the inverse does not have yet: start from z = 0 "
                            "and repeat (MADE on the current z, invert the splines) dim times",
                            _ar_one_pass),
                    Mistake("one pass too few in the inverse",
                            "pass k gets coordinate k right (counting from 1), so the last coordinate needs pass dim: "
                            "loop dim times, not dim − 1", _ar_one_pass_short)]),
    Check(
        "quiz_09_n_params",
        mistakes=[
            Mistake("boundary derivatives counted", "the two boundary derivatives are fixed to 1, not output: 3K − 1",
                    lambda ref, kw: 24),
            Mistake("3K + 1 (every knot's derivative counted)",
                    "K widths, K heights and only the K − 1 interior derivatives: 3K − 1", lambda ref, kw: 25),
        ],
        atol=1e-9,
        rtol=0.0,
    ),
    Check(
        "quiz_09_boundary",
        mistakes=[
            Mistake("softplus cannot output 1", "it can (softplus(log(e − 1)) = 1); the reason is the identity tails",
                    lambda ref, kw: "A"),
            Mistake("boundary derivatives confused with the bin sizes",
                    "the bins sum to 2B because of the scaled softmax; the end slopes join the spline to its tails",
                    lambda ref, kw: "C"),
        ],
    ),
    Check(
        "quiz_09_linear_bin",
        mistakes=[
            Mistake("both roots fail", "2c/(−b − √(b² − 4ac)) with a = 0 is 2c/(−2b) = −c/b: finite and exact",
                    lambda ref, kw: "D"),
            Mistake("a straight bin called not invertible",
                    "a straight bin with positive slope is a bijection of the bin", lambda ref, kw: "A"),
        ],
    ),
]
