r"""Continuous-time flows and flow matching; lesson 10.

**Time convention** (used by every function here): noise :math:`x_0 \sim \mathcal N(0, I)` sits at
:math:`t = 0`, data at :math:`t = 1`, and a velocity field :math:`v(x, t)` moves points by
:math:`\mathrm{d}x/\mathrm{d}t = v(x(t), t)`. Sampling integrates from :math:`t = 0` to :math:`t = 1`; the
log-likelihood of data integrates back from :math:`t = 1` to :math:`t = 0`.

Along a trajectory the log-density obeys the *instantaneous change of variables* (Chen et al. 2018)

.. math::
    \frac{\mathrm{d}}{\mathrm{d}t}\log p_t(x(t)) = -\nabla\cdot v(x(t), t)
    = -\operatorname{tr}\frac{\partial v}{\partial x},

so :math:`\log p_1(x(1)) = \log p_0(x(0)) - \int_0^1 \nabla\cdot v(x(t), t)\,\mathrm{d}t`. The trace is exact by
autograd in low dimension, or estimated without bias by Hutchinson's :math:`\varepsilon^\top
(\partial v/\partial x)\,\varepsilon` with :math:`\mathbb E[\varepsilon\varepsilon^\top] = I`
(FFJORD, Grathwohl et al. 2019). Flow matching (Lipman et al. 2023; rectified flow, Liu, Gong & Liu 2023)
trains :math:`v` without solving any ODE: regress :math:`v(x_t, t)` on :math:`x_1 - x_0` along
:math:`x_t = (1-t)x_0 + t x_1`.

References: Chen, Rubanova, Bettencourt & Duvenaud (2018), *Neural Ordinary Differential Equations*;
Grathwohl, Chen, Bettencourt, Sutskever & Duvenaud (2019), *FFJORD*; Lipman, Chen, Ben-Hamu, Nickel & Le
(2023), *Flow Matching for Generative Modeling*; Liu, Gong & Liu (2023), *Flow Straight and Fast*;
Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), *Score-Based Generative Modeling through SDEs*;
Hutchinson (1989).

>>> import torch
>>> field = VelocityField(2, hidden=16)
>>> x = torch.randn(4, 2)
>>> cnf_log_prob(field, x, steps=4).shape, sample(field, 3, steps=4).shape
(torch.Size([4]), torch.Size([3, 2]))
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from flowcourse_lessons.lesson_01.key import standard_normal_log_prob  # lesson 01: log N(z; 0, I)
from torch import Tensor, nn

from flowcourse.continuous import VelocityField

__all__ = [
    "VelocityField",
    "divergence",
    "hutchinson_noise",
    "hutchinson_divergence",
    "euler_step",
    "rk4_step",
    "odeint_fixed",
    "augmented_dynamics",
    "standard_normal_log_prob",
    "cnf_log_prob",
    "flow_matching_loss",
    "sample",
]

Field = Callable[[Tensor, float | Tensor], Tensor]
Dynamics = Callable[[float, Tensor], Tensor]


def _differentiable(x: Tensor) -> Tensor:
    """``x`` itself when it is part of a graph already, else a detached copy that requires grad (never edits
    the caller's tensor)."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


def _velocity_and_divergence(field: Field, x: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
    """``(v(x, t), ∇·v(x, t))`` from one field evaluation (see :func:`divergence`)."""
    keep = torch.is_grad_enabled()
    with torch.enable_grad():
        x = _differentiable(x)
        v = field(x, t)
        div = x.new_zeros(x.shape[0])
        d = x.shape[1]
        for i in range(d):
            # without gradients outside (evaluation) the rows need no graph of their own: much cheaper
            (row,) = torch.autograd.grad(v[:, i].sum(), x, create_graph=keep, retain_graph=keep or i < d - 1)
            div = div + row[:, i]
    return (v, div) if keep else (v.detach(), div.detach())


def divergence(field: Field, x: Tensor, t: float | Tensor) -> Tensor:
    r"""Exact divergence :math:`\nabla\cdot v(x, t) = \sum_i \partial v_i/\partial x_i`, shape ``(batch,)``.

    One backward pass per dimension (:math:`d` in all): row :math:`i` of the Jacobian is the gradient of
    :math:`\sum_b v_i(x_b)` (samples do not interact), and only its diagonal entry is kept. The result keeps its
    graph when gradients are enabled (maximum-likelihood training differentiates through it).

    >>> A = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    >>> divergence(lambda x, t: x @ A.T, torch.randn(3, 2), 0.0)  # tr A = -3 everywhere
    tensor([-3., -3., -3.])
    """
    return _velocity_and_divergence(field, x, t)[1]


def hutchinson_noise(x: Tensor) -> Tensor:
    r"""Rademacher noise like ``x``: independent entries :math:`\pm 1` with probability :math:`\tfrac12` each.

    Any noise with :math:`\mathbb E[\varepsilon\varepsilon^\top] = I` makes Hutchinson's estimator unbiased:
    zero mean, unit variance, uncorrelated entries (standard normal noise works too; Rademacher has the smaller
    variance). Draws from torch's global generator.
    """
    return torch.randint(0, 2, x.shape, dtype=x.dtype, device=x.device) * 2 - 1


def hutchinson_divergence(field: Field, x: Tensor, t: float | Tensor, eps: Tensor) -> Tensor:
    r"""Hutchinson's estimate :math:`\varepsilon^\top (\partial v/\partial x)\,\varepsilon` per sample, ``(batch,)``.

    One vector-Jacobian product :math:`\varepsilon^\top J` (one backward pass, whatever :math:`d`), then a dot
    product with :math:`\varepsilon`. Unbiased for :math:`\operatorname{tr} J` when
    :math:`\mathbb E[\varepsilon\varepsilon^\top] = I`: :math:`\mathbb E[\varepsilon^\top J\varepsilon] =
    \operatorname{tr}(J\,\mathbb E[\varepsilon\varepsilon^\top])`. With Rademacher noise its variance is
    :math:`\sum_{i<j}(J_{ij} + J_{ji})^2`; with Gaussian noise :math:`\tfrac12\lVert J + J^\top\rVert_F^2`.

    >>> A = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    >>> hutchinson_divergence(lambda x, t: x @ A.T, torch.randn(2, 2), 0.0, torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    tensor([ 2., -8.])
    """
    keep = torch.is_grad_enabled()
    with torch.enable_grad():
        x = _differentiable(x)
        v = field(x, t)
        (vjp,) = torch.autograd.grad(v, x, grad_outputs=eps, create_graph=True)
        est = (vjp * eps).sum(dim=1)
    return est if keep else est.detach()


def euler_step(f: Dynamics, t: float, y: Tensor, dt: float) -> Tensor:
    r"""One explicit Euler step of :math:`\mathrm{d}y/\mathrm{d}t = f(t, y)`: :math:`y + \Delta t\, f(t, y)`.

    Local error :math:`O(\Delta t^2)`, global error :math:`O(\Delta t)`. ``dt`` may be negative (backwards).
    """
    return y + dt * f(t, y)


def rk4_step(f: Dynamics, t: float, y: Tensor, dt: float) -> Tensor:
    r"""One classical Runge–Kutta step of :math:`\mathrm{d}y/\mathrm{d}t = f(t, y)`.

    .. math::
        k_1 = f(t, y),\ k_2 = f(t + \tfrac{h}{2}, y + \tfrac{h}{2}k_1),\
        k_3 = f(t + \tfrac{h}{2}, y + \tfrac{h}{2}k_2),\ k_4 = f(t + h, y + h k_3),\qquad
        y + \tfrac{h}{6}(k_1 + 2k_2 + 2k_3 + k_4).

    Global error :math:`O(h^4)`; ``dt`` (:math:`h`) may be negative.

    >>> rk4_step(lambda t, y: y, 0.0, torch.ones(1), 1.0)  # e ≈ 2.71828: 1 + 1 + 1/2 + 1/6 + 1/24
    tensor([2.7083])
    """
    k1 = f(t, y)
    k2 = f(t + dt / 2, y + dt / 2 * k1)
    k3 = f(t + dt / 2, y + dt / 2 * k2)
    k4 = f(t + dt, y + dt * k3)
    return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def odeint_fixed(f: Dynamics, y0: Tensor, t0: float, t1: float, steps: int, method: str = "rk4") -> Tensor:
    r"""Solve :math:`\mathrm{d}y/\mathrm{d}t = f(t, y)` from :math:`y(t_0) = y_0` to :math:`t_1` in ``steps``
    equal steps :math:`h = (t_1 - t_0)/\text{steps}` (negative when :math:`t_1 < t_0`: integrating backwards).

    ``method`` is ``"rk4"`` (:func:`rk4_step`) or ``"euler"`` (:func:`euler_step`). Returns :math:`y(t_1)`.
    Step :math:`k` starts at :math:`t_0 + k h` (computed, not accumulated, so no rounding drift).

    >>> odeint_fixed(lambda t, y: -y, torch.ones(1), 0.0, 1.0, 10)  # e^-1 = 0.367879...
    tensor([0.3679])
    """
    if steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps}")
    step = {"rk4": rk4_step, "euler": euler_step}[method]
    h = (t1 - t0) / steps
    y = y0
    for k in range(steps):
        y = step(f, t0 + k * h, y, h)
    return y


def augmented_dynamics(field: Field, t: float | Tensor, state: Tensor) -> Tensor:
    r"""The dynamics of the augmented state :math:`(x, \ell)`, shape ``(batch, d + 1)``:

    .. math:: \frac{\mathrm{d}}{\mathrm{d}t}\begin{pmatrix} x \\ \ell \end{pmatrix}
        = \begin{pmatrix} v(x, t) \\ -\nabla\cdot v(x, t) \end{pmatrix},

    the last column being the log-density change along the trajectory (exact divergence, :func:`divergence`).
    ``state`` is ``(x, ℓ)`` side by side; ``ℓ`` does not feed back.
    """
    v, div = _velocity_and_divergence(field, state[:, :-1], t)  # = divergence(field, x, t), one field call
    return torch.cat([v, -div[:, None]], dim=1)


def cnf_log_prob(field: Field, x: Tensor, steps: int = 20) -> Tensor:
    r"""Exact log-likelihood of data ``x`` under the CNF: :math:`\log p_1(x)`, shape ``(batch,)``.

    Integrate the augmented state from :math:`(x, 0)` at :math:`t = 1` **back** to :math:`t = 0` with
    ``steps`` RK4 steps; it arrives at :math:`(z, \Delta)` with :math:`z = x(0)` and
    :math:`\Delta = \int_1^0 -\nabla\cdot v\,\mathrm{d}t = \int_0^1 \nabla\cdot v\,\mathrm{d}t`. Then

    .. math:: \log p_1(x) = \log p_0(z) - \Delta, \qquad p_0 = \mathcal N(0, I).

    >>> A = torch.tensor([[0.5, 0.0], [0.0, 0.5]])  # x(1) = e^{0.5} x(0): log p_1(x) = log p_0(e^{-0.5} x) - 1
    >>> x = torch.tensor([[1.0, -2.0]])
    >>> truth = standard_normal_log_prob(x * torch.exp(torch.tensor(-0.5))) - 1.0
    >>> bool(torch.allclose(cnf_log_prob(lambda y, t: y @ A.T, x), truth))
    True
    """
    state = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
    end = odeint_fixed(lambda t, s: augmented_dynamics(field, t, s), state, 1.0, 0.0, steps)
    z, delta = end[:, :-1], end[:, -1]
    return standard_normal_log_prob(z) - delta


def flow_matching_loss(field: Field, x1: Tensor, x0: Tensor | None = None, t: Tensor | None = None) -> Tensor:
    r"""The conditional flow-matching loss on the straight path, a scalar:

    .. math:: \mathcal L = \frac1B\sum_b \bigl\lVert v(x_{t_b}, t_b) - (x_1 - x_0)_b\bigr\rVert^2, \qquad
        x_t = (1 - t)\,x_0 + t\,x_1,

    squared error summed over the coordinates and averaged over the batch. ``x0`` (noise) defaults to
    :math:`\mathcal N(0, I)` draws and ``t`` (shape ``(batch,)``) to :math:`U(0, 1)` draws, both from torch's global
    generator, in ``x1``'s dtype. The field is called as ``field(x_t, t)`` with ``t`` of shape ``(batch,)``.
    """
    if x0 is None:
        x0 = torch.randn_like(x1)
    if t is None:
        t = torch.rand(x1.shape[0], dtype=x1.dtype, device=x1.device)
    tc = t.reshape(-1, 1)
    xt = (1 - tc) * x0 + tc * x1
    return (field(xt, t) - (x1 - x0)).pow(2).sum(dim=1).mean()


def sample(field: Field, n: int, steps: int = 20) -> Tensor:
    r"""``n`` samples of the CNF, shape ``(n, dim)``: draw :math:`x_0 \sim \mathcal N(0, I)` (global generator) and
    integrate :math:`\mathrm{d}x/\mathrm{d}t = v(x, t)` from :math:`t = 0` to :math:`t = 1` with ``steps`` RK4 steps.

    The field must have a ``dim`` attribute (as :class:`VelocityField` does); the samples take the dtype of its
    parameters (the default dtype when it has none).
    """
    params = list(field.parameters()) if isinstance(field, nn.Module) else []
    dtype = params[0].dtype if params else torch.get_default_dtype()
    x0 = torch.randn(n, field.dim, dtype=dtype)
    with torch.no_grad():
        return odeint_fixed(lambda t, x: field(x, t), x0, 0.0, 1.0, steps)


# Answers to the lesson's questions: each constant is named after the check that grades it.
quiz_10_direction = "C"  # log p(x) of data: integrate from t = 1 back to t = 0, then add log p_0(z)
quiz_10_linear = 1.0  # v(x) = A x with tr A = -1: d log p/dt = -tr A = +1 for one unit of time
quiz_10_probability_flow = "B"  # the probability-flow ODE has the SDE's marginals: a CNF with a score-based field
