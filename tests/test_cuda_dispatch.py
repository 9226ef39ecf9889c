"""How ember.ops routes CuPy arrays, checked without a GPU or CuPy: objects that look like CuPy
arrays to the dispatch (their type lives in a module named cupy) take the CUDA branch and meet
the same argument checks as NumPy arrays, a clear TypeError for mixed or float64 arguments, and
a RuntimeError when ember was built without its CUDA module."""

import sys
import types

import numpy as np
import pytest

from ember import _runtime, ops


class FakeCupyArray:
    """shape, ndim, size, dtype and device, as the dispatch reads them from a CuPy array."""

    def __init__(self, *shape, dtype=np.float32, device=0):
        self.shape = tuple(shape)
        self.ndim = len(shape)
        self.size = int(np.prod(shape))
        self.dtype = np.dtype(dtype)
        self.device = types.SimpleNamespace(id=device)

    def __getitem__(self, key):  # x[np.newaxis] of an unbatched image
        assert key is None
        return FakeCupyArray(1, *self.shape, dtype=self.dtype, device=self.device.id)


FakeCupyArray.__module__ = "cupy._core.core"


@pytest.fixture
def without_cuda_module(monkeypatch):
    """ember as installed without a CUDA toolkit, on a machine where CuPy imports."""
    monkeypatch.setattr(_runtime, "_cuda", None)
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))


def f32(*shape):
    return np.zeros(shape, np.float32)


def test_mixing_numpy_and_cupy_is_a_type_error():
    with pytest.raises(TypeError, match="b must be a CuPy array like the other arguments"):
        ops.gemm(FakeCupyArray(2, 2), f32(2, 2))
    with pytest.raises(TypeError, match="a must be a CuPy array"):
        ops.matmul(f32(2, 2), FakeCupyArray(2, 2))
    with pytest.raises(TypeError, match="out must be a CuPy array"):
        ops.gemm(FakeCupyArray(2, 2), FakeCupyArray(2, 2), out=f32(2, 2))
    with pytest.raises(TypeError, match="indices must be a CuPy integer array"):
        ops.max_pool2d_backward(
            FakeCupyArray(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), (1, 1, 4, 4)
        )


@pytest.mark.parametrize(
    "call",
    [
        lambda x: ops.gemm(x, x),
        lambda x: ops.matmul(x, x),
        lambda x: ops.max_pool2d(x, 2),
        lambda x: ops.avg_pool2d(x, 2),
        lambda x: ops.adaptive_avg_pool2d(x, 1),
        lambda x: ops.avg_pool2d_backward(x, (2, 2, 4, 4), 1),
    ],
)
def test_float64_on_the_gpu_is_a_type_error(call):
    with pytest.raises(TypeError, match="must be float32 on the GPU, got float64"):
        call(FakeCupyArray(2, 2, 2, 2, dtype=np.float64))


def test_arrays_on_two_devices_are_a_value_error():
    with pytest.raises(ValueError, match="all arrays must be on one device"):
        ops.gemm(FakeCupyArray(2, 2), FakeCupyArray(2, 2, device=1))


@pytest.mark.parametrize(
    "call",
    [
        lambda: ops.gemm(FakeCupyArray(2, 3), FakeCupyArray(3, 4)),
        lambda: ops.matmul(FakeCupyArray(5, 2, 3), FakeCupyArray(3, 4)),
        lambda: ops.max_pool2d(FakeCupyArray(1, 1, 4, 4), 2),
        lambda: ops.max_pool2d(FakeCupyArray(1, 4, 4), 2),
        lambda: ops.avg_pool2d(FakeCupyArray(1, 1, 4, 4), 3, 1, 1, ceil_mode=True),
        lambda: ops.avg_pool2d_backward(FakeCupyArray(1, 1, 2, 2), (1, 1, 4, 4), 2),
        lambda: ops.adaptive_avg_pool2d(FakeCupyArray(1, 1, 4, 4), (2, None)),
        lambda: ops.adaptive_avg_pool2d_backward(FakeCupyArray(1, 1, 2, 2), (1, 1, 4, 4)),
        lambda: ops.max_pool2d_backward(
            FakeCupyArray(1, 1, 2, 2),
            FakeCupyArray(1, 1, 2, 2, dtype=np.int64),
            (1, 1, 4, 4),
        ),
    ],
)
def test_without_the_cuda_module_valid_calls_raise_runtime_error(without_cuda_module, call):
    with pytest.raises(RuntimeError, match="CUDA module, which was not built"):
        call()


# the checks every backend shares: the same errors and messages as for NumPy arrays
BAD_CALLS = [
    (lambda m: ops.gemm(m(2, 3), m(4, 2)), ValueError, "inner dimensions differ"),
    (lambda m: ops.gemm(m(2, 3, 1), m(3, 2)), ValueError, "a must be 2-D"),
    (lambda m: ops.matmul(m(2, 2, 3), m(3, 3, 2)), ValueError, "do not broadcast"),
    (lambda m: ops.max_pool2d(m(1, 1, 4, 4), 0), ValueError, "kernel_size must be positive"),
    (lambda m: ops.max_pool2d(m(1, 1, 4, 4), 2, 2, 2), ValueError, "at most half of kernel_size"),
    (lambda m: ops.max_pool2d(m(1, 1, 4, 4), 5), ValueError, "output would be empty"),
    (lambda m: ops.max_pool2d(m(1, 0, 4, 4), 2), ValueError, "must not be empty"),
    (lambda m: ops.max_pool2d(m(4, 4), 2), ValueError, r"must be \(N, C, H, W\) or \(C, H, W\)"),
    (lambda m: ops.avg_pool2d(m(1, 1, 4, 4), 2, divisor_override=0), ValueError, "nonzero"),
    (lambda m: ops.avg_pool2d(m(1, 1, 4, 4), 2.0), TypeError, "kernel_size must be an int"),
    (
        lambda m: ops.avg_pool2d_backward(m(1, 1, 3, 3), (1, 1, 4, 4), 2),
        ValueError,
        r"dy must have shape \(1, 1, 2, 2\)",
    ),
    (lambda m: ops.adaptive_avg_pool2d(m(1, 1, 4, 4), -1), ValueError, "must not be negative"),
    (
        lambda m: ops.adaptive_avg_pool2d_backward(m(1, 1, 3, 3), (2, 1, 4, 4)),
        ValueError,
        r"dy must have shape \(2, 1, 3, 3\)",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_arguments_raise_the_same_errors_for_cupy_and_numpy(
    without_cuda_module, call, error, match
):
    with pytest.raises(error, match=match):
        call(f32)
    with pytest.raises(error, match=match):
        call(FakeCupyArray)
