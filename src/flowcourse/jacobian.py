r"""Independent truth for log-determinants: autograd Jacobians and ``slogdet``.

Every hand-derived log-det in the course — the answer key's and a student's — is checked against
:math:`\log|\det J|` of the Jacobian that autograd computes from the map itself. This costs
:math:`O(d^3)` per point (the very cost structured flows avoid), so it is for checking, never training.

>>> import torch
>>> A = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
>>> jacobian_logdet(lambda z: z @ A.T, torch.zeros(1, 2, dtype=torch.float64))
tensor([1.7918], dtype=torch.float64)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["batch_jacobian", "jacobian_logdet"]


def _first(out: Tensor | tuple[Tensor, ...]) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


def batch_jacobian(f: Callable[[Tensor], Tensor | tuple[Tensor, ...]], z: Tensor) -> Tensor:
    """Per-sample Jacobians ``∂f(z_i)/∂z_i`` of shape ``(batch, D, D)``, ``D`` the flattened event size.

    ``f`` maps a batch ``(batch, *event)`` to a batch of the same size (a tuple output's first element is
    used, so a flow's ``forward``/``inverse`` can be passed directly). Samples are pushed through ``f`` one
    at a time, so any coupling across the batch (a bug) cannot leak into the result.
    """
    event = z.shape[1:]
    rows = []
    for zi in z:
        def single(v: Tensor) -> Tensor:
            return _first(f(v.reshape(1, *event))).reshape(-1)

        rows.append(torch.autograd.functional.jacobian(single, zi.reshape(-1)))
    return torch.stack(rows)


def jacobian_logdet(f: Callable[[Tensor], Tensor | tuple[Tensor, ...]], z: Tensor) -> Tensor:
    r""":math:`\log|\det \partial f/\partial z|` per sample, shape ``(batch,)``, by autograd and ``slogdet``."""
    return torch.linalg.slogdet(batch_jacobian(f, z)).logabsdet
