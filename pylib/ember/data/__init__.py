"""Datasets. `load_digits()` is the embedded default: scikit-learn's bundled 8x8 digits."""

from __future__ import annotations

import numpy as np

__all__ = ["load_digits"]


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
