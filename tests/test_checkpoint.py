"""ember.save / ember.load: safetensors round trips (including non-contiguous arrays), atomic
writes, and clear ValueErrors for truncated, corrupt or foreign files (never unpickled)."""

import os
import pickle

import numpy as np
import pytest

import ember
from ember import nn


def model():
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_model_round_trip(tmp_path):
    a = model()
    a(ember.randn(8, 5))  # updates the BatchNorm running statistics and num_batches_tracked
    path = tmp_path / "model.safetensors"
    ember.save(a.state_dict(), path)
    loaded = ember.load(path)
    assert list(loaded) == list(a.state_dict())  # in the saved order
    assert all(isinstance(v, np.ndarray) for v in loaded.values())
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    assert loaded["1.num_batches_tracked"].shape == ()
    b = model()
    b.load_state_dict(loaded)
    a.eval()
    b.eval()
    x = ember.randn(3, 5)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.T,  # a transposed view
        lambda a: np.asfortranarray(a),
        lambda a: a[::2, 1::3],  # strided
        lambda a: a.astype(">f4"),  # big-endian
    ],
)
def test_non_contiguous_arrays_round_trip(tmp_path, rng, make):
    base = rng.standard_normal((6, 9)).astype(np.float32)
    array = make(base)
    path = tmp_path / "w.safetensors"
    ember.save({"w": array, "t": ember.tensor(array)}, path)
    loaded = ember.load(path)
    np.testing.assert_array_equal(loaded["w"], array)
    np.testing.assert_array_equal(loaded["t"], array)


def test_transposed_parameter_round_trip(tmp_path, rng):
    lin = nn.Linear(3, 7)
    with ember.no_grad():
        lin.weight.data = np.ascontiguousarray(rng.standard_normal((3, 7)), np.float32).T
    assert not lin.weight.numpy().flags.c_contiguous
    ember.save(lin.state_dict(), tmp_path / "lin.safetensors")
    np.testing.assert_array_equal(ember.load(tmp_path / "lin.safetensors")["weight"], lin.weight)


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    ember.save({"a": np.zeros(3)}, path)
    ember.save({"b": np.ones(2)}, str(path))
    assert list(ember.load(path)) == ["b"]
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # no temporary file left behind
    with pytest.raises(TypeError, match="keys must be strings"):
        ember.save({1: np.zeros(1)}, path)
    assert list(ember.load(path)) == ["b"]  # a failed save leaves the old file intact


def test_truncated_and_corrupt_files_raise_value_error(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    ember.save({"w": np.arange(100, dtype=np.float32)}, path)
    good = path.read_bytes()
    for name, data in {
        "truncated_data": good[:-7],
        "truncated_header": good[:20],
        "empty": b"",
        "garbage_header": good[:8] + b"\xff" * (len(good) - 8),
        "huge_header_length": (2**60).to_bytes(8, "little") + good[8:],
    }.items():
        bad = tmp_path / name
        bad.write_bytes(data)
        with pytest.raises(ValueError, match="not a valid safetensors"):
            ember.load(bad)


class Exploit:
    """Unpickling this would create a file: a pickle is never loaded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_files_are_rejected_without_being_run(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"w": Exploit(str(marker)), "x": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a valid safetensors"):
        ember.load(path)
    assert not marker.exists()


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        ember.load(tmp_path / "nope.safetensors")
