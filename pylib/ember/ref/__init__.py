"""Plain NumPy reference implementations of `ember.ops`: written for clarity, not speed, and
correct in float64. They are the oracle every kernel is tested against. Each takes the same
arguments as its `ember.ops` namesake and computes in float64, returning the inputs' dtype."""

from ember.ref.gemm import gemm, matmul
from ember.ref.lstm import lstm, lstm_backward, lstm_cell, lstm_cell_backward

__all__ = ["gemm", "lstm", "lstm_backward", "lstm_cell", "lstm_cell_backward", "matmul"]
