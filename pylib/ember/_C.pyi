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
