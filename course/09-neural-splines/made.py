r"""Lesson 02's MADE, ready-made for lesson 09's autoregressive spline layer.

Lesson 02 had you write the MADE masks; this file gives finished ones, so that lesson 09 can build an
autoregressive spline flow without your lesson 02 notebook. A MADE (Germain et al., 2015) is an MLP whose
weights are multiplied by 0/1 masks so that output :math:`i` (in ``order``) reads only the inputs before it:
with input degrees :math:`m^0(\text{order}[k]) = k + 1`, hidden degrees cycling through :math:`1..d-1`,

.. math::
    M^{l}_{k k'} = [\,m^{l}(k) \ge m^{l-1}(k')\,], \qquad M^{\text{out}}_{i k} = [\,m^0(i) > m^{L}(k)\,].

``MADE(d, hidden_sizes, order, n_params)`` returns ``n_params`` tensors of shape ``(batch, d)``; its output
layer starts at zero.

>>> import torch
>>> made = MADE(3, [8], n_params=2)
>>> shift, log_scale = made(torch.randn(4, 3))
>>> shift.shape
torch.Size([4, 3])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["made_masks", "MaskedLinear", "MADE"]


def made_masks(d: int, hidden_sizes: Sequence[int], order: Sequence[int] | None = None) -> list[Tensor]:
    """MADE masks shaped like ``nn.Linear.weight``: output ``order[k]`` reads only inputs ``order[:k]``."""
    order = torch.arange(d) if order is None else torch.as_tensor(order)
    degrees = torch.empty(d, dtype=torch.long)
    degrees[order] = torch.arange(1, d + 1)
    masks, previous = [], degrees
    for size in hidden_sizes:
        current = torch.arange(size) % max(d - 1, 1) + min(1, d - 1)
        masks.append((current[:, None] >= previous[None, :]).float())
        previous = current
    masks.append((degrees[:, None] > previous[None, :]).float())
    return masks


class MaskedLinear(nn.Linear):
    """``y = (W * mask) x + b``."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """``n_params`` tensors ``(batch, d)``; column ``order[k]`` of each reads only ``y[:, order[:k]]``."""

    def __init__(self, d: int, hidden_sizes: Sequence[int], order: Sequence[int] | None = None,
                 n_params: int = 2) -> None:
        super().__init__()
        self.d, self.n_params = d, n_params
        masks = made_masks(d, hidden_sizes, order)
        masks[-1] = masks[-1].repeat(n_params, 1)  # output p*d + i is parameter p of coordinate i
        layers: list[nn.Module] = []
        for mask in masks[:-1]:
            layers += [MaskedLinear(mask), nn.ReLU()]
        layers.append(MaskedLinear(masks[-1]))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, y: Tensor) -> tuple[Tensor, ...]:
        return self.net(y).reshape(y.shape[0], self.n_params, self.d).unbind(1)
