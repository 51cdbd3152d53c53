r"""The layers of lessons 05 and 06 that lesson 07's demos use, released with the lesson.

``from sylvester_layers import SylvesterStack`` in the notebook's folder gives

* :func:`sylvester_forward`, the layer :math:`x = z + A\,h(B^\top z + b)` with its log-det by Sylvester's
  identity (lesson 06);
* :class:`SylvesterStack`, a stack of such layers, random and contractive, with a fixed-point inverse;
* :class:`Planar`, a tanh planar layer with the invertible :math:`\hat u` (lesson 05).

Every map goes base→data and returns ``(x, log|det ∂x/∂z|)``; the tests of lesson 07 compare each with the
answer keys of lessons 05 and 06.

>>> import torch
>>> stack = SylvesterStack.random(5, [1, 2], seed=0)
>>> stack.neurons, stack(torch.zeros(3, 5, dtype=torch.float64))[0].shape
(3, torch.Size([3, 5]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowcourse.base import Flow, StandardNormal, check_batch

__all__ = ["ACTIVATIONS", "nonlinearity", "sylvester_forward", "SylvesterStack", "Planar"]

ACTIVATIONS = ("tanh", "relu", "leaky_relu")
NEGATIVE_SLOPE = 0.01  # leaky ReLU's slope for negative arguments


def nonlinearity(a: Tensor, name: str = "tanh") -> tuple[Tensor, Tensor]:
    """The non-linearity ``name`` and its derivative, elementwise: ``(h(a), h'(a))``."""
    if name == "tanh":
        h = torch.tanh(a)
        return h, 1 - h**2
    if name in ("relu", "leaky_relu"):
        low = 0.0 if name == "relu" else NEGATIVE_SLOPE
        positive = a > 0
        return torch.where(positive, a, low * a), torch.where(positive, torch.ones_like(a), torch.full_like(a, low))
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def sylvester_forward(
    z: Tensor, A: Tensor, B: Tensor, b: Tensor, activation: str = "tanh"
) -> tuple[Tensor, Tensor]:
    r"""The Sylvester layer :math:`x = z + A\,h(B^\top z + b)`, ``A, B`` ``(d, m)``, ``b`` ``(m,)``, and

    .. math::
        \log|\det J(z)| = \log\left|\det\big(I_m + \operatorname{diag} h'(B^\top z + b)\, B^\top A\big)\right|,

    an :math:`m \times m` determinant per sample (Sylvester's determinant identity).
    """
    check_batch(z, (A.shape[0],))
    h, dh = nonlinearity(z @ B + b, activation)
    small = torch.eye(A.shape[1], dtype=z.dtype) + dh.unsqueeze(2) * (B.T @ A)
    return z + h @ A.T, torch.linalg.slogdet(small).logabsdet


class SylvesterStack(Flow):
    r"""A stack of Sylvester layers :math:`f_k(z) = z + A_k h(B_k^\top z + b_k)`, base→data.

    :math:`A_k, B_k \in \mathbb{R}^{d\times m_k}`, :math:`b_k \in \mathbb{R}^{m_k}`, :math:`M = \sum_k m_k`
    neurons in total (:math:`m_k = 1` is a planar layer), :math:`h` one of :data:`ACTIVATIONS`. Each layer is
    :func:`sylvester_forward`.

    :meth:`random` scales :math:`A_k` so that :math:`\|A_k\|_2 \|B_k\|_2 = \lambda < 1`; as
    :math:`|h'| \le 1`, each residual :math:`A_k h(B_k^\top z + b_k)` is then a :math:`\lambda`-contraction,
    so every layer is a bijection whose inverse is the limit of the iteration
    :math:`z \leftarrow x - A_k h(B_k^\top z + b_k)` (:meth:`fixed_point_inverse`).
    ``inverse`` itself raises, as for every Sylvester layer: there is no closed form.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*;
    Kong & Chaudhuri (2020); Behrmann et al. (2019), *Invertible Residual Networks*.
    """

    def __init__(
        self, A: Sequence[Tensor], B: Sequence[Tensor], b: Sequence[Tensor], activation: str = "tanh"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not len(A) == len(B) == len(b) or not A:
            raise ValueError(
                f"A, B and b must be non-empty lists of one length, got {len(A)}, {len(B)}, {len(b)}"
            )
        for k, (Ak, Bk, bk) in enumerate(zip(A, B, b, strict=True)):
            if (
                Ak.dim() != 2
                or Ak.shape != Bk.shape
                or bk.shape != (Ak.shape[1],)
                or Ak.shape[0] != A[0].shape[0]
            ):
                raise ValueError(
                    f"layer {k}: A and B must be (d, m) and b (m,), got {tuple(Ak.shape)}, "
                    f"{tuple(Bk.shape)}, {tuple(bk.shape)}"
                )
        self.A = nn.ParameterList(A)
        self.B = nn.ParameterList(B)
        self.b = nn.ParameterList(b)
        self.activation = activation
        self.dim = A[0].shape[0]

    @classmethod
    def random(
        cls,
        d: int,
        neurons: Sequence[int],
        *,
        activation: str = "tanh",
        lipschitz: float = 0.5,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> SylvesterStack:
        r"""Random non-identity layers, :math:`m_k` = ``neurons[k]``, contraction factor ``lipschitz``."""
        if not 0 < lipschitz < 1:
            raise ValueError(f"lipschitz must be in (0, 1) for the layers to be invertible, got {lipschitz}")
        g = torch.Generator().manual_seed(seed)
        A, B, b = [], [], []
        for m in neurons:
            Ak = torch.randn(d, m, generator=g, dtype=dtype)
            Bk = torch.randn(d, m, generator=g, dtype=dtype)
            scale = lipschitz / (torch.linalg.matrix_norm(Ak, 2) * torch.linalg.matrix_norm(Bk, 2))
            A.append(Ak * scale)
            B.append(Bk)
            b.append(torch.randn(m, generator=g, dtype=dtype))
        return cls(A, B, b, activation)

    @property
    def neurons(self) -> int:
        """The total number of neurons :math:`M = \\sum_k m_k`."""
        return sum(Bk.shape[1] for Bk in self.B)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|det ∂x/∂z|)``, applying layer 1 first."""
        check_batch(z, (self.dim,))
        logdet = z.new_zeros(z.shape[0])
        for A, B, b in zip(self.A, self.B, self.b, strict=True):
            z, ld = sylvester_forward(z, A, B, b, self.activation)
            logdet = logdet + ld
        return z, logdet

    def fixed_point_inverse(self, x: Tensor, iters: int = 200) -> Tensor:
        r"""Undo the layers, last first, each by the Banach iteration
        :math:`z \leftarrow x - A h(B^\top z + b)`.

        Converges like :math:`\lambda^{iters}` for contraction factor :math:`\lambda`; differentiable.
        """
        check_batch(x, (self.dim,), name="x")
        for A, B, b in zip(reversed(self.A), reversed(self.B), reversed(self.b), strict=True):
            z = x
            for _ in range(iters):
                z = x - nonlinearity(z @ B + b, self.activation)[0] @ A.T
            x = z
        return x

    def pushforward_log_prob(self, x: Tensor) -> Tensor:
        r""":math:`\log p(x)` for :math:`p = f_\#\mathcal N(0, I)`:
        :math:`\log\varphi(z) - \log|\det J_f(z)|` with :math:`z = f^{-1}(x)` from
        :meth:`fixed_point_inverse`."""
        z = self.fixed_point_inverse(x)
        _, logdet = self(z)
        return StandardNormal(self.dim).to(x.dtype).log_prob(z) - logdet


class Planar(Flow):
    r"""A tanh planar layer :math:`x = z + \hat u \tanh(w^\top z + b)`, base→data, invertible for all
    parameters through :math:`\hat u = u + (\operatorname{softplus}(w^\top u) - 1 - w^\top u)\,w/\lVert w\rVert^2`
    (so :math:`w^\top\hat u > -1`). Initialised like lesson 05's layer: :math:`u, w \sim U(\pm 1/\sqrt d)`,
    :math:`b = 0`.

    References: Rezende & Mohamed (2015), *Variational Inference with Normalizing Flows*, appendix A.1.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d)
        self.u = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.w = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.zeros(()))

    def u_hat(self) -> Tensor:
        r"""The :math:`\hat u` the layer applies."""
        wu = self.w @ self.u
        return self.u + (F.softplus(wu) - 1.0 - wu) * self.w / (self.w @ self.w)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|det ∂x/∂z|)``, shapes ``(batch, d)`` and ``(batch,)``."""
        return sylvester_forward(z, self.u_hat().unsqueeze(1), self.w.unsqueeze(1), self.b.reshape(1))
