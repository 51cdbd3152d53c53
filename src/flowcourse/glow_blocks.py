r"""Ungraded building blocks of a Glow on images: the coupling network, a channel coupling, the logit layer.

Images are batches ``(batch, C, H, W)``; every layer follows the course's direction contract
(:mod:`flowcourse.base`): ``forward(z)`` is base→data and returns ``(x, log|det ∂x/∂z|)``, ``inverse(x)`` is
data→base and returns ``(z, log|det ∂z/∂x|)``.

* :func:`conv_conditioner` — Glow's coupling network (3×3 conv, ReLU, 1×1 conv, ReLU, zero 3×3 conv);
* :class:`ChannelCoupling` — an affine coupling of channel halves; how its log-scale is bounded is yours
  to pass in (``log_scale_map``, e.g. lesson 03's soft clamp);
* :class:`Sigmoid` — RealNVP's logit preprocessing of dequantised pixels, written base→data.

>>> import torch
>>> layer = ChannelCoupling(3, hidden=8, log_scale_map=torch.tanh)
>>> z = torch.randn(2, 3, 4, 4)
>>> x, logdet = layer(z)
>>> bool(torch.allclose(layer.inverse(x)[0], z, atol=1e-6)), tuple(logdet.shape)
(True, (2,))
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcourse.base import Flow, check_batch

__all__ = ["conv_conditioner", "ChannelCoupling", "Sigmoid"]


def _check_image(x: Tensor, channels: int, name: str) -> Tensor:
    check_batch(x, name=name)
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must be an image batch (batch, {channels}, H, W), got shape {tuple(x.shape)}")
    return x


def conv_conditioner(in_channels: int, hidden: int, out_channels: int) -> nn.Sequential:
    """Glow's coupling network: 3×3 conv, ReLU, 1×1 conv, ReLU, 3×3 conv (last one zero: identity start).

    >>> net = conv_conditioner(2, 8, 4)
    >>> net(torch.randn(3, 2, 5, 5)).abs().max().item()
    0.0
    """
    net = nn.Sequential(
        nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(),
        nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
        nn.Conv2d(hidden, out_channels, 3, padding=1),
    )
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class ChannelCoupling(Flow):
    r"""Affine coupling of channel halves, base→data: :math:`x_a = z_a`, :math:`x_b = z_b\odot e^{\log s}+t`.

    :math:`z = (z_a, z_b)` splits the channels (first :math:`\lceil C/2\rceil`, the rest) with
    ``torch.split``/``torch.cat`` — views, no index gathering — and :math:`(\log s, t) = \mathrm{NN}(z_a)`
    comes from a convolutional network (:func:`conv_conditioner` unless ``net`` is given) that only ever
    sees the kept channels. ``log_scale_map``, when given, is applied to the network's raw log-scale (pass a
    soft clamp :math:`b\tanh(\log s/b)` to keep :math:`e^{\log s}` bounded); ``None`` leaves it unbounded.
    It is lesson 03's affine coupling with a channel mask, written without the mask so that the network does
    half the work. Log-det :math:`\sum_{c,i,j}\log s` forward, its negative inverse.

    References: Kingma & Dhariwal (2018), *Glow*, §3.3; Dinh et al. (2017), *Real NVP*.
    """

    def __init__(self, channels: int, hidden: int = 64, *, net: nn.Module | None = None,
                 log_scale_map: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"a channel coupling needs at least 2 channels, got {channels}")
        self.channels = channels
        self.split_sizes = [(channels + 1) // 2, channels // 2]
        self.net = net if net is not None else conv_conditioner(self.split_sizes[0], hidden,
                                                                 2 * self.split_sizes[1])
        self.log_scale_map = log_scale_map

    def _conditioner(self, z_a: Tensor) -> tuple[Tensor, Tensor]:
        log_s, t = self.net(z_a).chunk(2, dim=1)
        if self.log_scale_map is not None:
            log_s = self.log_scale_map(log_s)
        return log_s, t

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(x, Σ log s)``."""
        _check_image(z, self.channels, "z")
        z_a, z_b = z.split(self.split_sizes, dim=1)
        log_s, t = self._conditioner(z_a)
        x_b = z_b * torch.exp(log_s) + t
        return torch.cat([z_a, x_b], dim=1), log_s.flatten(1).sum(1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: return ``(z, -Σ log s)``."""
        _check_image(x, self.channels, "x")
        x_a, x_b = x.split(self.split_sizes, dim=1)
        log_s, t = self._conditioner(x_a)
        z_b = (x_b - t) * torch.exp(-log_s)
        return torch.cat([x_a, z_b], dim=1), -log_s.flatten(1).sum(1)


class Sigmoid(Flow):
    r"""RealNVP's logit preprocessing, written base→data: ``forward`` squashes :math:`\mathbb{R}` onto the data range.

    .. math::
        x = \frac{\sigma(z) - \alpha}{1 - 2\alpha}, \qquad
        \log\left|\det\frac{\partial x}{\partial z}\right|
        = \sum_i \bigl[\log\sigma(z_i) + \log\sigma(-z_i) - \log(1 - 2\alpha)\bigr],

    elementwise, with :math:`\log\sigma` computed by ``logsigmoid`` (never :math:`\log(1+e^{x})`, which
    overflows). ``inverse`` is the logit transform of dequantised pixels :math:`x \in [0, 1)`:
    :math:`z = \operatorname{logit}(\alpha + (1-2\alpha)x)`, with log-det
    :math:`\sum_i [\log(1-2\alpha) - \log y_i - \log(1 - y_i)]`, :math:`y = \alpha + (1-2\alpha)x`.
    Bounded data have no Gaussian-like tails; mapping them to :math:`\mathbb{R}` first spares the flow
    from learning hard edges, and :math:`\alpha` keeps the logit away from :math:`\pm\infty` at 0 and 1.
    Put it last in a :class:`~flowcourse.base.FlowSequence` so that it is the first map on the data→base
    pass. ``inverse`` raises ``ValueError`` for an ``x`` outside :math:`(-\alpha, 1-\alpha)/(1-2\alpha)`.

    References: Dinh, Sohl-Dickstein & Bengio (2017), *Density estimation using Real NVP*, §4.1.

    >>> layer = Sigmoid(alpha=0.05)
    >>> layer.inverse(torch.tensor([[0.5, 0.0]]))[0]
    tensor([[ 0.0000, -2.9444]])
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"alpha must lie in [0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: ``((σ(z) - α)/(1 - 2α), Σ log σ(z) + log σ(-z) - log(1 - 2α))``."""
        check_batch(z, name="z")
        x = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        log_j = F.logsigmoid(z) + F.logsigmoid(-z) - math.log(1 - 2 * self.alpha)
        return x, log_j.flatten(1).sum(1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: ``(logit(α + (1 - 2α)x), Σ log(1 - 2α) - log y - log(1 - y))``."""
        check_batch(x, name="x")
        y = self.alpha + (1 - 2 * self.alpha) * x
        if bool(((y <= 0) | (y >= 1)).any()):
            lo, hi = -self.alpha / (1 - 2 * self.alpha), (1 - self.alpha) / (1 - 2 * self.alpha)
            raise ValueError(f"x must lie in ({lo:.4g}, {hi:.4g}) for alpha={self.alpha}, "
                             f"got values in [{float(x.min()):.4g}, {float(x.max()):.4g}]")
        log_y, log_1my = torch.log(y), torch.log1p(-y)
        log_j = math.log(1 - 2 * self.alpha) - log_y - log_1my
        return log_y - log_1my, log_j.flatten(1).sum(1)
