"""Convolution references, float64 NumPy. Every function is a direct sum over the kernel offsets
(r, s): for each offset, the input under that tap for every output position is one strided
slice of the padded input. There is no im2col here, so these are an oracle independent of the
kernels' formulation."""

from __future__ import annotations

import numpy as np

__all__ = ["col2im", "conv2d", "conv2d_backward", "im2col"]


def _pair(v):
    return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _padding(padding, kernel, dilation):
    """(top, bottom, left, right). 'same' pads dilation * (kernel - 1) in all, the odd one at the
    bottom/right, as PyTorch does."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        sides = []
        for k, d in zip(kernel, dilation, strict=True):
            total = d * (k - 1)
            sides += [total // 2, total - total // 2]
        return tuple(sides)
    ph, pw = _pair(padding)
    return (ph, ph, pw, pw)


def _out_size(size, before, after, kernel, stride, dilation):
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def _tap(xp, r, s, stride, dilation, out):
    """The view xp[..., p*sh + r*dh, q*sw + s*dw] over every output (p, q): what kernel tap (r, s)
    sees. A view, so `+=` on it scatters back into xp."""
    (sh, sw), (dh, dw), (p, q) = stride, dilation, out
    return xp[..., r * dh : r * dh + sh * (p - 1) + 1 : sh, s * dw : s * dw + sw * (q - 1) + 1 : sw]


def _batched(a):
    """a as float64 (N, C, H, W), and whether it came unbatched."""
    a = np.asarray(a, dtype=np.float64)
    return (a[np.newaxis], True) if a.ndim == 3 else (a, False)


def _geometry(x_shape, kernel, stride, padding, dilation):
    stride, dilation, kernel = _pair(stride), _pair(dilation), _pair(kernel)
    pads = _padding(padding, kernel, dilation)
    out = tuple(
        _out_size(x_shape[2 + i], pads[2 * i], pads[2 * i + 1], kernel[i], stride[i], dilation[i])
        for i in range(2)
    )
    return kernel, stride, pads, dilation, out


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """As torch.nn.functional.unfold: (N, C, H, W) -> (N, C*R*S, P*Q), row (c*R + r)*S + s."""
    dtype = np.result_type(x)
    x64, unbatched = _batched(x)
    (r_, s_), stride, (top, bottom, left, right), dilation, out = _geometry(
        x64.shape, kernel_size, stride, padding, dilation
    )
    xp = np.pad(x64, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c = x64.shape[:2]
    cols = np.empty((n, c, r_, s_) + out)
    for r in range(r_):
        for s in range(s_):
            cols[:, :, r, s] = _tap(xp, r, s, stride, dilation, out)
    cols = cols.reshape(n, c * r_ * s_, out[0] * out[1]).astype(dtype)
    return cols[0] if unbatched else cols


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """As torch.nn.functional.fold onto the full image shape x_shape: the adjoint of im2col,
    summing where windows overlap."""
    dtype = np.result_type(cols)
    cols64 = np.asarray(cols, dtype=np.float64)
    unbatched = len(x_shape) == 3
    shape = (1, *x_shape) if unbatched else tuple(x_shape)
    (r_, s_), stride, (top, bottom, left, right), dilation, out = _geometry(
        shape, kernel_size, stride, padding, dilation
    )
    n, c, h, w = shape
    cols64 = cols64.reshape(n, c, r_, s_, *out)
    xp = np.zeros((n, c, h + top + bottom, w + left + right))
    for r in range(r_):
        for s in range(s_):
            _tap(xp, r, s, stride, dilation, out)[...] += cols64[:, :, r, s]
    x = xp[:, :, top : top + h, left : left + w].astype(dtype)
    return x[0] if unbatched else x


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """As torch.nn.functional.conv2d: y[n, k] = b[k] + sum over the channels c of k's group and the
    taps (r, s) of w[k, c, r, s] * x_padded[n, c, p*sh + r*dh, q*sw + s*dw]."""
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    x64, unbatched = _batched(x)
    w64 = np.asarray(w, dtype=np.float64)
    k_, cg, r_, s_ = w64.shape
    _, stride, (top, bottom, left, right), dilation, out = _geometry(
        x64.shape, (r_, s_), stride, padding, dilation
    )
    xp = np.pad(x64, ((0, 0), (0, 0), (top, bottom), (left, right)))
    kg = k_ // groups
    y = np.zeros((x64.shape[0], k_) + out)
    for g in range(groups):
        xg, wg = xp[:, g * cg : (g + 1) * cg], w64[g * kg : (g + 1) * kg]
        for r in range(r_):
            for s in range(s_):
                tap = _tap(xg, r, s, stride, dilation, out)
                y[:, g * kg : (g + 1) * kg] += np.einsum("nchw,kc->nkhw", tap, wg[:, :, r, s])
    if b is not None:
        y += np.asarray(b, dtype=np.float64)[:, np.newaxis, np.newaxis]
    y = y.astype(dtype)
    return y[0] if unbatched else y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, need=(True, True, True)):
    """(dx, dw, db) of conv2d given dy = dL/dy; None for a part not in `need`. Each tap (r, s)
    sends dy back through w[:, :, r, s] onto the input it saw, and correlates dy with it for
    dw[:, :, r, s]."""
    dtype = np.result_type(dy, x, w)
    x64, unbatched = _batched(x)
    dy64, _ = _batched(dy)
    w64 = np.asarray(w, dtype=np.float64)
    k_, cg, r_, s_ = w64.shape
    _, stride, (top, bottom, left, right), dilation, out = _geometry(
        x64.shape, (r_, s_), stride, padding, dilation
    )
    n, _, h, wd = x64.shape
    xp = np.pad(x64, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w64)
    kg = k_ // groups
    for g in range(groups):
        cs, ks = slice(g * cg, (g + 1) * cg), slice(g * kg, (g + 1) * kg)
        dyg = dy64[:, ks]
        for r in range(r_):
            for s in range(s_):
                tap = _tap(xp[:, cs], r, s, stride, dilation, out)
                dw[ks, :, r, s] = np.einsum("nkhw,nchw->kc", dyg, tap)
                _tap(dxp[:, cs], r, s, stride, dilation, out)[...] += np.einsum(
                    "nkhw,kc->nchw", dyg, w64[ks, :, r, s]
                )
    dx = dxp[:, :, top : top + h, left : left + wd]
    dx = dx[0] if unbatched else dx
    db = dy64.sum(axis=(0, 2, 3))
    parts = (dx, dw, db)
    return tuple(p.astype(dtype) if want else None for p, want in zip(parts, need, strict=True))
