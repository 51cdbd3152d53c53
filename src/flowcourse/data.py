r"""Data for the lessons: 2-D toy samplers, Rezende–Mohamed energies and 8x8 digits.

Three kinds of target, one per way of fitting a flow:

* **2-D samples** (``two_moons``, ``rings``, ``eight_gaussians``, ``checkerboard``) for maximum likelihood.
  Every sampler draws from its own ``torch.Generator`` seeded with ``seed``, so the same call gives the same
  points on every machine, and returns a ``(n, 2)`` float32 tensor roughly inside :math:`[-4, 4]^2`.
* **Energies** :math:`U(z)` (Rezende & Mohamed 2015, Table 1) for reverse-KL fitting, where only the
  unnormalised density :math:`\tilde p(z) = e^{-U(z)}` is known.
* **Digits**: the 1797 8x8 images bundled with scikit-learn (no download), integer grey levels
  :math:`0..16`, for density estimation in 64 dimensions reported in bits per dimension.

References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*;
Grathwohl et al. (2019), *FFJORD* (the toy data sets); Theis, van den Oord & Bethge (2016), *A note on the
evaluation of generative models* (dequantisation).

>>> x = two_moons(4, seed=1)
>>> x.shape, x.dtype
(torch.Size([4, 2]), torch.float32)
>>> torch.equal(x, two_moons(4, seed=1))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from flowcourse.base import check_batch
from flowcourse.training import single_thread

__all__ = [
    "TOY_DATASETS",
    "ENERGIES",
    "two_moons",
    "rings",
    "eight_gaussians",
    "checkerboard",
    "toy_sample",
    "two_moons_split",
    "nats_per_dim",
    "energy",
    "energy_envelope",
    "log_target",
    "energy_normaliser",
    "Digits",
    "digits",
    "dequantize",
    "bits_per_dim",
    "dequantized_bits_per_dim",
    "categorical_baseline_bpd",
    "gaussian_baseline_bpd",
]

# ----------------------------------------------------------------------------------------------------------
# 2-D samplers


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be a positive int, got {n}")
    return n


def _check_noise(noise: float) -> float:
    if not noise >= 0:
        raise ValueError(f"noise must be a non-negative float, got {noise}")
    return float(noise)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def two_moons(n: int, *, noise: float = 0.05, seed: int = 0) -> Tensor:
    r"""Two interleaved half circles, centred and scaled by 2 to fill :math:`[-4, 4]^2`.

    Before scaling, the upper moon is :math:`(\cos t, \sin t)` and the lower one
    :math:`(1 - \cos t, \tfrac12 - \sin t)` with :math:`t \sim U[0, \pi]` (scikit-learn's ``make_moons``
    with random rather than evenly spaced angles); ``noise`` is the standard deviation of the Gaussian jitter
    added before scaling. Half the points (rounded down) lie on the upper moon, in shuffled order.

    >>> x = two_moons(1000, noise=0.0)
    >>> bool(x.abs().max() <= 3.01)
    True
    """
    n, noise = _check_n(n), _check_noise(noise)
    g = _generator(seed)
    t = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    upper = torch.arange(n) < n // 2
    x = torch.where(upper, torch.cos(t), 1.0 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    points = torch.stack([x, y], 1) + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    points = 2.0 * (points - torch.tensor([0.5, 0.25], dtype=torch.float64))
    return points[torch.randperm(n, generator=g)].float()


def rings(
    n: int, *, noise: float = 0.08, seed: int = 0, radii: tuple[float, ...] = (1.0, 2.0, 3.0)
) -> Tensor:
    r"""Concentric circles of the given ``radii``, uniform along their total length.

    A point picks ring :math:`k` with probability :math:`r_k / \sum_j r_j` (so the density along every ring
    is the same), an angle :math:`\theta \sim U[0, 2\pi)`, and lands at
    :math:`r_k(\cos\theta, \sin\theta) + \varepsilon` with
    :math:`\varepsilon \sim \mathcal N(0, \text{noise}^2 I)`.
    The rings are disconnected: a flow (a homeomorphism of :math:`\mathbb R^2`) cannot map the
    connected Gaussian onto separate rings exactly, only approximately (lesson 07).

    >>> r = rings(3000, noise=0.0).norm(dim=1)
    >>> sorted({round(v, 3) for v in r.tolist()})
    [1.0, 2.0, 3.0]
    """
    n, noise = _check_n(n), _check_noise(noise)
    if not radii or min(radii) <= 0:
        raise ValueError(f"radii must be a non-empty tuple of positive floats, got {radii}")
    g = _generator(seed)
    r = torch.tensor(radii, dtype=torch.float64)
    k = torch.multinomial(r / r.sum(), n, replacement=True, generator=g)
    theta = 2 * math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    points = r[k, None] * torch.stack([torch.cos(theta), torch.sin(theta)], 1)
    return (points + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()


def eight_gaussians(n: int, *, noise: float = 0.1, seed: int = 0, radius: float = 2.0) -> Tensor:
    r"""An equal mixture of 8 isotropic Gaussians with standard deviation ``noise``.

    The means sit on a circle, :math:`\mu_k = \text{radius}\,(\cos\tfrac{k\pi}4, \sin\tfrac{k\pi}4)`,
    :math:`k = 0..7`; each point picks a component uniformly at random.

    >>> x = eight_gaussians(8000, seed=3)
    >>> round(float(x.norm(dim=1).median()), 1)
    2.0
    """
    n, noise = _check_n(n), _check_noise(noise)
    g = _generator(seed)
    angle = (math.pi / 4) * torch.randint(0, 8, (n,), generator=g).double()
    means = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return (means + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()


def checkerboard(n: int, *, noise: float = 0.0, seed: int = 0) -> Tensor:
    r"""Uniform on the 8 dark squares of a 4x4 checkerboard covering :math:`[-4, 4]^2` (squares of side 2).

    The dark squares are those with column :math:`i` and row :math:`j` (counted from :math:`-4`) of even
    :math:`i + j`; the density is :math:`1/32` on them and 0 elsewhere. ``noise`` adds optional Gaussian
    jitter (0 by default: the sharp edges are the point of the data set).

    >>> x = checkerboard(5000)
    >>> cells = ((x + 4) // 2).long()
    >>> bool(((cells.sum(1) % 2) == 0).all())
    True
    """
    n, noise = _check_n(n), _check_noise(noise)
    g = _generator(seed)
    dark = torch.tensor([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0], dtype=torch.float64)
    cell = dark[torch.randint(0, len(dark), (n,), generator=g)]
    points = -4.0 + 2.0 * (cell + torch.rand(n, 2, generator=g, dtype=torch.float64))
    return (points + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()


TOY_DATASETS: dict[str, Callable[..., Tensor]] = {
    "two_moons": two_moons,
    "rings": rings,
    "eight_gaussians": eight_gaussians,
    "checkerboard": checkerboard,
}


def toy_sample(name: str, n: int, *, seed: int = 0) -> Tensor:
    """Draw ``n`` points from the toy data set ``name`` (one of :data:`TOY_DATASETS`) with its defaults.

    >>> torch.equal(toy_sample("rings", 5, seed=2), rings(5, seed=2))
    True
    """
    try:
        sampler = TOY_DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown toy data set {name!r}; expected one of {sorted(TOY_DATASETS)}") from None
    return sampler(n, seed=seed)


def two_moons_split(n_train: int = 4000, n_test: int = 2000) -> tuple[Tensor, Tensor]:
    r"""The lessons' two-moons split: ``(two_moons(n_train, seed=0), two_moons(n_test, seed=1))``.

    Two independent draws (different seeds), so the test points are held out from training. Lessons 02 and
    03 fit on the first and report the held-out log-likelihood on the second, in nats per dimension
    (:func:`nats_per_dim`).

    >>> train, test = two_moons_split(8, 4)
    >>> train.shape, test.shape, torch.equal(test, two_moons(4, seed=1))
    (torch.Size([8, 2]), torch.Size([4, 2]), True)
    """
    return two_moons(n_train, seed=0), two_moons(n_test, seed=1)


def _check_log_densities(log_p: object, n: int) -> None:
    if not isinstance(log_p, Tensor) or log_p.shape != (n,):
        got = tuple(log_p.shape) if isinstance(log_p, Tensor) else type(log_p).__name__
        raise ValueError(f"log_prob must return log-densities of shape ({n},), got {got}")


def nats_per_dim(log_prob: Callable[[Tensor], Tensor], x: Tensor) -> float:
    r"""Mean negative log-likelihood of the points ``x`` in nats **per dimension**: total NLL over :math:`d`.

    .. math:: \mathrm{NLL}_{\text{dim}} = -\frac{1}{N d} \sum_{i=1}^{N} \log p(x_i),
        \qquad x_i \in \mathbb{R}^d,

    with ``log_prob`` mapping ``(N, *event)`` to ``(N,)`` (e.g. ``dist.log_prob``) and :math:`d` the number
    of coordinates of one event. Evaluated without gradients on one torch thread. Lower is better; the
    per-point figure is :math:`d` times larger (reporting it as "per dimension" is the classic slip).

    >>> x = torch.zeros(3, 2)  # the standard normal's density at 0 is 1/(2π): log 2π nats, (log 2π)/2 per dim
    >>> round(nats_per_dim(lambda v: -0.5 * (v**2).sum(1) - math.log(2 * math.pi), x), 6)
    0.918939
    """
    check_batch(x, name="x")
    with torch.no_grad(), single_thread():
        log_p = log_prob(x)
    _check_log_densities(log_p, x.shape[0])
    return float(-log_p.double().mean() / x[0].numel())


# ----------------------------------------------------------------------------------------------------------
# Rezende–Mohamed energies


def _w1(z1: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * z1 / 4)


def _w2(z1: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)


def _w3(z1: Tensor) -> Tensor:
    return 3 * torch.sigmoid((z1 - 1) / 0.3)


def _neg_log_sum_exp(a: Tensor, b: Tensor) -> Tensor:
    r""":math:`-\ln(e^a + e^b)`, computed without underflow far from both modes."""
    return -torch.logaddexp(a, b)


def _u1(z: Tensor) -> Tensor:
    z1 = z[:, 0]
    ring = 0.5 * ((z.norm(dim=1) - 2) / 0.4) ** 2
    return ring + _neg_log_sum_exp(-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2)


def _u2(z: Tensor) -> Tensor:
    return 0.5 * ((z[:, 1] - _w1(z[:, 0])) / 0.4) ** 2


def _u3(z: Tensor) -> Tensor:
    z1, z2 = z[:, 0], z[:, 1]
    w1 = _w1(z1)
    return _neg_log_sum_exp(-0.5 * ((z2 - w1) / 0.35) ** 2, -0.5 * ((z2 - w1 + _w2(z1)) / 0.35) ** 2)


def _u4(z: Tensor) -> Tensor:
    z1, z2 = z[:, 0], z[:, 1]
    w1 = _w1(z1)
    return _neg_log_sum_exp(-0.5 * ((z2 - w1) / 0.4) ** 2, -0.5 * ((z2 - w1 + _w3(z1)) / 0.35) ** 2)


ENERGIES: dict[str, Callable[[Tensor], Tensor]] = {"U1": _u1, "U2": _u2, "U3": _u3, "U4": _u4}


def _energy_name(name: str) -> str:
    key = name.upper() if isinstance(name, str) else name
    if key not in ENERGIES:
        raise ValueError(f"unknown energy {name!r}; expected one of {sorted(ENERGIES)}")
    return key


def energy(name: str) -> Callable[[Tensor], Tensor]:
    r"""The energy :math:`U(z)` of Rezende & Mohamed (2015, Table 1), a map ``(batch, 2) -> (batch,)``.

    With :math:`w_1(z) = \sin(2\pi z_1/4)`, :math:`w_2(z) = 3\exp(-\tfrac12((z_1-1)/0.6)^2)` and
    :math:`w_3(z) = 3\sigma((z_1-1)/0.3)`:

    .. math::
        U_1(z) &= \tfrac12\Big(\frac{\lVert z\rVert - 2}{0.4}\Big)^2
                 - \ln\Big(e^{-\frac12(\frac{z_1-2}{0.6})^2} + e^{-\frac12(\frac{z_1+2}{0.6})^2}\Big)\\
        U_2(z) &= \tfrac12\Big(\frac{z_2 - w_1(z)}{0.4}\Big)^2\\
        U_3(z) &= -\ln\Big(e^{-\frac12(\frac{z_2-w_1(z)}{0.35})^2}
                 + e^{-\frac12(\frac{z_2-w_1(z)+w_2(z)}{0.35})^2}\Big)\\
        U_4(z) &= -\ln\Big(e^{-\frac12(\frac{z_2-w_1(z)}{0.4})^2}
                 + e^{-\frac12(\frac{z_2-w_1(z)+w_3(z)}{0.35})^2}\Big)

    The target density is :math:`p(z) \propto e^{-U(z)}`. Only :math:`U_1` is normalisable on
    :math:`\mathbb R^2`; for training use :func:`log_target`, which adds an envelope to the others.
    The two-term logarithms are computed with ``logaddexp`` so they stay finite far from the modes.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, Table 1.

    >>> U = energy("U2")
    >>> U(torch.tensor([[1.0, 1.4]]))  # w1(1) = sin(pi/2) = 1, so U2 = 0.5 (0.4 / 0.4)^2
    tensor([0.5000])
    """
    fn = ENERGIES[_energy_name(name)]

    def U(z: Tensor) -> Tensor:
        return fn(check_batch(z, (2,)))

    U.__name__ = U.__qualname__ = _energy_name(name)
    U.__doc__ = f"Rezende–Mohamed energy {U.__name__}(z), (batch, 2) -> (batch,)."
    return U


#: Where the envelope of :func:`log_target` starts, and how fast it falls off beyond.
ENVELOPE_BOUND = 4.0
ENVELOPE_WIDTH = 0.5


def energy_envelope(z: Tensor) -> Tensor:
    r"""The soft wall :math:`E(z) = \tfrac12\big(\max(|z_1| - 4, 0)/0.5\big)^2` added to :math:`U_2..U_4`.

    Zero inside the strip :math:`|z_1| \le 4` (the paper's plotting window), so there the enveloped target is
    exactly the paper's; outside it the density falls off like a Gaussian of standard deviation 0.5. It is
    continuous with a continuous gradient, so reverse-KL training sees no edge (a hard box would give
    :math:`\log \tilde p = -\infty` for any sample outside it, and an infinite KL for every flow).

    >>> energy_envelope(torch.tensor([[3.0, 9.0], [-5.0, 0.0]]))
    tensor([0., 2.])
    """
    check_batch(z, (2,))
    return 0.5 * (F.relu(z[:, 0].abs() - ENVELOPE_BOUND) / ENVELOPE_WIDTH) ** 2


def log_target(name: str) -> Callable[[Tensor], Tensor]:
    r"""The unnormalised log-density :math:`\log\tilde p(z)` to fit by reverse KL, ``(batch, 2) -> (batch,)``.

    For :math:`U_1`, :math:`\log\tilde p = -U_1`. :math:`U_2, U_3, U_4` depend on :math:`z_1` only through
    the bounded :math:`w_1, w_2, w_3`, so :math:`e^{-U}` does not decay as :math:`|z_1| \to \infty` and
    :math:`\int e^{-U}\,dz = \infty`: there is no density to fit, and a flow trained on :math:`-U` alone
    drifts off along :math:`z_1`. They get the envelope of :func:`energy_envelope`:
    :math:`\log\tilde p = -U - E`, identical to :math:`-U` on :math:`[-4, 4]\times\mathbb R` and
    normalisable on :math:`\mathbb R^2`. :func:`energy_normaliser` gives its :math:`\log Z`.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, Table 1, Fig. 3.

    >>> z = torch.tensor([[0.0, 0.0], [6.0, 0.0]])
    >>> log_target("U2")(z) + energy("U2")(z)
    tensor([ 0., -8.])
    """
    key = _energy_name(name)
    U = energy(key)

    if key == "U1":

        def log_p(z: Tensor) -> Tensor:
            return -U(z)

    else:

        def log_p(z: Tensor) -> Tensor:
            return -U(z) - energy_envelope(z)

    log_p.__name__ = log_p.__qualname__ = f"log_target_{key}"
    return log_p


def energy_normaliser(
    name: str | Callable[[Tensor], Tensor], bounds: tuple[float, float] = (-6.0, 6.0), n: int = 601
) -> float:
    r"""Numerical :math:`\log Z = \log \int \tilde p(z)\,dz` on an ``n`` x ``n`` grid over ``bounds``².

    ``name`` is an energy name (then :math:`\tilde p` is :func:`log_target`'s enveloped density, the one
    reverse-KL training sees) or any callable giving :math:`\log\tilde p(z)` for ``(batch, 2)`` float64
    points. The integral is the rectangle rule :math:`h^2\sum_{ij}\tilde p(z_{ij})` with spacing
    :math:`h = (b - a)/(n - 1)`, evaluated in float64 with ``logsumexp``. It is accurate when
    :math:`\tilde p` is smooth on the scale of :math:`h` and negligible outside the square; the default
    :math:`[-6, 6]^2` holds all of :math:`U_1..U_4`'s mass (the envelope's tails included) to about
    :math:`10^{-4}`. With it a lesson can report the KL divergence itself,

    .. math::
        \mathrm{KL}(q\,\|\,p) = \mathbb{E}_q[\log q(z) - \log\tilde p(z)] + \log Z \ \ge 0.

    >>> round(energy_normaliser(lambda z: -0.5 * (z**2).sum(1)), 6)  # log 2π
    1.837877
    """
    log_p = log_target(name) if isinstance(name, str) else name
    if not callable(log_p):
        raise TypeError(f"name must be an energy name or a callable, got {type(name).__name__}")
    lo, hi = (float(b) for b in bounds)
    if not hi > lo:
        raise ValueError(f"bounds must be (low, high) with low < high, got {bounds}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    t = torch.linspace(lo, hi, n, dtype=torch.float64)
    grid = torch.cartesian_prod(t, t)
    with torch.no_grad(), single_thread():
        values = torch.cat([log_p(chunk) for chunk in grid.split(65536)])
    if values.shape != (n * n,):
        raise ValueError(f"the log-density must return shape (batch,), got {tuple(values.shape)} in total")
    h = (hi - lo) / (n - 1)
    return float(torch.logsumexp(values, 0)) + 2 * math.log(h)


# ----------------------------------------------------------------------------------------------------------
# 8x8 digits

DIGITS_LEVELS = 17
DIGITS_SPLIT = (1200, 300, 297)
DIGITS_SEED = 0


@dataclass(frozen=True)
class Digits:
    """The 8x8 digits split into train/val/test: float ``(n, 1, 8, 8)`` integer levels 0..16, and labels."""

    train: Tensor
    val: Tensor
    test: Tensor
    train_labels: Tensor
    val_labels: Tensor
    test_labels: Tensor


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


def digits() -> Digits:
    r"""scikit-learn's 1797 8x8 digits, split 1200/300/297 by a fixed seeded permutation.

    The permutation is ``torch.randperm(1797, generator=torch.Generator().manual_seed(0))``: the first 1200
    indices are ``train``, the next 300 ``val``, the last 297 ``test``. Pixels are the integer grey levels
    :math:`0..16` (17 levels) stored as float32, shape ``(n, 1, 8, 8)``; labels are int64 digits 0..9.
    Dequantise with :func:`dequantize` before fitting a density, and report :func:`bits_per_dim`.

    >>> d = digits()
    >>> d.train.shape, d.val.shape, d.test.shape
    (torch.Size([1200, 1, 8, 8]), torch.Size([300, 1, 8, 8]), torch.Size([297, 1, 8, 8]))
    """
    images, labels = _digits_arrays()
    perm = torch.randperm(len(images), generator=_generator(DIGITS_SEED))
    x = torch.from_numpy(images.copy()).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(labels.copy())
    a, b, _ = DIGITS_SPLIT
    parts = perm[:a], perm[a : a + b], perm[a + b :]
    return Digits(*(x[p] for p in parts), *(y[p] for p in parts))


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""Uniform dequantisation :math:`y = (x + u)/17`, :math:`u \sim U[0, 1)^D`, of integer levels 0..16.

    The discrete image :math:`x` becomes a point of :math:`[0, 1)^D`, and any continuous density :math:`p`
    there gives a lower bound on the discrete likelihood,
    :math:`\log P(x) \ge \mathbb{E}_u[\log p(y)] - D\log 17` (Jensen; Theis et al. 2016), so a continuous
    model cannot cheat by piling infinite density on the 17 levels. Raises ``ValueError`` for values that
    are not integers in 0..16, which is what data dequantised twice (or already scaled) looks like.

    References: Theis, van den Oord & Bethge (2016), *A note on the evaluation of generative models*.

    >>> y = dequantize(torch.tensor([[0.0, 16.0]]), generator=torch.Generator().manual_seed(0))
    >>> bool(((y >= 0) & (y < 1)).all()), bool(y[0, 1] >= 16 / 17)
    (True, True)
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise TypeError(f"x must be a floating-point tensor of integer levels 0..16, got {got}")
    if x.numel() and (x.min() < 0 or x.max() > DIGITS_LEVELS - 1 or not torch.equal(x, x.round())):
        raise ValueError(
            f"x must hold integer levels 0..{DIGITS_LEVELS - 1}, got values in [{float(x.min()):.4g}, "
            f"{float(x.max()):.4g}] (non-integers: already dequantised or rescaled?)"
        )
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return (x + u) / DIGITS_LEVELS


def bits_per_dim(log_prob: Tensor, dims: int = 64, levels: int = DIGITS_LEVELS) -> Tensor:
    r"""Bits per dimension of the discrete data from the log-density of its dequantised version.

    If :math:`\log p(y)` is the density (nats) of :math:`y = (x + u)/L \in [0, 1)^D`, the density of
    :math:`x + u` is :math:`p(y)\,L^{-D}`, and the discrete data costs at most

    .. math::
        \mathrm{bpd} = \frac{-\log p(y) + D \log L}{D \ln 2}

    bits per dimension (elementwise; average the result over a data set). Uniform :math:`p \equiv 1` on
    :math:`[0,1)^D` gives :math:`\log_2 L`, the cost of sending each level with no model at all.

    >>> bits_per_dim(torch.zeros(1))  # uniform on [0, 1)^64: log2(17)
    tensor([4.0875])
    """
    if not isinstance(log_prob, Tensor) or not log_prob.is_floating_point():
        got = log_prob.dtype if isinstance(log_prob, Tensor) else type(log_prob).__name__
        raise TypeError(f"log_prob must be a floating-point tensor of log-densities (nats), got {got}")
    if dims < 1 or levels < 2:
        raise ValueError(f"dims must be >= 1 and levels >= 2, got dims={dims}, levels={levels}")
    return (-log_prob + dims * math.log(levels)) / (dims * math.log(2))


def dequantized_bits_per_dim(
    log_prob: Callable[[Tensor], Tensor], x: Tensor, *, repeats: int = 4, seed: int = 2
) -> float:
    r"""Bits/dim of integer-level images ``x`` under a density on :math:`[0,1)^D`, over several dequantisations.

    Each of ``repeats`` passes dequantises all of ``x`` afresh with :func:`dequantize` (one generator seeded
    with ``seed``, drawn from in turn) and takes the mean of :func:`bits_per_dim` of ``log_prob(y)``; the
    result is the mean over the passes, an estimate of the dequantised bound
    :math:`\frac{1}{D\ln 2}\big(-\mathbb{E}_u\log p(y) + D\log L\big)` with less noise from :math:`u`.
    :math:`D` is the number of pixels of one image. ``log_prob`` maps the dequantised batch (same shape as
    ``x``) to ``(batch,)`` log-densities in nats — e.g. ``dist.log_prob``, or
    ``lambda y: dist.log_prob(y.flatten(1))`` for a flow on vectors. Lesson 04 reports its Glow with
    ``digits().test``, ``repeats=4``, ``seed=2``.

    References: Theis, van den Oord & Bethge (2016), *A note on the evaluation of generative models*.

    >>> x = torch.zeros(5, 1, 8, 8)  # the uniform density on [0, 1)^64 costs log2(17) bits per pixel
    >>> round(dequantized_bits_per_dim(lambda y: y.new_zeros(y.shape[0]), x), 4)
    4.0875
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int, got {repeats!r}")
    check_batch(x, name="x")
    dims = x[0].numel()
    generator = _generator(seed)
    passes = []
    with torch.no_grad(), single_thread():
        for _ in range(repeats):
            log_p = log_prob(dequantize(x, generator=generator))
            _check_log_densities(log_p, x.shape[0])
            passes.append(bits_per_dim(log_p.double(), dims=dims).mean())
    return float(torch.stack(passes).mean())


def categorical_baseline_bpd() -> float:
    r"""Test bits/dim of independent per-pixel categoricals with add-one smoothing, fitted on train.

    For pixel :math:`j` and level :math:`v \in 0..16`,
    :math:`P_j(v) = (N_j(v) + 1)/(N + 17)` with :math:`N_j(v)` the count of :math:`v` at pixel :math:`j` in
    the :math:`N = 1200` training images; the result is
    :math:`-\frac{1}{64\,|\text{test}|}\sum_{x \in \text{test}}\sum_j \log_2 P_j(x_j)`.
    A discrete model, so no dequantisation is involved.

    >>> 2.0 < categorical_baseline_bpd() < 3.0
    True
    """
    d = digits()
    train = d.train.reshape(len(d.train), -1).long()
    test = d.test.reshape(len(d.test), -1).long()
    counts = F.one_hot(train, DIGITS_LEVELS).sum(0).double()  # (64, 17)
    log_p = torch.log((counts + 1) / (len(train) + DIGITS_LEVELS))
    nats = log_p.gather(1, test.T).sum(0)  # (n_test,)
    return float(-nats.mean() / (train.shape[1] * math.log(2)))


def gaussian_baseline_bpd(seed: int = 0, logit_alpha: float | None = None) -> float:
    r"""Test bits/dim of one full-covariance Gaussian fitted to the dequantised training images.

    The training and test images are dequantised once each with :func:`dequantize` (generators seeded with
    ``seed`` and ``seed + 1``); :math:`\mu` and :math:`\Sigma` are the maximum-likelihood mean and
    covariance (divisor :math:`N`) of the 1200 training vectors :math:`y \in [0,1)^{64}`, and the result is
    the mean of :func:`bits_per_dim` of :math:`\log\mathcal N(y;\mu,\Sigma)` over the dequantised test
    set. Dequantisation is what makes :math:`\Sigma` invertible: a few border pixels are 0 in every image.

    With ``logit_alpha`` :math:`=\alpha` the Gaussian is fitted instead to
    :math:`y' = \operatorname{logit}(\alpha + (1 - 2\alpha)y)` (RealNVP's preprocessing, :math:`\alpha = 0.05`
    there), and the change of variables brings its density back to :math:`y`:
    :math:`\log p(y) = \log\mathcal N(y';\mu,\Sigma) + \sum_j \log\frac{1 - 2\alpha}{s_j(1 - s_j)}`,
    :math:`s = \alpha + (1 - 2\alpha)y`, so the two figures are comparable.

    References: Dinh, Sohl-Dickstein & Bengio (2017), *Density estimation using Real NVP* (logit transform).

    >>> 2.0 < gaussian_baseline_bpd() < 3.5
    True
    """
    d = digits()
    train = dequantize(d.train.double(), generator=_generator(seed)).reshape(len(d.train), -1)
    test = dequantize(d.test.double(), generator=_generator(seed + 1)).reshape(len(d.test), -1)
    logdet = torch.zeros(len(test), dtype=test.dtype)
    if logit_alpha is not None:
        if not 0 < logit_alpha < 0.5:
            raise ValueError(f"logit_alpha must lie in (0, 0.5), got {logit_alpha}")
        a = float(logit_alpha)
        s = a + (1 - 2 * a) * test
        logdet = (math.log(1 - 2 * a) - torch.log(s) - torch.log1p(-s)).sum(1)
        train, test = torch.logit(a + (1 - 2 * a) * train), torch.logit(s)
    cov = torch.cov(train.T, correction=0)  # maximum likelihood, divisor N
    gauss = torch.distributions.MultivariateNormal(train.mean(0), covariance_matrix=cov)
    return float(bits_per_dim(gauss.log_prob(test) + logdet, dims=train.shape[1]).mean())
