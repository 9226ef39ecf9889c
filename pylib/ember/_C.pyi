"""ember._C: the compiled CPU kernels (private; use ember.ops)."""

import numpy as np

__version__: str

def cpu_info() -> dict: ...
def gemm_blocking() -> dict: ...
def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def _select_isa(name: str) -> None: ...
def gemm(
    a: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
    trans_a: bool = False,
    trans_b: bool = False,
    alpha: float = 1.0,
    beta: float = 0.0,
) -> np.ndarray:
    """out = alpha * op(a) @ op(b) + beta * out over equal leading (batch) dimensions; float32,
    any strides (0 allowed in a and b), out not overlapping a or b. Releases the GIL."""

def lstm_forward(
    x: np.ndarray,
    h0: np.ndarray | None,
    c0: np.ndarray | None,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    batch_first: bool,
    save: bool,
) -> tuple:
    """One LSTM layer on float32: x (T, B, I) whose T * B rows are evenly spaced in time- or
    batch-major order, h0/c0 (B, H) or None. Returns (y (T, B, H) — a view of a contiguous
    (B, T, H) array when batch_first —, h_n, c_n, saved), saved being None unless `save`, else
    the buffers (c0, gates, c_all, tanh_c, h_prev) that lstm_backward takes. Releases the GIL."""

def lstm_backward(
    dy: np.ndarray,
    dh_n: np.ndarray | None,
    dc_n: np.ndarray | None,
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    has_bias: bool,
    c0: np.ndarray,
    gates: np.ndarray,
    c_all: np.ndarray,
    tanh_c: np.ndarray,
    h_prev: np.ndarray,
) -> tuple:
    """Backward of lstm_forward with the same x and weights: (dx (T, B, I), dh0, dc0, dw_ih,
    dw_hh, db or None) from dy (T, B, H) and dh_n/dc_n (B, H) or None. Releases the GIL."""
