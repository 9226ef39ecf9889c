"""ember.ops.gemm on CuPy arrays: ember's CUDA SGEMM against ember.ref on host copies."""

import numpy as np
import pytest

import ember
from conftest import rel_err
from ember import ref

pytestmark = pytest.mark.cuda

SIZES = [(1, 1, 1), (7, 5, 3), (127, 129, 65), (129, 127, 1000), (64, 784, 128), (1000, 33, 17)]


@pytest.mark.parametrize(("m", "n", "k"), SIZES)
@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (True, False), (False, True)])
def test_gemm_matches_reference(cp, rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    out = cp.full((m, n), cp.nan, dtype=cp.float32)
    got = ember.ops.gemm(
        cp.asarray(a),
        cp.asarray(b),
        trans_a=trans_a,
        trans_b=trans_b,
        alpha=0.5,
        beta=-2.0,
        c=cp.asarray(c),
        out=out,
    )
    assert got is out
    want = ref.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=-2.0, c=c)
    assert rel_err(out.get(), want) < 1e-5


def test_gemm_non_contiguous_views(cp, rng):
    a = cp.asarray(rng.standard_normal((90, 70)).astype(np.float32))[::2, 1::3]
    b = cp.asarray(rng.standard_normal((50, 40)).astype(np.float32)).T[::-1, :45]
    got = ember.ops.gemm(a[:, :40], b[:40])
    assert rel_err(got.get(), ref.gemm(a[:, :40].get(), b[:40].get())) < 1e-5


def test_gemm_mixing_numpy_and_cupy_is_a_type_error(cp):
    with pytest.raises(TypeError, match="CuPy"):
        ember.ops.gemm(cp.ones((2, 2), dtype=cp.float32), np.ones((2, 2), dtype=np.float32))
