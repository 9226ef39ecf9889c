"""`ember.Tensor`: one NumPy (or CuPy) array plus what autograd needs, and the functions that
make tensors (`tensor`, `zeros`, `randn`, ...).

A Tensor's `.data` is the array itself (PyTorch's `.data` is a Tensor; here it is what a
Tensor wraps). Operations on tensors go through the `Function`s of `ember.functions`, which
record the graph that `backward()` walks.
"""

from __future__ import annotations

import math
import numbers
from collections import namedtuple

import numpy as np

from ember import _device, _random, functions
from ember.autograd import Function, array_module, is_grad_enabled, run_backward

__all__ = [
    "Tensor",
    "arange",
    "cat",
    "empty",
    "empty_like",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "ones",
    "ones_like",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]

FLOAT32 = np.dtype(np.float32)
_QUIET_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))  # repr omits
_DLPACK_CPU, _DLPACK_CUDA = 1, 2  # DLPack device types

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])  # what .max(dim) returns


_is_cupy = _device.is_cupy


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    `requires_grad=True` makes it a leaf whose `.grad` (a Tensor) receives the gradient of
    whatever `backward()` is called on. Tensors made by operations on such tensors carry the
    `Function` that made them in `.grad_fn`.
    """

    __array_ufunc__ = None  # `ndarray + Tensor` calls Tensor.__radd__ instead of NumPy's loop
    __hash__ = object.__hash__  # __eq__ is elementwise; tensors hash by identity, as PyTorch's

    def __init__(self, data, requires_grad=False, *, _grad_fn=None, _output_index=0):
        if not isinstance(data, np.ndarray) and not _is_cupy(data):
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self.grad_fn = _grad_fn
        self._output_index = _output_index
        self._requires_grad = False
        if _grad_fn is not None:
            self._requires_grad = True
        elif requires_grad:
            self.requires_grad = True

    # ---- attributes --------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf tensors; use .detach() to get "
                "a tensor that does not require grad"
            )
        if value and self.dtype.kind not in "fc":
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients, got {self.dtype}"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        """'cpu' or 'cuda' (the GPU's index, where it matters, is in `device_index`)."""
        return "cuda" if _is_cupy(self.data) else "cpu"

    @property
    def is_cuda(self) -> bool:
        return _is_cupy(self.data)

    @property
    def device_index(self):
        """The index N of the GPU holding the data ('cuda:N'), None on the CPU."""
        return self.data.device.id if _is_cupy(self.data) else None

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ---- conversions -------------------------------------------------------------------

    def numpy(self) -> np.ndarray:
        """The array itself (shared memory), for a tensor on the CPU."""
        if self.device != "cpu":
            raise TypeError("can't convert a cuda tensor to NumPy: use .cpu() first")
        return self.data

    def __array__(self, dtype=None, copy=None):
        array = _move(self.data, "cpu")
        return np.array(array, dtype=dtype, copy=True) if copy else np.asarray(array, dtype)

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"a Tensor with {self.data.size} elements cannot be converted to a scalar"
            )
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.data)

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def clone(self) -> Tensor:
        """A copy of the data that gradients flow through."""
        return functions.Cast.apply(self, dtype=self.dtype)  # astype always copies

    def contiguous(self) -> Tensor:
        return self

    def to(self, *args, device=None, dtype=None) -> Tensor:
        """`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(other_tensor)` (its device and
        dtype), or keywords; returns self when nothing changes. A device is 'cpu', 'cuda' (any
        GPU: a tensor on one stays there) or 'cuda:N'. Gradients flow through the move and the
        cast. Asking for a GPU where CUDA cannot be used raises RuntimeError saying why."""
        device, dtype = _to_args(args, device, dtype)
        out = self
        if dtype is not None and dtype != self.dtype:
            out = functions.Cast.apply(out, dtype=dtype)
        if device is not None and not _on(self.data, device):
            out = _ToDevice.apply(out, device=device)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        """The tensor on the current GPU, or on GPU `device` (an index or 'cuda:N')."""
        return self.to("cuda" if device is None else _device.parse(device))

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def __dlpack__(self, **kwargs):
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    def __repr__(self) -> str:
        body = np.array2string(
            _move(self.data, "cpu"), separator=", ", prefix="tensor(", threshold=1000
        )
        extras = [body]
        if self.is_cuda:
            extras.append(f"device='{_device.device_of(self.data)}'")
        if self.dtype not in _QUIET_DTYPES:
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({', '.join(extras)})"

    # ---- autograd ----------------------------------------------------------------------

    def backward(self, gradient=None, retain_graph=None, *, grad=None) -> None:
        """Accumulates d(self)/d(leaf) into the .grad of every leaf that requires grad.
        Without `gradient` (`grad` is accepted as its other name), self must hold a single
        element. The graph's saved arrays are freed unless `retain_graph=True`."""
        gradient = grad if gradient is None else gradient
        if not self.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and has no grad_fn")
        xp = array_module(self.data)
        given = _unwrap(gradient)
        if isinstance(given, np.ndarray) or _is_cupy(given):
            _device.check_same((self.data, given), "the output and its gradient")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (this one has shape "
                    f"{self.shape}): pass backward(gradient) with the gradient of the output"
                )
            gradient = xp.ones(self.shape, dtype=self.dtype)
        else:
            gradient = xp.asarray(_unwrap(gradient), dtype=self.dtype)
            if gradient.shape != self.shape:
                raise RuntimeError(
                    f"Mismatch in shape: gradient has shape {gradient.shape} and output has "
                    f"shape {self.shape}"
                )
        if self.grad_fn is None:  # backward on a leaf: its gradient is the given one
            if self.grad is None:
                self.grad = Tensor(gradient.copy())
            else:
                self.grad.data += gradient
            return
        run_backward(self, gradient, retain_graph=bool(retain_graph))

    # ---- arithmetic (plain numbers stay numbers: they do not promote float32 to float64) --

    def __add__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Add.apply(self, other)

    def __radd__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Add.apply(other, self)

    def __sub__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Sub.apply(self, other)

    def __rsub__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Sub.apply(other, self)

    def __mul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Mul.apply(self, other)

    def __rmul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Mul.apply(other, self)

    def __truediv__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Div.apply(self, other)

    def __rtruediv__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Div.apply(other, self)

    def __pow__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Pow.apply(self, other)

    def __rpow__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.Pow.apply(other, self)

    def __matmul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        other = _operand(other)
        return NotImplemented if other is None else functions.MatMul.apply(other, self)

    def __neg__(self):
        return functions.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return functions.Abs.apply(self)

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__
    neg, abs = __neg__, __abs__

    # comparisons give boolean tensors and are not differentiable
    def __eq__(self, other):
        return Tensor(self.data == self._comparand(other))

    def __ne__(self, other):
        return Tensor(self.data != self._comparand(other))

    def __lt__(self, other):
        return Tensor(self.data < self._comparand(other))

    def __le__(self, other):
        return Tensor(self.data <= self._comparand(other))

    def __gt__(self, other):
        return Tensor(self.data > self._comparand(other))

    def __ge__(self, other):
        return Tensor(self.data >= self._comparand(other))

    def _comparand(self, other):
        """The other side of a comparison, checked to be on self's device when it is an array."""
        other = _unwrap(other)
        if isinstance(other, np.ndarray) or _is_cupy(other):
            if other.ndim == 0 and _is_cupy(self.data) and not _is_cupy(other):
                return other.item()  # a 0-d host array compares as the number it holds
            _device.check_same((self.data, other))
        return other

    # ---- elementwise functions ---------------------------------------------------------

    def exp(self):
        return functions.Exp.apply(self)

    def log(self):
        return functions.Log.apply(self)

    def sqrt(self):
        return functions.Sqrt.apply(self)

    def tanh(self):
        return functions.Tanh.apply(self)

    def sigmoid(self):
        return functions.Sigmoid.apply(self)

    def relu(self):
        return functions.ReLU.apply(self)

    def clamp(self, min=None, max=None):
        return functions.Clamp.apply(self, low=min, high=max)

    def masked_fill(self, mask, value):
        """self with `value` where mask (boolean, broadcastable) is True."""
        return functions.Where.apply(value, self, cond=_unwrap(mask))

    def softmax(self, dim):
        return functions.Softmax.apply(self, dim=dim)

    def log_softmax(self, dim):
        return functions.LogSoftmax.apply(self, dim=dim)

    # ---- reductions --------------------------------------------------------------------

    def sum(self, dim=None, keepdim=False):
        return functions.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        return functions.Mean.apply(self, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim=False):
        """The largest element, or with `dim` the pair (values, indices) along it."""
        if dim is None:
            return functions.Extreme.apply(self, largest=True)
        return self._extreme_along(dim, keepdim, largest=True)

    def min(self, dim=None, keepdim=False):
        """The smallest element, or with `dim` the pair (values, indices) along it."""
        if dim is None:
            return functions.Extreme.apply(self, largest=False)
        return self._extreme_along(dim, keepdim, largest=False)

    def _extreme_along(self, dim, keepdim, largest):
        xp = array_module(self.data)
        (axis,) = functions.normalize_dims(dim, self.ndim)
        pick = xp.argmax if largest else xp.argmin
        indices = pick(self.data, axis=axis, keepdims=True)
        values = functions.Gather.apply(self, dim=axis, index=indices)
        if not keepdim:
            values, indices = values.squeeze(axis), indices.squeeze(axis)
        return ValuesIndices(values, Tensor(indices))

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor(self.data.argmax())
        return Tensor(self.data.argmax(axis=dim, keepdims=keepdim))

    def argmin(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor(self.data.argmin())
        return Tensor(self.data.argmin(axis=dim, keepdims=keepdim))

    # ---- shapes ------------------------------------------------------------------------

    def reshape(self, *shape):
        return functions.Reshape.apply(self, shape=_size(shape))

    def view(self, *shape):
        """As reshape (NumPy copies where a view is impossible; PyTorch would raise)."""
        return functions.Reshape.apply(self, shape=_size(shape))

    def permute(self, *dims):
        return functions.Permute.apply(self, dims=_size(dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        a, b = functions.normalize_dims((dim0, dim1), self.ndim)
        dims[a], dims[b] = dims[b], dims[a]
        return functions.Permute.apply(self, dims=dims)

    @property
    def T(self):
        return functions.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start, end = functions.normalize_dims((start_dim, end_dim), self.ndim)
        flat = math.prod(self.shape[start : end + 1])
        return self.reshape(self.shape[:start] + (flat,) + self.shape[end + 1 :])

    def unsqueeze(self, dim):
        (axis,) = functions.normalize_dims(dim, self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def squeeze(self, dim=None):
        """Drops dimensions of size 1 (only those in `dim` when given)."""
        axes = range(self.ndim) if dim is None else functions.normalize_dims(dim, self.ndim)
        drop = {a for a in axes if self.shape[a] == 1}
        return self.reshape(tuple(n for a, n in enumerate(self.shape) if a not in drop))

    def expand(self, *sizes):
        """A broadcast view; -1 keeps a dimension's size."""
        sizes = _size(sizes)
        lead = len(sizes) - self.ndim
        shape = tuple(
            self.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes)
        )
        return functions.Expand.apply(self, shape=shape)

    def gather(self, dim, index):
        return functions.Gather.apply(self, dim=dim, index=_unwrap(index))

    def __getitem__(self, index):
        return functions.GetItem.apply(self, index=_index_on(_unwrap_index(index), self.data))

    def __setitem__(self, index, value):
        """In-place assignment, for tensors outside the graph (as initialisation needs)."""
        if self.requires_grad and is_grad_enabled():
            raise RuntimeError(
                "a tensor that requires grad cannot be modified in place; use `with "
                "ember.no_grad():` or work on .detach()"
            )
        value = _unwrap(value)
        if isinstance(value, np.ndarray) or _is_cupy(value):
            value = _device.move(value, _device.device_of(self.data))
        self.data[_index_on(_unwrap_index(index), self.data)] = value


class _ToDevice(Function):
    """x moved between the host and a GPU (or two GPUs); the gradient moves back."""

    def forward(self, x, *, device):
        self.source = _device.device_of(x)
        return _device.move(x, device)

    def backward(self, grad):
        return _device.move(grad, self.source)


# ---- helpers -----------------------------------------------------------------------------


def _unwrap(x):
    return x.data if isinstance(x, Tensor) else x


def _unwrap_index(index):
    if isinstance(index, tuple):
        return tuple(_unwrap(i) for i in index)
    return _unwrap(index)


def _index_on(index, data):
    """An index for `data` with its array parts (int or bool arrays, Tensors) on data's device:
    a host index for a GPU tensor is copied there, as PyTorch does; a GPU index for a host
    tensor is an error."""
    parts = index if isinstance(index, tuple) else (index,)
    if not any(isinstance(p, np.ndarray) or _is_cupy(p) for p in parts):
        return index
    target = _device.device_of(data)
    moved = []
    for p in parts:
        if _is_cupy(p) and target == _device.CPU:
            raise RuntimeError(
                f"indices on {_device.device_of(p)} cannot index a tensor on the cpu: move the "
                "indices with .cpu() or the tensor to their GPU"
            )
        moved.append(_device.move(p, target) if isinstance(p, np.ndarray) else p)
    return tuple(moved) if isinstance(index, tuple) else moved[0]


def _operand(x):
    """The other operand of an arithmetic operator: a Tensor, a plain number, or None when the
    type is not one a Tensor combines with (the operator then returns NotImplemented)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x)
    if isinstance(x, np.ndarray) or _is_cupy(x):
        return Tensor(x)
    return None


def _size(size) -> tuple:
    """Sizes given as f(2, 3), f((2, 3)) or f([2, 3])."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(n) for n in size)


def _move(array, device):
    """The array on a device ('cpu', 'cuda', 'cuda:N'): itself when already there, else a copy;
    RuntimeError (saying why) where CUDA cannot be used."""
    return _device.move(array, _device.parse(device))


def _on(array, device: str) -> bool:
    """True when the array is on `device` (a parsed device; 'cuda' means any GPU)."""
    here = _device.device_of(array)
    return here == device or (device == "cuda" and here != _device.CPU)


def _to_args(args, device, dtype):
    """(device, dtype) of a .to() call, parsed: positional arguments are a Tensor (its device and
    dtype), a device (a string naming one, or an int GPU index) or a dtype."""
    for arg in args:
        if isinstance(arg, Tensor):
            device, dtype = _device.device_of(arg.data), arg.dtype
        elif isinstance(arg, str):
            if arg.partition(":")[0] in ("cpu", "cuda"):
                device = arg
            else:
                try:
                    dtype = np.dtype(arg)
                except TypeError:
                    device = arg  # neither a device nor a dtype: parse() says so
        elif isinstance(arg, (int, np.integer)) and not isinstance(arg, (bool, np.bool_)):
            device = arg
        else:
            dtype = arg
    device = None if device is None else _device.parse(device)
    dtype = None if dtype is None else np.dtype(dtype)
    return device, dtype


def _dtype(dtype, default=FLOAT32) -> np.dtype:
    return default if dtype is None else np.dtype(dtype)


def _new(make, device, requires_grad) -> Tensor:
    """A tensor of the array make(xp) builds with the array module of `device` (None: the CPU),
    made directly on that device."""
    device = _device.CPU if device is None else _device.parse(device)
    xp = _device.array_module(device)
    if xp is np:
        return Tensor(make(np), requires_grad=requires_grad)
    with xp.cuda.Device(_device.index(device)):
        return Tensor(make(xp), requires_grad=requires_grad)


def _make(array, device, requires_grad) -> Tensor:
    """A tensor of a host array (random draws: ember's generator runs on the host, so a seed
    gives the same numbers on every device), copied to `device`."""
    device = _device.CPU if device is None else _device.parse(device)
    return Tensor(_device.move(array, device), requires_grad=requires_grad)


# ---- making tensors ----------------------------------------------------------------------


def tensor(data, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of `data` (a Tensor, an array, a number or nested lists).
    Python floats become float32, ints int64; arrays keep their dtype unless `dtype` is given.
    Without `device`, data on a GPU stays there and everything else is on the CPU."""
    data = _unwrap(data)
    if _is_cupy(data):
        target = _device.device_of(data) if device is None else _device.parse(device)
        moved = _device.move(data, target)
        array = moved.astype(dtype or data.dtype, copy=moved is data)
        return Tensor(array, requires_grad=requires_grad)
    array = np.array(data, dtype=dtype, copy=True)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"tensor: data must be numbers (bool, int, float or complex), got {type(data).__name__}"
            f" of dtype {array.dtype}"
        )
    from_python = not isinstance(data, (np.ndarray, np.generic))
    if dtype is None and array.dtype == np.float64 and from_python:
        array = array.astype(np.float32)  # Python floats become float32, PyTorch's default
    return _make(array, device, requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with `array` (same dtype)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def from_dlpack(obj) -> Tensor:
    """A tensor sharing memory with any object that speaks DLPack (a PyTorch tensor, a NumPy or
    CuPy array, ...)."""
    if isinstance(obj, Tensor):
        return Tensor(obj.data)
    device_type = obj.__dlpack_device__()[0]
    if device_type == _DLPACK_CPU:
        return Tensor(np.from_dlpack(obj))
    if device_type == _DLPACK_CUDA:
        cupy = _device.require_cuda()
        return Tensor(cupy.from_dlpack(obj))
    raise ValueError(f"from_dlpack: unsupported DLPack device type {device_type}")


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype = _size(size), _dtype(dtype)
    return _new(lambda xp: xp.zeros(shape, dtype), device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype = _size(size), _dtype(dtype)
    return _new(lambda xp: xp.ones(shape, dtype), device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uninitialised memory of the given size."""
    shape, dtype = _size(size), _dtype(dtype)
    return _new(lambda xp: xp.empty(shape, dtype), device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype = _size((size,)), _dtype(dtype)
    return _new(lambda xp: xp.full(shape, fill_value, dtype), device, requires_grad)


def _like(t: Tensor, dtype, device):
    """(dtype, device) of a *_like factory: t's unless given."""
    return dtype or t.dtype, _device.device_of(t.data) if device is None else device


def zeros_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return zeros(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return ones(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return empty(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return full(t.shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from ember's generator (see ember.manual_seed); drawn on the host
    and copied, so a seed gives the same numbers on the CPU and on a GPU."""
    array = _random.generator().standard_normal(_size(size), dtype=_dtype(dtype))
    return _make(array, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from ember's generator (drawn on the host, as randn)."""
    array = _random.generator().random(_size(size), dtype=_dtype(dtype))
    return _make(array, device, requires_grad)


def randn_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return randn(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def rand_like(t: Tensor, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    dtype, device = _like(t, dtype, device)
    return rand(t.shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randint(low, high=None, size=(), *, dtype=np.int64, device=None) -> Tensor:
    """Integers uniform in [low, high) (or [0, low) without high) from ember's generator."""
    low, high = (0, low) if high is None else (low, high)
    array = _random.generator().integers(low, high, _size((size,)), dtype=np.dtype(dtype))
    return _make(array, device, False)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """As torch.arange: int64 when every argument is an int, float32 otherwise."""
    start, end = (0, start) if end is None else (start, end)
    every_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    dtype = _dtype(dtype, np.dtype(np.int64) if every_int else FLOAT32)
    return _new(lambda xp: xp.arange(start, end, step, dtype=dtype), device, requires_grad)


def cat(tensors, dim=0) -> Tensor:
    return functions.Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0) -> Tensor:
    return functions.Stack.apply(*tensors, dim=dim)


def where(condition, input, other) -> Tensor:
    """input where condition is True, else other (tensors or numbers, broadcast)."""
    return functions.Where.apply(_operand(input), _operand(other), cond=_unwrap(condition))
