r"""Lesson 03's soft clamp, for this lesson's Glow demo (released with the notebook; lesson 03 grades it).

A coupling's log-scale is kept in :math:`(-b, b)` by :math:`b\tanh(\log s / b)`: the identity near zero,
so small scales train as if unclamped, while :math:`e^{\log s}` can neither overflow nor vanish.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["soft_clamp"]


def soft_clamp(log_s: Tensor, bound: float) -> Tensor:
    r"""Smoothly limit a log-scale to :math:`(-\text{bound}, \text{bound})`: :math:`b \tanh(\log s / b)`.

    >>> soft_clamp(torch.tensor([0.0, 1e6, -1e6]), 2.0)
    tensor([ 0.,  2., -2.])
    """
    if not bound > 0:
        raise ValueError(f"soft_clamp bound must be positive, got {bound}")
    return bound * torch.tanh(log_s / bound)
