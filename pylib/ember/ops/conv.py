"""Convolution: im2col / col2im and conv2d forward and backward, as PyTorch's unfold / fold /
conv2d. NumPy float32 runs on ember's CPU kernels (ember._C), float64 through ember.ref; CuPy
float32 on the CUDA kernels (ember._cuda), after the same checks."""

from __future__ import annotations

import numbers
import os

import numpy as np

from ember import _C, ref
from ember.ops._cuda import (
    check_host_or_device_arrays,
    cuda_module,
    current_stream,
    empty,
    tf32_allowed,
)
from ember.ops._validate import FLOAT64, check_size, kernel_ready, pair, require

__all__ = ["col2im", "conv2d", "conv2d_backward", "im2col"]

# The CUDA GEMM paths keep the column matrices of a chunk of images in a workspace of at most this
# many floats (256 MiB), or of one image when that is larger.
_WORKSPACE_FLOATS = 64 * 2**20
# EMBER_CUDA_CONV_ALGO=im2col|implicit forces conv2d's CUDA forward algorithm (default auto: the
# rule in cuda/conv/conv.cu, choose_forward).
_ALGO_ENV = "EMBER_CUDA_CONV_ALGO"


def _out_size(size, before, after, kernel, stride, dilation):
    span = size + before + after - dilation * (kernel - 1) - 1
    return span // stride + 1 if span >= 0 else 0


def _output(fn, shape, kernel, stride, pads, dilation, what):
    """(P, Q) of a sliding window over an (..., H, W) shape, or ValueError when the dilated kernel
    is larger than the padded input."""
    h, w = shape[-2:]
    out = (
        _out_size(h, pads[0], pads[1], kernel[0], stride[0], dilation[0]),
        _out_size(w, pads[2], pads[3], kernel[1], stride[1], dilation[1]),
    )
    if min(out) <= 0:
        padded = (h + pads[0] + pads[1], w + pads[2] + pads[3])
        raise ValueError(
            f"{fn}: kernel {kernel} with dilation {dilation} is larger than the padded input "
            f"{padded} ({what})"
        )
    return out


def _window_args(fn, kernel_size, stride, padding, dilation):
    kernel = pair(fn, "kernel_size", kernel_size, 1)
    stride = pair(fn, "stride", stride, 1)
    ph, pw = pair(fn, "padding", padding, 0)
    dilation = pair(fn, "dilation", dilation, 1)
    return kernel, stride, (ph, ph, pw, pw), dilation


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """As torch.nn.functional.unfold: x (N, C, H, W) -> (N, C*R*S, L), L = P*Q sliding windows;
    row (c*R + r)*S + s holds channel c under kernel tap (r, s). Unbatched (C, H, W) gives
    (C*R*S, L)."""
    fn = "im2col"
    require(fn, x=x)
    dtype, cuda = check_host_or_device_arrays(fn, x=x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: x must be (C, H, W) or (N, C, H, W), got shape {x.shape}")
    kernel, stride, pads, dilation = _window_args(fn, kernel_size, stride, padding, dilation)
    p, q = _output(fn, x.shape, kernel, stride, pads, dilation, f"x {x.shape}")
    check_size(
        fn,
        (*x.shape[:-3], x.shape[-3] * kernel[0] * kernel[1], p * q),
        f"cols of x {x.shape} with kernel_size {kernel}",
    )
    if cuda:
        xb = x if x.ndim == 4 else x[np.newaxis]
        n, c = xb.shape[:2]
        cols = empty((n, c * kernel[0] * kernel[1], p * q))
        cuda_module(fn).im2col(
            xb, cols, kernel, stride, (pads[0], pads[2]), dilation, current_stream()
        )
        return cols if x.ndim == 4 else cols[0]
    if dtype is FLOAT64:
        return ref.im2col(x, kernel, stride, (pads[0], pads[2]), dilation)
    xb = x if x.ndim == 4 else x[np.newaxis]
    cols = _C.im2col(kernel_ready(xb), kernel, stride, (pads[0], pads[2]), dilation)
    return cols if x.ndim == 4 else cols[0]


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """As torch.nn.functional.fold with the full image shape: cols (N, C*R*S, L) from im2col of an
    x of shape x_shape = (N, C, H, W) -> x, the windows summed where they overlap. Unbatched:
    cols (C*R*S, L) and x_shape (C, H, W)."""
    fn = "col2im"
    require(fn, cols=cols)
    dtype, cuda = check_host_or_device_arrays(fn, cols=cols)
    if cols.ndim not in (2, 3):
        raise ValueError(f"{fn}: cols must be (C*R*S, L) or (N, C*R*S, L), got shape {cols.shape}")
    if not isinstance(x_shape, (tuple, list)) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) for v in x_shape
    ):
        raise TypeError(f"{fn}: x_shape must be a tuple of ints, got {x_shape!r}")
    x_shape = tuple(int(v) for v in x_shape)
    if len(x_shape) != cols.ndim + 1 or min(x_shape) < 0:
        raise ValueError(
            f"{fn}: x_shape must be the {cols.ndim + 1}-D shape of the image cols {cols.shape} "
            f"came from, got {x_shape}"
        )
    check_size(fn, x_shape, "the image of x_shape")
    kernel, stride, pads, dilation = _window_args(fn, kernel_size, stride, padding, dilation)
    p, q = _output(fn, x_shape, kernel, stride, pads, dilation, f"x_shape {x_shape}")
    c = x_shape[-3]
    want = (*x_shape[:-3], c * kernel[0] * kernel[1], p * q)
    if cols.shape != want:
        raise ValueError(
            f"{fn}: cols must have shape {want} for x_shape {x_shape}, kernel_size {kernel}, "
            f"stride {stride}, padding {(pads[0], pads[2])}, dilation {dilation}; "
            f"got {cols.shape}"
        )
    batched = cols.ndim == 3
    if cuda:
        x = empty(x_shape if batched else (1, *x_shape))
        cuda_module(fn).col2im(
            cols if batched else cols[np.newaxis],
            x,
            kernel,
            stride,
            (pads[0], pads[2]),
            dilation,
            current_stream(),
        )
        return x if batched else x[0]
    if dtype is FLOAT64:
        return ref.col2im(cols, x_shape, kernel, stride, (pads[0], pads[2]), dilation)
    x = _C.col2im(
        kernel_ready(cols if batched else cols[np.newaxis]),
        x_shape if batched else (1, *x_shape),
        kernel,
        stride,
        (pads[0], pads[2]),
        dilation,
    )
    return x if batched else x[0]


def _conv_args(fn, x, w, stride, padding, dilation, groups):
    """Checks conv2d's arguments against each other; returns (stride, (top, bottom, left,
    right), dilation, groups, (P, Q))."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: x must be (C, H, W) or (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{fn}: w must be 4-D (K, C/groups, R, S), got shape {w.shape}")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, (bool, np.bool_)):
        raise TypeError(f"{fn}: groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups <= 0:
        raise ValueError(f"{fn}: groups must be positive, got {groups}")
    c, (k, cg, r, s) = x.shape[-3], w.shape
    if c != cg * groups:
        raise ValueError(
            f"{fn}: x {x.shape} has {c} channels but w {w.shape} with groups={groups} "
            f"expects {cg * groups}"
        )
    if k % groups:
        raise ValueError(
            f"{fn}: w {w.shape} has {k} output channels, not divisible by groups={groups}"
        )
    if r == 0 or s == 0:
        raise ValueError(f"{fn}: w {w.shape} has an empty kernel")
    stride = pair(fn, "stride", stride, 1)
    dilation = pair(fn, "dilation", dilation, 1)
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"{fn}: padding='same' is not supported for strided convolutions "
                    f"(stride {stride})"
                )
            sides = []
            for kernel, d in ((r, dilation[0]), (s, dilation[1])):
                total = d * (kernel - 1)
                sides += [total // 2, total - total // 2]  # the odd one at the bottom/right
            pads = tuple(sides)
        else:
            raise ValueError(f"{fn}: padding must be 'same', 'valid' or ints, got {padding!r}")
    else:
        ph, pw = pair(fn, "padding", padding, 0)
        pads = (ph, ph, pw, pw)
    out = _output(fn, x.shape, (r, s), stride, pads, dilation, f"x {x.shape}, w {w.shape}")
    what = f"for x {x.shape} and w {w.shape}"
    check_size(fn, (*x.shape[:-3], k, *out), "the output " + what)
    check_size(fn, (c * r * s, out[0] * out[1]), "the column matrix of an image " + what)
    return stride, pads, dilation, groups, out


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """As torch.nn.functional.conv2d: x (N, C, H, W) or (C, H, W), w (K, C/groups, R, S), b (K)
    or None -> y (N, K, P, Q). padding is an int, a pair, 'valid' or 'same' (stride 1 only; an
    even kernel pads one more at the bottom/right, as PyTorch)."""
    fn = "conv2d"
    require(fn, x=x, w=w)
    dtype, cuda = check_host_or_device_arrays(fn, x=x, w=w, b=b)
    stride, pads, dilation, groups, out = _conv_args(fn, x, w, stride, padding, dilation, groups)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{fn}: b must have shape ({w.shape[0]},) for w {w.shape}, got {b.shape}")
    if cuda:
        return _conv2d_cuda(x, w, b, stride, pads, dilation, groups, out)
    if dtype is FLOAT64:
        return ref.conv2d(x, w, b, stride, padding, dilation, groups)
    xb = x if x.ndim == 4 else x[np.newaxis]
    y = _C.conv2d(
        kernel_ready(xb),
        kernel_ready(w),
        None if b is None else kernel_ready(b),
        stride,
        pads,
        dilation,
        groups,
    )
    return y if x.ndim == 4 else y[0]


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need=(True, True, True)):
    """Gradients of conv2d(x, w, b, ...) given dy = dL/dy: (dx, dw, db), each None where `need`
    says False. dy has the output's shape; db is dy summed over all but the channel axis."""
    fn = "conv2d_backward"
    require(fn, dy=dy, x=x, w=w)
    dtype, cuda = check_host_or_device_arrays(fn, dy=dy, x=x, w=w)
    stride, pads, dilation, groups, out = _conv_args(fn, x, w, stride, padding, dilation, groups)
    want = (*x.shape[:-3], w.shape[0], *out)
    if dy.shape != want:
        raise ValueError(
            f"{fn}: dy must have the output's shape {want} for x {x.shape} and w {w.shape}, "
            f"got {dy.shape}"
        )
    if not isinstance(need, (tuple, list)):
        raise TypeError(f"{fn}: need must be a tuple of three flags (dx, dw, db), got {need!r}")
    if len(need) != 3:
        raise ValueError(f"{fn}: need must hold three flags (dx, dw, db), got {need!r}")
    need = tuple(bool(n) for n in need)
    if cuda:
        return _conv2d_backward_cuda(dy, x, w, stride, pads, dilation, groups, need)
    if dtype is FLOAT64:
        return ref.conv2d_backward(dy, x, w, stride, padding, dilation, groups, need)
    batched = x.ndim == 4
    dx, dw, db = _C.conv2d_backward(
        kernel_ready(dy if batched else dy[np.newaxis]),
        kernel_ready(x if batched else x[np.newaxis]),
        kernel_ready(w),
        stride,
        pads,
        dilation,
        groups,
        need,
    )
    if dx is not None and not batched:
        dx = dx[0]
    return dx, dw, db


# ---- CUDA (CuPy float32, arguments checked above) --------------------------------------------


def _workspace(per_image, images):
    """The GEMM paths' workspace: the column matrices of as many images as _WORKSPACE_FLOATS
    allows (at least one), or None when the call needs none."""
    if per_image == 0 or images == 0:
        return None
    chunk = max(1, min(images, _WORKSPACE_FLOATS // per_image))
    return empty((chunk * per_image,))


def _conv2d_cuda(x, w, b, stride, pads, dilation, groups, out):
    import cupy

    module = cuda_module("conv2d")
    xb = x if x.ndim == 4 else x[np.newaxis]
    w = cupy.ascontiguousarray(w)
    y = empty((xb.shape[0], w.shape[0], *out))
    algorithm = os.environ.get(_ALGO_ENV, "auto")
    tf32 = tf32_allowed()
    per_image = module.conv2d_workspace(xb, w, stride, pads, dilation, groups, algorithm, tf32)
    module.conv2d(
        xb,
        w,
        b,
        y,
        _workspace(per_image, xb.shape[0]),
        stride,
        pads,
        dilation,
        groups,
        algorithm,
        tf32,
        current_stream(),
    )
    return y if x.ndim == 4 else y[0]


def _conv2d_backward_cuda(dy, x, w, stride, pads, dilation, groups, need):
    import cupy

    module = cuda_module("conv2d_backward")
    batched = x.ndim == 4
    xb = x if batched else x[np.newaxis]
    dyb = cupy.ascontiguousarray(dy if batched else dy[np.newaxis])
    w = cupy.ascontiguousarray(w)
    dx = empty(xb.shape) if need[0] else None
    dw = empty(w.shape) if need[1] else None
    db = empty((w.shape[0],)) if need[2] else None
    per_image = module.conv2d_backward_workspace(xb, w, stride, pads, dilation, groups, need)
    module.conv2d_backward(
        dyb,
        xb,
        w,
        dx,
        dw,
        db,
        _workspace(per_image, xb.shape[0]),
        stride,
        pads,
        dilation,
        groups,
        tf32_allowed(),
        current_stream(),
    )
    if dx is not None and not batched:
        dx = dx[0]
    return dx, dw, db
