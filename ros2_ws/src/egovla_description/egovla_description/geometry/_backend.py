"""One array vocabulary for NumPy and PyTorch, so each geometry function is written once.

Every public geometry function accepts NumPy arrays or torch tensors (any leading batch shape) and
returns the same kind, dtype and device it was given. torch is imported only when a tensor is passed in.
"""

from __future__ import annotations

import numpy as np


def is_torch(x) -> bool:
    return type(x).__module__.split(".", 1)[0] == "torch"


class _NumpyOps:
    name = "numpy"

    @staticmethod
    def asarray(x, like=None):
        if like is not None:
            return np.asarray(x, dtype=like.dtype)
        x = np.asarray(x)
        return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)

    stack = staticmethod(lambda xs, axis: np.stack(xs, axis=axis))
    concat = staticmethod(lambda xs, axis: np.concatenate(xs, axis=axis))
    cross = staticmethod(lambda a, b: np.cross(a, b))
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    atan2 = staticmethod(np.arctan2)
    abs = staticmethod(np.abs)
    where = staticmethod(np.where)
    einsum = staticmethod(np.einsum)
    sign = staticmethod(np.sign)

    @staticmethod
    def norm(x, axis=-1, keepdims=False):
        return np.linalg.norm(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def sum(x, axis, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def clip(x, lo, hi):
        return np.clip(x, lo, hi)

    @staticmethod
    def argmax(x, axis):
        return np.argmax(x, axis=axis)

    @staticmethod
    def take_along(x, idx, axis):
        return np.take_along_axis(x, idx, axis=axis)

    @staticmethod
    def expand_dims(x, axis):
        return np.expand_dims(x, axis)

    @staticmethod
    def eye(n, like):
        return np.broadcast_to(np.eye(n, dtype=like.dtype), like.shape[:-2] + (n, n)).copy()

    @staticmethod
    def ones_like(x):
        return np.ones_like(x)

    @staticmethod
    def zeros_like(x):
        return np.zeros_like(x)

    @staticmethod
    def swap_last(x):
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def svd(m):
        return np.linalg.svd(m)

    @staticmethod
    def det(m):
        return np.linalg.det(m)

    @staticmethod
    def eigh(m):
        return np.linalg.eigh(m)

    @staticmethod
    def eps(x):
        return float(np.finfo(x.dtype).eps)


class _TorchOps:
    name = "torch"

    def __init__(self):
        import torch

        self.t = torch

    def asarray(self, x, like=None):
        t = self.t
        if like is not None:
            return t.as_tensor(x, dtype=like.dtype, device=like.device)
        x = t.as_tensor(x)
        return x if x.is_floating_point() else x.to(t.get_default_dtype())

    def stack(self, xs, axis):
        return self.t.stack(xs, dim=axis)

    def concat(self, xs, axis):
        return self.t.cat(xs, dim=axis)

    def cross(self, a, b):
        return self.t.linalg.cross(a, b, dim=-1)

    def sqrt(self, x):
        return self.t.sqrt(x)

    def sin(self, x):
        return self.t.sin(x)

    def cos(self, x):
        return self.t.cos(x)

    def atan2(self, y, x):
        return self.t.atan2(y, x)

    def abs(self, x):
        return self.t.abs(x)

    def where(self, c, a, b):
        t = self.t
        if not isinstance(a, t.Tensor):
            a = t.as_tensor(a, dtype=b.dtype if isinstance(b, t.Tensor) else None,
                            device=b.device if isinstance(b, t.Tensor) else None)
        if not isinstance(b, t.Tensor):
            b = t.as_tensor(b, dtype=a.dtype, device=a.device)
        return t.where(c, a, b)

    def einsum(self, eq, *xs):
        return self.t.einsum(eq, *xs)

    def sign(self, x):
        return self.t.sign(x)

    def norm(self, x, axis=-1, keepdims=False):
        return self.t.linalg.norm(x, dim=axis, keepdim=keepdims)

    def sum(self, x, axis, keepdims=False):
        return self.t.sum(x, dim=axis, keepdim=keepdims)

    def clip(self, x, lo, hi):
        return self.t.clamp(x, lo, hi)

    def argmax(self, x, axis):
        return self.t.argmax(x, dim=axis)

    def take_along(self, x, idx, axis):
        return self.t.take_along_dim(x, idx, dim=axis)

    def expand_dims(self, x, axis):
        return self.t.unsqueeze(x, axis)

    def eye(self, n, like):
        e = self.t.eye(n, dtype=like.dtype, device=like.device)
        return e.expand(like.shape[:-2] + (n, n)).clone()

    def ones_like(self, x):
        return self.t.ones_like(x)

    def zeros_like(self, x):
        return self.t.zeros_like(x)

    def swap_last(self, x):
        return x.transpose(-1, -2)

    def svd(self, m):
        u, s, vh = self.t.linalg.svd(m)
        return u, s, vh

    def det(self, m):
        return self.t.linalg.det(m)

    def eigh(self, m):
        return self.t.linalg.eigh(m)

    def eps(self, x):
        return float(self.t.finfo(x.dtype).eps)


_NUMPY = _NumpyOps()
_TORCH = None


def ops_for(x):
    """The operation set matching `x`'s array library."""
    global _TORCH
    if is_torch(x):
        if _TORCH is None:
            _TORCH = _TorchOps()
        return _TORCH
    return _NUMPY


def as_float_array(x):
    """`x` as a floating array of its own library (lists and tuples become float64 NumPy arrays)."""
    ops = ops_for(x)
    return ops, ops.asarray(x)
