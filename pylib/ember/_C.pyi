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

def im2col(
    x: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """cols (N, C*R*S, P*Q) of x (N, C, H, W), float32 any strides, as torch's unfold."""

def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """x of shape x_shape (N, C, H, W) from cols (N, C*R*S, P*Q), overlaps summed (torch's fold)."""

def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """y (N, K, P, Q) = conv2d(x (N, C, H, W), w (K, C/groups, R, S)) + b; padding is (top,
    bottom, left, right). float32, any strides. Releases the GIL."""

def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    need: tuple[bool, bool, bool],
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dx, dw, db) of conv2d from dy (N, K, P, Q); None where need is False. Releases the GIL."""

# Pooling: x and dy are 4-D float32 (N, C, H, W) with any strides but a column stride of one
# element; pairs are (h, w); outputs are fresh C-contiguous arrays. Release the GIL.
def max_pool2d(
    x: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(y, indices int64 flat over each input plane), as PyTorch's max_pool2d."""

def max_pool2d_backward(
    dy: np.ndarray, indices: np.ndarray, x_shape: tuple[int, int, int, int]
) -> np.ndarray:
    """dx = dy summed at indices (C-contiguous int64, dy's shape; ValueError if out of range)."""

def avg_pool2d(
    x: np.ndarray,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor: int,
) -> np.ndarray:
    """As PyTorch's avg_pool2d; divisor is divisor_override, 0 for none."""

def avg_pool2d_backward(
    dy: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor: int,
) -> np.ndarray: ...
def adaptive_avg_pool2d(x: np.ndarray, output_size: tuple[int, int]) -> np.ndarray: ...
def adaptive_avg_pool2d_backward(
    dy: np.ndarray, x_shape: tuple[int, int, int, int]
) -> np.ndarray: ...
def attention_blocking() -> dict: ...
def sdpa_forward(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    attn_mask: np.ndarray | None,
    out: np.ndarray,
    lse: np.ndarray,
    scale: float,
    is_causal: bool,
    dropout_p: float,
    seed: int,
) -> None:
    """Fused attention: writes out (..., L, Ev) and lse (..., L). q (..., L, E), k (..., S, E),
    v (..., S, Ev) and attn_mask (bool or float32, (..., L, S)) share their leading dimensions
    (any strides, 0 allowed); out and lse are C-contiguous float32. Releases the GIL."""

def sdpa_backward(
    dout: np.ndarray,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    out: np.ndarray,
    lse: np.ndarray,
    attn_mask: np.ndarray | None,
    dq: np.ndarray,
    dk: np.ndarray,
    dv: np.ndarray,
    scale: float,
    is_causal: bool,
) -> None:
    """Gradients of sdpa_forward (no dropout): writes dq, dk, dv (C-contiguous, the leading
    dimensions of q). lse is C-contiguous. Releases the GIL."""

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
