r"""Building blocks for the expressive-power lesson (lesson 07): a 1-D target, quantiles, a depth experiment.

Nothing here is graded. The layers the depth experiment trains are passed in (``layer``), so the same
loop runs the answer key's planar layers and the ones released with the lesson.

>>> round(float(two_gaussians_1d().cdf(torch.tensor(0.0, dtype=torch.float64))), 6)
0.5
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Categorical, MixtureSameFamily, Normal

from flowcourse.base import Flow, FlowDistribution, FlowSequence, StandardNormal

__all__ = ["two_gaussians_1d", "quantile_function", "depth_experiment"]


def two_gaussians_1d(dtype: torch.dtype = torch.float64) -> MixtureSameFamily:
    r"""The lesson's two-peaked 1-D target :math:`p = \tfrac12\mathcal N(-2, 0.5^2) + \tfrac12\mathcal N(2, 0.5^2)`.

    A ``torch.distributions`` object: ``log_prob`` and ``cdf`` take a tensor of shape ``(n,)``.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> float(two_gaussians_1d().cdf(torch.tensor(0.0, dtype=torch.float64)))
    0.5
    """
    return MixtureSameFamily(
        Categorical(probs=torch.tensor([0.5, 0.5], dtype=dtype)),
        Normal(torch.tensor([-2.0, 2.0], dtype=dtype), torch.tensor([0.5, 0.5], dtype=dtype)),
    )


def quantile_function(
    cdf: Callable[[Tensor], Tensor], *, lo: float = -20.0, hi: float = 20.0, iters: int = 100
) -> Callable[[Tensor], Tensor]:
    r"""The quantile function :math:`F^{-1}(\alpha) = \inf\{x : F(x) \ge \alpha\}`, by bisection.

    ``cdf`` maps a tensor of points to a tensor of the same shape; the returned function maps probabilities
    in :math:`(F(lo), F(hi))` to quantiles, vectorised, to within :math:`(hi - lo)/2^{iters}`.

    >>> icdf = quantile_function(torch.special.ndtr)
    >>> round(float(icdf(torch.tensor([0.975], dtype=torch.float64))[0]), 6)
    1.959964
    """

    def icdf(alpha: Tensor) -> Tensor:
        a = torch.full_like(alpha, lo)
        c = torch.full_like(alpha, hi)
        for _ in range(iters):
            mid = (a + c) / 2
            below = cdf(mid) < alpha
            a = torch.where(below, mid, a)
            c = torch.where(below, c, mid)
        return (a + c) / 2

    return icdf


def depth_experiment(
    K: int,
    layer: Callable[[int], Flow],
    d: int = 8,
    *,
    steps: int = 300,
    batch_size: int = 256,
    lr: float = 5e-2,
    seed: int = 0,
    n_eval: int = 20000,
    progress: bool = False,
) -> float:
    r"""Reverse-KL fit of :math:`\mathcal N(0, 4I_d)` from :math:`q = \mathcal N(0, I_d)` by ``K`` layers.

    ``layer(d)`` builds one base→data layer on :math:`\mathbb R^d` (lesson 07 passes tanh planar layers with
    the invertible :math:`\hat u` of lesson 05); ``K`` of them are created under ``torch.manual_seed(seed)``
    (without touching the caller's generator), trained by :func:`flowcourse.training.fit_reverse_kl`, and
    the Monte-Carlo estimate of :math:`\mathrm{KL}(q_\theta\|p) = \mathbb{E}_{q_\theta}[\log q_\theta - \log p]`
    on ``n_eval`` fresh samples is returned (nats). ``K = 0`` gives
    :math:`d\,\mathrm{KL}(\mathcal N(0,1)\|\mathcal N(0,4)) \approx 0.318\,d` up to sampling error.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.
    """
    from flowcourse.training import fit_reverse_kl  # keeps this module importable without tqdm

    if isinstance(K, bool) or not isinstance(K, int) or K < 0:
        raise ValueError(f"K must be a non-negative int, got {K!r}")
    with torch.random.fork_rng():  # seeds the initialisation without touching the caller's generator
        torch.manual_seed(seed)
        flow = FlowSequence(*(layer(d) for _ in range(K)))
    dist = FlowDistribution(flow, StandardNormal(d))
    target = Normal(torch.tensor(0.0), torch.tensor(2.0))

    def log_target(x: Tensor) -> Tensor:
        return target.log_prob(x).sum(1)

    if K > 0:
        fit_reverse_kl(
            dist, log_target, steps=steps, batch_size=batch_size, lr=lr, seed=seed, progress=progress
        )
    with torch.no_grad():
        x, log_q = dist.sample_and_log_prob(n_eval, generator=torch.Generator().manual_seed(seed + 1))
        return float((log_q - log_target(x)).mean())
