"""Input checks shared by every ember.ops function. They run on every call, so they are written
to cost a few hundred nanoseconds, not microseconds."""

from __future__ import annotations

import numbers

import numpy as np

FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def is_cupy(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def check_arrays(fn: str, **arrays) -> np.dtype:
    """Checks that every given array is a NumPy float32/float64 array of one dtype; returns it."""
    dtype = None
    for name, x in arrays.items():
        if x is None:
            continue
        if not isinstance(x, np.ndarray):
            if is_cupy(x):
                raise NotImplementedError(
                    f"{fn}: CuPy arrays need ember's CUDA kernels for {fn}, which are not built yet"
                )
            raise TypeError(f"{fn}: {name} must be a NumPy array, got {type(x).__name__}")
        char = x.dtype.char  # 'f' float32 and 'd' float64, in either byte order
        if char != "f" and char != "d":
            raise TypeError(f"{fn}: {name} must be float32 or float64, got {x.dtype}")
        if dtype is None:
            dtype = FLOAT32 if char == "f" else FLOAT64
        elif char != dtype.char:
            raise TypeError(
                f"{fn}: all arrays must share one dtype, got {dtype} and {x.dtype} ({name})"
            )
    return dtype


def require(fn: str, **arrays) -> None:
    """TypeError for each argument given as None that must be an array."""
    for name, x in arrays.items():
        if x is None:
            library = "CuPy" if any(is_cupy(y) for y in arrays.values()) else "NumPy"
            raise TypeError(f"{fn}: {name} must be a {library} array, got None")


def check_size(fn: str, shape, what: str) -> None:
    """ValueError naming `what` if a float32 array of `shape` would pass NumPy's (and the
    kernels' int64) limit of 2**63 - 1 bytes: such a size is a bad argument, not a lack of
    memory. The product is exact (Python ints), so it cannot overflow itself."""
    size = 1
    for n in shape:
        size *= int(n)
    if size * 4 > INT64_MAX:
        raise ValueError(
            f"{fn}: {what} would have shape {tuple(int(n) for n in shape)}, more than 2**63 bytes"
        )


def check_ndim(fn: str, name: str, x: np.ndarray, ndim: int) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got shape {x.shape}")


def check_scalar(fn: str, name: str, value) -> float:
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    return float(value)


def kernel_ready(x: np.ndarray) -> np.ndarray:
    """x itself if the C++ kernels can read it in place (native float32, aligned, whole-element
    strides), else a float32 copy."""
    if (
        x.dtype == FLOAT32
        and x.flags.aligned
        and (x.flags.c_contiguous or all(s % 4 == 0 for s in x.strides))
    ):
        return x
    return np.array(x, dtype=np.float32)


def has_aliased_elements(x: np.ndarray) -> bool:
    """True if two indices of x address one element (a zero stride on a dimension longer than 1)."""
    return x.size > 1 and any(n > 1 and s == 0 for n, s in zip(x.shape, x.strides, strict=True))


def is_int(v) -> bool:
    """Python and NumPy integers, not bools."""
    return type(v) is int or (
        isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
    )


def pair(fn: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a 1- or 2-sequence of ints as (h, w), each in [minimum, 2**31 - 1] (the
    kernels' index range): TypeError for anything else, ValueError out of range."""
    if type(value) is int:
        items = (value, value)
    elif type(value) is tuple and len(value) == 2 and type(value[0]) is type(value[1]) is int:
        items = value
    elif is_int(value):
        items = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) in (1, 2):
        if not all(is_int(v) for v in value):
            raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
        items = tuple(int(v) for v in value) * (3 - len(value))
    else:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        rule = "positive" if minimum > 0 else "non-negative"
        raise ValueError(f"{fn}: {name} must be {rule}, got {value!r}")
    if max(items) > INT32_MAX:
        raise ValueError(f"{fn}: {name} must be at most 2**31 - 1, got {value!r}")
    return items
