"""`LSTMCell` and `LSTM`, named, shaped and initialised as PyTorch's.

Each LSTM layer and direction is one autograd Function around ember's layer kernel
(ember.ops.lstm: the time loop, forward and backward through time, runs in C++); a reverse
direction runs the same kernel on the sequence reversed in time.
"""

from __future__ import annotations

import math

import numpy as np

from ember import ops
from ember.autograd import Function, array_module
from ember.nn import _checks, init
from ember.nn import functional as F
from ember.nn.module import Module, Parameter
from ember.tensor import cat, stack

__all__ = ["LSTM", "LSTMCell"]


class _LSTMLayer(Function):
    """One LSTM layer over a sequence: (y, h_n, c_n) from x and the optional initial states.
    With reverse, the sequence is read from its last step to its first (y keeps x's order)."""

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, *, batch_first, reverse):
        xp = array_module(x)
        self.time_axis = 1 if batch_first and x.ndim == 3 else 0
        if reverse:
            x = xp.flip(x, self.time_axis)
        record = bool(self.needs_input_grad)
        result = ops.lstm(
            x, h0, c0, (w_ih, w_hh, b_ih, b_hh), batch_first=batch_first, return_saved=record
        )
        y, (h_n, c_n) = result[:2]
        if record:
            self.save_for_backward(result[2])
        self.reverse = reverse
        if reverse:
            y = xp.ascontiguousarray(xp.flip(y, self.time_axis))
        return y, h_n, c_n

    def backward(self, dy, dh_n, dc_n):
        (saved,) = self.saved
        xp = array_module(dy)
        if self.reverse:
            dy = xp.flip(dy, self.time_axis)
        dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh) = ops.lstm_backward(dy, dh_n, dc_n, saved)
        if self.reverse:
            dx = xp.ascontiguousarray(xp.flip(dx, self.time_axis))
        return dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh


class _LSTMCell(Function):
    """One LSTM step: (h', c') from x (B, I) or (I,) and the optional states."""

    def forward(self, x, h, c, w_ih, w_hh, b_ih, b_hh):
        record = bool(self.needs_input_grad)
        result = ops.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, return_saved=record)
        if record:
            self.save_for_backward(result[2])
        return result[0], result[1]

    def backward(self, dh_next, dc_next):
        (saved,) = self.saved
        dx, dh, dc, dw_ih, dw_hh, db = ops.lstm_cell_backward(dh_next, dc_next, saved)
        db_hh = None if db is None else db.copy()
        return dx, dh, dc, dw_ih, dw_hh, db, db_hh


def _uniform_parameters(module: Module, hidden_size: int) -> None:
    """PyTorch's LSTM initialisation: every weight and bias uniform in +-1/sqrt(hidden_size)."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _state_pair(owner: str, hx, like) -> tuple:
    """hx = (h, c) after checking it is a pair of float tensors of the weights' dtype."""
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"{owner}: hx must be a pair (h, c) of Tensors, got {type(hx).__name__}")
    for name, state in zip(("h", "c"), hx, strict=True):
        _checks.tensor(owner, f"hx's {name}", state, like=like)
    return tuple(hx)


class LSTMCell(Module):
    """One LSTM step, forward(input, hx=None) -> (h', c'): input (B, I) or (I,), hx a pair
    (h, c) of (B, H) / (H,) (zeros if None). weight_ih (4H, I), weight_hh (4H, H), bias_ih and
    bias_hh (4H,), gates in PyTorch's order (i, f, g, o)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        input_size = _checks.size("LSTMCell", "input_size", input_size)
        hidden_size = _checks.size("LSTMCell", "hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(np.empty((4 * hidden_size, input_size), np.float32))
        self.weight_hh = Parameter(np.empty((4 * hidden_size, hidden_size), np.float32))
        if bias:
            self.bias_ih = Parameter(np.empty(4 * hidden_size, np.float32))
            self.bias_hh = Parameter(np.empty(4 * hidden_size, np.float32))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_parameters(self, self.hidden_size)

    def forward(self, input, hx=None):
        _checks.tensor("LSTMCell", "input", input, like=self.weight_ih)
        if input.ndim not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.ndim}D instead")
        h, c = (None, None) if hx is None else _state_pair("LSTMCell", hx, self.weight_ih)
        return _LSTMCell.apply(
            input, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        )

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        return text if self.bias else text + ", bias=False"


class LSTM(Module):
    """A stack of LSTM layers, forward(input, hx=None) -> (output, (h_n, c_n)) as PyTorch's:
    input (T, B, I), (B, T, I) with batch_first, or unbatched (T, I); hx a pair (h_0, c_0) of
    (num_layers * D, B, H) / (num_layers * D, H), zeros if None (D = 2 if bidirectional);
    output (T, B, D * H) (or as input's layout). Layer k > 0 reads the previous layer's output,
    with dropout applied to it in training mode. Parameters weight_ih_l{k}, weight_hh_l{k},
    bias_ih_l{k}, bias_hh_l{k}, plus the same with the suffix _reverse for the reverse
    direction."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__()
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                "element being zeroed"
            )
        input_size = _checks.size("LSTM", "input_size", input_size, 1)
        hidden_size = _checks.size("LSTM", "hidden_size", hidden_size, 1)
        num_layers = _checks.size("LSTM", "num_layers", num_layers, 1)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        directions = 2 if bidirectional else 1
        gates = 4 * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                name = f"l{layer}{suffix}"
                w_ih = Parameter(np.empty((gates, layer_input), np.float32))
                w_hh = Parameter(np.empty((gates, hidden_size), np.float32))
                setattr(self, f"weight_ih_{name}", w_ih)
                setattr(self, f"weight_hh_{name}", w_hh)
                if bias:
                    setattr(self, f"bias_ih_{name}", Parameter(np.empty(gates, np.float32)))
                    setattr(self, f"bias_hh_{name}", Parameter(np.empty(gates, np.float32)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _uniform_parameters(self, self.hidden_size)

    def _weights(self, name: str) -> tuple:
        get = self._parameters.get
        return (
            get(f"weight_ih_{name}"),
            get(f"weight_hh_{name}"),
            get(f"bias_ih_{name}"),
            get(f"bias_hh_{name}"),
        )

    def forward(self, input, hx=None):
        _checks.tensor("LSTM", "input", input, like=self.weight_ih_l0)
        if hx is not None:
            hx = _state_pair("LSTM", hx, self.weight_ih_l0)
        if input.ndim not in (2, 3):
            raise ValueError(f"LSTM: Expected input to be 2D or 3D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.shape[-1]}"
            )
        unbatched = input.ndim == 2
        directions = 2 if self.bidirectional else 1
        if hx is not None:
            batch = () if unbatched else (input.shape[0 if self.batch_first else 1],)
            expected = (self.num_layers * directions, *batch, self.hidden_size)
            for name, state in zip(("h_0", "c_0"), hx, strict=True):
                if tuple(state.shape) != expected:
                    raise RuntimeError(
                        f"Expected hidden size {expected} for {name}, got {tuple(state.shape)}"
                    )
        x, h_n, c_n = input, [], []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0.0 and self.training:
                x = F.dropout(x, self.dropout, True)
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                h0, c0 = (None, None) if hx is None else (hx[0][index], hx[1][index])
                name = f"l{layer}" + ("_reverse" if direction else "")
                y, h, c = _LSTMLayer.apply(
                    x,
                    h0,
                    c0,
                    *self._weights(name),
                    batch_first=self.batch_first,
                    reverse=direction == 1,
                )
                outputs.append(y)
                h_n.append(h)
                c_n.append(c)
            x = outputs[0] if directions == 1 else cat(outputs, dim=-1)
        return x, (stack(h_n), stack(c_n))

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text
