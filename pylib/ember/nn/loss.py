"""Losses as modules: `CrossEntropyLoss`, `NLLLoss`, `MSELoss`, `BCEWithLogitsLoss`,
`KLDivLoss`. Each is its functional form with the options fixed at construction. Class weights
and pos_weight are buffers, as in PyTorch, so `loss.to(device)` moves them with the module."""

from __future__ import annotations

from ember.nn import functional as F
from ember.nn.module import Module
from ember.tensor import Tensor

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss", "MSELoss", "NLLLoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def _register_weight(self, name: str, value) -> None:
        """value (a Tensor, an array, or None) as buffer `name`."""
        if value is not None and not isinstance(value, Tensor):
            value = Tensor(value)
        self.register_buffer(name, value)


class CrossEntropyLoss(_Loss):
    """log_softmax + negative log-likelihood: input logits (N, C, ...) or (C,), target class
    indices (N, ...) or class probabilities shaped as input."""

    def __init__(
        self, weight=None, ignore_index: int = -100, reduction="mean", label_smoothing=0.0
    ):
        super().__init__(reduction)
        self._register_weight("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(
            input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing
        )


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices, given log-probabilities."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction="mean"):
        super().__init__(reduction)
        self._register_weight("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one numerically stable step."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self._register_weight("weight", weight)
        self._register_weight("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )


class KLDivLoss(_Loss):
    """KL(target || input) with input log-probabilities; reduction='batchmean' gives the
    divergence per example."""

    def __init__(self, reduction="mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, self.reduction, self.log_target)
