"""A NumPy-backed stand-in for CuPy and ember._cuda, so that ember's GPU code paths (Tensor.to,
Module.to, every Function on CuPy arrays, the optimizers' CUDA branch, checkpoints of GPU models)
run and are checked on a machine without a GPU.

`install(monkeypatch)` puts a fake `cupy` (and `cupyx`) in sys.modules and a fake ember._cuda in
ember._runtime, for one test. Its arrays wrap NumPy arrays and behave as CuPy's where ember could
go wrong: they are not numpy.ndarray instances, their type's module is "cupy", implicit
conversion to NumPy (`numpy.asarray`, `__array__`) raises TypeError, mixing them with NumPy
arrays or lists in an operation raises TypeError, reductions and scalar indexing give 0-d
arrays, `flags` has no `writeable`, and the module offers only functions CuPy has (no ufunc.at:
scatter-adds go through cupyx.scatter_add). The fake ember._cuda runs the kernels' CPU twins
(ember._C.gemm, sgd_step, adam_step) on the wrapped arrays, so what is checked here is
everything above the kernels: the GPU kernels themselves are tested in tests/test_cuda_*.py on
a GPU.
"""

from __future__ import annotations

import sys
import types

import numpy as np

from ember import _C

# ---- arrays ------------------------------------------------------------------------------


class _Flags:
    def __init__(self, a: np.ndarray):
        self.c_contiguous = a.flags.c_contiguous
        self.f_contiguous = a.flags.f_contiguous
        self.owndata = a.flags.owndata


class _Device:
    def __init__(self, id: int = 0):
        self.id = id


class _Pointer:
    def __init__(self, a: np.ndarray):
        self.ptr = a.ctypes.data if a.size else 0


_METHODS = {  # ndarray methods CuPy has, forwarded to NumPy
    "all", "any", "argmax", "argmin", "astype", "clip", "copy", "cumsum", "fill", "max",
    "mean", "min", "prod", "ravel", "repeat", "reshape", "squeeze", "sum", "swapaxes",
    "transpose", "var", "view",
}  # fmt: skip


class ndarray(np.lib.mixins.NDArrayOperatorsMixin):
    """A CuPy-like array on fake device 0, holding a NumPy array."""

    __module__ = "cupy"

    def __init__(self, array: np.ndarray):
        self._a = array

    # attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: _Flags(self._a))
    device = property(lambda self: _Device(0))
    data = property(lambda self: _Pointer(self._a))
    T = property(lambda self: ndarray(self._a.T))

    def __getattr__(self, name):
        if name not in _METHODS:
            raise AttributeError(f"fake cupy.ndarray has no attribute {name!r}")
        method = getattr(self._a, name)
        return lambda *args, **kwargs: _wrap(method(*_strict(args), **_strict_dict(kwargs)))

    # conversions: explicit only, as CuPy
    def get(self) -> np.ndarray:
        return self._a.copy()

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
            "construct a NumPy array explicitly."
        )

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __bool__(self):
        return bool(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (ndarray(np.asarray(row)) for row in self._a)

    def __repr__(self):
        return f"fake_cupy.{self._a!r}"

    # indexing
    def __getitem__(self, index):
        return _wrap(self._a[_index(index)])

    def __setitem__(self, index, value):
        self._a[_index(index)] = _operand(value)

    # arithmetic: every operator goes through NumPy's ufuncs, checked here
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            raise TypeError(f"fake cupy: ufunc method {method!r} is not supported")
        out = kwargs.pop("out", None)
        args = [_operand(x) for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(_operand(o) for o in out)
        result = ufunc(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        # CuPy answers the NumPy functions it has; the ones ember may call on its arrays:
        if func in (np.shape, np.ndim, np.size):
            return func(self._a, *args[1:], **kwargs)
        raise TypeError(f"fake cupy: numpy.{func.__name__} does not take CuPy arrays here")


def _operand(x):
    """A fake array's NumPy array, or a scalar; NumPy arrays and sequences are refused, as CuPy
    refuses them in elementwise operations."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (np.ndarray, list, tuple)):
        raise TypeError(f"Unsupported type {type(x)}")
    return x


def _index(index):
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, (np.ndarray, list)) for p in parts):
        raise TypeError("fake cupy: index with CuPy arrays, not NumPy arrays or lists")
    parts = tuple(p._a if isinstance(p, ndarray) else p for p in parts)
    return parts if isinstance(index, tuple) else parts[0]


def _strict(values):
    """Arguments of a function: fake arrays unwrapped (also inside lists and tuples); NumPy
    arrays refused."""
    out = []
    for v in values:
        if isinstance(v, ndarray):
            out.append(v._a)
        elif isinstance(v, np.ndarray):
            raise TypeError(f"Unsupported type {type(v)}")
        elif isinstance(v, (list, tuple)):
            out.append(type(v)(_strict(v)))
        else:
            out.append(v)
    return out


def _strict_dict(kwargs):
    return dict(zip(kwargs, _strict(list(kwargs.values())), strict=True))


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic):
        return ndarray(np.asarray(x))
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


# ---- the cupy module ---------------------------------------------------------------------

_FUNCTIONS = {  # NumPy functions CuPy has, taking and giving (fake) CuPy arrays
    "abs", "absolute", "all", "allclose", "any", "arange", "argmax", "argmin", "array_equal",
    "ascontiguousarray", "broadcast_to", "clip", "concatenate", "copyto", "count_nonzero",
    "empty", "empty_like", "equal", "exp", "expand_dims", "flip", "full", "full_like",
    "isfinite", "isnan", "log", "log1p", "matmul", "max", "maximum", "mean", "min", "minimum",
    "moveaxis", "ones", "ones_like", "sign", "split", "sqrt", "stack", "sum", "tanh", "where",
    "zeros", "zeros_like",
}  # fmt: skip


def _function(name):
    fn = getattr(np, name)

    def call(*args, **kwargs):
        return _wrap(fn(*_strict(args), **_strict_dict(kwargs)))

    call.__name__ = name
    return call


def asarray(obj, dtype=None):
    """CuPy arrays pass through (cast if asked); NumPy arrays, lists and numbers are copied to
    the fake device."""
    if isinstance(obj, ndarray):
        return obj if dtype is None or obj.dtype == dtype else ndarray(obj._a.astype(dtype))
    return ndarray(np.array(obj, dtype=dtype, copy=True))


def array(obj, dtype=None, copy=True):
    if isinstance(obj, ndarray):
        return ndarray(np.array(obj._a, dtype=dtype, copy=copy))
    return asarray(obj, dtype)


def asnumpy(obj):
    return obj.get() if isinstance(obj, ndarray) else np.asarray(obj)


def may_share_memory(a, b):
    return np.may_share_memory(a._a, b._a)


def from_dlpack(obj):
    return ndarray(np.from_dlpack(obj))


def scatter_add(a, slices, value):
    """cupyx.scatter_add: a[slices] += value with repeated indices accumulating."""
    np.add.at(a._a, _index(slices), _operand(value))


class _Stream:
    ptr = 0


class _CudaDevice:
    """cupy.cuda.Device: only device 0 exists."""

    def __init__(self, device=None):
        if device not in (None, 0):
            raise RuntimeError(f"fake cupy: no device {device}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _make_module():
    cupy = types.ModuleType("cupy")
    for name in _FUNCTIONS:
        setattr(cupy, name, _function(name))
    cupy.ndarray = ndarray
    cupy.asarray, cupy.array, cupy.asnumpy = asarray, array, asnumpy
    cupy.may_share_memory, cupy.from_dlpack = may_share_memory, from_dlpack
    for name in ("float32", "float64", "int32", "int64", "bool_", "uint8", "nan", "inf"):
        setattr(cupy, name, getattr(np, name))
    cupy.cuda = types.SimpleNamespace(Device=_CudaDevice, get_current_stream=lambda: _Stream())
    cupyx = types.ModuleType("cupyx")
    cupyx.scatter_add = scatter_add
    return cupy, cupyx


# ---- ember._cuda -------------------------------------------------------------------------


def _host(arrays):
    return [a._a for a in arrays]


class FakeCudaModule:
    """ember._cuda with one visible device and the kernels' CPU twins: records the calls."""

    def __init__(self):
        self.calls = []

    def device_count(self):
        return 1

    def device_info(self, device=0):
        return {
            "name": "fake",
            "compute_capability": (9, 0),
            "multiprocessors": 1,
            "total_memory": 0,
        }

    def runtime_version(self):
        return 13000

    def driver_version(self):
        return 13000

    def gemm(self, a, b, out, trans_a, trans_b, alpha, beta, tf32, stream):
        self.calls.append("gemm")
        assert isinstance(stream, int)
        _C.gemm(a._a, b._a, out._a, trans_a, trans_b, alpha, beta)

    def sgd_step(self, params, grads, momentum_buffers, init_buffers, *, stream, **scalars):
        self.calls.append("sgd_step")
        assert isinstance(stream, int)
        args = (_host(params), _host(grads), _host(momentum_buffers), init_buffers)
        _C.sgd_step(*args, **scalars)

    def adam_step(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, stream, **kw):
        self.calls.append("adam_step")
        assert isinstance(stream, int)
        lists = (params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs)
        _C.adam_step(*(_host(x) for x in lists), **kw)


def install(monkeypatch) -> tuple:
    """Makes `import cupy` give the fake and ember see the fake CUDA module with one GPU, for
    the current test; returns (fake cupy, fake ember._cuda). ember.ops.matmul takes fake arrays
    through its CPU kernels (its CUDA branch belongs to the GEMM family's tests)."""
    import ember

    cupy, cupyx = _make_module()
    module = FakeCudaModule()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    monkeypatch.setattr(ember._runtime, "_cuda", module)
    host_matmul = ember.ops.matmul

    def matmul(a, b):
        if isinstance(a, ndarray) and isinstance(b, ndarray):
            module.calls.append("matmul")
            return ndarray(host_matmul(a._a, b._a))
        return host_matmul(a, b)

    monkeypatch.setattr(ember.ops, "matmul", matmul)
    return cupy, module
