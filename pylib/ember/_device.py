"""Where arrays live. A tensor's data is a NumPy array (device 'cpu') or a CuPy array (device
'cuda', or 'cuda:N' naming the GPU). This module parses device strings, names the device of an
array, moves arrays between the host and the GPUs, and turns every reason CUDA cannot be used (no
CUDA module, no GPU, no CuPy) into one clear RuntimeError. Data moves only when asked to: by
`.to()`, `.cuda()`, `.cpu()`, a factory function's `device=`, or `load_state_dict` copying a
checkpoint into a model."""

from __future__ import annotations

import numpy as np

from ember import _runtime

__all__ = [
    "array_module",
    "check_same",
    "device_of",
    "index",
    "is_cupy",
    "move",
    "parse",
    "require_cuda",
]

CPU = "cpu"


def is_cupy(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def parse(device) -> str:
    """A device as 'cpu', 'cuda' (the current GPU) or 'cuda:N'; ValueError for anything else.
    Accepts strings, an int N (as 'cuda:N', like PyTorch) and objects whose str() is one of these
    (a torch.device)."""
    if isinstance(device, (int, np.integer)) and not isinstance(device, (bool, np.bool_)):
        if device < 0:
            raise ValueError(f"device index must be non-negative, got {device}")
        return f"cuda:{int(device)}"
    name = device if isinstance(device, str) else str(device)
    if name in ("cpu", "cuda"):
        return name
    kind, sep, index = name.partition(":")
    if sep and index.isdigit() and index.isascii():
        if kind == "cuda":
            return f"cuda:{int(index)}"
        if kind == "cpu" and int(index) == 0:
            return "cpu"
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N' (N >= 0)")


def device_of(array) -> str:
    """'cpu' for a NumPy array (or anything else on the host), 'cuda:N' for a CuPy array."""
    return f"cuda:{array.device.id}" if is_cupy(array) else CPU


def index(device: str):
    """N of 'cuda:N' (a parsed device), None for 'cuda' and 'cpu'."""
    return int(device[5:]) if device.startswith("cuda:") else None


def require_cuda(device: str = "cuda"):
    """CuPy, after checking that `device` ('cuda' or 'cuda:N') can be used: ember's CUDA module
    was built, it sees a GPU (N of them at least), and CuPy imports. RuntimeError otherwise,
    saying which of these failed and what to do."""
    module = _runtime._cuda
    if module is None:
        raise RuntimeError(
            f"device {device!r}: CUDA is not available because ember was built without its CUDA "
            "module (no CUDA toolkit was found at install time); reinstall ember with nvcc on the "
            "PATH, or keep tensors on 'cpu'"
        )
    count = module.device_count()
    if count == 0:
        raise RuntimeError(
            f"device {device!r}: CUDA is not available because no GPU is visible (no NVIDIA "
            "driver, or CUDA_VISIBLE_DEVICES hides them all; ember.cuda_available() is False); "
            "keep tensors on 'cpu'"
        )
    n = index(device)
    if n is not None and n >= count:
        raise RuntimeError(f"device {device!r} does not exist: {count} GPU(s) visible")
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(
            f"device {device!r}: ember keeps GPU tensors in CuPy arrays, and CuPy is not "
            "installed: pip install cupy-cuda13x (or cupy-cuda12x, matching the driver)"
        ) from e
    return cupy


def move(array, device: str):
    """`array` on `device` (a parsed device string): itself when it is there already ('cuda'
    accepts any GPU), else a copy (NumPy <-> CuPy, or CuPy between GPUs)."""
    if device == CPU:
        return array.get() if is_cupy(array) else array
    n = index(device)
    if is_cupy(array) and (n is None or array.device.id == n):
        return array
    cupy = require_cuda(device)
    with cupy.cuda.Device(n):
        # on another GPU, copy() makes the copy on the current device
        return array.copy() if is_cupy(array) else cupy.asarray(array)


def array_module(device: str):
    """numpy for 'cpu', cupy (checked usable) for a GPU."""
    return np if device == CPU else require_cuda(device)


def check_same(arrays, what: str = "all tensors") -> None:
    """RuntimeError naming two devices when the arrays (None skipped) are not all on one: on
    the host, or all CuPy arrays on the same GPU. As PyTorch, nothing is moved implicitly."""
    first = None
    for x in arrays:
        if x is None:
            continue
        if first is None:
            first = device_of(x)
        elif device_of(x) != first:
            raise RuntimeError(
                f"Expected {what} to be on the same device, but found at least two devices, "
                f"{first} and {device_of(x)}! (move them with .to(device))"
            )
