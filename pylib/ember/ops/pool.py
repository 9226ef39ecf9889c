"""2-D pooling, as torch.nn.functional: NumPy float32 on ember's kernels (ember._C), float64 via
ember.ref; CuPy float32 on ember's CUDA kernels (ember._cuda). Both take the same checks.

Images are (N, C, H, W) or unbatched (C, H, W); N may be 0. The CPU kernels read any strides
whose last (column) stride is one element; other arrays are copied once (to C order) before
the call. The CUDA kernels read any strides.
"""

from __future__ import annotations

import numpy as np

from ember import _C, ref
from ember.ops._cuda import (
    check_host_or_device_arrays,
    cuda_module,
    current_stream,
)
from ember.ops._validate import (
    FLOAT32,
    FLOAT64,
    INT32_MAX,
    check_size,
    is_cupy,
    is_int,
    pair,
    require,
)
from ember.ref.pool import adaptive_output_size, pooled_size

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
]

# ---- argument checks ---------------------------------------------------------------------------


def _window(fn, kernel_size, stride, padding, dilation):
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    stride = pair(fn, "stride", stride, 1)
    padding = pair(fn, "padding", padding, 0)
    dilation = pair(fn, "dilation", dilation, 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{fn}: padding must be at most half of kernel_size, got padding {padding} "
            f"and kernel_size {kernel}"
        )
    return kernel, stride, padding, dilation


def _image(fn, name, x, *, allow_empty_channels=False):
    """x as a 4-D view of (N, C, H, W) or unbatched (C, H, W); C, H, W > 0 (C may be 0 if
    allowed, as adaptive_avg_pool2d allows)."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: {name} must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    nonempty = x.shape[-2:] if allow_empty_channels else x.shape[-3:]
    if 0 in nonempty:
        raise ValueError(f"{fn}: {name} must not be empty except in the batch, got {x.shape}")
    return x[np.newaxis] if x.ndim == 3 else x


def _x_shape(fn, x_shape, ndim, *, allow_empty_channels=False):
    """x_shape as a tuple of ints, the rank of dy, C, H, W > 0 (C may be 0 if allowed)."""
    try:
        shape = tuple(int(s) for s in x_shape)
        ok = all(is_int(s) for s in x_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise TypeError(f"{fn}: x_shape must be a sequence of ints, got {x_shape!r}")
    if len(shape) != ndim or min(shape, default=0) < 0:
        raise ValueError(f"{fn}: x_shape must be {ndim} sizes >= 0 like dy, got {shape}")
    nonempty = shape[-2:] if allow_empty_channels else shape[-3:]
    if 0 in nonempty:
        raise ValueError(f"{fn}: x_shape must not be empty except in the batch, got {shape}")
    check_size(fn, shape, "the gradient of x_shape")
    return shape


def _output_size(fn, shape, kernel, stride, padding, dilation, ceil_mode):
    p = pooled_size(shape[-2], kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    q = pooled_size(shape[-1], kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if p < 1 or q < 1:
        raise ValueError(
            f"{fn}: the output would be empty ({p}, {q}): input plane {tuple(shape[-2:])} is "
            f"smaller than kernel_size {kernel} with dilation {dilation} and padding {padding}"
        )
    return p, q


def _check_grad(fn, dy, want):
    if dy.shape != tuple(want):
        raise ValueError(f"{fn}: dy must have shape {tuple(want)}, got {dy.shape}")


def _divisor(fn, divisor_override):
    if divisor_override is None:
        return 0
    if not is_int(divisor_override):
        raise TypeError(f"{fn}: divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0 or abs(divisor_override) > INT32_MAX:
        raise ValueError(
            f"{fn}: divisor_override must be nonzero and within int32, got {divisor_override}"
        )
    return int(divisor_override)


def _is_numpy(x) -> bool:
    return isinstance(x, np.ndarray)


def _rows_ready(x):
    """x itself if the kernels can read it in place (native aligned float32, whole-element
    strides, contiguous rows), else a C-contiguous float32 copy."""
    if x.dtype == FLOAT32 and x.flags.aligned:
        if x.flags.c_contiguous:
            return x
        if (x.size == 0 or x.shape[-1] <= 1 or x.strides[-1] == 4) and all(
            s % 4 == 0 for s in x.strides
        ):
            return x
    return np.array(x, dtype=np.float32, order="C")  # a copy, even of a misaligned C array


def _batched(x):
    return x[np.newaxis] if x.ndim == 3 else x


def _cuda(fn):
    """(ember._cuda, CuPy, CuPy's current stream) for a call on CuPy arrays."""
    module = cuda_module(fn)
    import cupy

    return module, cupy, current_stream()


# ---- max pooling -------------------------------------------------------------------------------


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices) as torch.nn.functional.max_pool2d(..., return_indices=True): indices are int64
    flat indices h * W + w into each input plane. Ties keep the first maximum in row-major window
    order; a NaN in a window is its maximum (the index of the last NaN, as PyTorch's CPU loop)."""
    fn = "max_pool2d"
    require(fn, x=x)
    dtype, on_gpu = check_host_or_device_arrays(fn, x=x)
    x4 = _image(fn, "x", x)
    kernel, stride, padding, dilation = _window(fn, kernel_size, stride, padding, dilation)
    p, q = _output_size(fn, x4.shape, kernel, stride, padding, dilation, ceil_mode)
    if on_gpu:
        module, cupy, stream = _cuda(fn)
        y = cupy.empty(x4.shape[:2] + (p, q), dtype=cupy.float32)
        idx = cupy.empty(y.shape, dtype=cupy.int64)
        module.max_pool2d(x4, y, idx, kernel, stride, padding, dilation, stream)
        return (y[0], idx[0]) if x.ndim == 3 else (y, idx)
    if dtype is FLOAT64:
        return ref.max_pool2d(x, kernel, stride, padding, dilation, bool(ceil_mode))
    y, idx = _C.max_pool2d(_rows_ready(x4), kernel, stride, padding, dilation, bool(ceil_mode))
    return (y[0], idx[0]) if x.ndim == 3 else (y, idx)


def max_pool2d_backward(dy, indices, x_shape):
    """Gradient w.r.t. x of max_pool2d: dy summed at `indices` (as max_pool2d returned them) in
    an array of shape x_shape. Indices outside [0, H * W) raise ValueError."""
    fn = "max_pool2d_backward"
    require(fn, dy=dy)
    dtype, on_gpu = check_host_or_device_arrays(fn, dy=dy)
    library, array_type = ("CuPy", is_cupy) if on_gpu else ("NumPy", _is_numpy)
    if not array_type(indices) or indices.dtype.kind not in "iu":
        got = indices.dtype if array_type(indices) else type(indices).__name__
        raise TypeError(f"{fn}: indices must be a {library} integer array, got {got}")
    if dy.ndim not in (3, 4):
        raise ValueError(f"{fn}: dy must be (N, C, P, Q) or (C, P, Q), got shape {dy.shape}")
    shape = _x_shape(fn, x_shape, dy.ndim)
    if indices.shape != dy.shape:
        raise ValueError(f"{fn}: indices must have dy's shape {dy.shape}, got {indices.shape}")
    _check_grad(fn, dy, shape[:-2] + dy.shape[-2:])
    hw = shape[-1] * shape[-2]
    out_of_range = f"{fn}: indices must lie in [0, H * W) = [0, {hw}) for x_shape {shape}"
    if on_gpu:
        module, cupy, stream = _cuda(fn)
        dx = cupy.zeros((1,) * (4 - len(shape)) + shape, dtype=cupy.float32)
        bad = cupy.zeros(1, dtype=cupy.int32)
        index = _batched(indices).astype(cupy.int64, copy=False)
        module.max_pool2d_backward(_batched(dy), index, dx, bad, stream)
        if int(bad[0]):  # waits for the kernel: a bad index must raise, as on the CPU
            raise ValueError(out_of_range)
        return dx[0] if dy.ndim == 3 else dx
    if dtype is FLOAT64:
        if indices.size and (indices.min() < 0 or indices.max() >= hw):
            raise ValueError(out_of_range)
        return ref.max_pool2d_backward(dy, indices, shape)
    # the kernel checks the indices' range as it scatters
    dx = _C.max_pool2d_backward(
        _rows_ready(_batched(dy)),
        np.require(_batched(indices), np.int64, ["C_CONTIGUOUS", "ALIGNED"]),
        (1,) * (4 - len(shape)) + shape,
    )
    return dx[0] if dy.ndim == 3 else dx


# ---- average pooling ---------------------------------------------------------------------------


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """As torch.nn.functional.avg_pool2d: window sums over divisor_override if given, else over
    the window's size (count_include_pad=True, padding counted up to the padded border) or its
    number of input elements (count_include_pad=False)."""
    fn = "avg_pool2d"
    require(fn, x=x)
    dtype, on_gpu = check_host_or_device_arrays(fn, x=x)
    x4 = _image(fn, "x", x)
    kernel, stride, padding, _ = _window(fn, kernel_size, stride, padding, 1)
    divisor = _divisor(fn, divisor_override)
    p, q = _output_size(fn, x4.shape, kernel, stride, padding, (1, 1), ceil_mode)
    if on_gpu:
        module, cupy, stream = _cuda(fn)
        y = cupy.empty(x4.shape[:2] + (p, q), dtype=cupy.float32)
        module.avg_pool2d(x4, y, kernel, stride, padding, bool(count_include_pad), divisor, stream)
        return y[0] if x.ndim == 3 else y
    args = (kernel, stride, padding, bool(ceil_mode), bool(count_include_pad))
    if dtype is FLOAT64:
        return ref.avg_pool2d(x, *args, divisor_override)
    y = _C.avg_pool2d(_rows_ready(x4), *args, divisor)
    return y[0] if x.ndim == 3 else y


def avg_pool2d_backward(
    dy,
    x_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Gradient w.r.t. x (of shape x_shape) of avg_pool2d with the same arguments."""
    fn = "avg_pool2d_backward"
    require(fn, dy=dy)
    dtype, on_gpu = check_host_or_device_arrays(fn, dy=dy)
    if dy.ndim not in (3, 4):
        raise ValueError(f"{fn}: dy must be (N, C, P, Q) or (C, P, Q), got shape {dy.shape}")
    shape = _x_shape(fn, x_shape, dy.ndim)
    kernel, stride, padding, _ = _window(fn, kernel_size, stride, padding, 1)
    divisor = _divisor(fn, divisor_override)
    out = _output_size(fn, shape, kernel, stride, padding, (1, 1), ceil_mode)
    _check_grad(fn, dy, shape[:-2] + out)
    if on_gpu:
        module, cupy, stream = _cuda(fn)
        dx = cupy.empty((1,) * (4 - len(shape)) + shape, dtype=cupy.float32)
        module.avg_pool2d_backward(
            _batched(dy), dx, kernel, stride, padding, bool(count_include_pad), divisor, stream
        )
        return dx[0] if dy.ndim == 3 else dx
    args = (kernel, stride, padding, bool(ceil_mode), bool(count_include_pad))
    if dtype is FLOAT64:
        return ref.avg_pool2d_backward(dy, shape, *args, divisor_override)
    dx = _C.avg_pool2d_backward(
        _rows_ready(_batched(dy)), (1,) * (4 - len(shape)) + shape, *args, divisor
    )
    return dx[0] if dy.ndim == 3 else dx


# ---- adaptive average pooling ------------------------------------------------------------------


def _adaptive_size(fn, shape, output_size):
    entries = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
    if not 1 <= len(entries) <= 2 or not all(e is None or is_int(e) for e in entries):
        raise TypeError(
            f"{fn}: output_size must be an int or a pair of ints or None, got {output_size!r}"
        )
    if isinstance(output_size, (tuple, list)) and len(entries) == 1:
        output_size = (entries[0], entries[0])
    size = adaptive_output_size(shape, output_size)
    if min(size) < 0:
        raise ValueError(f"{fn}: output_size must not be negative, got {output_size!r}")
    check_size(fn, (*shape[:-2], *size), f"the output for output_size {output_size!r}")
    return size


def adaptive_avg_pool2d(x, output_size):
    """As torch.nn.functional.adaptive_avg_pool2d: output (p, q) averages input rows
    [floor(p H / P), ceil((p + 1) H / P)) and the same for columns. output_size is an int or a
    pair; a None entry keeps the input's size."""
    fn = "adaptive_avg_pool2d"
    require(fn, x=x)
    dtype, on_gpu = check_host_or_device_arrays(fn, x=x)
    x4 = _image(fn, "x", x, allow_empty_channels=True)
    size = _adaptive_size(fn, x4.shape, output_size)
    if on_gpu:
        module, cupy, stream = _cuda(fn)
        y = cupy.empty(x4.shape[:2] + size, dtype=cupy.float32)
        module.adaptive_avg_pool2d(x4, y, stream)
        return y[0] if x.ndim == 3 else y
    if dtype is FLOAT64:
        return ref.adaptive_avg_pool2d(x, size)
    y = _C.adaptive_avg_pool2d(_rows_ready(x4), size)
    return y[0] if x.ndim == 3 else y


def adaptive_avg_pool2d_backward(dy, x_shape):
    """Gradient w.r.t. x (of shape x_shape) of adaptive_avg_pool2d to dy's (P, Q)."""
    fn = "adaptive_avg_pool2d_backward"
    require(fn, dy=dy)
    dtype, on_gpu = check_host_or_device_arrays(fn, dy=dy)
    if dy.ndim not in (3, 4):
        raise ValueError(f"{fn}: dy must be (N, C, P, Q) or (C, P, Q), got shape {dy.shape}")
    shape = _x_shape(fn, x_shape, dy.ndim, allow_empty_channels=True)
    _check_grad(fn, dy, shape[:-2] + dy.shape[-2:])
    if on_gpu:
        module, cupy, stream = _cuda(fn)
        dx = cupy.empty((1,) * (4 - len(shape)) + shape, dtype=cupy.float32)
        module.adaptive_avg_pool2d_backward(_batched(dy), dx, stream)
        return dx[0] if dy.ndim == 3 else dx
    if dtype is FLOAT64:
        return ref.adaptive_avg_pool2d_backward(dy, shape)
    dx = _C.adaptive_avg_pool2d_backward(_rows_ready(_batched(dy)), (1,) * (4 - len(shape)) + shape)
    return dx[0] if dy.ndim == 3 else dx
