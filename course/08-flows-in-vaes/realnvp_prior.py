r"""A RealNVP for lesson 08's flow prior: lesson 03's affine coupling layers, ready-made.

Lesson 03 had you write the affine coupling layer; this file gives a finished one so that lesson 08 can use
a RealNVP as a learnable prior :math:`p(z)` without your lesson 03 notebook. Layer :math:`k` keeps the first
half of the coordinates when :math:`k` is even and the second half when it is odd, and moves the other half
by :math:`x_b = z_b \odot e^{\log s} + t` with :math:`(\log s, t) = \mathrm{NN}(z_a)` and
:math:`\log s` soft-clamped to :math:`(-2, 2)`. The conditioners' last layers start at zero, so a fresh
RealNVP is the identity and a VAE with it starts from the standard normal prior.

>>> import torch
>>> flow = RealNVP(2, n_layers=2, hidden=8)
>>> z = torch.randn(5, 2)
>>> x, logdet = flow(z)
>>> bool(torch.equal(x, z)), logdet.abs().max().item()  # fresh: the identity
(True, 0.0)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcourse.base import Flow, FlowSequence, check_batch

__all__ = ["BlockAffineCoupling", "RealNVP"]


def _conditioner(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Two hidden ReLU layers; the last layer starts at zero (the layer starts as the identity)."""
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                        nn.Linear(hidden, n_out))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class BlockAffineCoupling(Flow):
    r"""Affine coupling on :math:`\mathbb{R}^d` whose kept coordinates (mask 1) are one contiguous block.

    Base→data: :math:`x_a = z_a`, :math:`x_b = z_b \odot e^{\log s} + t`, :math:`(\log s, t) = \mathrm{NN}(z_a)`,
    :math:`\log s \leftarrow \text{clamp}\cdot\tanh(\log s / \text{clamp})`. ``forward(z)`` returns
    ``(x, Σ log s)``, ``inverse(x)`` returns ``(z, -Σ log s)``.
    """

    def __init__(self, mask: Tensor, hidden: int = 64, clamp: float = 2.0) -> None:
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.get_default_dtype())
        kept, moved = (mask == 1).nonzero().flatten(), (mask == 0).nonzero().flatten()
        if mask.dim() != 1 or kept.numel() + moved.numel() != mask.numel() or not kept.numel() or not moved.numel():
            raise ValueError(f"mask must be a 1-D tensor of 0s and 1s with both values, got {mask.tolist()}")
        if not (torch.equal(kept, torch.arange(int(kept[0]), int(kept[0]) + kept.numel()))
                and torch.equal(moved, torch.arange(int(moved[0]), int(moved[0]) + moved.numel()))):
            raise ValueError(f"mask must keep one contiguous block of coordinates, got {mask.tolist()}")
        if not clamp > 0:
            raise ValueError(f"clamp must be positive, got {clamp}")
        self.register_buffer("mask", mask)
        self.kept_first = int(kept[0]) == 0
        self.sizes = [kept.numel(), moved.numel()] if self.kept_first else [moved.numel(), kept.numel()]
        self.net = _conditioner(kept.numel(), hidden, 2 * moved.numel())
        self.clamp = clamp

    def _halves(self, z: Tensor) -> tuple[Tensor, Tensor]:
        first, second = z.split(self.sizes, dim=1)
        return (first, second) if self.kept_first else (second, first)

    def _merged(self, z_a: Tensor, y_b: Tensor) -> Tensor:
        return torch.cat((z_a, y_b) if self.kept_first else (y_b, z_a), dim=1)

    def _conditioned(self, z_a: Tensor) -> tuple[Tensor, Tensor]:
        log_s, t = self.net(z_a).chunk(2, dim=1)
        return torch.tanh(log_s / self.clamp) * self.clamp, t

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(x, log|det ∂x/∂z|)``."""
        check_batch(z, tuple(self.mask.shape), name="z")
        z_a, z_b = self._halves(z)
        log_s, t = self._conditioned(z_a)
        return self._merged(z_a, z_b * torch.exp(log_s) + t), log_s.sum(1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: return ``(z, log|det ∂z/∂x|)``; the conditioner sees ``x_a = z_a``."""
        check_batch(x, tuple(self.mask.shape), name="x")
        x_a, x_b = self._halves(x)
        log_s, t = self._conditioned(x_a)
        return self._merged(x_a, (x_b - t) * torch.exp(-log_s)), -log_s.sum(1)


def RealNVP(d: int, n_layers: int, hidden: int = 64, clamp: float = 2.0) -> FlowSequence:
    r"""``n_layers`` affine couplings on :math:`\mathbb{R}^d` keeping the first and the second half in turn.

    Wrap it in ``FlowDistribution(flow, StandardNormal(d))`` for ``log_prob``; a
    :class:`~flowcourse.vae.FlowVAE` does that with ``prior_flow=lambda d: RealNVP(d, 2, 64)``.
    """
    if d < 2 or n_layers < 1:
        raise ValueError(f"a RealNVP needs d >= 2 and n_layers >= 1, got d={d}, n_layers={n_layers}")
    first_half = (torch.arange(d) < (d + 1) // 2).float()
    return FlowSequence(*[BlockAffineCoupling(first_half if k % 2 == 0 else 1 - first_half, hidden, clamp)
                          for k in range(n_layers)])
