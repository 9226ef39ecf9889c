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
