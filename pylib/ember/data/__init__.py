"""Datasets and batching: `TensorDataset`, `DataLoader`, `read_idx()` for MNIST's IDX files, and
`load_digits()`, the embedded default dataset (scikit-learn's bundled 8x8 digits)."""

from __future__ import annotations

import gzip
import math

import numpy as np

from ember import _random
from ember.tensor import Tensor, stack

__all__ = ["DataLoader", "TensorDataset", "load_digits", "read_idx"]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 handwritten 8x8 digits as float32 images (1797, 1, 8, 8) scaled to
    [0, 1] and int64 labels (1797,)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as e:
        raise ImportError(
            "ember.data.load_digits needs scikit-learn: pip install 'ember[data]'"
        ) from e
    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return images, digits.target.astype(np.int64)


# ---- datasets and loaders ----------------------------------------------------------------


class TensorDataset:
    """Tensors (or arrays) sharing their first dimension; item i is the tuple of their i-th
    rows."""

    def __init__(self, *tensors):
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        if not self.tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = {t.shape[0] for t in self.tensors}
        if len(sizes) != 1:
            raise ValueError(f"Size mismatch between tensors: first dimensions {sorted(sizes)}")

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


def default_collate(samples: list):
    """Stacks a list of samples into a batch: tuples/lists field by field, Tensors, arrays and
    numbers into one Tensor each."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return [default_collate(list(field)) for field in zip(*samples, strict=True)]
    if isinstance(first, Tensor):
        return stack([s.detach() for s in samples])
    return Tensor(np.stack([np.asarray(s) for s in samples]))


class DataLoader:
    """Iterates over a dataset in batches of batch_size samples (the last one smaller unless
    drop_last), in a new random order each epoch when shuffle (ember's generator: see
    ember.manual_seed). A TensorDataset is batched by indexing its tensors directly."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        self.dataset, self.batch_size = dataset, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.collate_fn = default_collate if collate_fn is None else collate_fn

    def __iter__(self):
        n = len(self.dataset)
        order = _random.generator().permutation(n) if self.shuffle else np.arange(n)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            indices = order[start : start + self.batch_size]
            if isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate:
                yield [Tensor(t.data[indices]) for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


# ---- MNIST's IDX files -------------------------------------------------------------------

# IDX header: two zero bytes, a type code, the number of dimensions; then one big-endian
# uint32 per dimension, then the data, big-endian, in C order
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (MNIST's format: train-images-idx3-ubyte etc.), gzip-compressed
    or not, in native byte order. Raises ValueError on a file that is not valid IDX."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: IDX data of shape {shape} and type {dtype} needs {expected} bytes, the file "
            f"has {len(raw) - header}"
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
