"""Plain NumPy reference implementations of `ember.ops`: written for clarity, not speed, and
correct in float64. They are the oracle every kernel is tested against. Each takes the same
arguments as its `ember.ops` namesake and computes in float64, returning the inputs' dtype."""

from ember.ref.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)
from ember.ref.gemm import gemm, matmul

__all__ = [
    "gemm",
    "matmul",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
]
