"""`Conv2d`."""

from __future__ import annotations

import numpy as np

from ember.nn import _checks, init
from ember.nn import functional as F
from ember.nn.module import Module, Parameter
from ember.ops._validate import pair

__all__ = ["Conv2d"]


class Conv2d(Module):
    """y = conv2d(x, weight) + bias: weight (out_channels, in_channels/groups, kh, kw), bias
    (out_channels,). Initialised as PyTorch's: kaiming_uniform(a=sqrt(5)) for the weight, the
    bias uniform in +-1/sqrt(fan_in). padding may be 'same' or 'valid'; padding_mode 'zeros'."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype=None,
    ):
        super().__init__()
        in_channels = _checks.size("Conv2d", "in_channels", in_channels)
        out_channels = _checks.size("Conv2d", "out_channels", out_channels)
        groups = _checks.size("Conv2d", "groups", groups, 1)
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must be "
                f"divisible by groups ({groups})"
            )
        if padding_mode != "zeros":
            raise NotImplementedError(f"Conv2d: padding_mode {padding_mode!r} (only 'zeros')")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.padding = (
            padding if isinstance(padding, str) else pair("Conv2d", "padding", padding, 0)
        )
        self.dilation = pair("Conv2d", "dilation", dilation, 1)
        self.padding_mode = padding_mode
        dtype = np.float32 if dtype is None else dtype
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, input):
        return F.conv2d(
            input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            s += (
                f", padding={self.padding!r}"
                if isinstance(self.padding, str)
                else f", padding={self.padding}"
            )
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
