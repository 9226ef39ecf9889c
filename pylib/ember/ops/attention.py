"""Scaled-dot-product attention. NumPy arrays: float32 on ember's fused CPU kernel (ember._C,
csrc/attention), float64 via ember.ref. CuPy arrays: float32 and bfloat16 on ember's fused CUDA
kernels (ember._cuda, cuda/attention)."""

from __future__ import annotations

import math

import numpy as np

from ember import _C, ref
from ember.ops._cuda import any_cupy, bfloat16, check_device_arrays, cuda_module, current_stream
from ember.ops._validate import (
    FLOAT32,
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

# The CUDA kernels' limits: head dimensions (E and Ev) and merged leading dimensions.
CUDA_MAX_HEAD_DIM = 128
CUDA_MAX_BATCH_DIMS = 4


def _check_mask(fn, attn_mask, dtype, device=False):
    """attn_mask is None, or a bool or `dtype` array of the same library as q (NumPy, or CuPy on
    the GPU: `device`)."""
    if attn_mask is None:
        return
    if device:
        if not is_cupy(attn_mask):
            raise TypeError(
                f"{fn}: attn_mask must be a CuPy array like q, k and v, got "
                f"{type(attn_mask).__module__}.{type(attn_mask).__name__}"
            )
    elif not isinstance(attn_mask, np.ndarray):
        raise TypeError(f"{fn}: attn_mask must be a NumPy array, got {type(attn_mask).__name__}")
    if attn_mask.dtype != np.bool_ and attn_mask.dtype.char != dtype.char:
        raise TypeError(f"{fn}: attn_mask must be bool or {dtype} like q, got {attn_mask.dtype}")


def _check_dropout(fn, dropout_p) -> float:
    dropout_p = check_scalar(fn, "dropout_p", dropout_p)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{fn}: dropout_p must be in [0, 1), got {dropout_p}")
    return dropout_p


def _check_backward_shapes(fn, batch, L, Ev, q, v, dout, out, lse):
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
    log-sum-exp of each scaled, masked score row (the backward's input).

    CuPy arrays (float32, or bfloat16 with float32 lse) run ember's CUDA kernels on CuPy's
    current stream; head dimensions up to 128."""
    fn = "scaled_dot_product_attention"
    require(fn, q=q, k=k, v=v)
    if any_cupy(q, k, v, attn_mask):
        return _sdpa_cuda(q, k, v, attn_mask, dropout_p, is_causal, scale, return_lse)
    dtype = check_arrays(fn, q=q, k=k, v=v)
    _check_mask(fn, attn_mask, dtype)
    batch, L, S, E, Ev, scale = _shapes(fn, q, k, v, attn_mask, is_causal, scale)
    dropout_p = _check_dropout(fn, dropout_p)
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
    dout, q, k, v, out, lse, attn_mask=None, is_causal=False, scale=None, *, deterministic=False
):
    """Gradients (dq, dk, dv) of scaled_dot_product_attention (called with dropout_p=0) given
    the gradient of its output `dout` and its `out` and `lse` (return_lse=True). Recomputes the
    attention weights tile by tile from lse (FlashAttention-2's backward); each gradient has its
    input's shape (summed over broadcast leading dimensions).

    CuPy arrays (float32, or bfloat16 on tensor cores): dq is summed over key tiles with atomics
    (FlashAttention-2's choice: the fewest products, but the order of the additions varies from
    run to run), or, with deterministic=True, in a separate pass over query tiles that
    recomputes the scores (bitwise reproducible; bfloat16 arrays then run the float32 kernels on
    float32 copies). NumPy arrays are always deterministic (for a given thread count)."""
    fn = "scaled_dot_product_attention_backward"
    require(fn, dout=dout, q=q, k=k, v=v, out=out, lse=lse)
    if any_cupy(dout, q, k, v, out, lse, attn_mask):
        return _sdpa_backward_cuda(
            dout, q, k, v, out, lse, attn_mask, is_causal, scale, bool(deterministic)
        )
    dtype = check_arrays(fn, dout=dout, q=q, k=k, v=v, out=out, lse=lse)
    _check_mask(fn, attn_mask, dtype)
    batch, L, S, E, Ev, scale = _shapes(fn, q, k, v, attn_mask, is_causal, scale)
    _check_outputs(fn, batch, max(L, S), max(E, Ev), q, k, v)
    _check_backward_shapes(fn, batch, L, Ev, q, v, dout, out, lse)
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


# ---- CuPy arrays: ember._cuda -------------------------------------------------------------------


def _device_dtypes():
    bf16 = bfloat16()
    return (FLOAT32,) if bf16 is None else (FLOAT32, bf16)


def _check_head_dims(fn, E, Ev):
    if max(E, Ev) > CUDA_MAX_HEAD_DIM:
        raise NotImplementedError(
            f"{fn}: the CUDA kernels take head dimensions up to {CUDA_MAX_HEAD_DIM}, got "
            f"E = {E} and Ev = {Ev}"
        )


def _row_contiguous(x):
    """x, or a copy when its last dimension is not contiguous (the kernels read rows whole)."""
    if x.shape[-1] > 1 and x.strides[-1] != x.dtype.itemsize:
        import cupy

        return cupy.ascontiguousarray(x)
    return x


def _merged_batch(batch, arrays):
    """The batch shape with size-1 dimensions dropped and neighbours merged wherever every array
    (each of shape batch + (rows, cols), any strides) allows it without a copy."""
    keep = [d for d, n in enumerate(batch) if n != 1]
    dims = [[batch[d], [x.strides[d] for x in arrays]] for d in keep]
    merged = []
    for size, strides in dims:
        if merged:
            prev_size, prev_strides = merged[-1]
            if all(p == s * size for p, s in zip(prev_strides, strides, strict=True)):
                merged[-1] = [prev_size * size, strides]
                continue
        merged.append([size, strides])
    return tuple(size for size, _ in merged)


def _device_operands(batch, **arrays):
    """The arrays, given as (array or None, (rows, cols)), broadcast to batch + (rows, cols) and
    reshaped to at most CUDA_MAX_BATCH_DIMS leading dimensions, merged alike for all (views where
    the strides allow, else copies). Returns (merged batch shape, the arrays in order)."""
    import cupy

    names = [n for n, (x, _) in arrays.items() if x is not None]
    views = [cupy.broadcast_to(arrays[n][0], batch + arrays[n][1]) for n in names]
    merged = _merged_batch(batch, views)
    if len(merged) > CUDA_MAX_BATCH_DIMS:
        views = [cupy.ascontiguousarray(x) for x in views]
        merged = _merged_batch(batch, views)
    shaped = dict(zip(names, (x.reshape(merged + x.shape[-2:]) for x in views), strict=True))
    return merged, [shaped.get(n) for n in arrays]


def _device_mask(attn_mask):
    """attn_mask as the kernels take it: bool, or a float mask as float32."""
    if attn_mask is None or attn_mask.dtype == np.bool_ or attn_mask.dtype == FLOAT32:
        return attn_mask
    return attn_mask.astype(FLOAT32)


def _sdpa_cuda(q, k, v, attn_mask, dropout_p, is_causal, scale, return_lse):
    fn = "scaled_dot_product_attention"
    dtype = check_device_arrays(fn, _device_dtypes(), q=q, k=k, v=v)
    module = cuda_module(fn)
    _check_mask(fn, attn_mask, dtype, device=True)
    batch, L, S, E, Ev, scale = _shapes(fn, q, k, v, attn_mask, is_causal, scale)
    dropout_p = _check_dropout(fn, dropout_p)
    _check_head_dims(fn, E, Ev)
    with q.device:  # outputs, and CuPy's current stream, on q's device
        out, lse = _sdpa_cuda_run(
            module, q, k, v, attn_mask, dropout_p, bool(is_causal), scale, dtype, batch, L, S, E
        )
    return (out, lse) if return_lse else out


def _sdpa_cuda_run(module, q, k, v, attn_mask, dropout_p, is_causal, scale, dtype, batch, L, S, E):
    import cupy

    Ev = v.shape[-1]
    if Ev == 0:  # the weights still define lse: run with one zero column of v
        v = cupy.zeros(v.shape[:-1] + (1,), v.dtype)
        out, lse = _sdpa_cuda_run(
            module, q, k, v, attn_mask, dropout_p, is_causal, scale, dtype, batch, L, S, E
        )
        return out[..., :0], lse
    out = cupy.empty(batch + (L, Ev), dtype)
    lse = cupy.empty(batch + (L,), FLOAT32)
    if S == 0:  # softmax over no keys: zeros and lse -inf, as the CPU kernel and PyTorch
        out.fill(0)
        lse.fill(-np.inf)
    elif out.size:
        merged, (mq, mk, mv, mmask) = _device_operands(
            batch,
            q=(_row_contiguous(q), (L, E)),
            k=(_row_contiguous(k), (S, E)),
            v=(_row_contiguous(v), (S, Ev)),
            attn_mask=(_device_mask(attn_mask), (L, S)),
        )
        module.sdpa_forward(
            mq,
            mk,
            mv,
            mmask,
            out.reshape(merged + (L, Ev)),
            lse.reshape(merged + (L,)),
            scale,
            is_causal,
            dropout_p,
            dropout_seed() if dropout_p > 0 else 0,
            current_stream(),
        )
    return out, lse


def _sdpa_backward_cuda(dout, q, k, v, out, lse, attn_mask, is_causal, scale, deterministic):
    fn = "scaled_dot_product_attention_backward"
    dtype = check_device_arrays(fn, _device_dtypes(), dout=dout, q=q, k=k, v=v, out=out)
    check_device_arrays(fn, (FLOAT32,), lse=lse)
    module = cuda_module(fn)
    _check_mask(fn, attn_mask, dtype, device=True)
    batch, L, S, E, Ev, scale = _shapes(fn, q, k, v, attn_mask, is_causal, scale)
    _check_backward_shapes(fn, batch, L, Ev, q, v, dout, out, lse)
    _check_head_dims(fn, E, Ev)
    with q.device:  # outputs, and CuPy's current stream, on q's device
        if dtype != FLOAT32 and deterministic:  # the float32 kernels on float32 copies
            arrays = (x.astype(FLOAT32) for x in (dout, q, k, v, out))
            dtype_run = FLOAT32
        else:
            arrays, dtype_run = (dout, q, k, v, out), dtype
        dq, dk, dv = _sdpa_backward_cuda_run(
            module, *arrays, lse, _device_mask(attn_mask), bool(is_causal), scale,
            deterministic, dtype_run, batch, L, S, E, Ev,
        )  # fmt: skip
        return (
            _reduced(dq, q.shape, dtype),
            _reduced(dk, k.shape, dtype),
            _reduced(dv, v.shape, dtype),
        )


def _sdpa_backward_cuda_run(
    module, dout, q, k, v, out, lse, attn_mask, is_causal, scale, deterministic, dtype,
    batch, L, S, E, Ev,
):  # fmt: skip
    """(dq as float32, dk, dv) of the full batch shape."""
    import cupy

    dq = cupy.empty(batch + (L, E), FLOAT32)  # bfloat16: the kernels' float32 accumulator
    dk = cupy.empty(batch + (S, E), dtype)
    dv = cupy.empty(batch + (S, Ev), dtype)
    if L == 0 or S == 0 or Ev == 0:  # no weights, or nothing flows back through them
        for g in (dq, dk, dv):
            g.fill(0)
    elif dq.size:
        merged, (mg, mq, mk, mv, mo, mmask) = _device_operands(
            batch,
            dout=(_row_contiguous(dout), (L, Ev)),
            q=(_row_contiguous(q), (L, E)),
            k=(_row_contiguous(k), (S, E)),
            v=(_row_contiguous(v), (S, Ev)),
            out=(_row_contiguous(out), (L, Ev)),
            attn_mask=(attn_mask, (L, S)),
        )
        module.sdpa_backward(
            mg,
            mq,
            mk,
            mv,
            mo,
            cupy.ascontiguousarray(lse).reshape(merged + (L,)),
            mmask,
            cupy.empty(merged + (L,), FLOAT32),
            dq.reshape(merged + (L, E)),
            dk.reshape(merged + (S, E)),
            dv.reshape(merged + (S, Ev)),
            scale,
            is_causal,
            deterministic,
            current_stream(),
        )
    return dq, dk, dv


def _reduced(grad, shape, dtype):
    """A gradient summed over the leading dimensions its input was broadcast along (in float32),
    as dtype."""
    if grad.shape != tuple(shape):
        grad = sum_to_shape(grad.astype(FLOAT32, copy=False), shape)
    return grad.astype(dtype, copy=False)
