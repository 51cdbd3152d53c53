r"""Building blocks of the continuous-time lesson that no lesson grades: a velocity network and a training loop.

A continuous normalizing flow moves points with an ordinary differential equation
:math:`\mathrm{d}x/\mathrm{d}t = v_\theta(x, t)`. The course's time convention: noise
:math:`x_0 \sim \mathcal N(0, I)` at :math:`t = 0`, data at :math:`t = 1`. :class:`VelocityField` is the
network :math:`v_\theta`; :func:`fit` runs Adam on any loss of the field and a minibatch (flow matching or
maximum likelihood: the loss is passed in, so nothing graded lives here).

References: Chen, Rubanova, Bettencourt & Duvenaud (2018), *Neural Ordinary Differential Equations*;
Lipman, Chen, Ben-Hamu, Nickel & Le (2023), *Flow Matching for Generative Modeling*.

>>> import torch
>>> field = VelocityField(2, hidden=8)
>>> field(torch.zeros(5, 2), 0.3).shape, field(torch.zeros(5, 2), torch.rand(5)).shape
(torch.Size([5, 2]), torch.Size([5, 2]))
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from flowcourse.base import check_batch
from flowcourse.training import NonFiniteLoss, single_thread

__all__ = ["VelocityField", "time_column", "fit"]


def time_column(t: float | Tensor, x: Tensor) -> Tensor:
    """The time ``t`` (a float, a 0-d tensor, or one time per sample of shape ``(batch,)`` or ``(batch, 1)``) as
    a column ``(batch, 1)`` of ``x``'s dtype.

    >>> time_column(0.5, torch.zeros(3, 2)).tolist()
    [[0.5], [0.5], [0.5]]
    """
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.dim() == 0:
        return t.expand(x.shape[0], 1)
    if t.shape in ((x.shape[0],), (x.shape[0], 1)):
        return t.reshape(x.shape[0], 1)
    raise ValueError(f"t must be a number or have shape (batch,) = ({x.shape[0]},), got {tuple(t.shape)}")


class VelocityField(nn.Module):
    r"""A time-dependent velocity field :math:`v_\theta(x, t): \mathbb R^d \times [0, 1] \to \mathbb R^d`.

    An MLP on :math:`(x, t)` with three hidden SiLU layers of width ``hidden``. SiLU is smooth, so the
    divergence :math:`\nabla\cdot v` (a sum of first derivatives) has non-zero derivatives itself and can be
    trained by maximum likelihood; with ReLU it would be piecewise constant in :math:`x`.
    ``forward(x, t)`` takes ``x`` of shape ``(batch, d)`` and ``t`` a float or a tensor of shape ``()`` or
    ``(batch,)``; it returns the velocity, shape ``(batch, d)``.
    """

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ValueError(f"dim and hidden must be positive, got dim={dim}, hidden={hidden}")
        self.dim = dim
        self.net = nn.Sequential(nn.Linear(dim + 1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        check_batch(x, (self.dim,), name="x")
        return self.net(torch.cat([x, time_column(t, x)], dim=1))


def fit(field: nn.Module, data: Tensor, loss_fn: Callable[[nn.Module, Tensor], Tensor], *, steps: int,
        batch_size: int = 256, lr: float = 1e-3, seed: int = 0, cosine: bool = False) -> tuple[list[float], float]:
    """Adam on ``loss_fn(field, batch)`` for ``steps`` minibatches of ``data``; returns ``(losses, seconds)``.

    ``cosine=True`` anneals the learning rate from ``lr`` to 0 along a half cosine (better final fits for the
    regression of flow matching, whose stochastic targets keep a constant-rate Adam jittering). Seeded
    (``torch.manual_seed(seed)`` for the noise a loss draws, a private generator for the batches) and run on one
    torch thread: the same seed and initial field give the same losses. Raises
    :class:`~flowcourse.training.NonFiniteLoss` when the loss stops being finite.
    """
    check_batch(data, name="data")
    opt = torch.optim.Adam(field.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if cosine else None
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    losses: list[float] = []
    with single_thread():
        start = time.perf_counter()
        for step in range(steps):
            batch = data[torch.randint(len(data), (min(batch_size, len(data)),), generator=generator)]
            loss = loss_fn(field, batch)
            value = float(loss.detach())
            if not value == value or value in (float("inf"), float("-inf")):
                raise NonFiniteLoss(f"the loss became {value} at step {step} of {steps}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
            losses.append(value)
        seconds = time.perf_counter() - start
    return losses, seconds
