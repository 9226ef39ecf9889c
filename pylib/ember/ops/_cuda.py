"""What every ember.ops function needs for CuPy arrays: the check that all arrays are CuPy arrays
of one supported dtype on one device, the compiled module, CuPy's current stream, and whether
TF32 is allowed. The kernels run on CuPy's current stream; outputs and workspaces are allocated
here with CuPy, so CuPy's memory pool owns all memory."""

from __future__ import annotations

import functools
import os

import numpy as np

from ember import _runtime
from ember.ops._validate import FLOAT32, check_arrays, is_cupy

__all__ = [
    "any_cupy",
    "bfloat16",
    "check_device_arrays",
    "check_host_or_device_arrays",
    "cuda_module",
    "current_stream",
    "empty",
    "tf32_allowed",
]


def any_cupy(*arrays) -> bool:
    """True when any of the arrays is a CuPy array: the call goes to the CUDA kernels."""
    for x in arrays:
        if x is not None and is_cupy(x):
            return True
    return False


def check_device_arrays(fn: str, dtypes=(FLOAT32,), **arrays) -> np.dtype:
    """Checks that every given array (None is skipped) is a CuPy array, all of one dtype among
    `dtypes` and on one device; returns the dtype. A NumPy array among CuPy ones is a TypeError:
    ember never moves data between host and device behind the caller's back."""
    dtype = device = None
    first = None
    for name, x in arrays.items():
        if x is None:
            continue
        if not is_cupy(x):
            raise TypeError(
                f"{fn}: {name} must be a CuPy array like the other arguments, got "
                f"{type(x).__module__}.{type(x).__name__} (move it with cupy.asarray)"
            )
        if x.dtype not in dtypes:
            names = ", ".join(str(d) for d in dtypes)
            raise TypeError(f"{fn}: {name} must be {names} on the GPU, got {x.dtype}")
        if dtype is None:
            dtype, device, first = x.dtype, x.device.id, name
        elif x.dtype != dtype:
            raise TypeError(
                f"{fn}: all arrays must share one dtype, got {dtype} ({first}) and "
                f"{x.dtype} ({name})"
            )
        elif x.device.id != device:
            raise ValueError(
                f"{fn}: all arrays must be on one device, got cuda:{device} ({first}) and "
                f"cuda:{x.device.id} ({name})"
            )
    return dtype


def check_host_or_device_arrays(fn: str, **arrays) -> tuple[np.dtype, bool]:
    """(dtype, whether the call goes to the CUDA kernels) after checking the arrays: all NumPy
    float32 or float64 (check_arrays), or, as soon as one is a CuPy array, all CuPy float32 on one
    device (check_device_arrays)."""
    if any_cupy(*arrays.values()):
        return check_device_arrays(fn, **arrays), True
    return check_arrays(fn, **arrays), False


@functools.cache
def bfloat16() -> np.dtype | None:
    """NumPy's bfloat16 dtype (from ml_dtypes, which CuPy's bfloat16 arrays are made of), or None
    where ml_dtypes is not installed (and CuPy then has no bfloat16 arrays)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def cuda_module(fn: str):
    """ember._cuda, or RuntimeError when ember was installed without a CUDA toolkit."""
    if _runtime._cuda is None:
        raise RuntimeError(
            f"{fn}: CuPy arrays need ember's CUDA module, which was not built (no CUDA toolkit "
            "was found when ember was installed; reinstall with nvcc on the PATH)"
        )
    return _runtime._cuda


def current_stream() -> int:
    """The handle of CuPy's current stream on the current device, as an int."""
    import cupy

    return cupy.cuda.get_current_stream().ptr


def tf32_allowed() -> bool:
    """set_float32_matmul_precision('high') lets GEMM-like CUDA kernels use TF32 tensor cores."""
    return _runtime.get_float32_matmul_precision() != "highest"


def empty(shape):
    """A new float32 CuPy array for a kernel to write: cupy.empty, or filled with NaN when the
    environment sets EMBER_CUDA_POISON=1 (the GPU tests do), so that an element a kernel should
    have written but did not shows up as NaN instead of as stale memory."""
    import cupy

    if os.environ.get("EMBER_CUDA_POISON", "0") != "0":
        return cupy.full(shape, cupy.nan, dtype=cupy.float32)
    return cupy.empty(shape, dtype=cupy.float32)
