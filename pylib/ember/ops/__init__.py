"""ember.ops: the fast backend on plain arrays.

Each function validates its arguments (TypeError for a wrong type or dtype, ValueError naming
the argument and the shapes for anything else) and then runs ember's kernel: NumPy float32
arrays go to the CPU kernels in `ember._C`; float64 arrays are computed exactly by `ember.ref`.
Kernels release the GIL. One module per kernel family.
"""

from ember._runtime import get_float32_matmul_precision, set_float32_matmul_precision
from ember.ops.gemm import gemm, matmul
from ember.ops.lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward

__all__ = [
    "gemm",
    "get_float32_matmul_precision",
    "lstm",
    "lstm_backward",
    "lstm_cell",
    "lstm_cell_backward",
    "matmul",
    "set_float32_matmul_precision",
]
