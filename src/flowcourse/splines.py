r"""Building blocks for the neural-spline lesson that no lesson grades: 1-D flows, a bimodal target, a rescaling.

The spline itself is the lesson's exercise, so :class:`Spline1D` takes it as an argument (``spline(x, widths,
heights, derivatives, bound, inverse) -> (y, logabsdet)``). :class:`Affine1D` is the best an affine transformer
can do in one dimension (any Gaussian); :func:`bimodal` samples a two-bump density no Gaussian fits, and
:class:`Rescale` is a fixed elementwise affine layer that maps a flow's output onto the data's range.

References: Durkan, Bekasov, Murray & Papamakarios (2019), *Neural Spline Flows*.

>>> x = bimodal(1000, seed=0)
>>> x.shape, bool((x < 0).float().mean().sub(0.5).abs() < 0.05)
(torch.Size([1000, 1]), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from flowcourse.base import Flow, check_batch

__all__ = ["bimodal", "bimodal_density", "Affine1D", "Spline1D", "Rescale"]

BIMODAL_CENTRES = (-1.5, 1.5)
BIMODAL_SPREAD = 0.35

Spline = Callable[..., tuple[Tensor, Tensor]]


def bimodal(n: int, *, seed: int = 0) -> Tensor:
    r"""``n`` float32 points, shape ``(n, 1)``, from the mixture
    :math:`\tfrac12\mathcal N(-1.5, 0.35^2) + \tfrac12\mathcal N(1.5, 0.35^2)`.

    It stands for a conditional :math:`p(x_b \mid x_a)` with two modes: one coupling layer's transformer has
    to produce it from a standard normal :math:`z_b`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    sign = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    x = sign * BIMODAL_CENTRES[1] + BIMODAL_SPREAD * torch.randn(n, generator=g, dtype=torch.float64)
    return x.reshape(n, 1).float()


def bimodal_density(x: Tensor) -> Tensor:
    """The density of :func:`bimodal` at the points ``x`` (any shape)."""
    norm = BIMODAL_SPREAD * math.sqrt(2 * math.pi)
    return sum(0.5 * torch.exp(-0.5 * ((x - c) / BIMODAL_SPREAD) ** 2) / norm for c in BIMODAL_CENTRES)


class Affine1D(Flow):
    r"""The 1-D affine flow :math:`x = \mu + e^{\log\sigma} z`: from :math:`z \sim \mathcal N(0,1)`, any Gaussian
    and nothing else (what one affine transformer makes of one conditional)."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1))
        self.log_scale = nn.Parameter(torch.zeros(1))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(z, (1,), "z")
        return z * self.log_scale.exp() + self.shift, self.log_scale.expand(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(x, (1,), "x")
        return (x - self.shift) * torch.exp(-self.log_scale), -self.log_scale.expand(x.shape[0])


class Spline1D(Flow):
    r"""A 1-D flow made of one spline with free parameters: ``bins`` widths and heights, ``bins - 1`` derivatives.

    ``spline`` is the rational-quadratic spline written in the lesson (with identity tails outside
    :math:`[-B, B]`); the parameters start at zero (uniform bins).
    """

    def __init__(self, spline: Spline, bins: int = 8, bound: float = 3.0) -> None:
        super().__init__()
        self.spline, self.bound = spline, bound
        self.widths = nn.Parameter(torch.zeros(1, bins))
        self.heights = nn.Parameter(torch.zeros(1, bins))
        self.derivatives = nn.Parameter(torch.zeros(1, bins - 1))

    def _run(self, v: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        check_batch(v, (1,), "x" if inverse else "z")
        n = v.shape[0]
        params = (p.expand(n, -1) for p in (self.widths, self.heights, self.derivatives))
        out, logdet = self.spline(v[:, 0], *params, self.bound, inverse)
        return out[:, None], logdet

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._run(z, inverse=False)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._run(x, inverse=True)


class Rescale(Flow):
    r"""The fixed elementwise affine map :math:`x = a z + b` (no parameters), log-det :math:`d \log|a|`.

    Placed last in a flow it moves the flow's output onto the data's range, e.g. ``Rescale(0.25, 0.5)`` sends
    :math:`[-2, 2]` onto the dequantised digits' :math:`[0, 1]`; its log-det keeps the density normalised.
    """

    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        if scale == 0:
            raise ValueError("Rescale needs a nonzero scale")
        self.scale, self.shift = float(scale), float(shift)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(z, name="z")
        return self.scale * z + self.shift, z.new_full((z.shape[0],), z[0].numel() * math.log(abs(self.scale)))

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(x, name="x")
        return (x - self.shift) / self.scale, x.new_full((x.shape[0],), -x[0].numel() * math.log(abs(self.scale)))
