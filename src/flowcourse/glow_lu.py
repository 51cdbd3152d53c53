r"""Measurements behind lesson 04's "why LU": the cost and the float32 accuracy of a dense ``slogdet``.

A dense $1\times1$ convolution gets $\log|\det W|$ from ``torch.linalg.slogdet`` (an LU factorisation with
pivoting, $O(C^3)$); Glow's $W = PLU$ reads it off as $\sum_i \log|s_i|$ ($O(C)$). These helpers time both
and measure how far a float32 ``slogdet`` is from the float64 value of the same matrix, for matrices
$W = Q_1\,\mathrm{diag}(\sigma)\,Q_2$ with random rotations $Q_1, Q_2$ and a chosen condition number
$\sigma_{\max}/\sigma_{\min}$.

Reference: Kingma & Dhariwal (2018), *Glow: Generative Flow with Invertible 1x1 Convolutions*, section 3.2.

>>> err = slogdet_float32_error(16, [1.0, 100.0], draws=2, seed=0)
>>> err.shape, bool((err[0] < 1e-4).all())
(torch.Size([2, 2]), True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["best_time", "logdet_timings", "random_rotation", "slogdet_float32_error"]


def best_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """The shortest of ``repeats`` wall-clock timings of ``fn()``, in seconds (the least disturbed run)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def logdet_timings(sizes: Sequence[int], repeats: int = 5, seed: int = 0) -> dict[str, list[float]]:
    """Seconds for ``slogdet`` of a dense float32 ``(C, C)`` matrix and for a sum of ``C`` numbers, per ``C``.

    Returns ``{"channels": [...], "slogdet": [...], "lu_sum": [...]}``, each timing the best of ``repeats``.
    """
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list[float]] = {"channels": [], "slogdet": [], "lu_sum": []}
    for c in sizes:
        W = torch.randn(c, c, generator=gen, dtype=torch.float32)
        log_s = torch.randn(c, generator=gen, dtype=torch.float32)
        out["channels"].append(float(c))
        out["slogdet"].append(best_time(lambda W=W: torch.linalg.slogdet(W), repeats))
        out["lu_sum"].append(best_time(lambda log_s=log_s: log_s.sum(), repeats))
    return out


def random_rotation(channels: int, generator: torch.Generator) -> Tensor:
    """A random orthogonal ``(C, C)`` matrix in float64 (QR of a Gaussian matrix, signs fixed)."""
    q, r = torch.linalg.qr(torch.randn(channels, channels, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def slogdet_float32_error(channels: int, conditions: Sequence[float], draws: int = 20, seed: int = 0) -> Tensor:
    r"""Per-pixel error, in nats, of ``slogdet`` computed in float32, for ``draws`` random matrices.

    Draw ``draws`` pairs of random rotations $Q_1, Q_2$; for each condition number $\kappa$ in ``conditions``
    take $W = Q_1\,\mathrm{diag}(\sigma)\,Q_2$ with $\sigma$ log-spaced from $\kappa^{-1/2}$ to $\kappa^{1/2}$
    (so $\log|\det W| = 0$), rounded to float32 as a float32 model would store it. The error is
    $|\,\text{slogdet}_{32}(W) - \text{slogdet}_{64}(W)\,|$ on that same float32 matrix: the error of the
    computation, not of the rounding of $W$. Multiply it by $h\cdot w$ for a $1\times1$ convolution on an
    $h\times w$ image. Returns a float64 tensor of shape ``(len(conditions), draws)``.
    """
    if any(k < 1 for k in conditions):
        raise ValueError(f"a condition number is at least 1, got {list(conditions)}")
    gen = torch.Generator().manual_seed(seed)
    rotations = [(random_rotation(channels, gen), random_rotation(channels, gen)) for _ in range(draws)]
    errors = torch.empty(len(conditions), draws, dtype=torch.float64)
    for i, kappa in enumerate(conditions):
        half = 0.5 * math.log10(kappa)
        sigma = torch.logspace(-half, half, channels, dtype=torch.float64)
        for j, (q1, q2) in enumerate(rotations):
            W = (q1 @ torch.diag(sigma) @ q2).float()
            in_float32 = torch.linalg.slogdet(W).logabsdet.double()
            in_float64 = torch.linalg.slogdet(W.double()).logabsdet
            errors[i, j] = (in_float32 - in_float64).abs()
    return errors
