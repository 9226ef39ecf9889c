"""Scaled-dot-product attention on NumPy arrays: float32 on ember's fused kernel (ember._C,
csrc/attention), float64 via ember.ref."""

from __future__ import annotations

import math

import numpy as np

from ember import _C, ref
from ember.ops._validate import (
    FLOAT64,
    check_arrays,
    check_scalar,
    check_size,
    is_cupy,
    kernel_ready,
    require,
)
from ember.ref.attention import dropout_seed, sum_to_shape

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_backward"]


def _check_mask(fn, attn_mask, dtype):
    if attn_mask is None:
        return
    if not isinstance(attn_mask, np.ndarray):
        if is_cupy(attn_mask):
            raise NotImplementedError(f"{fn}: CuPy arrays need ember's CUDA kernels for {fn}")
        raise TypeError(f"{fn}: attn_mask must be a NumPy array, got {type(attn_mask).__name__}")
    if attn_mask.dtype != np.bool_ and attn_mask.dtype.char != dtype.char:
        raise TypeError(f"{fn}: attn_mask must be bool or {dtype} like q, got {attn_mask.dtype}")


def _shapes(fn, q, k, v, attn_mask, is_causal, scale):
    """(batch shape, L, S, E, Ev, scale) of a valid call, or ValueError naming what is wrong."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim < 2:
            raise ValueError(f"{fn}: {name} must be at least 2-D (..., seq, dim), got {x.shape}")
    L, E = q.shape[-2:]
    S, Ek = k.shape[-2:]
    Sv = v.shape[-2]
    if Ek != E:
        raise ValueError(f"{fn}: q {q.shape} and k {k.shape} differ in their last dimension")
    if Sv != S:
        raise ValueError(f"{fn}: k {k.shape} and v {v.shape} differ in sequence length")
    if E == 0:
        raise ValueError(f"{fn}: the head dimension of q {q.shape} must be at least 1")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{fn}: the leading dimensions of q {q.shape}, k {k.shape} and v {v.shape} "
            "do not broadcast"
        ) from None
    if attn_mask is not None:
        if is_causal:
            raise ValueError(f"{fn}: attn_mask and is_causal=True cannot be combined")
        full = batch + (L, S)
        try:
            ok = np.broadcast_shapes(attn_mask.shape, full) == full
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"{fn}: attn_mask of shape {attn_mask.shape} does not broadcast to the scores' "
                f"shape {full} (q {q.shape}, k {k.shape})"
            )
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    else:
        scale = check_scalar(fn, "scale", scale)
    return batch, L, S, E, v.shape[-1], scale


def _check_outputs(fn, batch, rows, cols, q, k, v):
    """The largest output, batch + (rows, cols), is addressable: the leading dimensions may
    broadcast to more batch items than any input has."""
    what = f"an output for q {q.shape}, k {k.shape} and v {v.shape}"
    check_size(fn, batch + (rows, max(cols, 1)), what)


def _broadcast(x, shape):
    return np.broadcast_to(kernel_ready(x), shape)


def _mask_for_kernel(attn_mask, shape):
    if attn_mask is None:
        return None
    if attn_mask.dtype == np.bool_:
        return np.broadcast_to(attn_mask, shape)
    return _broadcast(attn_mask, shape)


def scaled_dot_product_attention(
    q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, *, return_lse=False
):
    """As torch.nn.functional.scaled_dot_product_attention: softmax(scale * q @ k^T + mask) @ v
    for q (..., L, E), k (..., S, E), v (..., S, Ev), leading dimensions broadcasting.

    attn_mask (bool: True takes part; or float, added to the scores) broadcasts to (..., L, S);
    is_causal lets query i see keys j <= i and excludes attn_mask; scale defaults to
    1/sqrt(E). A row with every key masked out gives NaN. dropout_p > 0 drops attention weights
    with a counter-based generator seeded from ember's RNG (ember.manual_seed reproduces it;
    the backward needs dropout_p == 0). Runs fused: the L x S scores are never stored.
    Returns out (..., L, Ev), or (out, lse) with return_lse, lse (..., L) the natural-log
    log-sum-exp of each scaled, masked score row (the backward's input)."""
    fn = "scaled_dot_product_attention"
    require(fn, q=q, k=k, v=v)
    dtype = check_arrays(fn, q=q, k=k, v=v)
    _check_mask(fn, attn_mask, dtype)
    batch, L, S, E, Ev, scale = _shapes(fn, q, k, v, attn_mask, is_causal, scale)
    dropout_p = check_scalar(fn, "dropout_p", dropout_p)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{fn}: dropout_p must be in [0, 1), got {dropout_p}")
    _check_outputs(fn, batch, L, Ev, q, k, v)
    if dtype is FLOAT64:
        return ref.scaled_dot_product_attention(
            q, k, v, attn_mask, dropout_p, is_causal, scale, return_lse=return_lse
        )
    out = np.empty(batch + (L, Ev), np.float32)
    lse = np.empty(batch + (L,), np.float32)
    if lse.size == 0:  # no queries: nothing to compute, however many batch items
        return (out, lse) if return_lse else out
    _C.sdpa_forward(
        _broadcast(q, batch + (L, E)),
        _broadcast(k, batch + (S, E)),
        _broadcast(v, batch + (S, Ev)),
        _mask_for_kernel(attn_mask, batch + (L, S)),
        out,
        lse,
        scale,
        bool(is_causal),
        dropout_p,
        dropout_seed() if dropout_p > 0 else 0,
    )
    return (out, lse) if return_lse else out


def scaled_dot_product_attention_backward(
    dout, q, k, v, out, lse, attn_mask=None, is_causal=False, scale=None
):
    """Gradients (dq, dk, dv) of scaled_dot_product_attention (called with dropout_p=0) given
    the gradient of its output `dout` and its `out` and `lse` (return_lse=True). Recomputes the
    attention weights tile by tile from lse (FlashAttention-2's backward); each gradient has its
    input's shape (summed over broadcast leading dimensions)."""
    fn = "scaled_dot_product_attention_backward"
    require(fn, dout=dout, q=q, k=k, v=v, out=out, lse=lse)
    dtype = check_arrays(fn, dout=dout, q=q, k=k, v=v, out=out, lse=lse)
    _check_mask(fn, attn_mask, dtype)
    batch, L, S, E, Ev, scale = _shapes(fn, q, k, v, attn_mask, is_causal, scale)
    _check_outputs(fn, batch, max(L, S), max(E, Ev), q, k, v)
    for name, x, want in (
        ("dout", dout, batch + (L, Ev)),
        ("out", out, batch + (L, Ev)),
        ("lse", lse, batch + (L,)),
    ):
        if x.shape != want:
            raise ValueError(
                f"{fn}: {name} must have shape {want} (from q {q.shape}, v {v.shape}), "
                f"got {x.shape}"
            )
    if dtype is FLOAT64:
        return ref.scaled_dot_product_attention_backward(
            dout, q, k, v, out, lse, attn_mask, is_causal, scale
        )
    dq = np.empty(batch + (L, E), np.float32)
    dk = np.empty(batch + (S, E), np.float32)
    dv = np.empty(batch + (S, Ev), np.float32)
    if dq.size == dk.size == dv.size == 0:  # however many batch items
        return sum_to_shape(dq, q.shape), sum_to_shape(dk, k.shape), sum_to_shape(dv, v.shape)
    _C.sdpa_backward(
        kernel_ready(dout),
        _broadcast(q, batch + (L, E)),
        _broadcast(k, batch + (S, E)),
        _broadcast(v, batch + (S, Ev)),
        kernel_ready(out),
        np.require(lse, np.float32, ["C_CONTIGUOUS", "ALIGNED"]),
        _mask_for_kernel(attn_mask, batch + (L, S)),
        dq,
        dk,
        dv,
        scale,
        bool(is_causal),
    )
    return sum_to_shape(dq, q.shape), sum_to_shape(dk, k.shape), sum_to_shape(dv, v.shape)
