"""LSTM: NumPy float32 on ember's fused cell and layer kernels (ember._C), float64 via ember.ref,
CuPy float32 on the CUDA kernels (ember._cuda) after the same checks. PyTorch's gate order
(i, f, g, o); w_ih (4H, I), w_hh (4H, H), biases (4H,).

The layer's time loop runs inside the extension: one GEMM projects the inputs of every step,
then each step is one recurrent GEMM and the fused cell. `lstm_cell` is that layer with T = 1.
On the GPU a layer's launches are captured once into a CUDA graph and replayed by later calls
with the same arguments (EMBER_CUDA_LSTM_GRAPH=0 turns that off).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ember import _C, ref
from ember.ops._cuda import (
    any_cupy,
    check_host_or_device_arrays,
    cuda_module,
    current_stream,
    empty,
    tf32_allowed,
)
from ember.ops._validate import FLOAT32, FLOAT64, check_size, is_cupy, kernel_ready, require
from ember.ref.lstm import LSTMSaved as _RefSaved

__all__ = ["lstm", "lstm_backward", "lstm_cell", "lstm_cell_backward"]


@dataclass(frozen=True)
class LSTMSaved:
    """What the float32 backward needs (opaque to callers): the kernel's inputs as it read them,
    x as (T, B, I), and the buffers the forward kept, NumPy or CuPy arrays like the inputs. x and
    the weights are referenced, not copied (as autograd saves tensors): modifying them in place
    before the backward changes the gradients."""

    cell: bool  # saved by lstm_cell (else by lstm)
    batch_first: bool
    unbatched: bool
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    has_b_ih: bool
    has_b_hh: bool
    buffers: tuple  # (c0, gates, c_all, tanh_c, h_prev) from the forward kernel


# ---- validation -----------------------------------------------------------------------------


def _check_weights(fn, x, w_ih, w_hh, b_ih, b_hh):
    """H, after checking w_ih (4H, I), w_hh (4H, H) and the biases (4H,) against x's I."""
    for name, w in (("w_ih", w_ih), ("w_hh", w_hh)):
        if w.ndim != 2:
            raise ValueError(f"{fn}: {name} must be 2-D (4*H, ...), got shape {w.shape}")
    hidden = w_hh.shape[1]
    if w_hh.shape[0] != 4 * hidden:
        raise ValueError(f"{fn}: w_hh must have shape (4*H, H), got {w_hh.shape}")
    if w_ih.shape != (4 * hidden, x.shape[-1]):
        raise ValueError(
            f"{fn}: w_ih must have shape (4*H, I) = ({4 * hidden}, {x.shape[-1]}) for x "
            f"{x.shape} and w_hh {w_hh.shape}, got {w_ih.shape}"
        )
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (4 * hidden,):
            raise ValueError(
                f"{fn}: {name} must have shape ({4 * hidden},) for w_hh {w_hh.shape}, got {b.shape}"
            )
    # the kernels keep the gates of every step: (T * B, 4H) (x may be a view of far fewer elements)
    check_size(
        fn, (math.prod(x.shape[:-1]), 4 * hidden), f"the gates of x {x.shape} and w_hh {w_hh.shape}"
    )
    return hidden


def _check_state(fn, name, s, shape, what):
    if s is not None and s.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape} ({what}), got {s.shape}")


def _check_saved(fn, saved, cell):
    if not isinstance(saved, (LSTMSaved, _RefSaved)):
        maker = "lstm_cell" if cell else "lstm"
        raise TypeError(f"{fn}: saved must come from {maker}(..., return_saved=True)")
    if saved.cell != cell:
        raise ValueError(
            f"{fn}: saved comes from {'lstm_cell' if saved.cell else 'lstm'}; "
            f"use {'lstm_cell_backward' if saved.cell else 'lstm_backward'}"
        )
    return FLOAT32 if isinstance(saved, LSTMSaved) else np.dtype(saved.dtype)


def _on_gpu(saved):
    return isinstance(saved, LSTMSaved) and is_cupy(saved.x)


def _check_grads(fn, saved, cell, **grads):
    """Checks the incoming gradients' dtype (that of the forward) and shapes (those of y and the
    states); returns the saved forward's dtype."""
    want = _check_saved(fn, saved, cell)
    on_gpu = _on_gpu(saved)
    given = [g for g in grads.values() if g is not None]
    if given and any_cupy(*given) != on_gpu:
        kind = "CuPy" if on_gpu else "NumPy"
        raise TypeError(f"{fn}: the gradients must be {kind} arrays like the forward's")
    dtype = check_host_or_device_arrays(fn, **grads)[0]
    if dtype is not None and dtype != want:
        raise TypeError(f"{fn}: the gradients must be {want} like the forward, got {dtype}")
    steps, batch = saved.x.shape[:2]
    hidden = saved.w_hh.shape[1]
    state = (hidden,) if saved.unbatched else (batch, hidden)
    if saved.unbatched:
        y = (steps, hidden)
    else:
        y = (batch, steps, hidden) if saved.batch_first else (steps, batch, hidden)
    for name, g in grads.items():
        shape = y if name == "dy" else state
        _check_state(fn, name, g, shape, "y's shape" if name == "dy" else "the states' shape")
    return want


# ---- kernel calls ---------------------------------------------------------------------------


def _ready(x):
    return None if x is None else kernel_ready(x)


def _foldable(x):
    """x (T, B, I) as the kernel needs it: its T * B rows evenly spaced in time- or batch-major
    order (else a copy in the layout it had)."""
    x = kernel_ready(x)
    steps, batch = x.shape[:2]
    st, sb = x.strides[:2]
    if steps <= 1 or batch <= 1 or st == batch * sb or sb == steps * st:
        return x
    return np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1) if sb > st else x.copy()


def _forward(cell, x_tbi, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first, unbatched, save):
    """(y (T, B, H), h_n, c_n, saved or None) from the kernel."""
    if is_cupy(x_tbi):
        args = (h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first, unbatched, save)
        return _forward_cuda(cell, x_tbi, *args)
    x_tbi = _foldable(x_tbi)
    w_ih, w_hh = kernel_ready(w_ih), kernel_ready(w_hh)
    y, h_n, c_n, buffers = _C.lstm_forward(
        x_tbi, _ready(h0), _ready(c0), w_ih, w_hh, _ready(b_ih), _ready(b_hh), batch_first, save
    )
    saved = None
    if save:
        saved = LSTMSaved(
            cell=cell,
            batch_first=batch_first,
            unbatched=unbatched,
            x=x_tbi,
            w_ih=w_ih,
            w_hh=w_hh,
            has_b_ih=b_ih is not None,
            has_b_hh=b_hh is not None,
            buffers=buffers,
        )
    return y, h_n, c_n, saved


def _backward(dy_tbh, dh_n, dc_n, s):
    """(dx (T, B, I), dh0, dc0, dw_ih, dw_hh, db or None) from the kernel."""
    if _on_gpu(s):
        return _backward_cuda(dy_tbh, dh_n, dc_n, s)
    if dy_tbh is None:
        dy_tbh = np.zeros((*s.x.shape[:2], s.w_hh.shape[1]), np.float32)
    return _C.lstm_backward(
        kernel_ready(dy_tbh),
        _ready(dh_n),
        _ready(dc_n),
        s.x,
        s.w_ih,
        s.w_hh,
        s.has_b_ih or s.has_b_hh,
        *s.buffers,
    )


# ---- public functions -----------------------------------------------------------------------


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, return_saved=False):
    """One LSTM step: (h_next, c_next), plus an opaque `saved` for lstm_cell_backward when
    return_saved. x (B, I) or unbatched (I,); h and c (B, H) / (H,), or None for zeros."""
    fn = "lstm_cell"
    require(fn, x=x, w_ih=w_ih, w_hh=w_hh)
    dtype, cuda = check_host_or_device_arrays(
        fn, x=x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh
    )
    if x.ndim not in (1, 2):
        raise ValueError(f"{fn}: x must be (B, I) or unbatched (I,), got shape {x.shape}")
    hidden = _check_weights(fn, x, w_ih, w_hh, b_ih, b_hh)
    state = (*x.shape[:-1], hidden)
    _check_state(fn, "h", h, state, "x's batch, w_hh's H")
    _check_state(fn, "c", c, state, "x's batch, w_hh's H")
    if dtype is FLOAT64:
        return ref.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, return_saved=return_saved)

    unbatched = x.ndim == 1
    if unbatched:
        x, h, c = x[None], None if h is None else h[None], None if c is None else c[None]
    _, h_n, c_n, saved = _forward(
        True, x[None], h, c, w_ih, w_hh, b_ih, b_hh, False, unbatched, return_saved
    )
    if unbatched:
        h_n, c_n = h_n[0], c_n[0]
    return (h_n, c_n, saved) if return_saved else (h_n, c_n)


def lstm_cell_backward(dh_next, dc_next, saved):
    """Gradients of lstm_cell: (dx, dh, dc, dw_ih, dw_hh, db), db being the gradient of either
    bias (they are equal), None without biases. dh_next / dc_next may be None for zeros."""
    fn = "lstm_cell_backward"
    dtype = _check_grads(fn, saved, True, dh_next=dh_next, dc_next=dc_next)
    if dtype is FLOAT64:
        return ref.lstm_cell_backward(dh_next, dc_next, saved)
    if saved.unbatched:
        dh_next = None if dh_next is None else dh_next[None]
        dc_next = None if dc_next is None else dc_next[None]
    dy = None if dh_next is None else dh_next[None]
    dx, dh, dc, dw_ih, dw_hh, db = _backward(dy, None, dc_next, saved)
    dx = dx[0]
    if saved.unbatched:
        dx, dh, dc = dx[0], dh[0], dc[0]
    return dx, dh, dc, dw_ih, dw_hh, db


def lstm(x, h0, c0, weights, *, batch_first=False, return_saved=False):
    """One LSTM layer over a sequence: (y, (h_n, c_n)), plus an opaque `saved` for
    lstm_backward when return_saved. x (T, B, I), (B, T, I) with batch_first, or unbatched
    (T, I); h0 and c0 (B, H) / (H,) or None for zeros; weights = (w_ih, w_hh, b_ih, b_hh) with
    biases possibly None. y is (T, B, H), (B, T, H) or (T, H) like x."""
    fn = "lstm"
    if not isinstance(weights, (tuple, list)) or len(weights) != 4:
        raise TypeError(f"{fn}: weights must be a tuple (w_ih, w_hh, b_ih, b_hh)")
    w_ih, w_hh, b_ih, b_hh = weights
    require(fn, x=x, w_ih=w_ih, w_hh=w_hh)
    dtype, cuda = check_host_or_device_arrays(
        fn, x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh
    )
    if x.ndim not in (2, 3):
        raise ValueError(
            f"{fn}: x must be (T, B, I), (B, T, I) with batch_first, or unbatched (T, I); "
            f"got shape {x.shape}"
        )
    hidden = _check_weights(fn, x, w_ih, w_hh, b_ih, b_hh)
    unbatched = x.ndim == 2
    batch = () if unbatched else (x.shape[0 if batch_first else 1],)
    _check_state(fn, "h0", h0, (*batch, hidden), "x's batch, w_hh's H")
    _check_state(fn, "c0", c0, (*batch, hidden), "x's batch, w_hh's H")
    if dtype is FLOAT64:
        return ref.lstm(x, h0, c0, weights, batch_first=batch_first, return_saved=return_saved)

    batch_first = bool(batch_first) and not unbatched
    if unbatched:
        x_tbi, h0, c0 = (
            x[:, None],
            None if h0 is None else h0[None],
            None if c0 is None else c0[None],
        )
    else:
        x_tbi = x.swapaxes(0, 1) if batch_first else x
    y, h_n, c_n, saved = _forward(
        False, x_tbi, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first, unbatched, return_saved
    )
    if unbatched:
        y, h_n, c_n = y[:, 0], h_n[0], c_n[0]
    elif batch_first:
        y = y.swapaxes(0, 1)
    return (y, (h_n, c_n), saved) if return_saved else (y, (h_n, c_n))


def lstm_backward(dy, dh_n, dc_n, saved):
    """Gradients of lstm: (dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh)); dy has y's shape,
    dh_n / dc_n h_n's, each possibly None for zeros; db_ih / db_hh are None for a bias that
    was None. Backward through time runs inside the extension."""
    fn = "lstm_backward"
    dtype = _check_grads(fn, saved, False, dy=dy, dh_n=dh_n, dc_n=dc_n)
    if dtype is FLOAT64:
        return ref.lstm_backward(dy, dh_n, dc_n, saved)
    if saved.unbatched:
        dy = None if dy is None else dy[:, None]
        dh_n = None if dh_n is None else dh_n[None]
        dc_n = None if dc_n is None else dc_n[None]
    elif saved.batch_first and dy is not None:
        dy = dy.swapaxes(0, 1)
    dx, dh0, dc0, dw_ih, dw_hh, db = _backward(dy, dh_n, dc_n, saved)
    if saved.unbatched:
        dx, dh0, dc0 = dx[:, 0], dh0[0], dc0[0]
    elif saved.batch_first:
        dx = dx.swapaxes(0, 1)
    db_ih = db if saved.has_b_ih else None
    db_hh = (db.copy() if saved.has_b_ih else db) if saved.has_b_hh else None
    return dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh)


# ---- CUDA (CuPy float32, arguments checked above) --------------------------------------------

# EMBER_CUDA_LSTM_GRAPH=0 runs a layer's time loop as separate launches instead of replaying it as
# a cached CUDA graph (cuda/lstm/lstm.cu; the default, 1).
_GRAPH_ENV = "EMBER_CUDA_LSTM_GRAPH"


def _graphs():
    value = os.environ.get(_GRAPH_ENV, "1")
    if value not in ("0", "1"):
        raise ValueError(f"{_GRAPH_ENV} must be 0 or 1, not {value!r}")
    return value == "1"


def _cuda_rows(x):
    """(x, batch_major): x (T, B, I) as the CUDA kernels take it, its T * B rows one stride apart
    in time-major (t*B + b) or batch-major (b*T + t) order; else a time-major copy."""
    import cupy

    steps, batch = x.shape[:2]
    st, sb = x.strides[:2]
    if steps <= 1 or batch <= 1 or st == batch * sb:
        return x, False
    if sb == steps * st:
        return x, True
    return cupy.ascontiguousarray(x), False


def _state_copy(s, batch, hidden):
    """A C-contiguous copy of a (B, H) state (the kernels update it in place or keep it for the
    backward), zeros for None."""
    import cupy

    if s is None:
        return cupy.zeros((batch, hidden), dtype=cupy.float32)
    return cupy.array(s, dtype=cupy.float32, order="C")


def _forward_cuda(cell, x_tbi, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first, unbatched, save):
    import cupy

    x_tbi, batch_major = _cuda_rows(x_tbi)
    steps, batch = x_tbi.shape[:2]
    hidden = w_hh.shape[1]
    rows = steps * batch
    if b_ih is not None and b_hh is not None:
        bias = b_ih + b_hh
    elif b_ih is not None or b_hh is not None:
        bias = cupy.ascontiguousarray(b_ih if b_ih is not None else b_hh)
    else:
        bias = None
    c0 = _state_copy(c0, batch, hidden)
    y = empty((batch, steps, hidden) if batch_first else (steps, batch, hidden))
    h_n, c_n = empty((batch, hidden)), empty((batch, hidden))
    gates = empty((rows, 4 * hidden))
    kept = tuple(empty((rows, hidden)) for _ in range(3)) if save else (None, None, None)
    cuda_module("lstm_cell" if cell else "lstm").lstm_forward(
        x_tbi,
        h0,
        c0,
        w_ih,
        w_hh,
        bias,
        y,
        h_n,
        c_n,
        gates,
        *kept,
        batch_major,
        batch_first,
        tf32_allowed(),
        _graphs(),
        current_stream(),
    )
    saved = None
    if save:
        saved = LSTMSaved(
            cell=cell,
            batch_first=batch_first,
            unbatched=unbatched,
            x=x_tbi,
            w_ih=w_ih,
            w_hh=w_hh,
            has_b_ih=b_ih is not None,
            has_b_hh=b_hh is not None,
            buffers=(c0, gates, *kept),
        )
    return (y.swapaxes(0, 1) if batch_first else y), h_n, c_n, saved


def _backward_cuda(dy_tbh, dh_n, dc_n, s):
    steps, batch, inputs = s.x.shape
    hidden = s.w_hh.shape[1]
    _, batch_major = _cuda_rows(s.x)  # s.x folds: the forward's order
    dh, dc = _state_copy(dh_n, batch, hidden), _state_copy(dc_n, batch, hidden)
    dx = empty((batch, steps, inputs) if batch_major else (steps, batch, inputs))
    dw_ih, dw_hh = empty(s.w_ih.shape), empty(s.w_hh.shape)
    db = empty((4 * hidden,)) if s.has_b_ih or s.has_b_hh else None
    cuda_module("lstm_cell_backward" if s.cell else "lstm_backward").lstm_backward(
        dy_tbh,
        dh,
        dc,
        s.x,
        s.w_ih,
        s.w_hh,
        *s.buffers,
        empty((steps * batch, 4 * hidden)),
        dx,
        dw_ih,
        dw_hh,
        db,
        batch_major,
        tf32_allowed(),
        _graphs(),
        current_stream(),
    )
    return (dx.swapaxes(0, 1) if batch_major else dx), dh, dc, dw_ih, dw_hh, db
