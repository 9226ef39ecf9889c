"""GEMM and matmul: NumPy float32 on ember's SGEMM (ember._C), float64 via ember.ref; CuPy float32
on ember's CUDA SGEMM (ember._cuda), TF32 tensor cores when the matmul precision allows."""

from __future__ import annotations

import numpy as np

from ember import _C, ref
from ember.ops._cuda import any_cupy, check_device_arrays, cuda_module, current_stream, tf32_allowed
from ember.ops._validate import (
    FLOAT64,
    check_arrays,
    check_ndim,
    check_scalar,
    check_size,
    has_aliased_elements,
    is_cupy,
    kernel_ready,
    require,
)

__all__ = ["gemm", "matmul"]


def gemm(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, c=None, out=None):
    """alpha * op(a) @ op(b) + beta * c for 2-D a and b, op(x) = x.T when trans_x.

    `c` broadcasts to the result's shape; with beta == 0 it is not read (NaN in it does not
    propagate, as in BLAS). `out`, if given, must have the result's shape and dtype; it is
    written and returned. It may be `c` but must not overlap `a` or `b`."""
    fn = "gemm"
    require(fn, a=a, b=b)
    if any_cupy(a, b, c, out):
        return _gemm_cuda(a, b, trans_a, trans_b, alpha, beta, c, out)
    dtype = check_arrays(fn, a=a, b=b, c=c, out=out)
    m, n, alpha, beta = _gemm_args(fn, a, b, trans_a, trans_b, alpha, beta, c, out)
    if out is not None and not out.flags.writeable:
        raise ValueError(f"{fn}: out is read-only")

    if dtype is FLOAT64:
        if out is not None and (np.may_share_memory(out, a) or np.may_share_memory(out, b)):
            raise ValueError(f"{fn}: out must not overlap a or b")
        return ref.gemm(
            a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, c=c, out=out
        )

    use_c = c is not None and beta != 0.0
    target = out
    if out is None or kernel_ready(out) is not out or has_aliased_elements(out):
        target = np.empty((m, n), dtype=np.float32)
    if use_c and c is not target:
        # c may overlap out (but not be it): read it into a fresh array before out is written
        src = c.copy() if np.may_share_memory(c, target) else c
        np.copyto(target, src)
    # the extension refuses an out that overlaps a or b
    _C.gemm(
        kernel_ready(a),
        kernel_ready(b),
        target,
        bool(trans_a),
        bool(trans_b),
        alpha,
        beta if use_c else 0.0,
    )
    if target is not out and out is not None:
        out[...] = target
        return out
    return target


def _gemm_args(fn, a, b, trans_a, trans_b, alpha, beta, c, out):
    """(m, n, alpha, beta) of a valid gemm call on NumPy or CuPy arrays, else ValueError or
    TypeError naming the argument and the shapes."""
    check_ndim(fn, "a", a, 2)
    check_ndim(fn, "b", b, 2)
    alpha = check_scalar(fn, "alpha", alpha)
    beta = check_scalar(fn, "beta", beta)
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if k != kb:
        raise ValueError(
            f"{fn}: inner dimensions differ: op(a) is ({m}, {k}) and op(b) is ({kb}, {n}) "
            f"(a {a.shape}, b {b.shape}, trans_a={trans_a}, trans_b={trans_b})"
        )
    if c is not None and c.shape != (m, n) and _broadcast_shape(c.shape, (m, n)) != (m, n):
        raise ValueError(f"{fn}: c of shape {c.shape} does not broadcast to ({m}, {n})")
    if out is None:
        check_size(fn, (m, n), f"the result of a {a.shape} and b {b.shape}")
    elif out.shape != (m, n):
        raise ValueError(f"{fn}: out must have shape ({m}, {n}), got {out.shape}")
    return m, n, alpha, beta


def _gemm_cuda(a, b, trans_a, trans_b, alpha, beta, c, out):
    """gemm on CuPy float32 arrays: ember's CUDA SGEMM (TF32 when the matmul precision allows)."""
    fn = "gemm"
    check_device_arrays(fn, a=a, b=b, c=c, out=out)
    m, n, alpha, beta = _gemm_args(fn, a, b, trans_a, trans_b, alpha, beta, c, out)
    module = cuda_module(fn)
    import cupy

    use_c = c is not None and beta != 0.0
    target = out
    if out is None or has_aliased_elements(out) or _cuda_overlaps(out, a, b):
        target = cupy.empty((m, n), dtype=cupy.float32)
    if use_c and c is not target:
        src = c.copy() if _cuda_overlaps(target, c) else c
        cupy.copyto(target, cupy.broadcast_to(src, (m, n)))
    module.gemm(
        a,
        b,
        target,
        bool(trans_a),
        bool(trans_b),
        alpha,
        beta if use_c else 0.0,
        tf32_allowed(),
        current_stream(),
    )
    if target is not out and out is not None:
        out[...] = target
        return out
    return target


def _cuda_overlaps(x, *others) -> bool:
    import cupy

    return any(cupy.may_share_memory(x, y) for y in others)


def _broadcast_shape(*shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


def matmul(a, b):
    """As numpy.matmul: 1-D operands are promoted (and the added dimension removed) and the
    leading dimensions broadcast. Runs on ember's batched GEMM."""
    fn = "matmul"
    require(fn, a=a, b=b)
    if any_cupy(a, b):
        return _matmul_cuda(a, b)
    dtype = check_arrays(fn, a=a, b=b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{fn}: operands must be at least 1-D, got a {a.shape} and b {b.shape}")
    if dtype is FLOAT64:
        _matmul_shape(fn, a.shape, b.shape)
        return ref.matmul(a, b)
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    batch, m, k, n = _matmul_shape(fn, a.shape, b.shape)
    out = np.empty(batch + (m, n), dtype=np.float32)
    a2, b2 = kernel_ready(a2), kernel_ready(b2)
    rows = _merge_leading(a2, 1) if b2.ndim == 2 and a2.ndim > 2 else None
    if out.size == 0:
        pass  # nothing to compute (and the batch may count more items than could be listed)
    elif rows is not None:
        # (..., m, k) @ (k, n) with a foldable A is one GEMM of (prod(...) * m, k) @ (k, n)
        _C.gemm(rows, b2, out.reshape(-1, n))
    elif not batch:
        _C.gemm(a2, b2, out)
    else:
        _C.gemm(np.broadcast_to(a2, batch + (m, k)), np.broadcast_to(b2, batch + (k, n)), out)
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _matmul_cuda(a, b):
    """matmul on CuPy float32 arrays: one 2-D GEMM when a's batch folds into its rows, else one
    batched launch (broadcast batch dimensions are zero strides), looping over leading batch
    dimensions only when their strides cannot be folded into one."""
    fn = "matmul"
    check_device_arrays(fn, a=a, b=b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{fn}: operands must be at least 1-D, got a {a.shape} and b {b.shape}")
    batch, m, k, n = _matmul_shape(fn, a.shape, b.shape)
    module = cuda_module(fn)
    import cupy

    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = cupy.empty(batch + (m, n), dtype=cupy.float32)
    if out.size:
        tf32, stream = tf32_allowed(), current_stream()

        def run(x, y, z):
            module.gemm(x, y, z, False, False, 1.0, 0.0, tf32, stream)

        rows = _merge_leading(a2, 1) if b2.ndim == 2 and a2.ndim > 2 else None
        if not batch:
            run(a2, b2, out)
        elif rows is not None:
            # (..., m, k) @ (k, n) with foldable rows is one GEMM of (prod(...) * m, k) @ (k, n)
            run(rows, b2, out.reshape(-1, n))
        else:
            a3 = cupy.broadcast_to(a2, batch + (m, k))
            b3 = cupy.broadcast_to(b2, batch + (k, n))
            fa, fb = _merge_leading(a3, 2), _merge_leading(b3, 2)
            if fa is not None and fb is not None:
                run(fa, fb, out.reshape(-1, m, n))
            else:
                for i in np.ndindex(batch[:-1]):
                    run(a3[i], b3[i], out[i])
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _merge_leading(x, trailing: int):
    """x with its leading dimensions (all but the last `trailing`) merged into one, as a view, or
    None when their strides do not allow it (a broadcast dimension next to a real one). NumPy
    and CuPy arrays alike."""
    lead = x.ndim - trailing
    dims = [(d, s) for d, s in zip(x.shape[:lead], x.strides[:lead], strict=True) if d != 1]
    for (_, outer), (size, inner) in zip(dims, dims[1:], strict=False):
        if outer != inner * size:
            return None
    count = 1
    for d in x.shape[:lead]:
        count *= d
    shape = (count,) + x.shape[lead:]
    strides = ((dims[-1][1] if dims else 0),) + x.strides[lead:]
    if is_cupy(x):
        from cupy.lib.stride_tricks import as_strided
    else:
        from numpy.lib.stride_tricks import as_strided
    return as_strided(x, shape=shape, strides=strides)


def _matmul_shape(fn, a_shape, b_shape):
    """(batch shape, m, k, n) of numpy.matmul on these shapes, or ValueError."""
    m, k = (1, a_shape[0]) if len(a_shape) == 1 else a_shape[-2:]
    kb, n = (b_shape[0], 1) if len(b_shape) == 1 else b_shape[-2:]
    if k != kb:
        raise ValueError(
            f"{fn}: inner dimensions differ: a {tuple(a_shape)} has {k} columns, "
            f"b {tuple(b_shape)} has {kb} rows"
        )
    try:
        batch = np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2]))
    except ValueError:
        raise ValueError(
            f"{fn}: batch dimensions of a {tuple(a_shape)} and b {tuple(b_shape)} do not broadcast"
        ) from None
    check_size(fn, batch + (m, n), f"the result of a {tuple(a_shape)} and b {tuple(b_shape)}")
    return batch, m, k, n
