"""`ember.save` / `ember.load`: state dicts as safetensors files. Nothing is ever unpickled, so
loading an untrusted file cannot run code."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as _load_bytes
from safetensors.numpy import save as _save_bytes

from ember.tensor import Tensor

__all__ = ["load", "save"]

_ORDER_KEY = "ember.keys"


def _host_array(value) -> np.ndarray:
    """A C-contiguous, native-byte-order NumPy array: safetensors writes an array's memory as it
    lies, so a transposed view would come back scrambled."""
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "get") and type(value).__module__.split(".")[0] == "cupy":
        value = value.get()
    array = np.asarray(value, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def save(state_dict: dict, path) -> None:
    """Writes a flat {name: Tensor or array} dict as a safetensors file, atomically: to a
    temporary file in the same directory, flushed and fsync'ed, then renamed over path."""
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        arrays[name] = _host_array(value)
    # safetensors orders the tensors by itself; the metadata keeps the dict's order for load()
    payload = _save_bytes(arrays, metadata={_ORDER_KEY: json.dumps(list(arrays))})
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ember-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load(path) -> dict:
    """The {name: numpy array} dict stored by save(). Raises ValueError if the file is not a
    complete safetensors file (truncated, corrupt, or another format such as a pickle)."""
    with open(path, "rb") as f:
        payload = f.read()
    try:
        arrays = _load_bytes(payload)
    except (SafetensorError, ValueError, OverflowError) as e:
        raise ValueError(f"{os.fspath(path)}: not a valid safetensors checkpoint ({e})") from e
    order = [name for name in _saved_order(payload) if name in arrays]
    order += sorted(set(arrays) - set(order))
    return {name: arrays[name] for name in order}


def _saved_order(payload: bytes) -> list:
    """The key order save() recorded in the (already validated) header, or none."""
    header_size = int.from_bytes(payload[:8], "little")
    metadata = json.loads(payload[8 : 8 + header_size]).get("__metadata__") or {}
    try:
        return json.loads(metadata.get(_ORDER_KEY, "[]"))
    except json.JSONDecodeError:
        return []
