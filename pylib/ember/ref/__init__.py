"""Plain NumPy reference implementations of `ember.ops`: written for clarity, not speed, and
correct in float64. They are the oracle every kernel is tested against. Each takes the same
arguments as its `ember.ops` namesake and computes in float64, returning the inputs' dtype."""

from ember.ref.conv import col2im, conv2d, conv2d_backward, im2col
from ember.ref.gemm import gemm, matmul

__all__ = ["col2im", "conv2d", "conv2d_backward", "gemm", "im2col", "matmul"]
