r"""An inverse autoregressive flow (IAF) for lesson 08's posteriors: lesson 02's pieces, ready-made.

Lesson 02 had you write the MADE masks and the IAF step; this file gives finished ones so that lesson 08
can use an IAF as a posterior flow without your lesson 02 notebook. One layer is

.. math::
    z'_i = z_i\, e^{\alpha_i(z_{<i})} + \mu_i(z_{<i}), \qquad
    \log\left|\det \frac{\partial z'}{\partial z}\right| = \sum_i \alpha_i(z_{<i}),

with :math:`(\mu, \alpha)` from a MADE (Germain et al., 2015) that reads the layer's *input* :math:`z`: one
pass gives the sample and its log-det, which is why IAF suits a posterior (Kingma et al., 2016). The
log-scale is soft-clamped, :math:`\alpha = 3\tanh(\alpha_{\text{raw}}/3)`, and the MADE's output layer starts
at zero, so a fresh layer is the identity. :class:`IAFStack` alternates the order of the coordinates from
layer to layer, so that every coordinate gets to depend on the others.

>>> import torch
>>> flow = IAFStack(2, n_layers=2, hidden=8)
>>> z = torch.randn(5, 2)
>>> x, logdet = flow(z)
>>> bool(torch.equal(x, z)), logdet.abs().max().item()  # fresh: the identity
(True, 0.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcourse.base import Flow, NoClosedFormInverse, check_batch

__all__ = ["made_masks", "MaskedLinear", "MADE", "IAFLayer", "IAFStack"]


def made_masks(d: int, hidden_sizes: Sequence[int], order: Sequence[int]) -> list[Tensor]:
    """MADE masks shaped like ``nn.Linear.weight``: output ``order[k]`` reads only inputs ``order[:k]``."""
    degrees = torch.empty(d, dtype=torch.long)
    degrees[torch.as_tensor(order)] = torch.arange(1, d + 1)
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
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """``(shift, log_scale)``, each ``(batch, d)``, column ``order[k]`` reading only ``y[:, order[:k]]``."""

    def __init__(self, d: int, hidden_sizes: Sequence[int], order: Sequence[int]) -> None:
        super().__init__()
        self.d = d
        masks = made_masks(d, hidden_sizes, order)
        masks[-1] = masks[-1].repeat(2, 1)  # output p*d + i is parameter p of coordinate i
        layers: list[nn.Module] = []
        for mask in masks[:-1]:
            layers += [MaskedLinear(mask), nn.ReLU()]
        layers.append(MaskedLinear(masks[-1]))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self.net(y).reshape(y.shape[0], 2, self.d).unbind(1)
        return shift, log_scale


class IAFLayer(Flow):
    r"""One IAF layer, base→data: :math:`z'_i = z_i e^{\alpha_i(z_{<i})} + \mu_i(z_{<i})`, one MADE pass."""

    def __init__(self, d: int, hidden: int = 16, order: Sequence[int] | None = None,
                 log_scale_bound: float = 3.0) -> None:
        super().__init__()
        self.d, self.log_scale_bound = d, log_scale_bound
        self.made = MADE(d, [hidden], list(range(d)) if order is None else list(order))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_batch(z, (self.d,), "z")
        shift, log_scale = self.made(z)
        log_scale = self.log_scale_bound * torch.tanh(log_scale / self.log_scale_bound)
        return z * log_scale.exp() + shift, log_scale.sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NoClosedFormInverse("a posterior flow is only run forward; the IAF inverse takes d MADE passes "
                                  "(lesson 02's iaf_inverse)")


class IAFStack(Flow):
    """``n_layers`` IAF layers, the coordinate order reversed from one layer to the next; log-dets add."""

    def __init__(self, d: int, n_layers: int, hidden: int = 16) -> None:
        super().__init__()
        self.layers = nn.ModuleList(IAFLayer(d, hidden, range(d) if k % 2 == 0 else range(d - 1, -1, -1))
                                    for k in range(n_layers))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        total = z.new_zeros(z.shape[0])
        for layer in self.layers:
            z, logdet = layer(z)
            total = total + logdet
        return z, total

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NoClosedFormInverse("a posterior flow is only run forward")
