r"""The one convention every flow of the course obeys (part of the student toolkit).

A flow maps the base to the data, :math:`x = f(z)` with :math:`z \sim p_Z = \mathcal{N}(0, I)`.
Every layer is a :class:`Flow`, a ``torch.nn.Module`` with

* ``forward(z) -> (x, log|det ∂f/∂z|)`` — the base→data direction, used for sampling;
* ``inverse(x) -> (z, log|det ∂f⁻¹/∂x|)`` — the data→base direction, used for density
  evaluation; layers whose inverse has no closed form (planar with tanh, Sylvester) raise
  :class:`NoClosedFormInverse`.

Both log-determinants have shape ``(batch,)``: they are summed over every event dimension and never
over the batch. Because :math:`f^{-1}\circ f = \mathrm{id}`, the two log-dets at matching points are
negatives of each other. A composition sums its layers' log-dets (the chain rule and
:math:`\det(AB) = \det A \det B`), and the density of the data is

.. math::
    \log p_X(x) = \log p_Z(f^{-1}(x)) + \log\left|\det \frac{\partial f^{-1}(x)}{\partial x}\right|
               = \log p_Z(z) - \log\left|\det \frac{\partial f(z)}{\partial z}\right|.

References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*;
Papamakarios et al. (2021), *Normalizing Flows for Probabilistic Modeling and Inference*.

>>> import torch
>>> from flowcourse.base import FlowDistribution, FlowSequence, StandardNormal
>>> from flowcourse.base import Flow
>>> class Shift(Flow):
...     def forward(self, z): return z + 1, z.new_zeros(z.shape[0])
...     def inverse(self, x): return x - 1, x.new_zeros(x.shape[0])
>>> dist = FlowDistribution(FlowSequence(Shift(), Shift()), StandardNormal(2))
>>> dist.log_prob(torch.tensor([[2.0, 2.0]])).round(decimals=4)
tensor([-1.8379])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "Flow",
    "FlowSequence",
    "FlowDistribution",
    "StandardNormal",
    "NoClosedFormInverse",
    "check_batch",
]


class NoClosedFormInverse(NotImplementedError):
    """Raised by ``inverse`` of a layer whose inverse has no closed form (planar with tanh, Sylvester)."""


def check_batch(x: Tensor, event_shape: Sequence[int] | None = None, name: str = "z") -> Tensor:
    """Validate a batch of points and return it unchanged.

    Raises ``TypeError`` for a non-tensor or a non-floating tensor and ``ValueError`` for a shape that is
    not ``(batch, *event_shape)``; each message names what was expected and what came.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {x.dtype}")
    if event_shape is not None:
        expected = ("batch", *event_shape)
        if x.dim() != len(expected) or tuple(x.shape[1:]) != tuple(event_shape):
            raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    elif x.dim() < 2:
        raise ValueError(f"{name} must have shape (batch, ...) with at least 2 dimensions, got {tuple(x.shape)}")
    return x


class Flow(nn.Module):
    """An invertible map ``x = f(z)`` with its log-determinant, in the direction stated above."""

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        """Return ``(x, log|det ∂x/∂z|)`` with log-det of shape ``(batch,)``."""
        raise NotImplementedError

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, log|det ∂z/∂x|)`` with log-det of shape ``(batch,)``."""
        raise NoClosedFormInverse(f"{type(self).__name__} has no closed-form inverse")


class FlowSequence(Flow):
    r"""The composition :math:`f = f_K \circ \dots \circ f_1`; log-dets add (practice problem 1)."""

    def __init__(self, *layers: Flow) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = nn.ModuleList(layers)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Apply ``f_1`` first, then ``f_2``, …; return ``(x, Σ_k log|det J_{f_k}|)``."""
        return _chain(z, self.layers)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Undo ``f_K`` first; return ``(z, Σ_k log|det J_{f_k⁻¹}|)``."""
        return _chain(x, [layer.inverse for layer in reversed(self.layers)])

    def stages(self, z: Tensor) -> list[Tensor]:
        """The points after each layer, ``[z, f_1(z), f_2(f_1(z)), …]`` (for stage-by-stage plots)."""
        out = [z]
        for layer in self.layers:
            z, _ = layer(z)
            out.append(z)
        return out


def _chain(z: Tensor, maps: Sequence) -> tuple[Tensor, Tensor]:
    # Lesson 01 asks students to write this loop (compose_forward); the toolkit keeps its own private copy.
    total = z.new_zeros(z.shape[0])
    for step in maps:
        z, ld = step(z)
        total = total + ld
    return z, total


class StandardNormal(nn.Module):
    r"""The base density :math:`\mathcal{N}(0, I)` on events of shape ``event_shape``."""

    def __init__(self, *event_shape: int) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # carries dtype and device

    def log_prob(self, z: Tensor) -> Tensor:
        r""":math:`\log p_Z(z) = -\tfrac12 \lVert z\rVert^2 - \tfrac d2 \log 2\pi`, summed per sample."""
        check_batch(z, self.event_shape)
        d = math.prod(self.event_shape)
        return -0.5 * z.flatten(1).pow(2).sum(1) - 0.5 * d * math.log(2 * math.pi)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples, shape ``(n, *event_shape)``."""
        return torch.randn((n, *self.event_shape), generator=generator, dtype=self._anchor.dtype)


class FlowDistribution(nn.Module):
    """The distribution of ``x = f(z)``, ``z ~ base``: ``log_prob`` by the inverse, ``sample`` by the forward."""

    def __init__(self, flow: Flow, base: StandardNormal) -> None:
        super().__init__()
        self.flow = flow
        self.base = base

    def log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p_X(x) = \log p_Z(f^{-1}(x)) + \log|\det \partial f^{-1}/\partial x|`."""
        z, logdet = self.flow.inverse(x)
        return self.base.log_prob(z) + logdet

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` samples ``x = f(z)``."""
        x, _ = self.flow(self.base.sample(n, generator))
        return x

    def sample_and_log_prob(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        r"""Samples with their density, :math:`\log p_X(x) = \log p_Z(z) - \log|\det \partial f/\partial z|`.

        Needs only the forward direction, so it works for planar, radial and Sylvester flows (reverse KL).
        """
        z = self.base.sample(n, generator)
        x, logdet = self.flow(z)
        return x, self.base.log_prob(z) - logdet
