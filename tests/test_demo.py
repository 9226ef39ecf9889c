"""The README's first command: `python -m ember demo` (with a small budget)."""

import subprocess
import sys

import pytest

pytest.importorskip("sklearn")


def test_demo_learns():
    from ember.demo import run

    assert run(epochs=3) > 0.85


def test_demo_command_prints_accuracy():
    out = subprocess.run(
        [sys.executable, "-m", "ember", "demo", "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "test accuracy: 0." in out.stdout


def test_load_digits_layout():
    import numpy as np

    from ember.data import load_digits

    images, labels = load_digits()
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.shape == (1797,) and labels.dtype == np.int64
