"""Evidence: a JSON encoding of what a student's code returned, exact and safe to decode.

The kernel encodes each case's output; the trusted judge decodes it. Tensors and arrays travel as
dtype, shape and base64 bytes (exact, NaN and inf included); floats as their ``repr``; containers
recursively. Decoding never unpickles or evaluates anything, so a hostile payload can only fail to
decode, never run code. Anything else becomes ``Opaque`` (its type name and a truncated repr).

>>> import torch
>>> out = decode(encode((torch.tensor([1.0, float("nan")]), 2.5, "b")))
>>> out[0].dtype, out[0].isnan().tolist(), out[1:]
(torch.float32, [False, True], (2.5, 'b'))
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["MIME", "encode", "decode", "Opaque", "EvidenceError", "MAX_ELEMENTS"]

MIME = "application/vnd.flowcourse.evidence+json"
MAX_ELEMENTS = 1_000_000
_MAX_DEPTH = 6
_MAX_ITEMS = 200
_MAX_TEXT = 10_000


class EvidenceError(ValueError):
    """A payload that is not valid evidence (malformed, truncated or forged)."""


@dataclass(frozen=True)
class Opaque:
    """An output the encoder could not represent (a module, a generator, a too-large tensor…)."""

    type: str
    repr: str

    def __str__(self) -> str:
        return f"<{self.type}: {self.repr}>"


def encode(value: Any, _depth: int = 0) -> dict[str, Any]:
    """Encode ``value`` as JSON-safe data (no NaN floats in the JSON itself)."""
    if _depth > _MAX_DEPTH:
        return _opaque(value, "nested too deeply")
    if isinstance(value, torch.Tensor):
        return _encode_array("tensor", str(value.dtype).removeprefix("torch."), value.detach().cpu(), value)
    if isinstance(value, np.ndarray):
        return _encode_array("ndarray", str(value.dtype), value, value)
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        return {"kind": "const", "value": value}
    if isinstance(value, int):
        return {"kind": "int", "value": str(value)}
    if isinstance(value, float):
        return {"kind": "float", "value": repr(value)}
    if isinstance(value, complex):
        return {"kind": "complex", "value": [repr(value.real), repr(value.imag)]}
    if isinstance(value, str):
        return {"kind": "str", "value": value[:_MAX_TEXT]}
    if isinstance(value, (tuple, list)) and len(value) <= _MAX_ITEMS:
        kind = "tuple" if isinstance(value, tuple) else "list"  # namedtuple, torch.Size: plain tuples
        return {"kind": kind, "items": [encode(v, _depth + 1) for v in value]}
    if isinstance(value, dict) and len(value) <= _MAX_ITEMS and all(isinstance(k, str) for k in value):
        return {"kind": "dict", "items": {k: encode(v, _depth + 1) for k, v in value.items()}}
    return _opaque(value)


def _opaque(value: Any, why: str = "") -> dict[str, Any]:
    try:
        text = why or repr(value)
    except Exception as exc:  # a student's __repr__ may raise
        text = f"repr failed: {type(exc).__name__}"
    return {"kind": "opaque", "type": type(value).__qualname__, "repr": text[:300]}


def _encode_array(kind: str, dtype: str, data: Any, original: Any) -> dict[str, Any]:
    shape = [int(s) for s in data.shape]
    head = {"kind": kind, "dtype": dtype, "shape": shape}
    if math.prod(shape) > MAX_ELEMENTS:
        return {**head, "data": None}
    if isinstance(data, torch.Tensor):
        # numpy has no bfloat16/float16 arithmetic worth trusting; widen, the dtype string keeps the truth
        if data.is_floating_point():
            data = data.to(torch.float64)
        elif data.is_complex():
            data = data.to(torch.complex128)
        data = data.numpy()
    array = np.ascontiguousarray(data)
    if array.dtype.kind == "f":
        array = array.astype("<f8")
    elif array.dtype.kind == "c":
        array = array.astype("<c16")
    elif array.dtype.kind in "iu":
        array = array.astype("<i8")
    elif array.dtype.kind == "b":
        array = array.astype("|b1")
    else:
        return _opaque(original, f"{kind} of dtype {dtype}")
    return {**head, "np": array.dtype.str, "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode(payload: Any) -> Any:
    """Rebuild the value :func:`encode` encoded; tensors come back as CPU tensors of their dtype.

    Raises :class:`EvidenceError` on anything malformed.
    """
    try:
        return _decode(payload)
    except EvidenceError:
        raise
    except Exception as exc:
        raise EvidenceError(f"malformed evidence: {type(exc).__name__}: {exc}") from None


def _decode(p: Any) -> Any:
    if not isinstance(p, dict):
        raise EvidenceError(f"expected an encoded value, got {type(p).__name__}")
    kind = p.get("kind")
    if kind == "const":
        if p["value"] not in (None, True, False):
            raise EvidenceError("bad constant")
        return p["value"]
    if kind == "int":
        return int(str(p["value"]))
    if kind == "float":
        return float(str(p["value"]))
    if kind == "complex":
        re_, im = p["value"]
        return complex(float(str(re_)), float(str(im)))
    if kind == "str":
        return str(p["value"])
    if kind in ("tuple", "list"):
        items = [_decode(v) for v in p["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {str(k): _decode(v) for k, v in p["items"].items()}
    if kind == "opaque":
        return Opaque(str(p.get("type", "?")), str(p.get("repr", ""))[:300])
    if kind in ("tensor", "ndarray"):
        return _decode_array(p)
    raise EvidenceError(f"unknown kind {kind!r}")


_NP = {"<f8", "<c16", "<i8", "|b1"}


def _decode_array(p: dict[str, Any]) -> Any:
    shape = tuple(int(s) for s in p["shape"])
    if any(s < 0 for s in shape):
        raise EvidenceError("negative dimension")
    if p.get("data") is None:
        return Opaque(f"{p['kind']}", f"{p['kind']} of shape {shape} (too large to compare)")
    if p["np"] not in _NP:
        raise EvidenceError(f"unsupported array dtype {p['np']!r}")
    array = np.frombuffer(base64.b64decode(p["data"], validate=True), dtype=np.dtype(p["np"]))
    if array.size != math.prod(shape):
        raise EvidenceError(f"array of shape {shape} carries {array.size} values")
    array = array.reshape(shape).copy()
    if p["kind"] == "ndarray":
        return array.astype(np.dtype(str(p["dtype"])), copy=False) if _known_np(p["dtype"]) else array
    out = torch.from_numpy(array)
    dtype = getattr(torch, str(p["dtype"]), None)
    return out.to(dtype) if isinstance(dtype, torch.dtype) else out


def _known_np(dtype: Any) -> bool:
    try:
        np.dtype(str(dtype))
    except TypeError:
        return False
    return True
