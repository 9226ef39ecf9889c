"""Plain NumPy reference implementations of `ember.ops`: written for clarity, not speed, and
correct in float64. They are the oracle every kernel is tested against. Each takes the same
arguments as its `ember.ops` namesake and computes in float64, returning the inputs' dtype."""

from ember.ref.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)
from ember.ref.conv import col2im, conv2d, conv2d_backward, im2col
from ember.ref.gemm import gemm, matmul
from ember.ref.lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward
from ember.ref.pool import (
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
]
