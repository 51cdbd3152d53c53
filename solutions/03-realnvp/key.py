r"""Affine coupling layers (RealNVP) and additive coupling layers (NICE); lesson 03.

A coupling layer splits its input with a binary ``mask`` (1 marks the kept half :math:`z_a`, 0 the
transformed half :math:`z_b`) and moves only :math:`z_b`, by an affine map whose scale and shift are
computed from :math:`z_a`. Written with the mask, in the base→data direction :math:`x = f(z)`,

.. math::
    x = m \odot z + (1 - m) \odot \bigl(z \odot e^{\log s} + t\bigr), \qquad
    (\log s, t) = \mathrm{NN}(m \odot z).

Because :math:`x_a = z_a` and :math:`x_b` depends on :math:`z_b` only through the diagonal factor
:math:`e^{\log s}`, the Jacobian is block-triangular with blocks :math:`I` and
:math:`\mathrm{diag}(e^{\log s})`, so :math:`\log|\det \partial x/\partial z| = \sum (1-m)\odot\log s` costs
:math:`O(d)`, and the inverse :math:`z_b = (x_b - t)\odot e^{-\log s}` is as cheap as the forward (the
network is evaluated, never inverted).

References: Dinh, Sohl-Dickstein & Bengio (2017), *Density estimation using Real NVP*;
Dinh, Krueger & Bengio (2015), *NICE: Non-linear Independent Components Estimation*.

>>> import torch
>>> flow = RealNVP(2, n_layers=4, hidden=16)
>>> z = torch.randn(5, 2)
>>> x, logdet = flow(z)
>>> z_back, logdet_inv = flow.inverse(x)
>>> bool(torch.allclose(z_back, z, atol=1e-6)), logdet.shape
(True, torch.Size([5]))
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flowcourse.base import Flow, FlowSequence, check_batch

__all__ = [
    "coupling_forward",
    "coupling_inverse",
    "coupling_forward_scale",
    "coupling_inverse_scale",
    "soft_clamp",
    "alternating_masks",
    "half_masks",
    "checkerboard_mask",
    "channel_mask",
    "mlp_conditioner",
    "AffineCoupling",
    "AdditiveCoupling",
    "RealNVP",
]


def _event_sum(v: Tensor, like: Tensor) -> Tensor:
    """Sum ``v`` (broadcast to ``like``'s shape) over every event dimension: shape ``(batch,)``."""
    return v.expand_as(like).flatten(1).sum(1)


def _check_mask(mask: Tensor, z: Tensor) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor of 0s and 1s, got {type(mask).__name__}")
    try:
        torch.broadcast_shapes(mask.shape, z.shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast against the batch of shape "
            f"{tuple(z.shape)}"
        ) from None


def coupling_forward(z: Tensor, mask: Tensor, log_s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    r"""Affine coupling in the base→data direction, with its log-determinant.

    .. math::
        x = m \odot z + (1-m) \odot (z \odot e^{\log s} + t), \qquad
        \log\left|\det \frac{\partial x}{\partial z}\right| = \sum_i (1-m_i) \log s_i .

    ``mask`` (1 keeps :math:`z_a`) and ``log_s``, ``t`` broadcast against ``z`` of shape
    ``(batch, *event)``; entries of ``log_s`` and ``t`` on kept coordinates are ignored (they are masked
    *before* the exponential, so even an infinite value there cannot leak in as ``0·inf = NaN``).
    Returns ``(x, logdet)`` with ``logdet`` of shape ``(batch,)``.

    The seeds' worked example 2: :math:`z = (1, 3)`, :math:`z_1` kept, :math:`\log s = 0.5`, :math:`t = 2`.

    >>> z, mask = torch.tensor([[1.0, 3.0]]), torch.tensor([1.0, 0.0])
    >>> x, logdet = coupling_forward(z, mask, torch.tensor(0.5), torch.tensor(2.0))
    >>> x.round(decimals=3), logdet
    (tensor([[1.0000, 6.9460]]), tensor([0.5000]))
    """
    check_batch(z, name="z")
    _check_mask(mask, z)
    log_s = (1 - mask) * log_s
    x = z * torch.exp(log_s) + (1 - mask) * t
    return x, _event_sum(log_s, z)


def coupling_inverse(x: Tensor, mask: Tensor, log_s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    r"""Affine coupling in the data→base direction: :math:`z = m\odot x + (1-m)\odot(x - t)\odot e^{-\log s}`.

    Returns ``(z, logdet)`` with :math:`\log|\det \partial z/\partial x| = -\sum_i (1-m_i)\log s_i`. In a
    coupling layer ``log_s`` and ``t`` are computed from :math:`x_a = z_a`, which the forward left unchanged,
    so the inverse needs the same network evaluation and no network inverse.

    >>> x, mask = torch.tensor([[1.0, 6.946]]), torch.tensor([1.0, 0.0])
    >>> z, logdet = coupling_inverse(x, mask, torch.tensor(0.5), torch.tensor(2.0))
    >>> z.round(decimals=3), logdet
    (tensor([[1., 3.]]), tensor([-0.5000]))
    """
    check_batch(x, name="x")
    _check_mask(mask, x)
    log_s = (1 - mask) * log_s
    z = (x - (1 - mask) * t) * torch.exp(-log_s)
    return z, -_event_sum(log_s, x)


def _check_scale(s: Tensor, mask: Tensor) -> None:
    if bool(((s == 0) & (mask == 0)).any()):
        raise ValueError(
            "coupling scale s must be nonzero on every transformed coordinate (mask == 0), got s == 0: "
            "x_b = 0·z_b + t = t is constant in z_b, so the layer is not invertible and log|s| = -inf; "
            "parametrise s = exp(log_s) instead"
        )


def coupling_forward_scale(z: Tensor, mask: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    r"""Affine coupling with the scale :math:`s` given directly (not its log), base→data direction.

    .. math::
        x = m \odot z + (1-m) \odot (s \odot z + t), \qquad
        \log\left|\det \frac{\partial x}{\partial z}\right| = \sum_i (1-m_i) \log |s_i| .

    Practice problem 2: the scale must be nonzero. If :math:`s_i = 0` then :math:`x_i = t_i` whatever
    :math:`z_i` is, so many points map to one (not injective), the inverse :math:`(x_i - t_i)/s_i` divides by
    zero and :math:`\log|s_i| = -\infty`. This function raises ``ValueError`` when any transformed
    :math:`s_i` is zero; negative scales are invertible (a reflection) and are allowed. Layers avoid the
    problem altogether with :math:`s = e^{\log s} > 0`.

    >>> z, mask = torch.tensor([[1.0, 3.0]]), torch.tensor([1.0, 0.0])
    >>> coupling_forward_scale(z, mask, torch.tensor(-2.0), torch.tensor(1.0))
    (tensor([[ 1., -5.]]), tensor([0.6931]))
    >>> coupling_forward_scale(z, mask, torch.tensor(0.0), torch.tensor(1.0))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: coupling scale s must be nonzero on every transformed coordinate (mask == 0), got s == 0: ...
    """
    check_batch(z, name="z")
    _check_mask(mask, z)
    _check_scale(s, mask)
    x = mask * z + (1 - mask) * (s * z + t)
    log_abs_s = torch.where(mask == 0, torch.log(torch.abs(s)), torch.zeros_like(s))
    return x, _event_sum(log_abs_s, z)


def coupling_inverse_scale(x: Tensor, mask: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    r"""Inverse of :func:`coupling_forward_scale`: :math:`z = m\odot x + (1-m)\odot (x - t)/s`.

    Returns ``(z, -\sum (1-m)\log|s|)``; raises ``ValueError`` when any transformed :math:`s_i = 0`.
    """
    check_batch(x, name="x")
    _check_mask(mask, x)
    _check_scale(s, mask)
    s_b = torch.where(mask == 0, s, torch.ones_like(s))  # never divide by an ignored (kept) entry
    z = mask * x + (1 - mask) * (x - t) / s_b
    return z, -_event_sum(torch.log(torch.abs(s_b)), x)


def soft_clamp(log_s: Tensor, bound: float) -> Tensor:
    r"""Smoothly limit a log-scale to :math:`(-\text{bound}, \text{bound})`: :math:`b \tanh(\log s / b)`.

    Near zero it is the identity (slope 1), so small scales train as if unclamped, while
    :math:`e^{\log s}` can never overflow or vanish and the inverse never divides by a tiny scale (the
    "unbounded coupling scale" mistake: NaN losses after some steps).

    >>> soft_clamp(torch.tensor([0.0, 0.1, 1e6, -1e6]), 2.0)
    tensor([ 0.0000,  0.0999,  2.0000, -2.0000])
    """
    if not bound > 0:
        raise ValueError(f"soft_clamp bound must be positive, got {bound}")
    return bound * torch.tanh(log_s / bound)


def alternating_masks(d: int, n_layers: int) -> Tensor:
    r"""Masks of shape ``(n_layers, d)`` that alternate between the even and the odd coordinates.

    Layer :math:`k` keeps coordinate :math:`i` (mask 1) when :math:`i + k` is even, so consecutive layers
    are complementary and every two layers transform every coordinate (one layer alone leaves half the
    input untouched — the seeds' coupling-mask pitfall).

    >>> alternating_masks(3, 2)
    tensor([[1., 0., 1.],
            [0., 1., 0.]])
    """
    _check_mask_size(d, n_layers)
    i = torch.arange(d)
    return torch.stack([((i + k) % 2 == 0).float() for k in range(n_layers)])


def half_masks(d: int, n_layers: int) -> Tensor:
    r"""Masks of shape ``(n_layers, d)`` that keep the first half and the second half in turn.

    Layer :math:`k` keeps coordinates :math:`i < \lceil d/2 \rceil` when :math:`k` is even and the others when
    it is odd: consecutive masks are complementary, as with :func:`alternating_masks` (identical to it for
    :math:`d = 2`), and each half is one contiguous block, so a layer splits and merges its input with one
    ``split`` and one ``cat`` instead of a gather and a scatter (~15 % of a training step at :math:`d = 64`).

    >>> half_masks(3, 2)
    tensor([[1., 1., 0.],
            [0., 0., 1.]])
    """
    _check_mask_size(d, n_layers)
    first_half = (torch.arange(d) < (d + 1) // 2).float()
    return torch.stack([first_half if k % 2 == 0 else 1 - first_half for k in range(n_layers)])


def _check_mask_size(d: int, n_layers: int) -> None:
    if d < 2:
        raise ValueError(f"a coupling layer needs at least 2 dimensions to split, got d={d}")
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}")


def checkerboard_mask(h: int, w: int) -> Tensor:
    r"""Spatial checkerboard of shape ``(h, w)``: 1 where :math:`i + j` is even (RealNVP's image mask).

    It broadcasts against images ``(batch, C, h, w)``; ``1 - mask`` is the complementary board.

    >>> checkerboard_mask(2, 3)
    tensor([[1., 0., 1.],
            [0., 1., 0.]])
    """
    if h < 1 or w < 1 or h * w < 2:
        raise ValueError(f"checkerboard needs at least 2 pixels, got h={h}, w={w}")
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return ((i + j) % 2 == 0).float()


def channel_mask(c: int) -> Tensor:
    r"""Channel mask of shape ``(c, 1, 1)``: the first :math:`\lfloor c/2 \rfloor` channels are kept (1).

    >>> channel_mask(4).flatten()
    tensor([1., 1., 0., 0.])
    """
    if c < 2:
        raise ValueError(f"a channel mask needs at least 2 channels, got c={c}")
    return (torch.arange(c) < c // 2).float().reshape(c, 1, 1)


def mlp_conditioner(d: int, hidden: int, out: int) -> nn.Sequential:
    r"""The conditioner :math:`\mathbb{R}^d \to \mathbb{R}^{\text{out}}`: two hidden ReLU layers.

    The last layer starts at zero so a fresh coupling layer is the identity (log-det 0), which keeps the
    first training steps stable; tests randomise it (a check at the identity could not fail).
    """
    net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                        nn.Linear(hidden, out))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def _as_mask(mask: Tensor) -> Tensor:
    mask = torch.as_tensor(mask, dtype=torch.get_default_dtype())
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"mask must contain only 0s and 1s, got values {mask.unique().tolist()}")
    if bool((mask == 1).all()) or bool((mask == 0).all()):
        raise ValueError("mask must keep some coordinates (1) and transform others (0), got all equal")
    return mask


def _check_input(mask: Tensor, z: Tensor, name: str) -> None:
    """A vector layer (1-D mask) needs ``(batch, d)``; an image layer needs a batch its mask broadcasts to."""
    if mask.dim() == 1:
        check_batch(z, tuple(mask.shape), name=name)  # (batch, d): the mask broadcasts, no need to ask
    else:
        check_batch(z, name=name)
        _check_mask(mask, z)


class AffineCoupling(Flow):
    r"""RealNVP affine coupling layer, base→data: :math:`x = m\odot z + (1-m)\odot(z\odot e^{\log s}+t)`.

    :math:`(\log s, t) = \mathrm{NN}(m \odot z)`: the conditioner's input is the masked point, so it
    sees only the kept half :math:`z_a` — exactly what makes the Jacobian triangular. Its output has twice
    the event size and is split by ``chunk`` along dimension 1 into :math:`\log s` and :math:`t` (no
    index-based split/merge: the whole layer is elementwise arithmetic plus one network call). The
    log-scale is soft-clamped, :math:`\log s \leftarrow b\tanh(\log s/b)` with :math:`b` = ``clamp``;
    ``clamp=None`` leaves it raw, which overflows for large inputs (shown in the tests).

    ``forward(z)`` returns ``(x, Σ(1-m)⊙log s)``; ``inverse(x)`` returns ``(z, -Σ(1-m)⊙log s)``.

    With a 1-D mask and no ``net`` the conditioner is an MLP from the kept coordinates :math:`z_a` to
    :math:`(\log s_b, t_b)` on the transformed ones: the masked network above without the first-layer columns
    that only ever multiply the zeros of :math:`m\odot z` and the last-layer rows whose outputs
    :math:`(1-m)` discards — the same functions, half the matrix work. When each half is one contiguous
    block (any mask on :math:`d = 2`, :func:`half_masks`) the halves are one ``split`` merged by one
    ``cat``; otherwise (e.g. :func:`alternating_masks`) they are gathered by ``index_select`` and merged by
    ``index_copy``.

    Args:
        mask: 0/1 tensor broadcasting against one event (1 = kept); a 1-D mask ``(d,)`` gets the default
            MLP conditioner.
        hidden: width of the default MLP conditioner.
        clamp: soft-clamp bound for :math:`\log s`, or ``None`` for none.
        net: optional conditioner mapping ``m ⊙ z`` of shape ``(batch, *event)`` to ``(batch, 2·C, …)``,
            e.g. a convolutional network for images with :func:`checkerboard_mask` / :func:`channel_mask`.
            Without it (1-D masks only) the layer builds the MLP on the halves described above.

    References: Dinh, Sohl-Dickstein & Bengio (2017), *Density estimation using Real NVP*.

    >>> layer = AffineCoupling(torch.tensor([1.0, 0.0]), hidden=8)
    >>> z = torch.randn(3, 2)
    >>> x, logdet = layer(z)
    >>> bool((x[:, 0] == z[:, 0]).all())  # the kept half passes through exactly
    True
    """

    def __init__(self, mask: Tensor, hidden: int = 64, clamp: float | None = 2.0, *,
                 net: nn.Module | None = None) -> None:
        super().__init__()
        mask = _as_mask(mask)
        if clamp is not None and not clamp > 0:
            raise ValueError(f"clamp must be positive or None, got {clamp}")
        if net is None:
            if mask.dim() != 1:
                raise ValueError(
                    f"the default MLP conditioner needs a 1-D mask (d,), got shape {tuple(mask.shape)}; "
                    "pass net= for image masks"
                )
            self._split_halves(mask)
            net = mlp_conditioner(self.kept.numel(), hidden, 2 * self.moved.numel())
        else:
            self.kept = self.moved = None
            self.layout = "masked"
        self.register_buffer("mask", mask)
        self.net = net
        self.clamp = clamp

    def _split_halves(self, mask: Tensor) -> None:
        """Index buffers of the kept and the moved coordinates, and how to split and merge them."""
        kept, moved = (mask == 1).nonzero().flatten(), (mask == 0).nonzero().flatten()
        if kept.numel() == 0 or moved.numel() == 0:
            raise ValueError(f"the mask must keep some coordinates and transform others, got {mask.tolist()}")
        # not persistent: derived from the mask
        self.register_buffer("kept", kept, persistent=False)
        self.register_buffer("moved", moved, persistent=False)
        # a gather/scatter by these indices costs ~15 % of a RealNVP training step at d = 64: when each half is
        # one contiguous run (any mask on d = 2, a half split), one split and one cat do the same work
        first_kept, first_moved = int(kept[0]), int(moved[0])
        contiguous = torch.equal(kept, torch.arange(first_kept, first_kept + kept.numel())) and torch.equal(
            moved, torch.arange(first_moved, first_moved + moved.numel()))
        self.layout = "blocks" if contiguous else "indexed"
        self.kept_first = first_kept == 0
        self.sizes = [kept.numel(), moved.numel()] if self.kept_first else [moved.numel(), kept.numel()]

    def _clamped(self, log_s: Tensor, sign: float = 1.0) -> Tensor:
        """``sign`` times the soft-clamped log-scale; the sign rides on the scalar factor, not an extra pass."""
        if self.clamp is None:
            return log_s if sign > 0 else -log_s
        return torch.tanh(log_s / self.clamp) * (sign * self.clamp)  # = sign * soft_clamp(log_s, clamp)

    def _masked_conditioner(self, z: Tensor) -> tuple[Tensor, Tensor]:
        r"""``(log_s, t) = net(m ⊙ z)`` on the whole event (a given ``net``), :math:`\log s` soft-clamped."""
        log_s, t = self.net(self.mask * z).chunk(2, dim=1)
        return self._clamped(log_s), t

    def _halves(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(z_a, z_b)``, the kept and the moved coordinates."""
        if self.layout == "blocks":  # one split: its backward is one cat, not two zero-filled slices
            if self.kept_first:
                return z.split(self.sizes, dim=1)
            z_b, z_a = z.split(self.sizes, dim=1)
            return z_a, z_b
        return z.index_select(1, self.kept), z.index_select(1, self.moved)

    def _merged(self, z: Tensor, z_a: Tensor, y_b: Tensor) -> Tensor:
        """The point with kept coordinates ``z_a`` and moved ones ``y_b`` (``z``: the input, for its layout)."""
        if self.layout == "blocks":
            return torch.cat((z_a, y_b) if self.kept_first else (y_b, z_a), dim=1)
        return z.index_copy(1, self.moved, y_b)

    def _moved_conditioner(self, z_a: Tensor, sign: float = 1.0) -> tuple[Tensor, Tensor]:
        r"""``(sign·log_s_b, t_b)`` on the moved coordinates, from the kept ones (the default MLP)."""
        log_s, t = self.net(z_a).chunk(2, dim=1)
        return self._clamped(log_s, sign), t

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(x, log|det ∂x/∂z|)``."""
        _check_input(self.mask, z, "z")
        if self.kept is None:
            return coupling_forward(z, self.mask, *self._masked_conditioner(z))
        z_a, z_b = self._halves(z)
        log_s, t = self._moved_conditioner(z_a)
        return self._merged(z, z_a, z_b * torch.exp(log_s) + t), log_s.sum(1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: return ``(z, log|det ∂z/∂x|)``; ``x_a = z_a`` so the conditioner sees the same input."""
        _check_input(self.mask, x, "x")
        if self.kept is None:
            return coupling_inverse(x, self.mask, *self._masked_conditioner(x))
        x_a, x_b = self._halves(x)
        neg_log_s, t = self._moved_conditioner(x_a, sign=-1.0)
        return self._merged(x, x_a, (x_b - t) * torch.exp(neg_log_s)), neg_log_s.sum(1)


class AdditiveCoupling(Flow):
    r"""NICE additive coupling, base→data: :math:`x = z + (1-m)\odot t(m\odot z)`, log-det exactly 0.

    The Jacobian is triangular with ones on the diagonal, so the layer is **volume-preserving**:
    :math:`|\det J| = 1` at every point, it cannot expand or shrink any region, and a stack of them cannot
    change the base's differential entropy. (The seeds call NICE "non-volume-preserving"; that is
    RealNVP's name — "Real-valued Non-Volume Preserving" — chosen precisely because it adds the scale
    NICE lacks.) Volume preservation does not make the output Gaussian: a nonlinear shift bends the
    Gaussian (e.g. :math:`x_2 = z_2 + z_1^2` is a banana) while keeping every area.

    It is the affine coupling with :math:`\log s \equiv 0`. ``forward`` and ``inverse`` return log-dets
    of zeros, shape ``(batch,)``.

    References: Dinh, Krueger & Bengio (2015), *NICE: Non-linear Independent Components Estimation*.

    >>> layer = AdditiveCoupling(torch.tensor([1.0, 0.0]), hidden=8)
    >>> layer(torch.randn(3, 2))[1]
    tensor([0., 0., 0.])
    """

    def __init__(self, mask: Tensor, hidden: int = 64, *, net: nn.Module | None = None) -> None:
        super().__init__()
        mask = _as_mask(mask)
        if net is None:
            if mask.dim() != 1:
                raise ValueError(
                    f"the default MLP conditioner needs a 1-D mask (d,), got shape {tuple(mask.shape)}; "
                    "pass net= for image masks"
                )
            net = mlp_conditioner(mask.numel(), hidden, mask.numel())
        self.register_buffer("mask", mask)
        self.net = net

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base→data: return ``(x, 0)``."""
        _check_input(self.mask, z, "z")
        return coupling_forward(z, self.mask, torch.zeros_like(z), self.net(self.mask * z))

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data→base: return ``(z, 0)``."""
        _check_input(self.mask, x, "x")
        return coupling_inverse(x, self.mask, torch.zeros_like(x), self.net(self.mask * x))


def RealNVP(d: int, n_layers: int, hidden: int = 64, clamp: float | None = 2.0) -> FlowSequence:
    r"""A RealNVP flow on :math:`\mathbb{R}^d`: ``n_layers`` affine couplings whose masks swap halves.

    Layer :math:`k` keeps the first half of the coordinates when :math:`k` is even and the second half when
    it is odd (:func:`half_masks`), so two consecutive layers transform every coordinate. Any complementary
    pair does that; contiguous halves are the fast one (for :math:`d = 2` they are the alternating masks).
    Returns a :class:`FlowSequence` (base→data forward); wrap it in
    ``FlowDistribution(flow, StandardNormal(d))`` to get ``log_prob`` and ``sample``.

    References: Dinh, Sohl-Dickstein & Bengio (2017), *Density estimation using Real NVP*.

    >>> flow = RealNVP(2, n_layers=6, hidden=32)
    >>> len(flow.layers), [layer.mask.tolist() for layer in flow.layers[:2]]
    (6, [[1.0, 0.0], [0.0, 1.0]])
    """
    masks = half_masks(d, n_layers)
    return FlowSequence(*[AffineCoupling(m, hidden, clamp) for m in masks])


# Answers to the lesson's questions: each constant is named after the check that grades it.
quiz_03_q3 = "B"  # scale non-zero, typically positive via exp
quiz_03_same_mask = "C"  # every layer keeps x_1 = z_1: the model's x_1 marginal stays N(0, 1)
quiz_03_inverse_passes = "D"  # one conditioner pass: (log s, t) come from x_a = z_a, never inverted
quiz_03_nice = "A"  # additive coupling bends the Gaussian but p_X(f(z)) = p_Z(z): the peak stays 1/(2π)
quiz_03_nice_peak = 0.15915494309189535  # 1/(2π): a volume-preserving flow keeps the 2-D base's peak density
quiz_03_nats_per_dim = -1.18  # −2.36 nats per 2-D point / d = 2
