"""`CosineSimilarity`: F.cosine_similarity as a module, as PyTorch's."""

from __future__ import annotations

from ember.nn import functional as F
from ember.nn.module import Module

__all__ = ["CosineSimilarity"]


class CosineSimilarity(Module):
    """forward(x1, x2): the cosine similarity of x1 and x2 along `dim` (dropped from the
    result), each norm at least eps."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, eps={self.eps}"
