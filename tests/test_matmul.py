"""ember.ops.matmul: numpy.matmul's semantics on ember's batched GEMM."""

import numpy as np
import pytest

from conftest import randn, rel_err
from ember import ops, ref

TOL = 1e-5


@pytest.mark.parametrize(
    "a_shape,b_shape",
    [
        ((5,), (5,)),
        ((5,), (5, 3)),
        ((4, 5), (5,)),
        ((7, 4, 5), (5,)),
        ((5,), (2, 5, 3)),
        ((4, 5), (5, 3)),
        ((2, 4, 5), (2, 5, 3)),
        ((2, 1, 4, 5), (3, 5, 6)),  # broadcast batch
        ((1, 4, 5), (6, 5, 3)),
        ((6, 9, 33), (33, 17)),  # folded into one GEMM
        ((3, 0, 5), (5, 4)),  # empty rows
        ((0, 4, 5), (5, 4)),  # empty batch
        ((2, 4, 0), (2, 0, 3)),  # empty inner dimension
        ((9, 13, 70), (9, 70, 31)),  # threads over the batch
        ((3, 130, 70), (3, 70, 131)),
    ],
)
def test_matches_numpy(isa, rng, a_shape, b_shape):
    a, b = randn(rng, *a_shape), randn(rng, *b_shape)
    got = ops.matmul(a, b)
    want = ref.matmul(a.astype(np.float64), b.astype(np.float64))
    assert got.shape == want.shape and got.dtype == np.float32
    if want.size:
        assert rel_err(got, want) < TOL


def test_strided_and_broadcast_views(isa, rng):
    a = randn(rng, 4, 6, 11, 9)[:, ::2, ::-1, :].swapaxes(-1, -2)  # (4, 3, 9, 11)
    b = np.broadcast_to(randn(rng, 11, 5), (3, 11, 5))
    got = ops.matmul(a, b)
    assert rel_err(got, np.matmul(a.astype(np.float64), b)) < TOL


def test_fold_needs_no_copy_and_falls_back(rng):
    a = randn(rng, 4, 8, 10)[:, :, ::2]  # rows cannot fold into (32, 5) without a copy
    b = randn(rng, 5, 3)
    assert rel_err(ops.matmul(a, b), a.astype(np.float64) @ b) < TOL


def test_float64_is_exact(rng):
    a, b = randn(rng, 3, 4, 5, dtype=np.float64), randn(rng, 5, 2, dtype=np.float64)
    np.testing.assert_allclose(ops.matmul(a, b), a @ b, rtol=1e-12)


@pytest.mark.parametrize(
    "a,b,error,match",
    [
        (
            np.ones((2, 3), np.float32),
            np.ones((4, 2), np.float32),
            ValueError,
            "inner dimensions differ",
        ),
        (
            np.ones((2, 2, 3), np.float32),
            np.ones((3, 3, 2), np.float32),
            ValueError,
            "do not broadcast",
        ),
        (np.ones((), np.float32), np.ones((3,), np.float32), ValueError, "at least 1-D"),
        (np.ones((2, 3), np.int32), np.ones((3, 2), np.int32), TypeError, "float32 or float64"),
        (np.ones((2, 3), np.float32), np.ones((3, 2)), TypeError, "one dtype"),
        (np.ones((2, 3), np.float32), [[1.0], [2.0], [3.0]], TypeError, "NumPy array"),
    ],
)
def test_bad_input_raises(a, b, error, match):
    with pytest.raises(error, match=match):
        ops.matmul(a, b)
