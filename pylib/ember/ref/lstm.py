"""LSTM references: one cell step, and a layer as a loop of cell steps, forward and backward.

PyTorch's gate order (i, f, g, o): gates = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh,
c' = sigmoid(f) * c + sigmoid(i) * tanh(g), h' = sigmoid(o) * tanh(c').
Computed in float64; results come back in the inputs' dtype. `saved` is an `LSTMSaved`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LSTMSaved", "lstm", "lstm_backward", "lstm_cell", "lstm_cell_backward"]


@dataclass
class LSTMSaved:
    """What the backward needs: the inputs in float64 (x as (T, B, I)) and, per step, the gates'
    activations and the states (as (B, H))."""

    cell: bool  # saved by lstm_cell (else by lstm)
    batch_first: bool
    unbatched: bool
    dtype: np.dtype
    x: np.ndarray
    w_ih: np.ndarray
    w_hh: np.ndarray
    has_b_ih: bool
    has_b_hh: bool
    steps: list = field(default_factory=list)  # per step: (i, f, g, o, c_prev, c_next, h_prev)


def _saved(cell, batch_first, unbatched, dtype, x, w_ih, w_hh, b_ih, b_hh):
    return LSTMSaved(
        cell=cell,
        batch_first=batch_first,
        unbatched=unbatched,
        dtype=dtype,
        x=x,
        w_ih=w_ih,
        w_hh=w_hh,
        has_b_ih=b_ih is not None,
        has_b_hh=b_hh is not None,
    )


def _f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _step(x, h, c, w_ih, w_hh, b):
    """One cell step on (B, I) and (B, H) rows: (h_next, c_next, (i, f, g, o))."""
    gates = x @ w_ih.T + h @ w_hh.T + b
    hidden = h.shape[1]
    i = _sigmoid(gates[:, :hidden])
    f = _sigmoid(gates[:, hidden : 2 * hidden])
    g = np.tanh(gates[:, 2 * hidden : 3 * hidden])
    o = _sigmoid(gates[:, 3 * hidden :])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next, (i, f, g, o)


def _step_backward(dh_next, dc_next, acts, c, c_next):
    """Gradients of one step w.r.t. the gates' pre-activations (B, 4H) and c."""
    i, f, g, o = acts
    tanh_c = np.tanh(c_next)
    dc_total = dc_next + dh_next * o * (1.0 - tanh_c**2)
    dgates = np.concatenate(
        [
            dc_total * g * i * (1.0 - i),
            dc_total * c * f * (1.0 - f),
            dc_total * i * (1.0 - g**2),
            dh_next * tanh_c * o * (1.0 - o),
        ],
        axis=1,
    )
    return dgates, dc_total * f


def _bias(w_hh, b_ih, b_hh):
    b = np.zeros(w_hh.shape[0])
    for part in (b_ih, b_hh):
        if part is not None:
            b = b + _f64(part)
    return b


def _state(s, batch, hidden):
    return np.zeros((batch, hidden)) if s is None else _f64(s).reshape(batch, hidden)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, return_saved=False):
    """(h_next, c_next) of one step, plus `saved` when asked. x (B, I) or unbatched (I,);
    h and c (B, H) / (H,), or None for zeros."""
    dtype = np.result_type(x, w_ih, w_hh)
    unbatched = np.ndim(x) == 1
    x2 = _f64(x)[None] if unbatched else _f64(x)
    batch, hidden = x2.shape[0], np.shape(w_hh)[1]
    h2, c2 = _state(h, batch, hidden), _state(c, batch, hidden)
    w_ih, w_hh = _f64(w_ih), _f64(w_hh)
    h_next, c_next, acts = _step(x2, h2, c2, w_ih, w_hh, _bias(w_hh, b_ih, b_hh))
    out = tuple(v[0] if unbatched else v for v in (h_next, c_next))
    out = tuple(v.astype(dtype) for v in out)
    if not return_saved:
        return out
    saved = _saved(True, False, unbatched, dtype, x2[None], w_ih, w_hh, b_ih, b_hh)
    saved.steps.append((*acts, c2, c_next, h2))
    return (*out, saved)


def lstm_cell_backward(dh_next, dc_next, saved):
    """(dx, dh, dc, dw_ih, dw_hh, db) of lstm_cell; db (the gradient of either bias) is None
    without biases. dh_next / dc_next may be None for zeros."""
    dx, dh, dc, (dw_ih, dw_hh, db_ih, db_hh) = lstm_backward(
        None if dh_next is None else np.asarray(dh_next)[None], None, dc_next, saved
    )
    db = db_ih if db_ih is not None else db_hh
    return dx[0], dh, dc, dw_ih, dw_hh, db


def lstm(x, h0, c0, weights, *, batch_first=False, return_saved=False):
    """One layer over a sequence: (y, (h_n, c_n)), plus `saved` when asked. x (T, B, I), or
    (B, T, I) with batch_first, or unbatched (T, I); h0 and c0 (B, H) / (H,) or None for zeros;
    weights = (w_ih, w_hh, b_ih, b_hh), biases possibly None."""
    w_ih, w_hh, b_ih, b_hh = weights
    dtype = np.result_type(x, w_ih, w_hh)
    unbatched = np.ndim(x) == 2
    x3 = _f64(x)[:, None] if unbatched else _f64(x)
    if batch_first and not unbatched:
        x3 = x3.transpose(1, 0, 2)
    steps, batch = x3.shape[:2]
    hidden = np.shape(w_hh)[1]
    h, c = _state(h0, batch, hidden), _state(c0, batch, hidden)
    w_ih, w_hh = _f64(w_ih), _f64(w_hh)
    b = _bias(w_hh, b_ih, b_hh)
    saved = _saved(False, batch_first, unbatched, dtype, x3, w_ih, w_hh, b_ih, b_hh)
    ys = []
    for t in range(steps):
        h_next, c_next, acts = _step(x3[t], h, c, w_ih, w_hh, b)
        saved.steps.append((*acts, c, c_next, h))
        ys.append(h_next)
        h, c = h_next, c_next
    y = np.stack(ys) if ys else np.zeros((0, batch, hidden))
    if unbatched:
        y, h, c = y[:, 0], h[0], c[0]
    elif batch_first:
        y = y.transpose(1, 0, 2)
    out = (y.astype(dtype), (h.astype(dtype), c.astype(dtype)))
    return (*out, saved) if return_saved else out


def lstm_backward(dy, dh_n, dc_n, saved):
    """(dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh)) of lstm; dy has y's shape, dh_n / dc_n
    h_n's (or None for zeros); db_ih / db_hh are None for a bias that was None."""
    s = saved
    steps, batch = s.x.shape[:2]
    hidden = s.w_hh.shape[1]
    if dy is None:
        dy3 = np.zeros((steps, batch, hidden))
    else:
        dy3 = _f64(dy)[:, None] if s.unbatched else _f64(dy)
        if s.batch_first and not s.unbatched:
            dy3 = dy3.transpose(1, 0, 2)
    dh, dc = _state(dh_n, batch, hidden), _state(dc_n, batch, hidden)
    dx = np.zeros(s.x.shape)
    dw_ih, dw_hh, db = np.zeros(s.w_ih.shape), np.zeros(s.w_hh.shape), np.zeros(4 * hidden)
    for t in reversed(range(steps)):
        i, f, g, o, c, c_next, h = s.steps[t]
        dgates, dc = _step_backward(dh + dy3[t], dc, (i, f, g, o), c, c_next)
        dx[t] = dgates @ s.w_ih
        dw_ih += dgates.T @ s.x[t]
        dw_hh += dgates.T @ h
        db += dgates.sum(axis=0)
        dh = dgates @ s.w_hh
    if s.unbatched:
        dx, dh, dc = dx[:, 0], dh[0], dc[0]
    elif s.batch_first:
        dx = dx.transpose(1, 0, 2)
    dt = s.dtype
    db_ih = db.astype(dt) if s.has_b_ih else None
    db_hh = db.astype(dt) if s.has_b_hh else None
    return (
        dx.astype(dt),
        dh.astype(dt),
        dc.astype(dt),
        (dw_ih.astype(dt), dw_hh.astype(dt), db_ih, db_hh),
    )
