"""`Dropout`: active in training mode only."""

from __future__ import annotations

from ember.nn import functional as F
from ember.nn.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes each element with probability p in training mode, scaling the others by
    1 / (1 - p); the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
