"""ember.ops: the fast backend on plain arrays.

Each function validates its arguments (TypeError for a wrong type or dtype, ValueError naming
the argument and the shapes for anything else) and then runs ember's kernel: NumPy float32
arrays go to the CPU kernels in `ember._C`; float64 arrays are computed exactly by `ember.ref`.
Kernels release the GIL. One module per kernel family.
"""

from ember._runtime import get_float32_matmul_precision, set_float32_matmul_precision
from ember.ops.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)
from ember.ops.conv import col2im, conv2d, conv2d_backward, im2col
from ember.ops.gemm import gemm, matmul
from ember.ops.lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward
from ember.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "gemm",
    "get_float32_matmul_precision",
    "im2col",
    "lstm",
    "lstm_backward",
    "lstm_cell",
    "lstm_cell_backward",
    "matmul",
    "max_pool2d",
    "max_pool2d_backward",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "set_float32_matmul_precision",
]
