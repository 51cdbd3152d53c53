r"""Lesson 01 — the change of variables, scalar and elementwise affine flows, dense linear flows, rotations.

All maps go from the base to the data, :math:`x = f(z)` (see :mod:`flowcourse.base`). For an
invertible, differentiable :math:`f:\mathbb{R}^d\to\mathbb{R}^d` the density of :math:`x` is, both ways,

.. math::
    \log p_X(x) = \log p_Z(f^{-1}(x)) + \log\left|\det \frac{\partial f^{-1}(x)}{\partial x}\right|
               = \log p_Z(z) - \log\left|\det \frac{\partial f(z)}{\partial z}\right|, \quad z = f^{-1}(x).

The determinant is why :math:`z` and :math:`x` must have the same dimension: :math:`f` has to be a bijection
with a square Jacobian. A general :math:`d\times d` Jacobian costs :math:`O(d^3)` (:func:`linear_logdet`); a
triangular one costs :math:`O(d)` (:func:`triangular_logdet`), which is what lesson 02 builds on.

References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*;
Papamakarios et al. (2021), *Normalizing Flows for Probabilistic Modeling and Inference*.

>>> import torch
>>> scalar_affine_log_prob(torch.tensor([1.0]), 2.0, 1.0).round(decimals=4)  # log N(1; 1, 2^2)
tensor([-1.6121])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from flowcourse.base import Flow, check_batch

__all__ = [
    "standard_normal_log_prob",
    "change_of_variables_log_prob",
    "pushforward_log_prob",
    "scalar_affine",
    "scalar_affine_inverse",
    "scalar_affine_log_prob",
    "rotation_matrix",
    "linear_logdet",
    "ElementwiseAffine",
    "LinearFlow",
    "Rotation",
]

LogDetMap = Callable[[Tensor], tuple[Tensor, Tensor]]


def compose_forward(z: Tensor, layers: Sequence) -> tuple[Tensor, Tensor]:
    r"""Push ``z`` through ``layers`` in order (``f_1`` first) and add their log-dets (practice problem 1).

    Each layer maps ``z -> (x, log|det ∂x/∂z|)``. By the chain rule :math:`J_f = J_{f_K} \cdots J_{f_1}` and
    :math:`\det(AB) = \det A \det B`, so :math:`\log|\det J_f| = \sum_k \log|\det J_{f_k}|`.

    >>> double = lambda z: (2 * z, torch.full((z.shape[0],), 2 * math.log(2.0)))
    >>> x, logdet = compose_forward(torch.ones(1, 2), [double, double])
    >>> x, logdet.round(decimals=4)
    (tensor([[4., 4.]]), tensor([2.7726]))
    """
    logdet = z.new_zeros(z.shape[0])
    for layer in layers:
        z, ld = layer(z)
        logdet = logdet + ld
    return z, logdet


def _check_points(x: Tensor, name: str) -> Tensor:
    """A floating tensor with a batch dimension; unlike ``check_batch``, shape ``(batch,)`` is allowed."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {x.dtype}")
    if x.dim() < 1:
        raise ValueError(f"{name} must have a batch dimension, shape (batch, ...), got a 0-d tensor")
    return x


def _check_same_dtype(x: Tensor, parameter: Tensor, layer: str, name: str = "z") -> None:
    # A dtype mismatch would otherwise surface as an opaque matmul RuntimeError deep inside torch.
    if x.dtype != parameter.dtype:
        raise TypeError(
            f"{layer} has {parameter.dtype} parameters but {name} is {x.dtype}; "
            f"convert one of them (e.g. layer.double() for float64 inputs)"
        )


def _sum_event(values: Tensor, batch: int) -> Tensor:
    """Sum over every event dimension, never over the batch: shape ``(batch,)``."""
    return values.reshape(batch, -1).sum(1)


def _logdet_shape_error(logdet: Tensor, batch: int, who: str) -> ValueError:
    return ValueError(
        f"{who} must return a log-det of shape ({batch},), one number per sample, got {tuple(logdet.shape)}: "
        f"sum the per-dimension log-dets over the event dimensions, never over the batch"
    )


def standard_normal_log_prob(z: Tensor) -> Tensor:
    r"""Log-density of the base :math:`\mathcal{N}(0, I)`, one number per sample.

    .. math:: \log p_Z(z) = -\tfrac12 \lVert z\rVert^2 - \tfrac d2 \log 2\pi

    with :math:`d` the number of entries of one sample. ``z`` has shape ``(batch, ...)``; a 1-D ``z`` of
    shape ``(batch,)`` is a batch of scalars.

    References: Papamakarios et al. (2021), *Normalizing Flows for Probabilistic Modeling and Inference*.

    >>> standard_normal_log_prob(torch.zeros(1, 2)).round(decimals=4)  # -log(2 pi)
    tensor([-1.8379])
    """
    _check_points(z, "z")
    return _sum_event(-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi), z.shape[0])


def change_of_variables_log_prob(
    x: Tensor, inverse: LogDetMap, base_log_prob: Callable[[Tensor], Tensor] = standard_normal_log_prob
) -> Tensor:
    r"""Density of :math:`x = f(z)` from the inverse map (the data→base direction).

    .. math::
        \log p_X(x) = \log p_Z(f^{-1}(x)) + \log\left|\det \frac{\partial f^{-1}(x)}{\partial x}\right|

    ``inverse(x)`` must return ``(z, log|det ∂z/∂x|)`` with the log-det of shape ``(batch,)``.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*.

    >>> halve = lambda x: (x / 2, torch.full((x.shape[0],), -math.log(2.0)))  # f(z) = 2z
    >>> change_of_variables_log_prob(torch.tensor([0.0]), halve).round(decimals=4)  # log N(0; 0, 4)
    tensor([-1.6121])
    """
    _check_points(x, "x")
    z, logdet = inverse(x)
    if logdet.shape != (x.shape[0],):
        raise _logdet_shape_error(logdet, x.shape[0], "inverse")
    return base_log_prob(z) + logdet


def pushforward_log_prob(
    z: Tensor, forward: LogDetMap, base_log_prob: Callable[[Tensor], Tensor] = standard_normal_log_prob
) -> tuple[Tensor, Tensor]:
    r"""Push base points forward and return ``(x, log p_X(x))`` — the formula the other way round.

    .. math::
        \log p_X(f(z)) = \log p_Z(z) - \log\left|\det \frac{\partial f(z)}{\partial z}\right|

    Needs only ``forward(z) -> (x, log|det ∂x/∂z|)``, so it serves flows without a closed-form inverse.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*.

    >>> double = lambda z: (2 * z, torch.full((z.shape[0],), math.log(2.0)))
    >>> pushforward_log_prob(torch.tensor([0.0]), double)[1].round(decimals=4)
    tensor([-1.6121])
    """
    _check_points(z, "z")
    x, logdet = forward(z)
    if logdet.shape != (z.shape[0],):
        raise _logdet_shape_error(logdet, z.shape[0], "forward")
    return x, base_log_prob(z) - logdet


def _affine_parameters(x: Tensor, a: Tensor | float, b: Tensor | float) -> tuple[Tensor, Tensor]:
    a = a if isinstance(a, Tensor) else torch.tensor(float(a), dtype=x.dtype, device=x.device)
    b = b if isinstance(b, Tensor) else torch.tensor(float(b), dtype=x.dtype, device=x.device)
    try:
        shape = torch.broadcast_shapes(x.shape, a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(
            f"a {tuple(a.shape)} and b {tuple(b.shape)} must broadcast against the points {tuple(x.shape)}"
        ) from err
    if shape != x.shape:
        raise ValueError(
            f"a {tuple(a.shape)} and b {tuple(b.shape)} must broadcast to the shape of the points "
            f"{tuple(x.shape)} without enlarging it, got {tuple(shape)}"
        )
    if not bool(torch.all(torch.isfinite(a) & (a != 0))):
        raise ValueError("the scale a must be finite and nonzero everywhere: a = 0 squashes every z to b, "
                         "so f(z) = a z + b is not invertible")
    return a, b


def scalar_affine(z: Tensor, a: Tensor | float, b: Tensor | float) -> tuple[Tensor, Tensor]:
    r"""The affine flow :math:`x = a z + b`, elementwise; direction base→data.

    Returns ``(x, log|det ∂x/∂z|)`` with :math:`\log|\det| = \sum \log|a|` over the event entries of one
    sample (``a`` may be negative; its absolute value enters). ``a`` and ``b`` are numbers or tensors that
    broadcast to ``z``'s shape ``(batch, ...)``; ``a == 0`` raises ``ValueError``.

    References: the seeds' worked example 1; Papamakarios et al. (2021).

    >>> scalar_affine(torch.tensor([[1.0, 2.0]]), -2.0, 1.0)
    (tensor([[-1., -3.]]), tensor([1.3863]))
    """
    _check_points(z, "z")
    a, b = _affine_parameters(z, a, b)
    return a * z + b, _sum_event(torch.log(a.abs()).expand(z.shape), z.shape[0])


def scalar_affine_inverse(x: Tensor, a: Tensor | float, b: Tensor | float) -> tuple[Tensor, Tensor]:
    r"""The inverse of :func:`scalar_affine`, :math:`z = (x - b)/a`; direction data→base.

    Returns ``(z, log|det ∂z/∂x|)`` with :math:`\log|\det| = -\sum \log|a|`.

    References: the seeds' worked example 1.

    >>> scalar_affine_inverse(torch.tensor([[-1.0, -3.0]]), -2.0, 1.0)
    (tensor([[1., 2.]]), tensor([-1.3863]))
    """
    _check_points(x, "x")
    a, b = _affine_parameters(x, a, b)
    return (x - b) / a, _sum_event(-torch.log(a.abs()).expand(x.shape), x.shape[0])


def scalar_affine_log_prob(x: Tensor, a: Tensor | float, b: Tensor | float) -> Tensor:
    r"""Density of :math:`x = a z + b`, :math:`z \sim \mathcal{N}(0, 1)` per entry (seeds' worked example 1).

    .. math::
        \log p_X(x) = \log p_Z\!\left(\frac{x - b}{a}\right) - \log|a|
                    = -\tfrac12 \log(2\pi a^2) - \frac{(x - b)^2}{2a^2} = \log \mathcal{N}(x; b, a^2),

    summed over the event entries of each sample. A linear map of a Gaussian is a Gaussian.

    References: the seeds' worked example 1.

    >>> scalar_affine_log_prob(torch.tensor([3.0]), -2.0, 1.0).round(decimals=4)  # log N(3; 1, 4)
    tensor([-2.1121])
    """
    return change_of_variables_log_prob(x, lambda v: scalar_affine_inverse(v, a, b))


def rotation_matrix(theta: Tensor | float) -> Tensor:
    r"""The 2-D rotation by angle :math:`\theta`, shape ``(2, 2)``.

    .. math::
        R(\theta) = \begin{pmatrix} \cos\theta & -\sin\theta \\ \sin\theta & \cos\theta \end{pmatrix},
        \qquad \det R(\theta) = \cos^2\theta + \sin^2\theta = 1.

    Differentiable in ``theta`` when it is a tensor (a 0-d tensor or a number).

    References: the seeds' practice problem 3.

    >>> rotation_matrix(math.pi / 2).round(decimals=4) @ torch.tensor([1.0, 0.0])
    tensor([0., 1.])
    """
    theta = theta if isinstance(theta, Tensor) else torch.tensor(float(theta))
    if theta.dim() != 0 or not theta.is_floating_point():
        raise ValueError(f"theta must be a number or a 0-d floating tensor, got shape {tuple(theta.shape)} "
                         f"and dtype {theta.dtype}")
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([c, -s]), torch.stack([s, c])])


def _check_square(m: Tensor, name: str) -> None:
    if not isinstance(m, Tensor) or not m.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got "
                        f"{m.dtype if isinstance(m, Tensor) else type(m).__name__}")
    if m.dim() < 2 or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"{name} must be a square matrix of shape (..., d, d), got {tuple(m.shape)}")


def linear_logdet(W: Tensor) -> Tensor:
    r""":math:`\log|\det W|` of a dense square matrix by an LU factorisation (``slogdet``): :math:`O(d^3)`.

    ``W`` has shape ``(..., d, d)``; the result has shape ``(...)``. A singular ``W`` (the linear flow
    :math:`x = Wz + b` would not be invertible) raises ``ValueError``.

    References: Papamakarios et al. (2021), section on linear flows.

    >>> linear_logdet(torch.tensor([[2.0, 1.0], [1.0, 3.0]])).round(decimals=4)  # log 5
    tensor(1.6094)
    """
    _check_square(W, "W")
    sign, logabsdet = torch.linalg.slogdet(W)
    if bool(torch.any(sign == 0)):
        raise ValueError("W is singular (det W = 0): the linear flow x = W z + b is not invertible")
    return logabsdet


class ElementwiseAffine(Flow):
    r"""Learnable elementwise affine flow :math:`x = e^{s} \odot z + t` on ``(batch, d)``; base→data.

    .. math:: \log\left|\det \frac{\partial x}{\partial z}\right| = \sum_{i=1}^d s_i

    The scale is parametrised by its logarithm ``log_scale`` so that it stays positive (never 0). Starts at
    the identity (``log_scale = shift = 0``).

    References: Dinh et al. (2017), *Density estimation using Real NVP* (the scaling layer).

    >>> layer = ElementwiseAffine(2)
    >>> with torch.no_grad():
    ...     _ = layer.log_scale.fill_(math.log(3.0))
    ...     x, logdet = layer(torch.ones(1, 2))
    >>> x, logdet.round(decimals=4)  # x = 3 z, log|det| = 2 log 3
    (tensor([[3., 3.]]), tensor([2.1972]))
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d
        self.log_scale = nn.Parameter(torch.zeros(d))
        self.shift = nn.Parameter(torch.zeros(d))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, log|det ∂x/∂z|)`` with ``x = exp(log_scale) ⊙ z + shift``."""
        check_batch(z, (self.d,), "z")
        return scalar_affine(z, self.log_scale.exp(), self.shift)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(z, log|det ∂z/∂x|)`` with ``z = (x − shift) ⊙ exp(−log_scale)``."""
        check_batch(x, (self.d,), "x")
        return scalar_affine_inverse(x, self.log_scale.exp(), self.shift)


class LinearFlow(Flow):
    r"""Dense linear flow :math:`x = W z + b` on ``(batch, d)``; direction base→data.

    .. math:: \log\left|\det \frac{\partial x}{\partial z}\right| = \log|\det W|

    by ``slogdet`` (:func:`linear_logdet`, :math:`O(d^3)`), and the inverse :math:`z = W^{-1}(x - b)` by a
    linear solve (also :math:`O(d^3)`): the cost that triangular and coupling flows avoid. Pushes
    :math:`\mathcal{N}(0, I)` to :math:`\mathcal{N}(b, W W^\top)`. Starts at the identity; a singular
    ``W`` raises ``ValueError``.

    References: Papamakarios et al. (2021), *Normalizing Flows for Probabilistic Modeling and Inference*.

    >>> layer = LinearFlow(2)
    >>> with torch.no_grad():
    ...     _ = layer.W.copy_(torch.tensor([[2.0, 1.0], [1.0, 3.0]]))
    >>> layer(torch.tensor([[1.0, 1.0]]))[1].detach().round(decimals=4)  # log det W = log 5
    tensor([1.6094])
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d
        self.W = nn.Parameter(torch.eye(d))
        self.b = nn.Parameter(torch.zeros(d))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, log|det W|)`` with ``x = W z + b`` for each row ``z``."""
        check_batch(z, (self.d,), "z")
        _check_same_dtype(z, self.W, "LinearFlow", "z")
        return z @ self.W.T + self.b, linear_logdet(self.W).expand(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(z, −log|det W|)`` with ``z = W⁻¹(x − b)``, solved rather than inverted explicitly."""
        check_batch(x, (self.d,), "x")
        _check_same_dtype(x, self.W, "LinearFlow", "x")
        logdet = linear_logdet(self.W)  # raises on a singular W before the solve fails obscurely
        # Rows are points, so solve z W^T = x - b from the right.
        return torch.linalg.solve(self.W.T, x - self.b, left=False), (-logdet).expand(x.shape[0])


class Rotation(Flow):
    r"""Rotation of the plane :math:`x = R(\theta) z` on ``(batch, 2)``; direction base→data.

    .. math:: \log\left|\det \frac{\partial x}{\partial z}\right| = \log|\det R(\theta)| = 0

    Volume-preserving: it moves probability mass without compressing it, so a standard Gaussian stays a
    standard Gaussian — rotation alone cannot change a spherical base's shape (the seeds' practice 3).
    The inverse is :math:`R(\theta)^\top = R(-\theta)`. ``theta`` is learnable.

    References: the seeds' practice problem 3.

    >>> layer = Rotation(math.pi / 2)
    >>> x, logdet = layer(torch.tensor([[1.0, 0.0]]))
    >>> x.detach().round(decimals=4).abs(), logdet  # e1 -> e2, volume kept
    (tensor([[0., 1.]]), tensor([0.]))
    """

    def __init__(self, theta: float = 0.0) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(float(theta)))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(R(θ) z, 0)``."""
        check_batch(z, (2,), "z")
        _check_same_dtype(z, self.theta, "Rotation", "z")
        return z @ rotation_matrix(self.theta).T, z.new_zeros(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(R(θ)ᵀ x, 0)``: an orthogonal matrix is inverted by its transpose."""
        check_batch(x, (2,), "x")
        _check_same_dtype(x, self.theta, "Rotation", "x")
        return x @ rotation_matrix(self.theta), x.new_zeros(x.shape[0])


# Answers to the lesson's questions: each constant is named after the check that grades it.
quiz_01_q1 = "C"  # p_X(x) = p_Z(f⁻¹(x)) · |det J_{f⁻¹}|
quiz_01_q5 = "C"  # latent dimension equals data dimension
quiz_01_q7 = "B"  # N(0, I): easy to sample and evaluate, full support
quiz_01_positive_log_prob = "B"  # a density may exceed 1; only its integral is 1
practice_3_rotation_logdet = 0.0  # det R(θ) = cos²θ + sin²θ = 1
