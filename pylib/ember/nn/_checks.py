"""Argument checks shared by ember.nn's layers and functionals: they take Tensors and sizes as
PyTorch's do, and a wrong one is a TypeError / ValueError that names it."""

from __future__ import annotations

import numbers

import numpy as np

from ember.autograd import array_module
from ember.tensor import Tensor


def size(owner: str, name: str, value, minimum: int = 0) -> int:
    """A layer's size argument: an int (not a bool) of at least `minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {value}")
    return int(value)


def tensor(owner: str, name: str, x, *, floating: bool = True, like=None):
    """x, after checking it is a Tensor (or a NumPy / CuPy array) and, if `floating`, float32 or
    float64 — the dtype of `like` (a parameter) when given."""
    data = x.data if isinstance(x, Tensor) else x
    if not isinstance(data, np.ndarray) and array_module(data) is np:
        raise TypeError(f"{owner}: {name} must be a Tensor, got {type(x).__name__}")
    if floating and data.dtype.char not in "fd":
        raise TypeError(f"{owner}: {name} must be float32 or float64, got {data.dtype}")
    if like is not None and data.dtype != like.dtype:
        raise TypeError(f"{owner}: {name} is {data.dtype} but the layer's weights are {like.dtype}")
    return x
