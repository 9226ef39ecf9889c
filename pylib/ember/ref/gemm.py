"""GEMM and matmul references."""

from __future__ import annotations

import numpy as np


def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None, out=None):
    """alpha * op(a) @ op(b) + beta * c, op(x) = x.T when trans_x. With beta == 0, c is not read."""
    dtype = np.result_type(a, b)
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    result = alpha * ((a64.T if trans_a else a64) @ (b64.T if trans_b else b64))
    if c is not None and beta != 0:
        result = result + beta * np.asarray(c, dtype=np.float64)
    if out is None:
        return result.astype(dtype)
    out[...] = result
    return out


def matmul(a, b):
    """As numpy.matmul, computed in float64."""
    dtype = np.result_type(a, b)
    return np.matmul(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)).astype(dtype)
