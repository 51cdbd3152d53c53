r"""Sylvester and Householder flows (lesson 06): m hidden units, and reflections.

Every flow here maps base→data, :math:`x = f(z)`, as in :mod:`flowcourse.base`.

**Sylvester.** :math:`f(z) = z + A\,h(B^\top z + b)` with :math:`A, B \in \mathbb{R}^{d\times m}`,
:math:`b \in \mathbb{R}^m`: a residual block with :math:`m` neurons (:math:`m = 1` is the planar layer).
Its Jacobian :math:`I_d + A \operatorname{diag}(h') B^\top` has a :math:`d\times d` determinant that
Sylvester's identity :math:`\det(I_d + MN) = \det(I_m + NM)` turns into an :math:`m\times m` one:

.. math::
    \log\left|\det\frac{\partial f}{\partial z}\right|
    = \log\left|\det\left(I_m + \operatorname{diag}\bigl(h'(B^\top z + b)\bigr) B^\top A\right)\right|.

van den Berg et al. write :math:`A = QR`, :math:`B = Q\tilde R^\top` with :math:`Q \in \mathbb{R}^{d\times m}`
having orthonormal columns and :math:`R, \tilde R` upper triangular, i.e.
:math:`f(z) = z + QR\,h(\tilde R Q^\top z + b)`. Then :math:`B^\top A = \tilde R Q^\top Q R = \tilde R R` is
upper triangular and the determinant is the product of the diagonal:

.. math::
    \log\left|\det\frac{\partial f}{\partial z}\right|
    = \sum_{i=1}^m \log\left|1 + h'(a_i)\,\tilde R_{ii} R_{ii}\right|,
    \qquad a = \tilde R Q^\top z + b.

The classes differ only in how :math:`Q` is built: from a QR decomposition (:class:`OrthogonalSylvester`),
from Householder reflections (:class:`HouseholderSylvester`) or as a fixed permutation
(:class:`TriangularSylvester`). None has a closed-form inverse.

**Householder.** :math:`H = I - 2vv^\top/\lVert v\rVert^2` reflects across the hyperplane orthogonal to
:math:`v`: orthogonal, symmetric, its own inverse, :math:`\det H = -1`. A stack of reflections is a
volume-preserving flow (log-det exactly 0).

References: van den Berg, Hasenclever, Tomczak & Welling (2018), *Sylvester Normalizing Flows for
Variational Inference*; Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder
Flow*.
"""

from __future__ import annotations

import math

import torch
from flowcourse_lessons.lesson_05.key import _check_activation, _check_param, _vector_size, planar_activation
from torch import Tensor, nn

from flowcourse.base import Flow, check_batch

__all__ = [
    "sylvester_logdet",
    "sylvester_forward",
    "qr_sylvester_forward",
    "householder_reflect",
    "householder_product",
    "householder_forward",
    "householder_inverse",
    "Householder",
    "QRSylvester",
    "OrthogonalSylvester",
    "HouseholderSylvester",
    "TriangularSylvester",
]


# tanh(8) = 1 - 2.3e-7 is still below 1 in float32, so 1 + h' R~_ii R_ii >= 4.8e-7 stays positive.
_RHO_MAX = 8.0


def _matrix_shape(name: str, M: object) -> tuple[int, int]:
    """The shape of a parameter that must be a floating-point matrix."""
    if not isinstance(M, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(M).__name__}")
    if not M.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got {M.dtype}")
    if M.dim() != 2:
        raise ValueError(f"{name} must be a matrix of shape (d, m), got shape {tuple(M.shape)}")
    return M.shape[0], M.shape[1]


def _check_sylvester(z: Tensor, A: Tensor, B: Tensor, b: Tensor) -> None:
    """Validate ``z`` ``(batch, d)``, ``A`` and ``B`` ``(d, m)``, ``b`` ``(m,)``, all of one dtype."""
    d, m = _matrix_shape("A", A)
    check_batch(z, (d,))
    _check_param("A", A, (d, m), z.dtype)
    _check_param("B", B, (d, m), z.dtype)
    _check_param("b", b, (m,), z.dtype)


def sylvester_logdet(
    z: Tensor, A: Tensor, B: Tensor, b: Tensor, activation: str = "tanh", negative_slope: float = 0.01
) -> Tensor:
    r"""Log-det of :math:`f(z) = z + A\,h(B^\top z + b)` by Sylvester's identity, shape ``(batch,)``.

    .. math::
        \det\left(I_d + A \operatorname{diag}(h') B^\top\right)
        = \det\left(I_m + \operatorname{diag}(h') B^\top A\right),

    an :math:`m\times m` determinant per sample (:math:`O(m^3)` instead of :math:`O(d^3)`). No structure is
    assumed in :math:`A, B`, so this is the general form, valid for any :math:`m` (even :math:`m > d`).
    Direction: base→data, :math:`\log|\det\partial f/\partial z|`.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*, eq. (8).

    With :math:`m = 1` it is the planar log-det (worked example 3 of lesson 05):

    >>> z = torch.tensor([[0.5, -0.5]])
    >>> A, B = torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0], [2.0]])
    >>> sylvester_logdet(z, A, B, torch.zeros(1)).round(decimals=4)
    tensor([0.5802])
    """
    _check_sylvester(z, A, B, b)
    _, dh = planar_activation(z @ B + b, activation, negative_slope)
    m = A.shape[1]
    small = torch.eye(m, dtype=z.dtype, device=z.device) + dh.unsqueeze(2) * (B.T @ A)
    return torch.linalg.slogdet(small).logabsdet


def sylvester_forward(
    z: Tensor, A: Tensor, B: Tensor, b: Tensor, activation: str = "tanh", negative_slope: float = 0.01
) -> tuple[Tensor, Tensor]:
    r"""The Sylvester map :math:`x = z + A\,h(B^\top z + b)` and its log-det (:func:`sylvester_logdet`).

    Direction: base→data. ``z`` has shape ``(batch, d)``, ``A`` and ``B`` shape ``(d, m)``, ``b`` shape
    ``(m,)``; returns ``(x, log|det ∂x/∂z|)``. Invertibility is not guaranteed for free :math:`A, B`; the
    :class:`QRSylvester` layers constrain them so that it is.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*, eq. (9).

    >>> x, ld = sylvester_forward(torch.zeros(1, 2), torch.eye(2), torch.eye(2), torch.ones(2))
    >>> x.round(decimals=4)
    tensor([[0.7616, 0.7616]])
    """
    _check_sylvester(z, A, B, b)
    h, _ = planar_activation(z @ B + b, activation, negative_slope)
    return z + h @ A.T, sylvester_logdet(z, A, B, b, activation, negative_slope)


def _check_orthonormal_columns(Q: Tensor) -> None:
    """Raise ``ValueError`` unless :math:`Q^\\top Q = I_m` to within rounding."""
    m = Q.shape[1]
    err = (Q.T @ Q - torch.eye(m, dtype=Q.dtype, device=Q.device)).abs().max()
    # sqrt(eps) leaves room for QR / reflection round-off and still catches a non-orthogonal Q.
    if bool(err > math.sqrt(torch.finfo(Q.dtype).eps)):
        raise ValueError(f"Q must have orthonormal columns (Q^T Q = I); max|Q^T Q - I| is {float(err):.3g}")


def _check_upper_triangular(name: str, R: Tensor) -> None:
    if bool((torch.tril(R, diagonal=-1) != 0).any()):
        raise ValueError(f"{name} must be upper triangular, got non-zero entries below the diagonal")


def qr_sylvester_forward(
    z: Tensor,
    Q: Tensor,
    R: Tensor,
    R_tilde: Tensor,
    b: Tensor,
    activation: str = "tanh",
    negative_slope: float = 0.01,
) -> tuple[Tensor, Tensor]:
    r"""The triangular-parameterised Sylvester map :math:`x = z + QR\,h(\tilde R Q^\top z + b)`.

    Direction: base→data; returns ``(x, log|det ∂x/∂z|)`` with

    .. math::
        \log\left|\det\frac{\partial f}{\partial z}\right|
        = \sum_i \log\left|1 + h'(a_i)\,\tilde R_{ii} R_{ii}\right|,

    which holds because :math:`Q^\top Q = I_m` makes :math:`B^\top A = \tilde R R` upper triangular. ``Q``
    is ``(d, m)`` with orthonormal columns, ``R`` and ``R_tilde`` are upper triangular ``(m, m)``, ``b``
    is ``(m,)``; a ``Q`` or ``R`` without that structure raises ``ValueError`` (the formula would be wrong).

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*, eq. (13).

    >>> R = torch.tensor([[0.5, 1.0], [0.0, -0.5]])
    >>> qr_sylvester_forward(torch.zeros(1, 2), torch.eye(2), R, R, torch.zeros(2))[1].round(decimals=4)
    tensor([0.4463])
    """
    d, m = _matrix_shape("Q", Q)
    check_batch(z, (d,))
    _check_param("Q", Q, (d, m), z.dtype)
    _check_param("R", R, (m, m), z.dtype)
    _check_param("R_tilde", R_tilde, (m, m), z.dtype)
    _check_param("b", b, (m,), z.dtype)
    _check_orthonormal_columns(Q)
    _check_upper_triangular("R", R)
    _check_upper_triangular("R_tilde", R_tilde)
    h, dh = planar_activation(z @ Q @ R_tilde.T + b, activation, negative_slope)
    diag = torch.diagonal(R_tilde) * torch.diagonal(R)
    return z + h @ (Q @ R).T, torch.log(torch.abs(1.0 + dh * diag)).sum(1)


def householder_reflect(z: Tensor, v: Tensor) -> Tensor:
    r"""Reflect each row of ``z`` across the hyperplane orthogonal to :math:`v`.

    .. math::
        H z = z - 2\,\frac{v v^\top z}{\lVert v\rVert^2}

    :math:`H` is orthogonal and symmetric, :math:`H^2 = I` and :math:`\det H = -1`, so
    :math:`\log|\det H| = 0`. Only the direction of :math:`v` matters; :math:`v = 0` raises ``ValueError``.

    References: Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder Flow*.

    >>> householder_reflect(torch.tensor([[1.0, 0.0]]), torch.tensor([1.0, 1.0])).round(decimals=4) + 0.0
    tensor([[ 0., -1.]])
    """
    check_batch(z, (_vector_size("v", v),))
    _check_param("v", v, tuple(v.shape), z.dtype)
    if not bool((v != 0).any()):
        raise ValueError("v must be non-zero: a reflection needs a direction")
    # Dividing by max|v_i| first keeps ||v|| itself from overflowing (float32, |v| ~ 1e20).
    v_scaled = v / v.abs().max()
    v_unit = v_scaled / torch.linalg.vector_norm(v_scaled)
    return z - 2.0 * (z @ v_unit).unsqueeze(1) * v_unit


def householder_product(vs: Tensor) -> Tensor:
    r"""The orthogonal matrix :math:`Q = H_1 H_2 \cdots H_K` of the reflections along the rows of ``vs``.

    ``vs`` has shape ``(K, d)``; returns a ``(d, d)`` matrix with :math:`Q^\top Q = I` and
    :math:`\det Q = (-1)^K`.

    References: Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder Flow*.

    >>> householder_product(torch.tensor([[1.0, 0.0], [1.0, 1.0]])).round(decimals=4) + 0.0  # a rotation
    tensor([[ 0.,  1.],
            [-1.,  0.]])
    """
    _matrix_shape("vs", vs)
    q = torch.eye(vs.shape[1], dtype=vs.dtype, device=vs.device)
    for v in vs:
        q = householder_reflect(q, v)  # rows of I H_1 ... H_{k-1} times H_k (H_k is symmetric)
    return q


def _check_reflections(z: Tensor, vs: Tensor) -> None:
    """Validate ``vs`` ``(K, d)`` with ``K >= 1`` and ``z`` ``(batch, d)`` of the same dtype."""
    k, d = _matrix_shape("vs", vs)
    if k < 1:
        raise ValueError(f"vs must hold at least one reflection vector, got shape {tuple(vs.shape)}")
    check_batch(z, (d,))
    _check_param("vs", vs, (k, d), z.dtype)


def householder_forward(z: Tensor, vs: Tensor) -> tuple[Tensor, Tensor]:
    r"""The Householder flow :math:`x = H_K \cdots H_2 H_1 z`, the reflection along ``vs[0]`` applied first.

    .. math::
        H_k = I - 2\,\frac{v_k v_k^\top}{\lVert v_k\rVert^2}, \qquad
        \log\left|\det\frac{\partial x}{\partial z}\right| = \sum_k \log|\det H_k| = \sum_k \log|-1| = 0.

    Direction: base→data; returns ``(x, zeros(batch))``. The log-det is exactly 0, never
    :math:`\log(\det H_k) = \log(-1)`: the *absolute* determinant of a reflection is 1. ``vs`` has shape
    ``(K, d)``, one non-zero reflection vector per row. Note the order: the flow applies
    :math:`H_1` first, so its matrix is :math:`H_K \cdots H_1`, the transpose of
    :func:`householder_product`'s :math:`H_1 \cdots H_K`.

    References: Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder Flow*.

    >>> x, ld = householder_forward(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    >>> x.round(decimals=4) + 0.0, ld
    (tensor([[0., 1.]]), tensor([0.]))
    """
    _check_reflections(z, vs)
    for v in vs:
        z = householder_reflect(z, v)
    return z, z.new_zeros(z.shape[0])


def householder_inverse(x: Tensor, vs: Tensor) -> tuple[Tensor, Tensor]:
    r"""Undo :func:`householder_forward`: :math:`z = H_1 H_2 \cdots H_K x`, the last reflection undone first.

    Each :math:`H_k` is its own inverse, so :math:`(H_K\cdots H_1)^{-1} = H_1 \cdots H_K`: the same
    reflections in reverse order (reflections do not commute, so the order matters).
    Direction: data→base; returns ``(z, zeros(batch))``.

    References: Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder Flow*.

    >>> z, ld = householder_inverse(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    >>> z.round(decimals=4) + 0.0, ld
    (tensor([[1., 0.]]), tensor([0.]))
    """
    _check_reflections(x, vs)
    for v in vs.flip(0):
        x = householder_reflect(x, v)
    return x, x.new_zeros(x.shape[0])


class Householder(Flow):
    r"""Reflections :math:`x = H_K \cdots H_1 z`, :math:`H_k = I - 2v_kv_k^\top/\lVert v_k\rVert^2`.

    Volume-preserving: :math:`|\det| = 1`, so both log-dets are exactly 0. Direction: ``forward``
    (base→data) applies :math:`H_1` first; ``inverse`` applies the same reflections in reverse order, since
    each is its own inverse.

    References: Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder Flow*.

    >>> layer = Householder(3, n_reflections=2)
    >>> z = torch.randn(4, 3)
    >>> torch.allclose(layer.inverse(layer(z)[0])[0], z, atol=1e-6)
    True
    """

    def __init__(self, d: int, n_reflections: int = 1) -> None:
        super().__init__()
        _check_size("d", d)
        _check_size("n_reflections", n_reflections)
        self.vs = nn.Parameter(torch.randn(n_reflections, d))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, 0)``, shapes ``(batch, d)`` and ``(batch,)`` (:func:`householder_forward`)."""
        return householder_forward(z, self.vs)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(z, 0)``: the reflections undone from the last to the first (:func:`householder_inverse`)."""
        return householder_inverse(x, self.vs)


def _check_size(name: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")


class QRSylvester(Flow):
    r"""Shared part of the Sylvester layers :math:`x = z + QR\,h(\tilde R Q^\top z + b)`.

    Holds the upper-triangular :math:`R, \tilde R` (``m × m``) and the bias :math:`b` (``m``); a subclass
    supplies :math:`Q` through :meth:`orthogonal`. The diagonals are :math:`R_{ii} = \tanh(\rho_i)`,
    :math:`\tilde R_{ii} = \tanh(\tilde\rho_i)`, so :math:`|\tilde R_{ii}R_{ii}| < 1`; with
    :math:`0 \le h' \le 1` (tanh, ReLU, leaky ReLU with slope in [0, 1]) every factor
    :math:`1 + h'\tilde R_{ii}R_{ii} > 0` and the layer is invertible. The free :math:`\rho` are clamped
    to :math:`[-8, 8]`: beyond :math:`\approx 9`, float32 rounds :math:`\tanh` to exactly :math:`\pm 1`,
    the product can reach :math:`-1` and a ReLU layer turns singular (log-det :math:`-\infty`) on a
    half-space. Off-diagonal entries are free.
    Direction: ``forward`` is base→data (:func:`qr_sylvester_forward`); there is no closed-form inverse.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*.
    """

    def __init__(self, m: int, activation: str = "tanh", negative_slope: float = 0.01) -> None:
        super().__init__()
        _check_size("m", m)
        _check_activation(activation, negative_slope)
        self.activation = activation
        self.negative_slope = negative_slope
        self.r_offdiag = nn.Parameter(0.1 * torch.randn(m, m))
        self.r_diag = nn.Parameter(0.1 * torch.randn(m))
        self.r_tilde_offdiag = nn.Parameter(0.1 * torch.randn(m, m))
        self.r_tilde_diag = nn.Parameter(0.1 * torch.randn(m))
        self.b = nn.Parameter(torch.zeros(m))

    def orthogonal(self) -> Tensor:  # pragma: no cover - interface
        """:math:`Q`, shape ``(d, m)`` with orthonormal columns."""
        raise NotImplementedError

    def triangular(self) -> tuple[Tensor, Tensor]:
        r""":math:`(R, \tilde R)`: free strictly-upper parts, :math:`\tanh` on the diagonals."""
        def diag(rho: Tensor) -> Tensor:
            return torch.diag(torch.tanh(rho.clamp(-_RHO_MAX, _RHO_MAX)))

        r = torch.triu(self.r_offdiag, diagonal=1) + diag(self.r_diag)
        r_tilde = torch.triu(self.r_tilde_offdiag, diagonal=1) + diag(self.r_tilde_diag)
        return r, r_tilde

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(x, log|det ∂x/∂z|)``, shapes ``(batch, d)`` and ``(batch,)``."""
        r, r_tilde = self.triangular()
        act, slope = self.activation, self.negative_slope
        return qr_sylvester_forward(z, self.orthogonal(), r, r_tilde, self.b, act, slope)


class OrthogonalSylvester(QRSylvester):
    r"""Sylvester layer whose :math:`Q` (``d × m``, :math:`m \le d`) is the QR factor of a free matrix.

    :math:`Q` comes from ``torch.linalg.qr`` (differentiable), exactly orthonormal to rounding; the paper's
    iterative orthogonalisation :math:`Q \leftarrow Q(I + \tfrac12(I - Q^\top Q))` only converges to it.
    Direction: base→data. See :class:`QRSylvester` for the constraint that keeps it invertible.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*.

    >>> layer = OrthogonalSylvester(4, 2)
    >>> layer(torch.randn(3, 4))[1].shape
    torch.Size([3])
    """

    def __init__(self, d: int, m: int, activation: str = "tanh", negative_slope: float = 0.01) -> None:
        _check_size("d", d)
        _check_size("m", m)
        if m > d:
            raise ValueError(f"m must be at most d for Q to have orthonormal columns, got m = {m} > d = {d}")
        super().__init__(m, activation, negative_slope)
        self.q_free = nn.Parameter(torch.randn(d, m))

    def orthogonal(self) -> Tensor:
        """:math:`Q` from the reduced QR decomposition of the free ``(d, m)`` matrix."""
        return torch.linalg.qr(self.q_free).Q


class HouseholderSylvester(QRSylvester):
    r"""Sylvester layer with :math:`Q = H_1 \cdots H_K` (:func:`householder_product`), :math:`m = d`.

    Direction: base→data. See :class:`QRSylvester` for the constraint that keeps it invertible.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*;
    Tomczak & Welling (2016), *Improving Variational Auto-Encoders using Householder Flow*.

    >>> layer = HouseholderSylvester(3, n_reflections=2)
    >>> layer(torch.randn(5, 3))[0].shape
    torch.Size([5, 3])
    """

    def __init__(
        self, d: int, n_reflections: int = 1, activation: str = "tanh", negative_slope: float = 0.01
    ) -> None:
        _check_size("d", d)
        _check_size("n_reflections", n_reflections)
        super().__init__(d, activation, negative_slope)
        self.vs = nn.Parameter(torch.randn(n_reflections, d))

    def orthogonal(self) -> Tensor:
        """:math:`Q = H_1 \\cdots H_K`, ``(d, d)``."""
        return householder_product(self.vs)


class TriangularSylvester(QRSylvester):
    r"""Sylvester layer with a fixed :math:`Q`: the identity, or the reversal permutation (``reverse=True``).

    Alternating the two between layers lets the triangular structure point both ways. Direction:
    base→data. See :class:`QRSylvester` for the constraint that keeps it invertible.

    References: van den Berg et al. (2018), *Sylvester Normalizing Flows for Variational Inference*.

    >>> TriangularSylvester(3, reverse=True).orthogonal()
    tensor([[0., 0., 1.],
            [0., 1., 0.],
            [1., 0., 0.]])
    """

    def __init__(
        self, d: int, reverse: bool = False, activation: str = "tanh", negative_slope: float = 0.01
    ) -> None:
        _check_size("d", d)
        super().__init__(d, activation, negative_slope)
        eye = torch.eye(d)
        self.register_buffer("q", eye.flip(0) if reverse else eye)

    def orthogonal(self) -> Tensor:
        """The fixed permutation :math:`Q`, ``(d, d)``."""
        return self.q


# Answers to the lesson's questions: each constant is named after the check that grades it.
quiz_06_identity_test = "B"  # a log-det test at initialisation cannot see errors that grow with the parameters
quiz_06_householder_training = "C"  # reflections on N(0, I): the model stays N(0, I), zero gradient
quiz_06_cost = "D"  # Sylvester's identity: an m x m determinant per sample, O(m^3)
quiz_06_orthogonal_m = "A"  # at most d orthonormal columns in R^d
quiz_06_det_three_reflections = -1.0  # det H = -1 for each reflection, (-1)^3
