r"""Glow: ActNorm, invertible 1×1 convolutions (dense and LU), squeeze, multi-scale; lesson 04.

Images are batches ``(batch, C, H, W)``. Every layer obeys the course's direction contract
(:mod:`flowcourse.base`): ``forward(z)`` is base→data and returns ``(x, log|det ∂x/∂z|)``,
``inverse(x)`` is data→base and returns ``(z, log|det ∂z/∂x|)``. The Glow paper writes its layers in the
data→latent direction; here each docstring says which map ``forward`` applies.

A layer that acts on each pixel's channel vector with the same map :math:`g` has a block-diagonal
Jacobian with one block per pixel, so its log-det is :math:`h\cdot w` times the log-det of one block —
forgetting this factor is a classic mistake.

References: Kingma & Dhariwal (2018), *Glow: Generative Flow with Invertible 1x1 Convolutions*;
Dinh, Sohl-Dickstein & Bengio (2017), *Density estimation using Real NVP* (squeeze, multi-scale).

>>> import torch
>>> from flowcourse.base import FlowDistribution, StandardNormal
>>> dist = FlowDistribution(Glow((1, 8, 8), levels=2, steps=2, hidden=16), StandardNormal(1, 8, 8))
>>> x = torch.rand(4, 1, 8, 8)
>>> dist.log_prob(x).shape, dist.sample(3).shape
(torch.Size([4]), torch.Size([3, 1, 8, 8]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from flowcourse_lessons.lesson_03.key import soft_clamp
from torch import Tensor, nn

from flowcourse import glow_blocks
from flowcourse.base import Flow, FlowSequence, check_batch
from flowcourse.glow_blocks import Sigmoid, conv_conditioner

__all__ = [
    "actnorm_init",
    "ActNorm",
    "conv1x1_logdet",
    "lu_logdet",
    "Invertible1x1Conv",
    "LUInvertible1x1Conv",
    "squeeze",
    "unsqueeze",
    "Squeeze",
    "Unsqueeze",
    "conv_conditioner",
    "ChannelCoupling",
    "FactorOut",
    "glow_step",
    "Glow",
    "Sigmoid",
]


def _check_image(x: Tensor, channels: int | None = None, name: str = "z") -> Tensor:
    check_batch(x, name=name)
    if x.dim() != 4:
        raise ValueError(f"{name} must be an image batch (batch, C, H, W), got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, shape (batch, {channels}, H, W), "
                         f"got shape {tuple(x.shape)}")
    return x


def _per_channel(v: Tensor) -> Tensor:
    """A per-channel vector ``(C,)`` shaped ``(1, C, 1, 1)`` to broadcast over a batch of images."""
    return v.reshape(1, -1, 1, 1)


# ----------------------------------------------------------------------------------------------- ActNorm

def actnorm_init(x: Tensor) -> tuple[Tensor, Tensor]:
    r"""Data-dependent ActNorm parameters from a batch ``x`` of shape ``(batch, C, H, W)``.

    Returns ``(bias, log_scale)``, each ``(C,)``: :math:`b_c = \operatorname{mean}(x_{\cdot c \cdot\cdot})`
    and :math:`\log \sigma_c` (population standard deviation over batch and pixels), so that
    :math:`z = (x - b)\odot e^{-\log\sigma}` has zero mean and unit variance per channel. A channel with
    no spread gets :math:`\sigma = 10^{-6}`'s floor rather than :math:`\log 0`.

    >>> x = torch.tensor([[[[1.0, 3.0]]], [[[5.0, 7.0]]]])  # 1 channel, values 1, 3, 5, 7
    >>> bias, log_scale = actnorm_init(x)
    >>> bias, log_scale.exp()
    (tensor([4.]), tensor([2.2361]))
    """
    _check_image(x, name="x")
    dims = (0, 2, 3)
    bias = x.mean(dims)
    std = x.std(dims, unbiased=False).clamp_min(1e-6)
    return bias, torch.log(std)


class ActNorm(Flow):
    r"""Per-channel affine layer, base→data: :math:`x = z \odot e^{\log s} + b`, per-channel :math:`s, b`.

    Log-det :math:`h\cdot w\sum_c \log s_c` forward, its negative inverse.

    Data-dependent initialisation: the first ``inverse`` call (data→base, i.e. the first batch of data
    during training) sets :math:`(b, \log s)` = :func:`actnorm_init` of that batch, so the :math:`z` it
    returns has zero mean and unit variance per channel. The flag ``initialized`` is a registered
    **buffer**, saved in ``state_dict``: loading a trained model into a fresh ``ActNorm`` restores the flag
    with the parameters, so the next batch does not overwrite them (the nflows #4 bug). ``forward``
    (sampling) never initialises. To use chosen parameters without data init, set
    ``layer.initialized.fill_(True)``.

    References: Kingma & Dhariwal (2018), *Glow*, §3.1.

    >>> layer = ActNorm(2)
    >>> z, _ = layer.inverse(torch.randn(16, 2, 4, 4) * 3 + 1)
    >>> z = z.detach()
    >>> bool(layer.initialized), bool(z.mean().abs() < 1e-5), bool((z.var(unbiased=False) - 1).abs() < 1e-5)
    (True, True, True)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels = channels
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _logdet(self, x: Tensor) -> Tensor:
        return (x.shape[2] * x.shape[3] * self.log_scale.sum()).expand(x.shape[0])

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(z·exp(log_scale) + bias, h·w·Σ log_scale)``."""
        _check_image(z, self.channels, "z")
        x = z * _per_channel(self.log_scale.exp()) + _per_channel(self.bias)
        return x, self._logdet(z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: ``((x - bias)·exp(-log_scale), -h·w·Σ log_scale)``; initialises on the first call."""
        _check_image(x, self.channels, "x")
        if not bool(self.initialized):
            with torch.no_grad():
                bias, log_scale = actnorm_init(x)
                self.bias.copy_(bias)
                self.log_scale.copy_(log_scale)
                self.initialized.fill_(True)
        z = (x - _per_channel(self.bias)) * _per_channel(torch.exp(-self.log_scale))
        return z, -self._logdet(x)


# ---------------------------------------------------------------------------- invertible 1x1 convolution

def conv1x1_logdet(W: Tensor, h: int, w: int) -> Tensor:
    r"""Log-det of a 1×1 convolution with a :math:`C\times C` weight :math:`W` on :math:`h\times w` pixels.

    .. math:: \log\left|\det \frac{\partial x}{\partial z}\right| = h \cdot w \cdot \log|\det W|

    (the same :math:`W` acts at each of the :math:`h w` pixels), computed with ``slogdet``, which is
    :math:`O(C^3)`; see :func:`lu_logdet` for the :math:`O(C)` version. Raises ``ValueError`` for a
    non-square or singular :math:`W`.

    >>> conv1x1_logdet(torch.diag(torch.tensor([2.0, 0.5, 0.8])), 32, 32)
    tensor(-228.4990)
    """
    if not isinstance(W, Tensor) or W.dim() != 2 or W.shape[0] != W.shape[1]:
        got = tuple(W.shape) if isinstance(W, Tensor) else type(W).__name__
        raise ValueError(f"W must be a square matrix (C, C), got {got}")
    logabsdet = torch.linalg.slogdet(W).logabsdet
    if logabsdet.item() == -math.inf:  # slogdet's answer for det W = 0
        raise ValueError("W is singular (det W = 0): a 1x1 convolution with it is not invertible")
    return _times_pixels(logabsdet, h, w)


def lu_logdet(log_abs_diag_u: Tensor, h: int, w: int) -> Tensor:
    r"""Log-det of an LU-parametrised 1×1 convolution :math:`W = PLU` on an :math:`h\times w` image.

    :math:`|\det P| = 1` and :math:`\det L = 1` (unit diagonal), so :math:`\log|\det W| = \sum_i \log|U_{ii}|`
    and the layer's log-det (base→data) is :math:`h\cdot w\sum_i \log|U_{ii}|`, in :math:`O(C)`. The inverse
    direction has the opposite sign. Raises ``ValueError`` if some :math:`U_{ii} = 0`
    (``log_abs_diag_u`` holds :math:`-\infty`).

    Practice problem 4 (3 channels, 32×32, :math:`\mathrm{diag}\,U = (2, 0.5, 0.8)`):

    >>> lu_logdet(torch.log(torch.tensor([2.0, 0.5, 0.8])), 32, 32)
    tensor(-228.4990)
    """
    if not isinstance(log_abs_diag_u, Tensor) or log_abs_diag_u.dim() != 1:
        got = (tuple(log_abs_diag_u.shape) if isinstance(log_abs_diag_u, Tensor)
               else type(log_abs_diag_u).__name__)
        raise ValueError(f"log_abs_diag_u must be a vector (C,) of log|U_ii|, got {got}")
    total = log_abs_diag_u.sum()
    # one scalar read instead of an elementwise test: a single -inf entry makes the sum -inf
    if total.item() == -math.inf:
        raise ValueError("some U_ii = 0 (log|U_ii| = -inf): W = PLU is singular, not invertible")
    return _times_pixels(total, h, w)


def _times_pixels(log_abs_det_w: Tensor, h: int, w: int) -> Tensor:
    """``h·w·log|det W|``; a single pixel (a dense layer on vectors) skips the multiplication and its backward."""
    return log_abs_det_w if h * w == 1 else h * w * log_abs_det_w


def _random_orthogonal(c: int) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(c, c, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).to(torch.get_default_dtype())  # Haar-distributed


def _conv1x1(x: Tensor, W: Tensor) -> Tensor:
    """Apply ``W`` to the channel vector of every pixel: ``out[b, :, i, j] = W @ x[b, :, i, j]``."""
    # einsum rather than conv2d: the same map, and about twice as fast on the course's tiny images
    return torch.einsum("ij,bjhw->bihw", W, x)


class Invertible1x1Conv(Flow):
    r"""Dense invertible 1×1 convolution, base→data: :math:`x_{:,i,j} = W z_{:,i,j}` at every pixel.

    ``forward`` applies :math:`W` and returns :math:`h w \log|\det W|` (:func:`conv1x1_logdet`);
    ``inverse`` applies :math:`W^{-1}` and returns the negative. (normflows' ``Invertible1x1Conv.forward``
    applies :math:`W^{-1}`: here the name of the direction is the direction.) :math:`W` starts as a random
    rotation, a learned generalisation of a channel permutation.

    References: Kingma & Dhariwal (2018), *Glow*, §3.2.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(_random_orthogonal(channels))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(W z, h·w·log|det W|)``."""
        _check_image(z, self.channels, "z")
        logdet = conv1x1_logdet(self.weight, z.shape[2], z.shape[3])
        return _conv1x1(z, self.weight), logdet.expand(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: return ``(W⁻¹ x, -h·w·log|det W|)``."""
        _check_image(x, self.channels, "x")
        logdet = conv1x1_logdet(self.weight, x.shape[2], x.shape[3])  # raises if W is singular
        return _conv1x1(x, torch.linalg.inv(self.weight)), -logdet.expand(x.shape[0])


class LUInvertible1x1Conv(Flow):
    r"""LU-parametrised invertible 1×1 convolution, base→data: :math:`x_{:,i,j} = W z_{:,i,j}`, :math:`W=PLU`.

    * :math:`P` — a fixed permutation (buffer ``P``, never trained);
    * :math:`L` — unit lower-triangular: the strictly lower part of parameter ``lower`` plus :math:`I`
      (the upper part of ``lower`` is masked out, so it gets no gradient);
    * :math:`U` — the strictly upper part of parameter ``upper`` plus :math:`\mathrm{diag}(\mathrm{sign}(s)
      \odot e^{\log|s|})`, with the signs a fixed buffer and ``log_abs_s`` a parameter, so :math:`U_{ii}`
      can never reach zero and :math:`W` stays invertible throughout training.

    Log-det :math:`h w \sum_i \log|s_i|` (:func:`lu_logdet`) in :math:`O(C)`. Initialised from the LU
    decomposition of a random rotation. ``forward`` applies :math:`W`, ``inverse`` applies
    :math:`W^{-1} = U^{-1}L^{-1}P^\top` by triangular solves.

    References: Kingma & Dhariwal (2018), *Glow*, §3.2 (LU decomposition).

    >>> layer = LUInvertible1x1Conv(3)
    >>> with torch.no_grad():
    ...     _ = layer.log_abs_s.copy_(torch.log(torch.tensor([2.0, 0.5, 0.8])))
    >>> layer(torch.randn(1, 3, 32, 32))[1], layer.inverse(torch.randn(1, 3, 32, 32))[1]
    (tensor([-228.4990], grad_fn=<ExpandBackward0>), tensor([228.4990], grad_fn=<NegBackward0>))
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        P, L, U = torch.linalg.lu(_random_orthogonal(channels))
        s = torch.diagonal(U)
        self.register_buffer("P", P)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(L, -1))
        self.upper = nn.Parameter(torch.triu(U, 1))
        self.log_abs_s = nn.Parameter(torch.log(torch.abs(s)))

    def factors(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(P, L, U)`` with ``W = P @ L @ U``."""
        eye = torch.eye(self.channels, dtype=self.lower.dtype, device=self.lower.device)
        L = torch.tril(self.lower, -1) + eye
        U = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_abs_s))
        return self.P, L, U

    def weight(self) -> Tensor:
        """The reconstructed :math:`W = PLU`."""
        P, L, U = self.factors()
        return P @ L @ U

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(W z, h·w·Σ log|s|)``."""
        _check_image(z, self.channels, "z")
        logdet = lu_logdet(self.log_abs_s, z.shape[2], z.shape[3])
        return _conv1x1(z, self.weight()), logdet.expand(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: return ``(W⁻¹ x, -h·w·Σ log|s|)``."""
        _check_image(x, self.channels, "x")
        P, L, U = self.factors()
        logdet = lu_logdet(self.log_abs_s, x.shape[2], x.shape[3])
        L_inv_Pt = torch.linalg.solve_triangular(L, P.T, upper=False, unitriangular=True)
        W_inv = torch.linalg.solve_triangular(U, L_inv_Pt, upper=True)
        return _conv1x1(x, W_inv), -logdet.expand(x.shape[0])


# ----------------------------------------------------------------------------------------------- squeeze

def squeeze(x: Tensor) -> Tensor:
    r"""Space-to-depth: ``(batch, C, H, W) -> (batch, 4C, H/2, W/2)``.

    Each 2×2 block of a channel becomes 4 channels at one pixel:
    ``out[b, 4c + 2i + j, h, w] = x[b, c, 2h + i, 2w + j]`` for :math:`i, j \in \{0, 1\}`. A permutation
    of the coordinates, so its log-det is 0.

    >>> squeeze(torch.arange(16.0).reshape(1, 1, 4, 4))[0, :, 0, 0]
    tensor([0., 1., 4., 5.])
    """
    _check_image(x, name="x")
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs even height and width, got an image batch of shape {tuple(x.shape)}")
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    r"""Depth-to-space, the inverse of :func:`squeeze`: ``(batch, 4C, H, W) -> (batch, C, 2H, 2W)``.

    >>> x = torch.randn(2, 3, 4, 6)
    >>> bool(torch.equal(unsqueeze(squeeze(x)), x))
    True
    """
    _check_image(x, name="x")
    b, c4, h, w = x.shape
    if c4 % 4:
        raise ValueError(f"unsqueeze needs a channel count divisible by 4, got shape {tuple(x.shape)}")
    c = c4 // 4
    x = x.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c, 2 * h, 2 * w)


class Squeeze(Flow):
    """``forward`` (base→data) is space-to-depth :func:`squeeze`; ``inverse`` is :func:`unsqueeze`. Log-det 0.

    Named after what its forward does (normflows' ``Squeeze.forward`` un-squeezes). A multi-scale flow
    uses both this and :class:`Unsqueeze`, see :func:`Glow`.
    """

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: ``(squeeze(z), 0)``."""
        return squeeze(z), z.new_zeros(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: ``(unsqueeze(x), 0)``."""
        return unsqueeze(x), x.new_zeros(x.shape[0])


class Unsqueeze(Flow):
    """``forward`` (base→data) is depth-to-space :func:`unsqueeze`; ``inverse`` :func:`squeeze`. Log-det 0."""

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: ``(unsqueeze(z), 0)``."""
        return unsqueeze(z), z.new_zeros(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: ``(squeeze(x), 0)``."""
        return squeeze(x), x.new_zeros(x.shape[0])


# ------------------------------------------------------------------------------------------------ coupling

class ChannelCoupling(glow_blocks.ChannelCoupling):
    r""":class:`flowcourse.glow_blocks.ChannelCoupling` with its log-scale soft-clamped at ``clamp``.

    :math:`x_a = z_a`, :math:`x_b = z_b\odot e^{\log s}+t` on channel halves, with the log-scale
    :math:`b\tanh(\log s/b)` (:func:`~flowcourse_lessons.lesson_03.key.soft_clamp`, bound ``clamp``; ``None``
    leaves it unbounded). It is :class:`~flowcourse_lessons.lesson_03.key.AffineCoupling` with a channel mask,
    written without the mask so the network does half the work. The 1×1 convolution before it decides which
    mixtures of channels land in each half.
    """

    def __init__(self, channels: int, hidden: int = 64, clamp: float | None = 2.0, *,
                 net: nn.Module | None = None) -> None:
        super().__init__(channels, hidden, net=net,
                         log_scale_map=None if clamp is None else partial(soft_clamp, bound=clamp))
        self.clamp = clamp


# ------------------------------------------------------------------------------------------- multi-scale

class FactorOut(Flow):
    r"""Multi-scale split: the first half of the channels is factored out, ``inner`` acts on the rest.

    Base→data: :math:`z = (z_{\text{out}}, z_{\text{rest}})` along channels (first :math:`\lfloor C/2\rfloor`
    channels, the rest); ``forward`` returns :math:`(z_{\text{out}}, \text{inner}(z_{\text{rest}}))` and
    inner's log-det. Read data→base, the factored-out half leaves the flow here and goes straight to the
    Gaussian base, while only the other half is transformed further — the deeper levels work on half the
    dimensions.
    """

    def __init__(self, inner: Flow, channels: int) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"FactorOut needs at least 2 channels, got {channels}")
        self.inner = inner
        self.channels = channels
        self.split_sizes = [channels // 2, channels - channels // 2]

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: ``(cat(z_out, inner(z_rest)), log-det of inner)``."""
        _check_image(z, self.channels, "z")
        z_out, z_rest = z.split(self.split_sizes, dim=1)
        h, logdet = self.inner(z_rest)
        return torch.cat([z_out, h], dim=1), logdet

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: ``(cat(x_out, inner⁻¹(x_rest)), log-det of inner⁻¹)``."""
        _check_image(x, self.channels, "x")
        x_out, x_rest = x.split(self.split_sizes, dim=1)
        z_rest, logdet = self.inner.inverse(x_rest)
        return torch.cat([x_out, z_rest], dim=1), logdet


def glow_step(channels: int, hidden: int = 64, clamp: float | None = 2.0) -> FlowSequence:
    r"""One step of flow. Data→base (Glow's order): ActNorm, then LU 1×1 convolution, then affine coupling.

    As a :class:`FlowSequence` its ``forward`` (base→data) runs the inverses' counterparts in reverse:
    coupling, 1×1 conv, ActNorm, so that on the data→base pass the ActNorm sees the data first and its
    data-dependent initialisation normalises the step's input.
    """
    return FlowSequence(ChannelCoupling(channels, hidden, clamp), LUInvertible1x1Conv(channels),
                        ActNorm(channels))


def Glow(shape: Sequence[int], levels: int, steps: int, hidden: int = 64,
         clamp: float | None = 2.0) -> FlowSequence:
    r"""A multi-scale Glow flow on images of shape ``(C, H, W)``, base→data forward.

    Data→base, level :math:`\ell` (input :math:`C_\ell\times H_\ell\times W_\ell`) squeezes to
    :math:`4C_\ell\times H_\ell/2\times W_\ell/2`, applies ``steps`` :func:`glow_step` s, then (except at the
    last level) factors out half the channels to the Gaussian and passes the other half,
    :math:`2C_\ell\times H_\ell/2\times W_\ell/2`, to level :math:`\ell+1`. Each level ends by un-squeezing
    its result, so **the latent has the image's shape** ``(C, H, W)`` and the base is
    ``StandardNormal(C, H, W)``. Precisely, with :math:`z` the latent of a level and
    :math:`s = \mathrm{squeeze}(z)` (:func:`squeeze`'s ordering):

    * :math:`s_{:, :2C_\ell}` are the coordinates factored out at this level;
    * :math:`s_{:, 2C_\ell:}` is the latent of level :math:`\ell+1`, laid out the same way, recursively;
    * at the last level all of :math:`s` is the last level's output.

    (A flat latent would concatenate the factored-out parts; keeping the image shape makes every level a
    map :math:`\mathbb{R}^{C\times H\times W}\to\mathbb{R}^{C\times H\times W}` and lets plain
    :class:`~flowcourse.base.FlowDistribution` do ``log_prob`` and ``sample``.) ``H`` and ``W``
    must be divisible by :math:`2^{\text{levels}}`. For dequantised pixels in :math:`[0, 1)` put a
    :class:`Sigmoid` after it, ``FlowSequence(Glow(...), Sigmoid(0.01))``, so that the data→base pass
    starts with the logit transform.

    References: Kingma & Dhariwal (2018), *Glow*, Fig. 2; Dinh et al. (2017), *Real NVP*, §3.6.

    >>> flow = Glow((1, 8, 8), levels=3, steps=1, hidden=8)
    >>> flow(torch.randn(2, 1, 8, 8))[0].shape
    torch.Size([2, 1, 8, 8])
    """
    c, h, w = (int(v) for v in shape)
    if levels < 1 or steps < 1:
        raise ValueError(f"levels and steps must be at least 1, got levels={levels}, steps={steps}")
    if h % 2**levels or w % 2**levels:
        raise ValueError(f"H and W must be divisible by 2**levels = {2**levels}, got shape {(c, h, w)}")
    layers: list[Flow] = [Squeeze()]
    if levels > 1:
        layers.append(FactorOut(Glow((2 * c, h // 2, w // 2), levels - 1, steps, hidden, clamp), 4 * c))
    layers += [glow_step(4 * c, hidden, clamp) for _ in range(steps)]
    layers.append(Unsqueeze())
    return FlowSequence(*layers)


# Answers to the lesson's questions: each constant is named after the check that grades it.
practice_4_logdet_forward = -228.49899654575074  # 32·32·(log 2 + log 0.5 + log 0.8) = 1024·log 0.8, base→data
practice_4_logdet_inverse = 228.49899654575074  # the data→base direction: the sign flips
quiz_04_bits_per_dim = 2.171383490069685  # (−85 + 64·ln 17)/(64·ln 2) for a mean log-density of 85 nats per image
quiz_04_nats_per_image = 96.70789463172358  # 2.18 bits/dim × 64 dims × ln 2
quiz_04_squeeze_name = "B"  # forward (B,4C,H/2,W/2) → (B,C,H,W) is depth-to-space: our Unsqueeze
quiz_04_actnorm_reload = "C"  # a plain-attribute flag is not in state_dict: the fresh model re-initialises
quiz_04_lu_cost = "A"  # log|det W| once per layer: O(C³) dense vs O(C) LU, then × h·w
quiz_04_level_dims = 16  # Glow((1, 8, 8), levels=3): 64 → 32 → 16 coordinates at levels 1, 2, 3
