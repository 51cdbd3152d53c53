r"""Planar and radial flows (lesson 05): one hidden unit, a log-det in :math:`O(d)`.

Both families map base→data, :math:`x = f(z)`, as every flow in :mod:`flowcourse.base`.

**Planar.** :math:`f(z) = z + u\,h(w^\top z + b)` with :math:`u, w \in \mathbb{R}^d`, a scalar bias
:math:`b` and an activation :math:`h`. Its Jacobian :math:`I + h'(w^\top z + b)\,u w^\top` is the identity
plus a rank-one matrix, so the matrix determinant lemma :math:`\det(I + a c^\top) = 1 + c^\top a` gives

.. math::
    \log\left|\det \frac{\partial f}{\partial z}\right| = \log\left|1 + h'(w^\top z + b)\, w^\top u\right|.

With :math:`0 \le h' \le 1` (tanh, ReLU, leaky ReLU with slope in :math:`[0, 1]`) the layer is invertible
whenever :math:`w^\top u \ge -1`; :func:`planar_u_hat` maps any :math:`u` to a :math:`\hat u` that obeys
it. The inverse has no closed form for tanh (it needs a scalar root-find); for the piecewise-linear ReLU
and leaky ReLU it does, because :math:`w^\top z + b` keeps its sign under the map (:func:`planar_inverse`).

**Radial.** :math:`f(z) = z + \beta h(\alpha, r)(z - z_0)` with :math:`h = 1/(\alpha + r)`,
:math:`r = \lVert z - z_0\rVert`, contracts or expands space around :math:`z_0`; with :math:`h' = -h^2`,

.. math::
    \log\left|\det \frac{\partial f}{\partial z}\right|
    = (d - 1)\log(1 + \beta h) + \log(1 + \beta h + \beta h' r),

and it is invertible for :math:`\alpha > 0,\ \beta \ge -\alpha`. Along each ray from :math:`z_0` the radius
maps as :math:`\rho = r + \beta r/(\alpha + r)`, a quadratic in :math:`r`, so — unlike the planar tanh
layer — the radial layer does have a closed-form inverse (:func:`radial_inverse`).

References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, section 4.1 and
appendix A.1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcourse.base import Flow, NoClosedFormInverse, check_batch

__all__ = [
    "ACTIVATIONS",
    "planar_activation",
    "planar_forward",
    "planar_logdet",
    "planar_u_hat",
    "planar_u_hat_logdet",
    "planar_inverse",
    "Planar",
    "radial_forward",
    "radial_logdet",
    "radial_inverse",
    "Radial",
]

ACTIVATIONS = ("tanh", "relu", "leaky_relu")

# Below this, log softplus(x) = x to within e^x / 2, and softplus itself heads for underflow.
_LOG_SOFTPLUS_LINEAR_BELOW = -40.0
_LOG_4 = math.log(4.0)
# above this w^T u, s = softplus(w^T u) > 1e-13: the tanh planar log-det s + tanh²(1 - s) needs no log space
_FAST_WU = -30.0


def _check_activation(activation: str, negative_slope: float) -> float:
    """Validate the activation and return the slope of ``h`` for negative arguments (ReLU: 0)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if not 0.0 <= negative_slope <= 1.0:
        # 0 <= h' <= 1 is what makes w^T u >= -1 (and the û trick) sufficient for invertibility.
        raise ValueError(f"negative_slope must lie in [0, 1] so that 0 <= h' <= 1, got {negative_slope}")
    return 0.0 if activation == "relu" else float(negative_slope)


def _check_param(name: str, p: object, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Validate a parameter tensor against the shape and the dtype of the batch it acts on."""
    if not isinstance(p, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(p).__name__}")
    if p.dtype != dtype:
        raise TypeError(f"{name} must have the dtype of the batch, {dtype}, got {p.dtype}")
    if tuple(p.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(p.shape)}")
    return p


def _check_scalar(name: str, s: Tensor | float, dtype: torch.dtype) -> Tensor:
    """Validate a scalar parameter (a Python number or a one-element tensor) and return it as a tensor."""
    if isinstance(s, bool) or not isinstance(s, (Tensor, int, float)):
        raise TypeError(f"{name} must be a scalar (float or one-element tensor), got {type(s).__name__}")
    if isinstance(s, Tensor):
        if s.numel() != 1 or s.dim() > 1:
            raise ValueError(f"{name} must be a scalar (shape () or (1,)), got shape {tuple(s.shape)}")
        if s.dtype != dtype:
            raise TypeError(f"{name} must have the dtype of the batch, {dtype}, got {s.dtype}")
        return s if s.dim() == 0 else s.reshape(())
    return torch.tensor(float(s), dtype=dtype)


def _log_sech(a: Tensor) -> Tensor:
    r""":math:`\log\operatorname{sech} a = \log 2 - |a| - \operatorname{softplus}(-2|a|)`, finite."""
    abs_a = a.abs()
    return math.log(2.0) - abs_a - F.softplus(-2.0 * abs_a)


def _log_softplus(x: Tensor, softplus_x: Tensor | None = None) -> Tensor:
    r""":math:`\log\operatorname{softplus}(x)`, which tends to :math:`x` where softplus underflows.

    ``softplus_x``, when the caller has it already, saves recomputing :math:`\operatorname{softplus}(x)`.
    """
    linear = x < _LOG_SOFTPLUS_LINEAR_BELOW
    # clamps keep the unused branch finite, so where() cannot leak a NaN gradient from log(0).
    if softplus_x is None:
        return torch.where(linear, x, torch.log(F.softplus(x.clamp_min(_LOG_SOFTPLUS_LINEAR_BELOW))))
    return torch.where(linear, x, torch.log(softplus_x.clamp_min(torch.finfo(x.dtype).tiny)))


def planar_activation(
    a: Tensor, activation: str = "tanh", negative_slope: float = 0.01
) -> tuple[Tensor, Tensor]:
    r"""The activation and its derivative, :math:`(h(a), h'(a))`, elementwise.

    tanh: :math:`h' = \operatorname{sech}^2 a`, computed in log space so that it neither cancels
    (:math:`1 - \tanh^2`) nor overflows (:math:`1/\cosh^2`). ReLU / leaky ReLU: :math:`h' = 1` for
    :math:`a > 0` and the negative slope otherwise (the value autograd uses at the kink :math:`a = 0`).

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*.

    >>> h, dh = planar_activation(torch.tensor([-0.5]))
    >>> dh.round(decimals=4)
    tensor([0.7864])
    """
    slope = _check_activation(activation, negative_slope)
    if activation == "tanh":
        return torch.tanh(a), torch.exp(2.0 * _log_sech(a))
    dh = torch.where(a > 0, torch.ones_like(a), torch.full_like(a, slope))
    return F.leaky_relu(a, slope), dh


def _vector_size(name: str, v: object) -> int:
    """The length ``d`` of a parameter that must be a floating-point tensor of shape ``(d,)``."""
    if not isinstance(v, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if not v.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {v.dtype}")
    if v.dim() != 1:
        raise ValueError(f"{name} must have shape (d,), got {tuple(v.shape)}")
    return v.shape[0]


def _check_planar(z: Tensor, u: Tensor, w: Tensor, b: Tensor | float) -> Tensor:
    """Validate planar inputs: ``u, w`` of shape ``(d,)``, ``z`` of shape ``(batch, d)``, scalar ``b``."""
    d = _vector_size("w", w)
    check_batch(z, (d,))
    _check_param("w", w, (d,), z.dtype)
    _check_param("u", u, (d,), z.dtype)
    return _check_scalar("b (planar flows have one hidden unit, so one bias)", b, z.dtype)


def planar_logdet(
    z: Tensor, u: Tensor, w: Tensor, b: Tensor | float, activation: str = "tanh", negative_slope: float = 0.01
) -> Tensor:
    r"""Log-det of the planar layer by the matrix determinant lemma, shape ``(batch,)``.

    .. math::
        \log\left|\det\left(I + h'(w^\top z + b)\, u w^\top\right)\right|
        = \log\left|1 + h'(w^\top z + b)\, w^\top u\right|

    Direction: base→data, :math:`\log|\det \partial f/\partial z|` at the points ``z``. The absolute
    value matters: with a raw :math:`u` the bracket can be negative (the layer then folds space).

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, eq. (12).

    Worked example 3 of the lesson notes (raw :math:`u`):

    >>> z = torch.tensor([[0.5, -0.5]])
    >>> planar_logdet(z, torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0]), 0.0).round(decimals=4)
    tensor([0.5802])
    """
    b = _check_planar(z, u, w, b)
    _, dh = planar_activation(z @ w + b, activation, negative_slope)
    return _planar_logdet_from(dh, w @ u)


def _planar_logdet_from(dh: Tensor, wu: Tensor) -> Tensor:
    r""":math:`\log|1 + h'\,w^\top u|` from :math:`h'(w^\top z + b)` and :math:`w^\top u`."""
    return torch.log(torch.abs(1.0 + dh * wu))


def planar_forward(
    z: Tensor, u: Tensor, w: Tensor, b: Tensor | float, activation: str = "tanh", negative_slope: float = 0.01
) -> tuple[Tensor, Tensor]:
    r"""The planar map :math:`x = z + u\,h(w^\top z + b)` and its log-det (:func:`planar_logdet`).

    Direction: base→data. ``z`` has shape ``(batch, d)``, ``u`` and ``w`` shape ``(d,)``, ``b`` is a
    scalar; returns ``(x, log|det ∂x/∂z|)`` with shapes ``(batch, d)`` and ``(batch,)``.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, eq. (10).

    >>> x, ld = planar_forward(torch.zeros(1, 2), torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0]), 1.0)
    >>> x.round(decimals=4)
    tensor([[0.7616, 0.0000]])
    """
    b = _check_planar(z, u, w, b)
    h, dh = planar_activation(z @ w + b, activation, negative_slope)
    return z + h.unsqueeze(1) * u, _planar_logdet_from(dh, w @ u)


def planar_u_hat(u: Tensor, w: Tensor) -> Tensor:
    r"""The reparameterised :math:`\hat u` that makes a planar layer invertible.

    .. math::
        \hat u = u + \bigl(m(w^\top u) - w^\top u\bigr)\frac{w}{\lVert w\rVert^2},
        \qquad m(a) = -1 + \operatorname{softplus}(a),

    so :math:`w^\top \hat u = m(w^\top u) > -1` and only the component of :math:`u` along :math:`w`
    changes. Two classic slips: :math:`\lVert w\rVert` instead of :math:`\lVert w\rVert^2` (pyro PR #2192)
    and :math:`\log(1 + e^a)` instead of softplus (overflows in float32 for :math:`a \gtrsim 89`).
    For :math:`w = 0` the layer is the identity whatever :math:`u`, and :math:`\hat u = u`.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, appendix A.1.

    >>> u, w = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0])
    >>> (w @ planar_u_hat(u, w)).round(decimals=4)  # m(1) = -1 + log(1 + e)
    tensor(0.3133)
    """
    _check_param("u", u, (_vector_size("w", w),), w.dtype)
    wu = w @ u
    return _u_hat_from(u, w, wu, F.softplus(wu))


def _u_hat_from(u: Tensor, w: Tensor, wu: Tensor, softplus_wu: Tensor) -> Tensor:
    r"""The body of :func:`planar_u_hat`, given :math:`w^\top u` and its softplus (shared with :class:`Planar`)."""
    # w / ||w||^2 via w / max|w_i|, so that ||w||^2 cannot overflow; w = 0 gives 0, not 0/0. "+ tiny" leaves
    # every scale above 2^-102 (float32) unchanged and, unlike clamp_min, costs nothing in the backward.
    tiny = torch.finfo(w.dtype).tiny
    scale = torch.linalg.vector_norm(w, ord=math.inf) + tiny  # max |w_i|
    w_scaled = w / scale
    # ||w||^2 = (w / scale)^T w: no term exceeds d max|w_i|
    return torch.addcmul(u, (softplus_wu - 1.0 - wu) / (w_scaled @ w + tiny), w_scaled)


def planar_u_hat_logdet(
    z: Tensor, u: Tensor, w: Tensor, b: Tensor | float, activation: str = "tanh", negative_slope: float = 0.01
) -> Tensor:
    r"""Log-det of the planar layer with :math:`\hat u` = ``planar_u_hat(u, w)``, from the raw ``u``.

    The same number as ``planar_logdet(z, planar_u_hat(u, w), w, b)``, computed without cancellation:

    .. math::
        1 + h'\,w^\top\hat u = (1 - h') + h' \operatorname{softplus}(w^\top u),

    a sum of non-negative terms: for tanh, :math:`h' = 1 - \tanh^2`, a convex combination of 1 and
    :math:`s = \operatorname{softplus}(w^\top u)`, evaluated as :math:`s + \tanh^2(a)\,(1 - s)` in one pass
    (in log space, as a ``logaddexp``, when :math:`w^\top u < -30` brings :math:`s` near underflow); for
    (leaky) ReLU, whose :math:`h'` is a step, as a ``logaddexp``. The direct form rounds
    :math:`w^\top \hat u` to exactly :math:`-1` once :math:`w^\top u \lesssim -17` (float32) and then returns
    :math:`-\infty` wherever :math:`h' = 1`; this one stays finite (:math:`\approx w^\top u`).

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, appendix A.1.

    >>> z = torch.tensor([[0.5, -0.5]])
    >>> planar_u_hat_logdet(z, torch.tensor([1.0, 0.0]), torch.tensor([1.0, 2.0]), 0.0).round(decimals=4)
    tensor([0.2202])
    """
    b = _check_planar(z, u, w, b)
    slope = _check_activation(activation, negative_slope)
    a = z @ w + b
    h = torch.tanh(a) if activation == "tanh" else None
    return _u_hat_logdet_from(a, h, w @ u, activation, slope)


def _u_hat_logdet_from(
    a: Tensor, h: Tensor | None, wu: Tensor, activation: str, slope: float, softplus_wu: Tensor | None = None
) -> Tensor:
    r"""The stable :math:`\log|1 + h'(a)\,w^\top\hat u|` from :math:`a`, :math:`h = \tanh a` (tanh only) and
    the raw :math:`w^\top u` (and its softplus, if at hand): the body of :func:`planar_u_hat_logdet`, shared
    with :class:`Planar`."""
    if activation == "tanh":
        softplus_wu = F.softplus(wu) if softplus_wu is None else softplus_wu
        if float(wu.detach()) > _FAST_WU:
            # h' = 1 - tanh²: 1 + h' w^T û = tanh² · 1 + sech² · s with s = softplus(w^T u) > 0, a convex
            # combination of 1 and s, so nothing cancels; s + tanh²(1 - s) is one fused pass
            return torch.log(torch.addcmul(softplus_wu, h.square(), 1.0 - softplus_wu))
        # s near underflow: the same sum in log space, log(tanh²) ⊕ (log sech² + log s)
        # 1 - sech² = tanh², lifted by the smallest normal so that its log (and gradient) stays finite at a = 0
        log_one_minus_dh = torch.log(h.square() + torch.finfo(a.dtype).tiny)
        # log sech² a = 2 log 2 - 2|a| - 2 softplus(-2|a|) (as _log_sech), in three passes over the batch
        minus_2abs = -2.0 * a.abs()
        log_4_sp = _LOG_4 + _log_softplus(wu, softplus_wu)  # a scalar
        log_dh_wu = torch.add(minus_2abs, F.softplus(minus_2abs), alpha=-2.0) + log_4_sp
        return torch.logaddexp(log_one_minus_dh, log_dh_wu)
    else:
        # Step functions of a: constants for autograd, so their -inf entries never meet a gradient.
        positive = a > 0
        log_one_minus_dh = torch.where(positive, -math.inf, math.log1p(-slope) if slope < 1 else -math.inf)
        log_dh = torch.where(positive, 0.0, math.log(slope) if slope > 0 else -math.inf)
        log_one_minus_dh, log_dh = log_one_minus_dh.to(a.dtype), log_dh.to(a.dtype)
    return torch.logaddexp(log_one_minus_dh, log_dh + _log_softplus(wu, softplus_wu))


def planar_inverse(
    x: Tensor, u: Tensor, w: Tensor, b: Tensor | float, activation: str = "relu", negative_slope: float = 0.01
) -> tuple[Tensor, Tensor]:
    r"""Closed-form inverse of a ReLU or leaky-ReLU planar layer: ``(z, log|det ∂z/∂x|)``.

    Direction: data→base. For piecewise-linear :math:`h`, :math:`h(a) = h'(a)\,a`, so
    :math:`w^\top x + b = a\,(1 + h'(a)\, w^\top u)` with :math:`a = w^\top z + b`: when both
    :math:`1 + w^\top u` and :math:`1 + s\, w^\top u` are positive (:math:`s` the negative slope) the sign of
    :math:`a` is read off :math:`x`, and

    .. math::
        a = \frac{w^\top x + b}{1 + h'\,w^\top u}, \qquad z = x - u\,h(a), \qquad
        \log\left|\det\frac{\partial z}{\partial x}\right| = -\log(1 + h'\,w^\top u).

    In 1-D this inverts the ReLU layers of lesson 07. tanh has no closed form and raises
    :class:`~flowcourse.base.NoClosedFormInverse`; parameters that fold space raise ``ValueError``.

    References: Rezende & Mohamed (2015); Kong & Chaudhuri (2020), *The Expressive Power of a Class of
    Normalizing Flow Models*.

    >>> u, w = torch.tensor([2.0]), torch.tensor([1.0])
    >>> planar_inverse(torch.tensor([[4.0], [-1.0]]), u, w, 0.0)[0]
    tensor([[ 1.3333],
            [-1.0000]])
    """
    b = _check_planar(x, u, w, b)
    slope = _check_activation(activation, negative_slope)
    if activation == "tanh":
        raise NoClosedFormInverse("a tanh planar layer has no closed-form inverse (it needs a root-find)")
    wu = w @ u
    if not bool(1.0 + wu > 0) or not bool(1.0 + slope * wu > 0):
        raise ValueError(
            f"planar layer is not invertible: need 1 + w^T u > 0 and 1 + {slope} * w^T u > 0, "
            f"got w^T u = {float(wu):.6g} (use planar_u_hat)"
        )
    a_x = x @ w + b
    _, dh = planar_activation(a_x, activation, negative_slope)  # h'(a) = h'(w^T x + b): same sign
    scale = 1.0 + dh * wu
    h, _ = planar_activation(a_x / scale, activation, negative_slope)
    return x - h.unsqueeze(1) * u, -torch.log(scale)


class Planar(Flow):
    r"""A planar layer :math:`x = z + u\,h(w^\top z + b)` with learnable :math:`u, w, b`.

    Direction: ``forward`` is base→data and returns :math:`\log|1 + h'\,w^\top u|` (:func:`planar_logdet`).
    With ``reparameterize=True`` the layer uses :math:`\hat u` (:func:`planar_u_hat`), so it is invertible
    for every value of its parameters; with ``False`` it uses the raw :math:`u` (and may fold space).
    ``inverse`` exists in closed form for ``"relu"`` and ``"leaky_relu"`` (:func:`planar_inverse`) and
    raises :class:`~flowcourse.base.NoClosedFormInverse` for ``"tanh"``.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*.

    >>> layer = Planar(2, reparameterize=False)
    >>> with torch.no_grad():
    ...     _ = layer.u.copy_(torch.tensor([1.0, 0.0])), layer.w.copy_(torch.tensor([1.0, 2.0]))
    >>> layer(torch.tensor([[0.5, -0.5]]))[1].detach().round(decimals=4)
    tensor([0.5802])
    """

    def __init__(
        self, d: int, activation: str = "tanh", reparameterize: bool = True, negative_slope: float = 0.01
    ) -> None:
        super().__init__()
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"d must be a positive integer, got {d!r}")
        self._slope = _check_activation(activation, negative_slope)
        self.activation = activation
        self.negative_slope = negative_slope
        self.reparameterize = reparameterize
        bound = 1.0 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))

    def effective_u(self) -> Tensor:
        r"""The :math:`u` the layer applies: :math:`\hat u` if ``reparameterize`` else the raw ``u``."""
        return planar_u_hat(self.u, self.w) if self.reparameterize else self.u

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|det ∂x/∂z|)``, shapes ``(batch, d)`` and ``(batch,)``."""
        act, slope = self.activation, self.negative_slope
        if not self.reparameterize:
            return planar_forward(z, self.u, self.w, self.b, act, slope)
        b = _check_planar(z, self.u, self.w, self.b)
        wu = self.w @ self.u  # once per call, for both û and the log-det
        softplus_wu = F.softplus(wu)
        u_hat = _u_hat_from(self.u, self.w, wu, softplus_wu)
        a = torch.addmv(b, z, self.w)  # w^T z + b, computed once, for both x and the log-det
        h, _ = planar_activation(a, act, slope) if act != "tanh" else (torch.tanh(a), None)
        # planar_u_hat_logdet's value: stays finite where w^T û rounds to -1 (w^T u << -1)
        logdet = _u_hat_logdet_from(a, h, wu, act, self._slope, softplus_wu)
        return torch.addcmul(z, h.unsqueeze(1), u_hat), logdet  # z + u h(a), one fused pass

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, log|det ∂z/∂x|)`` for ReLU / leaky ReLU; raise ``NoClosedFormInverse`` for tanh."""
        if self.activation == "tanh":
            raise NoClosedFormInverse("Planar with tanh has no closed-form inverse (it needs a root-find)")
        return planar_inverse(x, self.effective_u(), self.w, self.b, self.activation, self.negative_slope)


def _check_radial(
    z: Tensor, z0: Tensor, alpha: Tensor | float, beta: Tensor | float
) -> tuple[Tensor, Tensor]:
    """Validate radial inputs and the invertibility constraint; return ``alpha, beta`` as tensors."""
    check_batch(z, (_vector_size("z0", z0),))
    _check_param("z0", z0, tuple(z0.shape), z.dtype)
    alpha = _check_scalar("alpha", alpha, z.dtype)
    beta = _check_scalar("beta", beta, z.dtype)
    if not bool(alpha > 0):
        raise ValueError(f"radial flow needs alpha > 0, got alpha = {float(alpha):.6g}")
    if not bool(beta >= -alpha):
        raise ValueError(
            f"radial flow is invertible only for beta >= -alpha, got beta = {float(beta):.6g} < "
            f"-alpha = {-float(alpha):.6g}"
        )
    return alpha, beta


def radial_logdet(z: Tensor, z0: Tensor, alpha: Tensor | float, beta: Tensor | float) -> Tensor:
    r"""Log-det of the radial layer, shape ``(batch,)``.

    The Jacobian is :math:`(1 + \beta h) I + \beta h'\, r\, \hat e \hat e^\top` with
    :math:`\hat e = (z - z_0)/r`: eigenvalue :math:`1 + \beta h` on the :math:`d - 1` directions orthogonal
    to :math:`\hat e` and :math:`1 + \beta h + \beta h' r = 1 + \beta\alpha h^2` along it, so

    .. math::
        \log\left|\det\frac{\partial f}{\partial z}\right|
        = (d-1)\log(1 + \beta h) + \log(1 + \beta\alpha h^2).

    Direction: base→data. Raises ``ValueError`` unless :math:`\alpha > 0` and :math:`\beta \ge -\alpha`.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, eq. (14).

    >>> radial_logdet(torch.tensor([[1.0, 0.0]]), torch.zeros(2), 1.0, 2.0)  # 1 + βh = 2, 1 + βαh² = 1.5
    tensor([1.0986])
    """
    alpha, beta = _check_radial(z, z0, alpha, beta)
    h = 1.0 / (alpha + torch.linalg.vector_norm(z - z0, dim=1))
    d = z0.shape[0]
    return (d - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h.square())


def radial_forward(
    z: Tensor, z0: Tensor, alpha: Tensor | float, beta: Tensor | float
) -> tuple[Tensor, Tensor]:
    r"""The radial map :math:`x = z + \frac{\beta}{\alpha + r}(z - z_0)`, :math:`r = \lVert z - z_0\rVert`.

    Direction: base→data; returns ``(x, log|det ∂x/∂z|)`` (:func:`radial_logdet`). ``z0`` has shape
    ``(d,)``, ``alpha`` and ``beta`` are scalars with :math:`\alpha > 0,\ \beta \ge -\alpha`.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, eq. (14).

    >>> radial_forward(torch.tensor([[1.0, 0.0]]), torch.zeros(2), 1.0, 2.0)[0]
    tensor([[2., 0.]])
    """
    alpha, beta = _check_radial(z, z0, alpha, beta)
    diff = z - z0
    h = 1.0 / (alpha + torch.linalg.vector_norm(diff, dim=1))
    return z + (beta * h).unsqueeze(1) * diff, radial_logdet(z, z0, alpha, beta)


def radial_inverse(
    x: Tensor, z0: Tensor, alpha: Tensor | float, beta: Tensor | float
) -> tuple[Tensor, Tensor]:
    r"""Closed-form inverse of the radial layer: ``(z, log|det ∂z/∂x|)``.

    Direction: data→base. The map keeps the direction of :math:`z - z_0` and sends the radius :math:`r` to
    :math:`\rho = \lVert x - z_0\rVert = r\,(\alpha + \beta + r)/(\alpha + r)`, i.e. :math:`r` is the
    non-negative root of :math:`r^2 + (\alpha + \beta - \rho)\,r - \alpha\rho = 0` (unique, since the roots'
    product is :math:`-\alpha\rho \le 0`). Then :math:`z = z_0 + (x - z_0)/(1 + \beta h(r))` and the log-det
    is minus :func:`radial_logdet` at :math:`z`.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, eq. (14).

    >>> radial_inverse(torch.tensor([[2.0, 0.0]]), torch.zeros(2), 1.0, 2.0)[0]
    tensor([[1., 0.]])
    """
    alpha, beta = _check_radial(x, z0, alpha, beta)
    diff = x - z0
    rho = torch.linalg.vector_norm(diff, dim=1)
    c = alpha + beta - rho
    disc = torch.sqrt(c.square() + 4.0 * alpha * rho)
    # Pick the form of the root without cancellation; the unused denominator is kept non-zero.
    r = torch.where(c > 0, 2.0 * alpha * rho / torch.where(c > 0, c + disc, 1.0), 0.5 * (disc - c))
    h = 1.0 / (alpha + r)
    z = z0 + diff / (1.0 + beta * h).unsqueeze(1)
    d = z0.shape[0]
    return z, -((d - 1) * torch.log1p(beta * h) + torch.log1p(beta * alpha * h.square()))


class Radial(Flow):
    r"""A radial layer :math:`x = z + \frac{\beta}{\alpha + r}(z - z_0)` with learnable parameters.

    Invertible for every value of its free parameters: :math:`\alpha = \operatorname{softplus}(\tilde\alpha)
    > 0` and :math:`\beta = -\alpha + \operatorname{softplus}(\tilde\beta) \ge -\alpha`.
    Direction: ``forward`` is base→data (:func:`radial_forward`), ``inverse`` data→base
    (:func:`radial_inverse`).

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, appendix A.2.

    >>> layer = Radial(2)
    >>> bool(layer.beta >= -layer.alpha)
    True
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"d must be a positive integer, got {d!r}")
        self.z0 = nn.Parameter(torch.randn(d) / math.sqrt(d))
        self.alpha_raw = nn.Parameter(torch.zeros(()))
        self.beta_raw = nn.Parameter(0.1 * torch.randn(()))

    @property
    def alpha(self) -> Tensor:
        r""":math:`\alpha = \operatorname{softplus}(\tilde\alpha)`, floored at the smallest normal float."""
        return F.softplus(self.alpha_raw).clamp_min(torch.finfo(self.alpha_raw.dtype).tiny)

    @property
    def beta(self) -> Tensor:
        r""":math:`\beta = -\alpha + \operatorname{softplus}(\tilde\beta) \ge -\alpha`."""
        return -self.alpha + F.softplus(self.beta_raw)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|det ∂x/∂z|)``, shapes ``(batch, d)`` and ``(batch,)``."""
        return radial_forward(z, self.z0, self.alpha, self.beta)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, log|det ∂z/∂x|)``, shapes ``(batch, d)`` and ``(batch,)``."""
        return radial_inverse(x, self.z0, self.alpha, self.beta)


# Answers to the lesson's questions: each constant is named after the check that grades it.
worked_05_logdet_raw_u = 0.580229  # log(1 + sech²(-0.5)), worked example 3 of the lesson notes (0.580), raw u
worked_05_logdet_u_hat = 0.220230  # log(1 + sech²(-0.5)·m(1)), m(1) = -1 + log(1 + e): same inputs with û
quiz_05_fold = "B"  # wᵀu = -2 < -1: a ↦ a - 2 tanh(a) decreases near 0, the layer folds
quiz_05_cost = "C"  # matrix determinant lemma: planar log-det in O(d)
quiz_05_reverse_kl = "A"  # reverse KL needs only x = f(z) and log|det ∂f/∂z|: the forward direction
quiz_05_radial_beta = "B"  # β < -α: the radius map decreases near z0, the layer folds through the centre
quiz_05_mode_seeking = "A"  # reverse KL is mode-seeking: a missed mode costs little, mass off p costs a lot
