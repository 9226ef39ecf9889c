"""`Linear`, `Identity` and `Flatten`."""

from __future__ import annotations

import numpy as np

from ember.nn import _checks, init
from ember.nn import functional as F
from ember.nn.module import Module, Parameter

__all__ = ["Flatten", "Identity", "Linear"]


class Linear(Module):
    """y = x @ weight.T + bias: weight (out_features, in_features), bias (out_features,).
    Initialised as PyTorch's: both uniform in +-1/sqrt(in_features) (kaiming_uniform with
    a = sqrt(5) for the weight)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        in_features = _checks.size("Linear", "in_features", in_features)
        out_features = _checks.size("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        dtype = np.float32 if dtype is None else dtype
        self.weight = Parameter(np.empty((out_features, in_features), dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a removed head)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens dimensions start_dim..end_dim into one (by default all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
