"""Pooling references: max, average and adaptive-average pooling of (N, C, H, W) or unbatched
(C, H, W) images and their gradients, with PyTorch's semantics, in float64.

The window of output (p, q) covers rows p * sh - ph + i * dh (i < kh) and columns
q * sw - pw + j * dw (j < kw); positions outside the image are padding and never taken.
"""

from __future__ import annotations

import numbers

import numpy as np


def _pair(value):
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    value = tuple(int(v) for v in value)
    return value * 2 if len(value) == 1 else value


def _geometry(kernel_size, stride, padding, dilation):
    """(kh, kw), (sh, sw), (ph, pw), (dh, dw); stride None (or empty) means kernel_size."""
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or (not np.isscalar(stride) and len(stride) == 0) else stride
    return kernel, _pair(stride), _pair(padding), _pair(dilation)


def pooled_size(size, k, s, pad, d, ceil_mode):
    """PyTorch's output length: windows of k taps d apart, s apart, over size + 2 pad positions.
    In ceil mode a last, partial window counts if it starts inside the input or left padding."""
    span = size + 2 * pad - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + pad:
        out -= 1
    return out


def _taps(size, out, k, s, pad, d):
    """pos[o, i]: the input position of tap i of window o along one axis; inside[o, i]: whether
    it lies in the image (not in the padding)."""
    pos = np.arange(out)[:, None] * s - pad + np.arange(k)[None, :] * d
    return pos, (pos >= 0) & (pos < size)


def _batched(x):
    x = np.asarray(x)
    return x[np.newaxis] if x.ndim == 3 else x


def _unbatched_like(x, *arrays):
    out = tuple(a[0] for a in arrays) if np.ndim(x) == 3 else arrays
    return out if len(out) > 1 else out[0]


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices): each window's maximum and its flat index h * W + w in the input plane.

    PyTorch's loop, tap by tap in row-major order: a value replaces the running maximum if it is
    larger or NaN, so ties keep the first maximum and a NaN, once met, stays (the last NaN wins).
    The running index starts at the window's first position inside the image."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _geometry(kernel_size, stride, padding, dilation)
    x4 = np.asarray(_batched(x), dtype=np.float64)
    n, c, h, w = x4.shape
    p = pooled_size(h, kh, sh, ph, dh, ceil_mode)
    q = pooled_size(w, kw, sw, pw, dw, ceil_mode)
    rows, rows_in = _taps(h, p, kh, sh, ph, dh)
    cols, cols_in = _taps(w, q, kw, sw, pw, dw)

    def first_inside(start, d):  # start moved out of the leading padding in steps of d
        return start + d * np.maximum(0, -(start // d))

    best = np.full((n, c, p, q), -np.inf)
    index = np.broadcast_to(
        first_inside(rows[:, :1], dh) * w + first_inside(cols[:, 0], dw)[None, :], best.shape
    ).copy()
    for i in range(kh):
        for j in range(kw):
            r, col = rows[:, i], cols[:, j]
            inside = rows_in[:, i, None] & cols_in[None, :, j]
            v = x4[:, :, r.clip(0, h - 1)][:, :, :, col.clip(0, w - 1)]
            take = inside & ((v > best) | np.isnan(v))
            best = np.where(take, v, best)
            index = np.where(take, r[:, None] * w + col[None, :], index)
    return _unbatched_like(x, best.astype(np.asarray(x).dtype), index.astype(np.int64))


def max_pool2d_backward(dy, indices, x_shape):
    """dx of shape x_shape: dy summed at the flat indices max_pool2d returned."""
    dy4 = np.asarray(_batched(dy), dtype=np.float64)
    idx4 = np.asarray(_batched(indices), dtype=np.int64)
    n, c = dy4.shape[:2]
    h, w = x_shape[-2:]
    dx = np.zeros((n, c, h * w))
    ni, ci = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    pq = dy4.shape[2] * dy4.shape[3]  # not -1: the batch may be empty
    np.add.at(dx, (ni[..., None], ci[..., None], idx4.reshape(n, c, pq)), dy4.reshape(n, c, pq))
    return dx.reshape(tuple(x_shape)).astype(np.asarray(dy).dtype)


def _avg_divisors(h, w, p, q, kernel, stride, padding, count_include_pad, divisor_override):
    """The divisor of each window (p, q) and whether the window holds any input, as PyTorch:
    count_include_pad counts padding inside the window, but the window is first clipped to the
    padded image (ceil mode lets it run further)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding

    def extent(size, out, k, s, pad):
        start = np.arange(out) * s - pad
        end = np.minimum(start + k, size + pad)
        inside = np.minimum(end, size) - np.maximum(start, 0)
        return end - start, np.maximum(inside, 0)

    rows_pad, rows_in = extent(h, p, kh, sh, ph)
    cols_pad, cols_in = extent(w, q, kw, sw, pw)
    if divisor_override is not None:
        div = np.full((p, q), float(divisor_override))
    elif count_include_pad:
        div = np.outer(rows_pad, cols_pad).astype(np.float64)
    else:
        div = np.outer(rows_in, cols_in).astype(np.float64)
    return div, np.outer(rows_in, cols_in) > 0


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Each window's sum of the input values it covers, over _avg_divisors' divisor; 0 for a
    window that covers no input."""
    kernel, stride, padding, _ = _geometry(kernel_size, stride, padding, 1)
    x4 = np.asarray(_batched(x), dtype=np.float64)
    n, c, h, w = x4.shape
    p = pooled_size(h, kernel[0], stride[0], padding[0], 1, ceil_mode)
    q = pooled_size(w, kernel[1], stride[1], padding[1], 1, ceil_mode)
    rows, rows_in = _taps(h, p, kernel[0], stride[0], padding[0], 1)
    cols, cols_in = _taps(w, q, kernel[1], stride[1], padding[1], 1)
    total = np.zeros((n, c, p, q))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            inside = rows_in[:, i, None] & cols_in[None, :, j]
            v = x4[:, :, rows[:, i].clip(0, h - 1)][:, :, :, cols[:, j].clip(0, w - 1)]
            total += np.where(inside, v, 0.0)
    div, nonempty = _avg_divisors(
        h, w, p, q, kernel, stride, padding, count_include_pad, divisor_override
    )
    y = np.where(nonempty, total / div, 0.0)
    return _unbatched_like(x, y.astype(np.asarray(x).dtype))


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
    """dx of shape x_shape: each dy element over its window's divisor, added to every input
    position of the window."""
    kernel, stride, padding, _ = _geometry(kernel_size, stride, padding, 1)
    dy4 = np.asarray(_batched(dy), dtype=np.float64)
    n, c, p, q = dy4.shape
    h, w = x_shape[-2:]
    rows, rows_in = _taps(h, p, kernel[0], stride[0], padding[0], 1)
    cols, cols_in = _taps(w, q, kernel[1], stride[1], padding[1], 1)
    div, nonempty = _avg_divisors(
        h, w, p, q, kernel, stride, padding, count_include_pad, divisor_override
    )
    grad = np.where(nonempty, dy4 / div, 0.0)
    dx = np.zeros((n, c, h, w))
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            inside = rows_in[:, i, None] & cols_in[None, :, j]
            r = rows[:, i].clip(0, h - 1)[:, None]
            col = cols[:, j].clip(0, w - 1)[None, :]
            np.add.at(dx, (slice(None), slice(None), r, col), np.where(inside, grad, 0.0))
    return dx.reshape(tuple(x_shape)).astype(np.asarray(dy).dtype)


def _adaptive_range(i, out, size):
    """Input range [floor(i * size / out), ceil((i + 1) * size / out)) of output i."""
    return (i * size) // out, -((-(i + 1) * size) // out)


def adaptive_output_size(x_shape, output_size):
    """(P, Q) from an int or a pair whose None entries keep the input's size."""
    if output_size is None or isinstance(output_size, numbers.Integral):
        output_size = (output_size, output_size)
    return tuple(
        int(x_shape[d]) if o is None else int(o)
        for d, o in zip((-2, -1), tuple(output_size), strict=True)
    )


def adaptive_avg_pool2d(x, output_size):
    """Output (p, q) averages rows _adaptive_range(p, P, H) and columns _adaptive_range(q, Q, W)."""
    x4 = np.asarray(_batched(x), dtype=np.float64)
    n, c, h, w = x4.shape
    p, q = adaptive_output_size(x4.shape, output_size)
    y = np.zeros((n, c, p, q))
    for i in range(p):
        h0, h1 = _adaptive_range(i, p, h)
        for j in range(q):
            w0, w1 = _adaptive_range(j, q, w)
            y[:, :, i, j] = x4[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return _unbatched_like(x, y.astype(np.asarray(x).dtype))


def adaptive_avg_pool2d_backward(dy, x_shape):
    """dx of shape x_shape: each dy element spread evenly over its window."""
    dy4 = np.asarray(_batched(dy), dtype=np.float64)
    n, c, p, q = dy4.shape
    h, w = x_shape[-2:]
    dx = np.zeros((n, c, h, w))
    for i in range(p):
        h0, h1 = _adaptive_range(i, p, h)
        for j in range(q):
            w0, w1 = _adaptive_range(j, q, w)
            dx[:, :, h0:h1, w0:w1] += dy4[:, :, i, j, None, None] / ((h1 - h0) * (w1 - w0))
    return dx.reshape(tuple(x_shape)).astype(np.asarray(dy).dtype)
