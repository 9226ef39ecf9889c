"""ember.data: TensorDataset, DataLoader batching and shuffling, and read_idx on IDX files the
tests write (plain and gzip)."""

import gzip

import numpy as np
import pytest

import ember
from ember.data import DataLoader, TensorDataset, read_idx


def test_tensor_dataset_items_and_length():
    x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    ds = TensorDataset(x, ember.tensor(y))
    assert len(ds) == 5
    a, b = ds[3]
    assert a.tolist() == [6.0, 7.0] and b.item() == 3
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(x, np.arange(4))


@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_batches_in_order(drop_last):
    ds = TensorDataset(np.arange(10, dtype=np.float32)[:, None], np.arange(10))
    loader = DataLoader(ds, batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader) == (2 if drop_last else 3)
    assert all(isinstance(t, ember.Tensor) for batch in batches for t in batch)
    assert batches[0][0].shape == (4, 1) and batches[0][1].tolist() == [0, 1, 2, 3]
    if not drop_last:
        assert batches[-1][1].tolist() == [8, 9]


def test_loader_shuffles_with_embers_generator():
    ds = TensorDataset(np.arange(50))
    ember.manual_seed(7)
    first = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    second = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    ember.manual_seed(7)
    again = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    assert sorted(first) == list(range(50)) and not (first == np.arange(50)).all()
    assert not (first == second).all()  # a new order each epoch
    np.testing.assert_array_equal(first, again)


def test_loader_collates_any_dataset():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full(2, i * i, np.float32), i

    batches = list(DataLoader(Squares(), batch_size=2))
    x, y = batches[1]
    assert x.tolist() == [[4, 4], [9, 9]] and y.tolist() == [2, 3]
    assert len(batches) == 3
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Squares(), batch_size=0)


def write_idx(path, array, code, compress=False):
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "dtype, code", [(np.uint8, 0x08), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D)]
)
def test_read_idx(tmp_path, rng, compress, dtype, code):
    images = (rng.random((3, 28, 28)) * 100).astype(dtype)
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, images, code, compress)
    got = read_idx(path)
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, images)


def test_read_idx_labels_and_errors(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = tmp_path / "labels.gz"
    write_idx(path, labels, 0x08, compress=True)
    np.testing.assert_array_equal(read_idx(str(path)), labels)

    truncated = tmp_path / "truncated"
    write_idx(truncated, labels, 0x08)
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(ValueError, match="needs 10 bytes"):
        read_idx(truncated)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
