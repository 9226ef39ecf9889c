"""ember.ops.gemm and ember.ops.matmul on CuPy arrays: ember's CUDA SGEMM kernels (SIMT fp32,
TF32 tensor cores, the strided fallback) against ember.ref / NumPy on host copies."""

import itertools

import numpy as np
import pytest

import ember
from conftest import rel_err
from ember import ref

pytestmark = pytest.mark.cuda

# sizes around the tiles (32, 64, 128) and the list: 1, 7, 127, 129, 1000, 4097
SIZES = [
    (1, 1, 1),
    (7, 5, 3),
    (127, 129, 65),
    (129, 127, 1000),
    (64, 784, 128),
    (1000, 33, 17),
    (128, 128, 128),
    (4097, 7, 129),
    (7, 4097, 127),
    (129, 127, 4097),
    (1000, 1000, 1000),
]
TRANSPOSES = list(itertools.product([False, True], repeat=2))


def host(x):
    return x.get().astype(np.float64)


def probe_error(a, b, c, rng) -> float:
    """||C t - A (B t)|| / ||A (B t)|| in float64 for a random t: checks a big product cheaply."""
    t = rng.standard_normal(c.shape[1])
    want = a @ (b @ t)
    return float(np.linalg.norm(c @ t - want) / np.linalg.norm(want))


def tf32_round(x):
    """x rounded to TF32 as cvt.rna.tf32.f32 does: 10 mantissa bits, ties away from zero."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)


@pytest.fixture
def precision():
    """Sets ember's matmul precision for the test and restores the default afterwards."""
    yield ember.set_float32_matmul_precision
    ember.set_float32_matmul_precision("highest")


def operands(cp, rng, m, n, k, trans_a, trans_b):
    a = cp.asarray(rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32))
    b = cp.asarray(rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32))
    return a, b


@pytest.mark.parametrize(("m", "n", "k"), SIZES, ids=lambda v: str(v))
@pytest.mark.parametrize(("trans_a", "trans_b"), TRANSPOSES)
def test_gemm_matches_reference(cp, rng, m, n, k, trans_a, trans_b):
    a, b = operands(cp, rng, m, n, k, trans_a, trans_b)
    c = cp.asarray(rng.standard_normal((m, n)).astype(np.float32))
    out = cp.full((m, n), cp.nan, dtype=cp.float32)
    got = ember.ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=-2.0, c=c, out=out)
    assert got is out
    if m * n * k <= 2e8:
        want = ref.gemm(
            host(a), host(b), trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=-2.0, c=host(c)
        )
        assert rel_err(out.get(), want) < 1e-5
    else:
        ah = host(a).T if trans_a else host(a)
        bh = host(b).T if trans_b else host(b)
        assert probe_error(ah, bh, (out.get() + 2.0 * host(c)) / 0.5, rng) < 1e-5


@pytest.mark.parametrize(("m", "n", "k"), [(7, 5, 3), (129, 127, 65), (1000, 33, 17)])
def test_beta_zero_does_not_read_c(cp, rng, m, n, k):
    a, b = operands(cp, rng, m, n, k, False, False)
    c = cp.full((m, n), cp.nan, dtype=cp.float32)
    got = ember.ops.gemm(a, b, alpha=3.0, beta=0.0, c=c, out=c)
    assert got is c
    assert rel_err(c.get(), 3.0 * host(a) @ host(b)) < 1e-5


def test_out_may_be_c(cp, rng):
    a, b = operands(cp, rng, 65, 70, 33, False, True)
    c = cp.asarray(rng.standard_normal((65, 70)).astype(np.float32))
    c0 = host(c)
    ember.ops.gemm(a, b, trans_b=True, alpha=-1.0, beta=0.5, c=c, out=c)
    assert rel_err(c.get(), -(host(a) @ host(b).T) + 0.5 * c0) < 1e-5


def views(cp, rng, rows, cols):
    """The same logical (rows, cols) matrix as differently laid out CuPy arrays: contiguous,
    Fortran, an offset view (not 16-byte aligned), a view with an odd leading stride, negative
    strides, and one with no unit stride at all (the strided kernel's case)."""
    x = rng.standard_normal((rows, cols)).astype(np.float32)

    def within(select):  # a view of a fresh larger buffer, holding x
        view = select(cp.full((2 * rows + 3, 2 * cols + 5), cp.nan, dtype=cp.float32))
        view[...] = cp.asarray(x)
        return view

    return x, {
        "c": cp.asarray(x),
        "f": cp.asfortranarray(cp.asarray(x)),
        "offset": within(lambda big: big[1 : rows + 1, 1 : cols + 1]),
        "odd_lead": within(lambda big: big[:rows, 3 : cols + 3]),
        "negative": within(lambda big: big[rows - 1 :: -1, cols - 1 :: -1]),
        "no_unit_stride": within(lambda big: big[: 2 * rows : 2, : 2 * cols : 2]),
    }


@pytest.mark.parametrize("layout_a", ["c", "f", "offset", "odd_lead", "negative", "no_unit_stride"])
@pytest.mark.parametrize("layout_b", ["c", "f", "offset", "no_unit_stride"])
def test_gemm_any_layout(cp, rng, layout_a, layout_b):
    m, n, k = 131, 67, 45
    a, av = views(cp, rng, m, k)
    b, bv = views(cp, rng, k, n)
    out = cp.full((m, n), cp.nan, dtype=cp.float32)
    ember.ops.gemm(av[layout_a], bv[layout_b], out=out)
    assert rel_err(out.get(), a.astype(np.float64) @ b) < 1e-5


@pytest.mark.parametrize("layout_out", ["f", "offset", "odd_lead", "negative", "no_unit_stride"])
def test_gemm_writes_any_out_layout(cp, rng, layout_out):
    m, n, k = 70, 131, 20
    a, b = operands(cp, rng, m, n, k, False, False)
    c, cv = views(cp, rng, m, n)
    out = cv[layout_out]
    out[...] = cp.nan
    ember.ops.gemm(a, b, out=out, c=cp.asarray(c), beta=1.0)
    assert rel_err(out.get(), host(a) @ host(b) + c) < 1e-5


def test_gemm_non_contiguous_views(cp, rng):
    a = cp.asarray(rng.standard_normal((90, 70)).astype(np.float32))[::2, 1::3]
    b = cp.asarray(rng.standard_normal((50, 40)).astype(np.float32)).T[::-1, :45]
    got = ember.ops.gemm(a[:, :40], b[:40])
    assert rel_err(got.get(), ref.gemm(a[:, :40].get(), b[:40].get())) < 1e-5


def test_gemm_c_broadcasts(cp, rng):
    a, b = operands(cp, rng, 33, 40, 12, False, False)
    bias = cp.asarray(rng.standard_normal(40).astype(np.float32))
    got = ember.ops.gemm(a, b, c=bias, beta=1.0)
    assert rel_err(got.get(), host(a) @ host(b) + host(bias)) < 1e-5


def test_gemm_empty_and_k_zero(cp):
    z = ember.ops.gemm(cp.ones((0, 3), cp.float32), cp.ones((3, 4), cp.float32))
    assert z.shape == (0, 4)
    out = cp.full((3, 4), cp.nan, dtype=cp.float32)
    ember.ops.gemm(cp.ones((3, 0), cp.float32), cp.ones((0, 4), cp.float32), out=out)
    np.testing.assert_array_equal(out.get(), np.zeros((3, 4)))


def test_gemm_mixing_numpy_and_cupy_is_a_type_error(cp):
    with pytest.raises(TypeError, match="CuPy"):
        ember.ops.gemm(cp.ones((2, 2), dtype=cp.float32), np.ones((2, 2), dtype=np.float32))


def test_gemm_float64_on_the_gpu_is_a_type_error(cp):
    with pytest.raises(TypeError, match="float32"):
        ember.ops.gemm(cp.ones((2, 2)), cp.ones((2, 2)))


def test_gemm_bad_shapes_raise(cp):
    with pytest.raises(ValueError, match="inner dimensions differ"):
        ember.ops.gemm(cp.ones((2, 3), cp.float32), cp.ones((4, 2), cp.float32))
    with pytest.raises(ValueError, match="out must have shape"):
        ember.ops.gemm(
            cp.ones((2, 3), cp.float32), cp.ones((3, 2), cp.float32), out=cp.empty((3, 3), "f")
        )


# ---- kernel choice ------------------------------------------------------------------------------


def kernel_name(cp, a, b, tf32):
    out = cp.empty((a.shape[0], b.shape[1]), cp.float32)
    return ember._cuda.gemm_kernel(a, b, out, False, False, tf32)


def test_kernel_choice(cp):
    big = cp.ones((4096, 4096), cp.float32)
    assert kernel_name(cp, big, big, False).startswith("sgemm_simt_kernel 128x128x16 A k, B mn")
    assert kernel_name(cp, big, big, True).startswith("sgemm_tf32_kernel 128x128x16")
    # the MLP layer: a grid of 128 x 128 tiles would leave most SMs idle
    x, w = cp.ones((64, 784), cp.float32), cp.ones((784, 128), cp.float32)
    assert "32x32" in kernel_name(cp, x, w, False)
    # no unit stride: the fallback
    assert kernel_name(cp, big[::2, ::2], big[::2, ::2], False).startswith("sgemm_strided")
    # an odd leading stride: unit stride kept, loads element by element
    assert "scalar" in kernel_name(cp, big[:, 1:], big[1:, :], False)


# ---- TF32 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "n", "k"), [(127, 129, 65), (1000, 1000, 1000), (64, 784, 128)])
@pytest.mark.parametrize(("trans_a", "trans_b"), TRANSPOSES)
def test_tf32_error_is_that_of_tf32(cp, rng, precision, m, n, k, trans_a, trans_b):
    a, b = operands(cp, rng, m, n, k, trans_a, trans_b)
    ah = host(a).T if trans_a else host(a)
    bh = host(b).T if trans_b else host(b)
    exact = ah @ bh
    # a naive TF32 product: inputs rounded as the tensor cores take them, exact sums
    naive = tf32_round(ah).astype(np.float64) @ tf32_round(bh).astype(np.float64)
    naive_err = rel_err(naive, exact)

    precision("high")
    out = cp.full((m, n), cp.nan, dtype=cp.float32)
    ember.ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
    err = rel_err(out.get(), exact)
    assert err <= 2 * naive_err + 1e-6
    assert err < 1e-3
    assert err > 1e-6, "'high' should have taken the TF32 tensor cores"

    precision("highest")
    ember.ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
    assert rel_err(out.get(), exact) < 1e-5


def test_tf32_edges_alpha_beta_and_views(cp, rng, precision):
    precision("high")
    m, n, k = 133, 70, 37  # no dimension a multiple of 4: partial 16-byte chunks everywhere
    a, av = views(cp, rng, m, k)
    b, bv = views(cp, rng, k, n)
    c = rng.standard_normal((m, n)).astype(np.float32)
    exact = a.astype(np.float64) @ b
    for la, lb in [("c", "c"), ("f", "f"), ("offset", "odd_lead"), ("negative", "c")]:
        out = cp.asarray(c)
        ember.ops.gemm(av[la], bv[lb], alpha=0.5, beta=-1.0, c=out, out=out)
        assert rel_err(out.get(), 0.5 * exact - c) < 1e-3, (la, lb)


def test_tf32_big_product(cp, rng, precision):
    precision("high")
    a, b = operands(cp, rng, 4097, 1000, 4097, False, False)
    out = ember.ops.gemm(a, b)
    assert probe_error(host(a), host(b), out.get(), rng) < 2e-3


# ---- matmul -------------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((5,), (5,)),
    ((5,), (5, 7)),
    ((6, 5), (5,)),
    ((3, 6, 5), (5,)),
    ((5,), (3, 5, 7)),
    ((6, 5), (5, 7)),
    ((3, 6, 5), (5, 7)),  # folds into one (18, 5) @ (5, 7)
    ((6, 5), (3, 5, 7)),  # A broadcast: batch stride 0
    ((2, 1, 6, 5), (3, 5, 7)),  # batch (2, 3)
    ((2, 3, 6, 5), (2, 3, 5, 7)),
    ((1, 3, 6, 5), (2, 1, 5, 7)),  # broadcast dims that do not fold: a loop over launches
    ((0, 6, 5), (5, 7)),
    ((3, 6, 0), (0, 7)),
    ((70000, 2, 3), (3, 4)),
    ((70000, 2, 3), (70000, 3, 4)),  # more batches than a grid's z dimension
]


@pytest.mark.parametrize(("a_shape", "b_shape"), MATMUL_SHAPES, ids=lambda s: str(s))
def test_matmul_matches_numpy(cp, rng, a_shape, b_shape):
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    got = ember.ops.matmul(cp.asarray(a), cp.asarray(b))
    want = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert isinstance(got, cp.ndarray) and got.dtype == cp.float32
    assert got.shape == want.shape
    if want.size:
        assert rel_err(got.get(), want) < 1e-5


def test_matmul_views(cp, rng):
    a = cp.asarray(rng.standard_normal((4, 9, 6)).astype(np.float32))
    b = cp.asarray(rng.standard_normal((6, 4, 9)).astype(np.float32))
    av = a[:, ::2, :].transpose(0, 2, 1)  # (4, 6, 5)
    bv = b.transpose(1, 2, 0)[..., ::-1]  # (4, 9, 6), negative stride along k
    got = ember.ops.matmul(bv, av)
    want = np.matmul(host(bv), host(av))
    assert rel_err(got.get(), want) < 1e-5


def test_matmul_tf32(cp, rng, precision):
    precision("high")
    a = rng.standard_normal((3, 200, 300)).astype(np.float32)
    b = rng.standard_normal((300, 100)).astype(np.float32)
    got = ember.ops.matmul(cp.asarray(a), cp.asarray(b))
    assert 1e-6 < rel_err(got.get(), a.astype(np.float64) @ b) < 1e-3


def test_matmul_errors(cp):
    with pytest.raises(ValueError, match="at least 1-D"):
        ember.ops.matmul(cp.ones((), cp.float32), cp.ones((2,), cp.float32))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        ember.ops.matmul(cp.ones((2, 3), cp.float32), cp.ones((4, 2), cp.float32))
    with pytest.raises(ValueError, match="do not broadcast"):
        ember.ops.matmul(cp.ones((2, 2, 3), cp.float32), cp.ones((3, 3, 2), cp.float32))
    with pytest.raises(TypeError, match="float32"):
        ember.ops.matmul(cp.ones((2, 2)), cp.ones((2, 2)))
    with pytest.raises(TypeError, match="CuPy"):
        ember.ops.matmul(cp.ones((2, 2), cp.float32), np.ones((2, 2), np.float32))
