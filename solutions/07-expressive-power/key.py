r"""The expressive power of normalizing flows (lesson 07): what planar-type layers can and cannot do.

Every map here goes base→data, :math:`x = f(z)`, :math:`z \sim q`, and the flow pushes :math:`q` forward to
:math:`p = f_\# q`. The lesson follows Kong & Chaudhuri (2020) in five steps.

1. **One dimension: universal approximation.** A ReLU planar layer
   :math:`f(z) = z + u\,\mathrm{ReLU}(wz + b)` changes the slope of the identity on one side of the kink
   :math:`-b/w`; it is invertible exactly when :math:`1 + uw > 0` (:func:`relu_planar_1d`). Composing
   :math:`N+1` such layers gives any continuous increasing piecewise-linear map with :math:`N` pieces, so a
   Gaussian is pushed onto a *piecewise Gaussian* whose pieces carry the same masses as a piecewise-constant
   approximation of the target :math:`p`; as the pieces shrink both approach :math:`p`
   (:func:`piecewise_gaussian_layers`, :func:`piecewise_gaussian_tv`: 50 vs 300 layers).
2. **Several dimensions, smooth** :math:`h`: **topology matching.** For a stack of Sylvester layers
   :math:`f_k(z) = z + A_k h(B_k^\top z + b_k)`, :math:`A_k, B_k \in \mathbb{R}^{d\times m_k}`, with
   :math:`M = \sum_k m_k` neurons in total and :math:`p = f_\# q`, the log-det term
   :math:`L(z) = \log p(f(z)) - \log q(z) = -\log|\det J_f(z)|` satisfies
   :math:`\dim \operatorname{span}\{\nabla_z L(z) : z \in \mathbb{R}^d\} \le M`: every gradient lies in
   :math:`\operatorname{span}(B_1, \dots, B_K)` because :math:`J_{f_j}^\top = I + B_j D_j A_j^\top` maps
   that span into itself (:func:`log_det_term`, :func:`gradient_rank`, :func:`topology_rank_experiment`).
   With :math:`M < d` the condition can fail even between two Gaussians.
3. **ReLU** :math:`h`: **a pointwise condition.** Then :math:`f` is piecewise linear, and at almost every
   :math:`z`, with :math:`C = J_f(z)`, :math:`C^\top \nabla \log p(f(z)) = \nabla \log q(z)`
   (:func:`pointwise_condition_residual`). The residual equals :math:`\nabla_z L(z)`, which vanishes because
   the log-det is locally constant. ReLU Sylvester flows therefore map peaks of :math:`q` to peaks of
   :math:`p` and generally cannot turn one product or Gaussian-mixture density into another.
4. **Depth.** Fitting :math:`\mathcal N(0, 4I_d)` from :math:`\mathcal N(0, I_d)` with :math:`K` planar
   layers: a layer rescales about one direction, so the reverse KL stays near
   :math:`(d-K)\,\mathrm{KL}(\mathcal N(0,1)\|\mathcal N(0,4)) = (d-K)(\log 2 + \tfrac18 - \tfrac12)
   \approx 0.318\,(d-K)` (:func:`depth_experiment`, :func:`gaussian_kl`).
5. **Depth lower bounds.** For a class :math:`\mathcal F` of layers and :math:`\epsilon > 0` the minimum depth
   is

   .. math::
       T_\epsilon(p, q, \mathcal F) = \inf\Big\{n : \exists f_1, \dots, f_n \in \mathcal F \text{ with }
       \mathrm{TV}\big((f_1 \circ \dots \circ f_n)_\# q,\ p\big) \le \epsilon\Big\},

   with :math:`\mathrm{TV}` the total *variation* distance (Kong & Chaudhuri's "total variance" is a slip). If
   :math:`\mathcal F` is (i) planar layers with bounded parameters and a :math:`\tanh`, sigmoid or
   :math:`\arctan` non-linearity, or (ii) all Householder layers :math:`f(z) = z - 2vv^\top z`,
   :math:`\|v\| = 1`, then for every :math:`\kappa > 0` there are distributions :math:`q, p` on
   :math:`\mathbb{R}^d` and a constant :math:`\epsilon` (e.g. 0.5) with
   :math:`T_\epsilon(p, q, \mathcal F) = \tilde\Omega(d^\kappa)`: polynomial in :math:`d`, but for image-sized
   :math:`d` an enormous number of layers. Depth is necessary, not sufficient.

Open problems the paper leaves: whether mixing non-linearities across layers raises capacity; deep
(:math:`> d` layers) Sylvester flows with smooth :math:`h`; universal approximation of distributions by
common flow classes even at unbounded depth; and which distribution pairs such flows transform easily.

References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*, AISTATS;
Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*; van den Berg et al. (2018),
*Sylvester Normalizing Flows for Variational Inference*; Behrmann et al. (2019), *Invertible Residual
Networks* (the contraction argument behind :class:`SylvesterStack`).

>>> import torch
>>> x, logdet = relu_planar_1d(torch.tensor([[-1.0], [2.0]]), u=1.0, w=1.0, b=0.0)
>>> x.flatten().tolist(), logdet.tolist()
([-1.0, 4.0], [0.0, 0.6931471824645996])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from flowcourse_lessons.lesson_05.key import Planar
from flowcourse_lessons.lesson_07.sylvester_layers import SylvesterStack
from torch import Tensor, nn

from flowcourse import expressivity
from flowcourse.base import Flow, FlowDistribution, FlowSequence, StandardNormal, check_batch
from flowcourse.expressivity import quantile_function, two_gaussians_1d
from flowcourse.jacobian import batch_jacobian

__all__ = [
    "relu_planar_1d",
    "relu_planar_1d_inverse",
    "ReLUPlanar1d",
    "two_gaussians_1d",
    "quantile_function",
    "piecewise_linear_transport",
    "piecewise_linear_layers",
    "piecewise_gaussian_layers",
    "piecewise_gaussian_flow",
    "pushforward_density_1d",
    "total_variation_1d",
    "piecewise_gaussian_tv",
    "log_det_term",
    "gradient_rank",
    "SylvesterStack",
    "topology_rank_experiment",
    "pointwise_condition_residual",
    "gaussian_kl",
    "depth_experiment",
]

Scalar = float | Tensor


# ---------------------------------------------------------------------------------------------------------
# 1. ReLU planar layers on the real line
# ---------------------------------------------------------------------------------------------------------


def _scalar(value: Scalar, name: str, like: Tensor) -> Tensor:
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() != 0:
        raise ValueError(f"{name} must be a scalar (a float or a 0-d tensor), got shape {tuple(t.shape)}")
    return t


def _relu_planar_params(z: Tensor, u: Scalar, w: Scalar, b: Scalar, name: str) -> tuple[Tensor, ...]:
    check_batch(z, (1,), name=name)
    u, w, b = (_scalar(v, n, z) for v, n in ((u, "u"), (w, "w"), (b, "b")))
    slope = 1 + u * w
    if not bool(slope > 0):
        raise ValueError(
            f"ReLU planar layer is not invertible: the slope 1 + u*w on the active side (w*z + b > 0) must "
            f"be > 0, got 1 + ({float(u.detach()):g})*({float(w.detach()):g}) = {float(slope.detach()):g}"
        )
    return u, w, b, slope


def relu_planar_1d(z: Tensor, u: Scalar, w: Scalar, b: Scalar) -> tuple[Tensor, Tensor]:
    r"""A 1-D ReLU planar layer, base→data: :math:`x = z + u\,\mathrm{ReLU}(wz + b)`.

    ``z`` has shape ``(batch, 1)``; ``u, w, b`` are scalars. The map is the identity where
    :math:`wz + b \le 0` and has slope :math:`1 + uw` where :math:`wz + b > 0` (the *active side*), so it is
    a continuous increasing bijection of :math:`\mathbb{R}` exactly when :math:`1 + uw > 0`, and

    .. math::
        \log\left|\frac{dx}{dz}\right| = \log(1 + uw)\,\mathbf{1}[wz + b > 0].

    At the kink itself the log-det is taken as 0 (ReLU'(0) = 0, as autograd has it).

    Returns ``(x, logdet)`` with shapes ``(batch, 1)`` and ``(batch,)``.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    Raises:
        ValueError: ``1 + u*w <= 0`` (not invertible), a non-scalar parameter, or ``z`` not ``(batch, 1)``.
        TypeError: ``z`` is not a floating-point tensor.

    >>> import torch
    >>> relu_planar_1d(torch.tensor([[3.0]]), u=-0.5, w=1.0, b=-1.0)[0]
    tensor([[2.]])
    """
    u, w, b, slope = _relu_planar_params(z, u, w, b, "z")
    pre = w * z + b
    x = z + u * torch.relu(pre)
    logdet = torch.log(slope) * (pre > 0).to(z.dtype).squeeze(1)
    return x, logdet


def relu_planar_1d_inverse(x: Tensor, u: Scalar, w: Scalar, b: Scalar) -> tuple[Tensor, Tensor]:
    r"""The closed-form inverse of :func:`relu_planar_1d`, data→base.

    Since :math:`wx + b = (1 + uw)(wz + b)` on the active side and :math:`= wz + b` elsewhere, and
    :math:`1 + uw > 0`, the sign of :math:`wx + b` tells the side, and

    .. math::
        z = x - \frac{u}{1 + uw}\,\mathrm{ReLU}(wx + b), \qquad
        \log\left|\frac{dz}{dx}\right| = -\log(1 + uw)\,\mathbf{1}[wx + b > 0],

    itself a ReLU planar layer with :math:`u' = -u/(1 + uw)` (piecewise linear, slope :math:`1/(1 + uw)`).

    Returns ``(z, logdet)`` with shapes ``(batch, 1)`` and ``(batch,)``.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> import torch
    >>> relu_planar_1d_inverse(torch.tensor([[2.0]]), u=-0.5, w=1.0, b=-1.0)[0]
    tensor([[3.]])
    """
    u, w, b, slope = _relu_planar_params(x, u, w, b, "x")
    pre = w * x + b
    z = x - u / slope * torch.relu(pre)
    logdet = -torch.log(slope) * (pre > 0).to(x.dtype).squeeze(1)
    return z, logdet


class ReLUPlanar1d(Flow):
    r"""The layer :math:`x = z + u\,\mathrm{ReLU}(wz + b)` on events of shape ``(1,)``, base→data.

    ``forward`` is :func:`relu_planar_1d`, ``inverse`` the closed form :func:`relu_planar_1d_inverse`;
    both raise ``ValueError`` if :math:`1 + uw \le 0`.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> import torch
    >>> layer = ReLUPlanar1d(u=0.5, w=-1.0, b=0.5)
    >>> z = torch.tensor([[-2.0], [1.0]])
    >>> layer.inverse(layer(z)[0])[0].flatten().tolist()
    [-2.0, 1.0]
    """

    def __init__(self, u: float, w: float, b: float, *, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.u = nn.Parameter(torch.tensor(float(u), dtype=dtype))
        self.w = nn.Parameter(torch.tensor(float(w), dtype=dtype))
        self.b = nn.Parameter(torch.tensor(float(b), dtype=dtype))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|dx/dz|)``."""
        return relu_planar_1d(z, self.u, self.w, self.b)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, log|dz/dx|)`` by the closed form."""
        return relu_planar_1d_inverse(x, self.u, self.w, self.b)


# ---------------------------------------------------------------------------------------------------------
# 2. The construction: N(0, 1) onto a piecewise Gaussian close to p
# ---------------------------------------------------------------------------------------------------------


def piecewise_linear_transport(
    target_icdf: Callable[[Tensor], Tensor], n_pieces: int
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The continuous increasing piecewise-linear map :math:`g` matching the masses of equal-mass bins.

    With :math:`\Phi` the standard normal CDF and :math:`F^{-1}` = ``target_icdf``, the knots are
    :math:`z_k = \Phi^{-1}(k/N)` and :math:`x_k = F^{-1}(k/N)`, :math:`k = 1, \dots, N-1`, and :math:`g` maps
    each base bin :math:`[z_{k-1}, z_k]` linearly onto the target bin :math:`[x_{k-1}, x_k]`. Every bin thus
    carries mass :math:`1/N` under both :math:`g_\#\mathcal N(0,1)` (a *piecewise Gaussian*: on each bin a
    rescaled piece of a Gaussian) and :math:`p`, whose equal-mass histogram
    :math:`p_{\mathrm{pwc}} = \frac{1/N}{x_k - x_{k-1}}` is Kong & Chaudhuri's piecewise-constant approximation.
    The two unbounded tail pieces get the slope that also maps the bin's median to the target bin's median,
    e.g. :math:`s_0 = \frac{x_1 - F^{-1}(1/2N)}{z_1 - \Phi^{-1}(1/2N)}`.

    Returns ``(z_knots, x_knots, slopes)`` of lengths :math:`N-1, N-1, N` in float64. From samples instead of
    a formula, ``target_icdf = lambda a: torch.quantile(samples.double(), a)`` serves.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.
    """
    if isinstance(n_pieces, bool) or not isinstance(n_pieces, int) or n_pieces < 2:
        raise ValueError(f"n_pieces must be an int >= 2, got {n_pieces!r}")
    levels = torch.arange(1, n_pieces, dtype=torch.float64) / n_pieces
    z_knots = torch.special.ndtri(levels)
    x_knots = torch.as_tensor(target_icdf(levels), dtype=torch.float64)
    if x_knots.shape != levels.shape or not bool(torch.all(x_knots[1:] > x_knots[:-1])):
        raise ValueError(
            f"target_icdf must map {n_pieces - 1} increasing probabilities to {n_pieces - 1} strictly "
            f"increasing quantiles, got shape {tuple(x_knots.shape)}"
        )
    tails = torch.tensor([0.5 / n_pieces, 1 - 0.5 / n_pieces], dtype=torch.float64)
    z_tails, x_tails = torch.special.ndtri(tails), torch.as_tensor(target_icdf(tails), dtype=torch.float64)
    inner = (x_knots[1:] - x_knots[:-1]) / (z_knots[1:] - z_knots[:-1])
    left = (x_knots[:1] - x_tails[:1]) / (z_knots[:1] - z_tails[:1])
    right = (x_tails[1:] - x_knots[-1:]) / (z_tails[1:] - z_knots[-1:])
    return z_knots, x_knots, torch.cat([left, inner, right])


def piecewise_linear_layers(z_knots: Tensor, x_knots: Tensor, slopes: Tensor) -> list[tuple[float, float, float]]:
    r"""The :math:`(u, w, b)` of :math:`N + 1` ReLU planar layers composing to a piecewise-linear map
    (the slope bookkeeping of the construction).

    ``z_knots`` and ``x_knots`` have length :math:`N - 1`, ``slopes`` :math:`s_0, \dots, s_{N-1} > 0`
    length :math:`N`, as :func:`piecewise_linear_transport` returns them. Applied in list order
    (base→data):

    * layer 1, :math:`(x_1 - z_1,\ 0,\ 1)`: with :math:`w = 0` a planar layer is the shift
      :math:`z \mapsto z + u\,\mathrm{ReLU}(b)`, so :math:`z_1` lands on :math:`x_1`;
    * layer 2, :math:`(1 - s_0,\ -1,\ x_1)`: active left of :math:`x_1`, where the slope becomes
      :math:`1 + uw = s_0`;
    * layer :math:`k + 2`, :math:`(s_k / r_k - 1,\ 1,\ -x_k)` for :math:`k = 1, \dots, N-1`, where
      :math:`r_1 = 1` and :math:`r_k = s_{k-1}` for :math:`k \ge 2` is the slope the earlier layers left
      right of :math:`x_k`: active right of :math:`x_k`, where it multiplies that slope by
      :math:`1 + uw = s_k / r_k`.

    The kinks sit at the *data-side* knots :math:`x_k` because every earlier layer has already moved the
    base knot onto its target there; only :math:`z_1` of ``z_knots`` is read (the other base knots are
    implied by the slopes). Every :math:`1 + uw` is a ratio of positive slopes, so every layer is invertible.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    Raises:
        ValueError: lengths that are not :math:`N - 1, N - 1, N` with :math:`N \ge 2`, a slope
            :math:`\le 0`, or ``x_knots`` not strictly increasing.

    >>> layers = piecewise_linear_layers(torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([2.0, 0.5]))
    >>> layers
    [(1.0, 0.0, 1.0), (-1.0, -1.0, 1.0), (-0.5, 1.0, -1.0)]
    """
    tensors = {"z_knots": z_knots, "x_knots": x_knots, "slopes": slopes}
    for name, t in tensors.items():
        if not isinstance(t, Tensor) or t.dim() != 1 or not t.is_floating_point():
            raise ValueError(f"{name} must be a 1-D floating-point tensor, got {getattr(t, 'shape', type(t))}")
    n = slopes.shape[0]
    if n < 2 or z_knots.shape[0] != n - 1 or x_knots.shape[0] != n - 1:
        raise ValueError(
            f"need N - 1 knots and N >= 2 slopes, got {z_knots.shape[0]} z-knots, {x_knots.shape[0]} "
            f"x-knots and {n} slopes"
        )
    if not bool((slopes > 0).all()):
        raise ValueError(f"slopes must be > 0 for an increasing (invertible) map, got {slopes.tolist()}")
    if not bool((x_knots[1:] > x_knots[:-1]).all()):
        raise ValueError("x_knots must be strictly increasing")
    x1 = float(x_knots[0])
    layers = [(x1 - float(z_knots[0]), 0.0, 1.0), (1.0 - float(slopes[0]), -1.0, x1)]
    previous = 1.0  # layers 1-2 leave slope 1 right of x_1
    for k in range(1, n):
        layers.append((float(slopes[k]) / previous - 1.0, 1.0, -float(x_knots[k - 1])))
        previous = float(slopes[k])
    return layers


def piecewise_gaussian_layers(
    target_icdf: Callable[[Tensor], Tensor], n_layers: int
) -> list[tuple[float, float, float]]:
    r"""The :math:`(u, w, b)` of ``n_layers`` ReLU planar layers composing to the map of
    :func:`piecewise_linear_transport`.

    Applied in list order (base→data), with :math:`N = ` ``n_layers`` :math:`- 1` pieces, knots
    :math:`x_k` and slopes :math:`s_0, \dots, s_{N-1}`:

    * layer 1, :math:`(u, w, b) = (x_1 - z_1, 0, 1)`: the shift :math:`z \mapsto z + x_1 - z_1` (with
      :math:`w = 0` a planar layer is a translation), so :math:`z_1` lands on :math:`x_1`;
    * layer 2, :math:`(1 - s_0, -1, x_1)`: active left of :math:`x_1`, slope :math:`1 + uw = s_0` there;
    * layer 3, :math:`(s_1 - 1, 1, -x_1)`: active right of :math:`x_1`, slope 1 becomes :math:`s_1` there;
    * layer :math:`k + 2`, :math:`(s_k/s_{k-1} - 1, 1, -x_k)` for :math:`k = 2, \dots, N-1`: active right of
      :math:`x_k`, where the slope :math:`s_{k-1}` becomes :math:`s_k`.

    Each layer adds one slope change at a point that earlier layers have already moved onto its target knot;
    all :math:`1 + uw` are ratios of positive slopes, so every layer is invertible.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> layers = piecewise_gaussian_layers(quantile_function(two_gaussians_1d().cdf), 50)
    >>> len(layers), layers[0][1]
    (50, 0.0)
    """
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 3:
        raise ValueError(f"n_layers must be an int >= 3 (a shift, a left slope, one knot), got {n_layers!r}")
    return piecewise_linear_layers(*piecewise_linear_transport(target_icdf, n_layers - 1))


def piecewise_gaussian_flow(target_icdf: Callable[[Tensor], Tensor], n_layers: int) -> FlowSequence:
    """The :class:`~flowcourse.base.FlowSequence` of :class:`ReLUPlanar1d` layers of
    :func:`piecewise_gaussian_layers`, in float64, base→data.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.
    """
    layers = piecewise_gaussian_layers(target_icdf, n_layers)
    return FlowSequence(*(ReLUPlanar1d(*p, dtype=torch.float64) for p in layers))


def _as_flow(layers: Flow | Sequence[tuple[float, float, float]]) -> Flow:
    if isinstance(layers, Flow):
        return layers
    return FlowSequence(*(ReLUPlanar1d(*p, dtype=torch.float64) for p in layers))


def pushforward_density_1d(layers: Flow | Sequence[tuple[float, float, float]], xs: Tensor) -> Tensor:
    r"""The exact density of :math:`x = f(z)`, :math:`z \sim \mathcal N(0, 1)`, at the points ``xs``.

    ``layers`` is a 1-D flow with an inverse (e.g. :func:`piecewise_gaussian_flow`) or a list of
    :math:`(u, w, b)`; by the change of variables in the data→base direction,

    .. math::
        p_X(x) = \varphi\big(f^{-1}(x)\big)\,\left|\frac{d f^{-1}}{dx}\right|.

    Returns densities (not log-densities) of shape ``(n,)``, computed without gradients (an evaluation
    on a grid, for plots and :func:`total_variation_1d`).

    >>> xs = torch.tensor([0.0, 2.0], dtype=torch.float64)
    >>> pushforward_density_1d([(1.0, 0.0, 2.0)], xs)  # the shift x = z + 2
    tensor([0.0540, 0.3989], dtype=torch.float64)
    """
    if not isinstance(xs, Tensor) or xs.dim() != 1:
        shape = tuple(xs.shape) if isinstance(xs, Tensor) else type(xs).__name__
        raise ValueError(f"xs must be a 1-D tensor of points, shape (n,), got {shape}")
    dist = FlowDistribution(_as_flow(layers), StandardNormal(1).to(xs.dtype))
    with torch.no_grad():
        return dist.log_prob(xs.unsqueeze(1)).exp()


def total_variation_1d(p_values: Tensor, q_values: Tensor, xs: Tensor) -> Tensor:
    r"""Total variation :math:`\mathrm{TV}(p, q) = \tfrac12\int |p(x) - q(x)|\,dx` by the trapezoid rule.

    ``p_values`` and ``q_values`` are densities on the increasing grid ``xs``, all of shape ``(n,)``; mass
    outside the grid is ignored, so the grid must cover both supports. Returns a 0-d tensor in
    :math:`[0, 1]` (up to quadrature error).

    >>> xs = torch.linspace(0, 1, 11)
    >>> total_variation_1d(torch.ones(11), 2 * xs, xs)
    tensor(0.2500)
    """
    for name, v in (("p_values", p_values), ("q_values", q_values), ("xs", xs)):
        if not isinstance(v, Tensor) or v.dim() != 1:
            raise ValueError(f"{name} must be a 1-D tensor of shape (n,), got {getattr(v, 'shape', type(v))}")
    if not p_values.shape == q_values.shape == xs.shape:
        raise ValueError(
            f"p_values, q_values and xs must have one shape, got {tuple(p_values.shape)}, "
            f"{tuple(q_values.shape)} and {tuple(xs.shape)}"
        )
    return 0.5 * torch.trapezoid((p_values - q_values).abs(), xs)


def piecewise_gaussian_tv(
    n_layers: int,
    target: torch.distributions.Distribution | None = None,
    *,
    bounds: tuple[float, float] = (-8.0, 8.0),
    n_grid: int = 40001,
) -> float:
    r"""TV between a target and the pushforward of :math:`\mathcal N(0,1)` by ``n_layers`` ReLU planar layers.

    ``target`` (default :func:`two_gaussians_1d`, the lesson's two-peaked example) needs ``cdf`` and ``log_prob``; the
    layers come from :func:`piecewise_gaussian_layers`, the densities are compared exactly on a grid of
    ``n_grid`` points over ``bounds``. Measured here: 0.0239 with 50 layers and 0.0050 with 300; between 10
    and 300 layers TV falls like :math:`N^{-0.87}` (least-squares slope of log TV against log N at
    10, 30, 100, 300, pinned in ``test_key.py``). Kong & Chaudhuri's figure shows the same two depths.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.
    """
    target = two_gaussians_1d() if target is None else target
    flow = piecewise_gaussian_flow(quantile_function(target.cdf), n_layers)
    xs = torch.linspace(*bounds, n_grid, dtype=torch.float64)
    with torch.no_grad():
        p_values = target.log_prob(xs).exp()
    return float(total_variation_1d(p_values, pushforward_density_1d(flow, xs), xs))


# ---------------------------------------------------------------------------------------------------------
# 3. Topology matching with a smooth non-linearity
# ---------------------------------------------------------------------------------------------------------


def log_det_term(
    flow: Callable[[Tensor], tuple[Tensor, Tensor]],
    z: Tensor,
    log_p: Callable[[Tensor], Tensor],
    log_q: Callable[[Tensor], Tensor],
) -> Tensor:
    r"""The log-det term :math:`L(z) = \log p(f(z)) - \log q(z)`, shape ``(batch,)``.

    ``flow`` is a base→data map returning ``(x, logdet)`` (only ``x`` is used); ``log_p`` and ``log_q`` give
    log-densities of shape ``(batch,)``. If :math:`p = f_\# q` exactly, the change of variables gives
    :math:`L(z) = -\log|\det J_f(z)|`; any other :math:`p` makes :math:`L` differ from that.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> from flowcourse.base import StandardNormal
    >>> q = StandardNormal(1).double()
    >>> z = torch.tensor([[0.3]], dtype=torch.float64)
    >>> log_det_term(lambda v: relu_planar_1d(v, 1.0, 1.0, 0.0), z, q.log_prob, q.log_prob).shape
    torch.Size([1])
    """
    x, _ = flow(z)
    return log_p(x) - log_q(z)


def gradient_rank(grads: Tensor, rtol: float = 1e-8) -> int:
    r"""Numerical rank of the stacked gradients :math:`\{\nabla_z L(z_i)\}_{i=1}^n`, shape ``(n, d)``.

    The number of singular values above ``rtol`` times the largest: the dimension of
    :math:`\operatorname{span}\{\nabla_z L(z_i)\}`, which topology matching bounds by the number of neurons.
    All-zero gradients have rank 0.

    >>> gradient_rank(torch.tensor([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0]], dtype=torch.float64))
    1
    """
    if not isinstance(grads, Tensor) or grads.dim() != 2 or not grads.is_floating_point():
        raise ValueError(
            f"grads must be a floating-point tensor of shape (n, d), got {getattr(grads, 'shape', grads)}"
        )
    s = torch.linalg.svdvals(grads.detach())
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    return int((s > rtol * s[0]).sum())


def _grad_rows(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Per-sample gradients of a function whose i-th output depends only on the i-th row of ``z``."""
    z = z.detach().requires_grad_(True)
    # ReLU log-dets are piecewise constant: autograd may find no path to z, and the gradient is then 0.
    (grad,) = torch.autograd.grad(fn(z).sum(), z, allow_unused=True, materialize_grads=True)
    return grad


def topology_rank_experiment(
    d: int, neurons: Sequence[int], *, n_points: int = 64, activation: str = "tanh", seed: int = 0
) -> int:
    r"""Rank of :math:`\{\nabla_z L(z_i)\}` for :math:`p = f_\#\mathcal N(0, I_d)`, :math:`f` a random
    :class:`SylvesterStack` with ``neurons`` per layer.

    Here :math:`L(z) = -\log|\det J_f(z)|` and its gradient (autograd) at ``n_points`` standard normal
    points lies in :math:`\operatorname{span}(B_1, \dots, B_K)`, so the rank is at most :math:`M` and, at
    random parameters with :math:`d > M` and enough points, equal to :math:`M`.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> topology_rank_experiment(6, [1, 1, 1])
    3
    """
    stack = SylvesterStack.random(d, neurons, activation=activation, seed=seed)
    z = torch.randn(n_points, d, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    grads = _grad_rows(lambda v: -stack(v)[1], z)
    return gradient_rank(grads)


# ---------------------------------------------------------------------------------------------------------
# 4. ReLU Sylvester layers: the pointwise condition
# ---------------------------------------------------------------------------------------------------------


def pointwise_condition_residual(
    flow: Callable[[Tensor], tuple[Tensor, Tensor] | Tensor],
    z: Tensor,
    log_p: Callable[[Tensor], Tensor],
    log_q: Callable[[Tensor], Tensor],
) -> Tensor:
    r"""The residual :math:`C^\top \nabla\log p(f(z)) - \nabla\log q(z)`, :math:`C = J_f(z)`, ``(batch, d)``.

    All three derivatives come from autograd: :math:`C` per sample by
    :func:`flowcourse.jacobian.batch_jacobian` of the base→data map ``flow``, and the two score functions
    of ``log_p`` at :math:`x = f(z)` and ``log_q`` at :math:`z`. By the chain rule the residual is
    :math:`\nabla_z L(z)`. For a ReLU :class:`SylvesterStack` with :math:`p = f_\# q`, :math:`f` is linear
    near almost every :math:`z`, the log-det is locally constant, and the residual is 0 (up to the accuracy of
    ``log_p``); with a smooth :math:`h` it is not, and with a :math:`p \ne f_\# q` it need not be.

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.

    >>> q = StandardNormal(2).double()
    >>> shift = lambda v: v + 1.0
    >>> pointwise_condition_residual(shift, torch.zeros(1, 2, dtype=torch.float64),
    ...                              lambda x: q.log_prob(x - 1.0), q.log_prob)
    tensor([[0., 0.]], dtype=torch.float64)
    """
    check_batch(z, name="z")
    if z.dim() != 2:
        raise ValueError(f"z must have shape (batch, d), got {tuple(z.shape)}")
    C = batch_jacobian(flow, z.detach())
    out = flow(z.detach())
    x = (out[0] if isinstance(out, tuple) else out).detach()
    score_p = _grad_rows(log_p, x)
    score_q = _grad_rows(log_q, z)
    return (C.transpose(1, 2) @ score_p.unsqueeze(2)).squeeze(2) - score_q


# ---------------------------------------------------------------------------------------------------------
# 5. Depth: K planar layers cannot rescale more than about K directions
# ---------------------------------------------------------------------------------------------------------


def gaussian_kl(var_q: float, var_p: float, d: int = 1) -> float:
    r""":math:`\mathrm{KL}(\mathcal N(0, \sigma_q^2 I_d)\,\|\,\mathcal N(0, \sigma_p^2 I_d))
    = d\left(\tfrac12\log\frac{\sigma_p^2}{\sigma_q^2} + \frac{\sigma_q^2}{2\sigma_p^2} - \tfrac12\right)`.

    With :math:`\sigma_q^2 = 1, \sigma_p^2 = 4`: :math:`\log 2 + \tfrac18 - \tfrac12 \approx 0.318` per
    dimension.

    >>> round(gaussian_kl(1.0, 4.0), 4)
    0.3181
    """
    if not (var_q > 0 and var_p > 0):
        raise ValueError(f"variances must be positive, got var_q={var_q}, var_p={var_p}")
    return d * (0.5 * math.log(var_p / var_q) + var_q / (2 * var_p) - 0.5)


def depth_experiment(
    K: int,
    d: int = 8,
    *,
    steps: int = 300,
    batch_size: int = 256,
    lr: float = 5e-2,
    seed: int = 0,
    n_eval: int = 20000,
    progress: bool = False,
) -> float:
    r"""Reverse-KL fit of :math:`\mathcal N(0, 4I_d)` from :math:`q = \mathcal N(0, I_d)` by planar layers.

    Trains ``K`` tanh :class:`~flowcourse_lessons.lesson_05.key.Planar` layers (with :math:`\hat u`, so invertible
    throughout) by :func:`flowcourse.expressivity.depth_experiment` (the loop the notebook runs with the
    released :class:`sylvester_layers.Planar`) and returns the Monte-Carlo estimate of
    :math:`\mathrm{KL}(q_\theta\|p) = \mathbb{E}_{q_\theta}[\log q_\theta - \log p]` on ``n_eval`` fresh
    samples (nats). Each layer can stretch about one direction, so the result stays near
    :math:`(d - K)\,` :func:`gaussian_kl` ``(1, 4)`` :math:`\approx 0.318\,(d - K)` for :math:`K \le d`
    (slightly above it: a :math:`\tanh` layer only approaches a linear stretch as :math:`w \to 0`,
    :math:`u \to \infty`).

    References: Kong & Chaudhuri (2020), *The Expressive Power of a Class of Normalizing Flow Models*.
    """
    return expressivity.depth_experiment(
        K, lambda dim: Planar(dim, "tanh"), d, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        n_eval=n_eval, progress=progress,
    )


# Answers to the lesson's questions: each constant is named after the check that grades it.
quiz_07_pwc_invertible = "B"  # no step function is injective: the invertible subset is empty
quiz_07_tv_definition = "A"  # T_ε uses the total VARIATION ½∫|p − q| ("total variance" is a slip)
quiz_07_one_dimension = "B"  # 1-D ReLU planar flows approximate (Q2), error → 0 with more layers
quiz_07_householder_stack = "A"  # reflections are orthogonal: N(0, I) is mapped to itself exactly
quiz_07_depth_bound = "B"  # there exist (q, p) needing Ω̃(d^κ) layers: a necessary depth, not a sufficient one
quiz_07_relu_peaks = "A"  # Cᵀ∇log p(f(z₀)) = ∇log q(z₀) = 0 and C invertible: f(z₀) is a critical point of p
quiz_07_sylvester_rank_bound = 6  # M = 2 + 1 + 3 neurons bounds dim span{∇L}, whatever d = 10
