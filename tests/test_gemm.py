"""ember.ops.gemm against ember.ref.gemm on every ISA path."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from conftest import randn, rel_err
from ember import ops, ref

TOL = 1e-5


def blocking():
    return ember._C.gemm_blocking()


def check(rng, m, n, k, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, with_c=False):
    a = randn(rng, *((k, m) if trans_a else (m, k)))
    b = randn(rng, *((n, k) if trans_b else (k, n)))
    c = randn(rng, m, n) if with_c else None
    out = np.full((m, n), np.nan, np.float32)
    got = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, c=c, out=out)
    assert got is out
    want = ref.gemm(
        a.astype(np.float64),
        b.astype(np.float64),
        trans_a=trans_a,
        trans_b=trans_b,
        alpha=alpha,
        beta=beta,
        c=None if c is None else c.astype(np.float64),
    )
    assert rel_err(out, want) < TOL


def tile_sizes(tile, block):
    return sorted({1, tile - 1, tile, tile + 1, 2 * tile + 3, block - 1, block + 1} - {0})


def test_edges_around_register_tile(isa, rng):
    b = blocking()
    for m, n in itertools.product(
        tile_sizes(b["mr"], 2 * b["mr"]), tile_sizes(b["nr"], 2 * b["nr"])
    ):
        check(rng, m, n, 7)


def test_edges_around_cache_blocks(isa, rng):
    b = blocking()
    for m, k in [
        (b["mc"] - 1, b["kc"] + 1),
        (b["mc"] + 1, b["kc"] - 1),
        (b["mc"], b["kc"]),
        (2 * b["mc"] + 5, 2 * b["kc"] + 3),
    ]:
        check(rng, m, 37, k)
    check(rng, 9, b["nc"] + 17, 5)


def test_narrow_products_run_on_the_narrow_tile():
    """On AVX-512 a product that 14x32 tiles would mostly pad (10 or 16 columns) runs on the AVX2
    6x16 tile: bit for bit the AVX2 path's result, with its own depth blocking (k = 1000 is cut
    into 3 blocks at 6x16's KC = 384, into 4 at 14x32's 256); a 64-wide one keeps the 14x32 tile,
    and so its rounding."""
    if "avx512" not in ember.cpu_info()["supported_isas"]:
        pytest.skip("this CPU has no AVX-512")
    shapes = [(32, 10), (150, 16), (64, 64)]
    operands = [
        (randn(np.random.default_rng(m), m, 1000), randn(np.random.default_rng(n), 1000, n))
        for m, n in shapes
    ]
    before = ember.cpu_info()["isa"]
    results = {}
    try:
        for isa in ("avx2", "avx512"):
            ember._C._select_isa(isa)
            results[isa] = [ops.gemm(a, b) for a, b in operands]
        assert blocking()["narrow"] == "f32_gemm_6x16_avx2"
    finally:
        ember._C._select_isa(before)
    narrow_avx2, wide_avx2 = results["avx2"][:2], results["avx2"][2]
    narrow_avx512, wide_avx512 = results["avx512"][:2], results["avx512"][2]
    for got, want in zip(narrow_avx512, narrow_avx2, strict=True):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(wide_avx512, wide_avx2)
    assert rel_err(wide_avx512, wide_avx2) < TOL


@pytest.mark.parametrize(
    "m,n,k",
    [
        (1, 1, 1),
        (113, 203, 1023),
        (203, 113, 17),
        (64, 128, 784),
        (64, 10, 128),
        (257, 129, 255),
        (1000, 1000, 1000),
    ],
)
def test_sizes(isa, rng, m, n, k):
    check(rng, m, n, k)


@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,n,k", [(31, 45, 67), (150, 70, 400)])
def test_transposes_alpha_beta(isa, rng, trans_a, trans_b, m, n, k):
    check(rng, m, n, k, trans_a=trans_a, trans_b=trans_b)
    check(rng, m, n, k, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=3.0, with_c=True)
    check(rng, m, n, k, trans_a=trans_a, trans_b=trans_b, alpha=-2.0, beta=0.0, with_c=True)


def strided_views(rng, shape):
    """One matrix as C order, Fortran order, a stepped slice, a transpose and a reversed view."""
    base = randn(rng, *shape)
    big = randn(rng, 2 * shape[0] + 1, 3 * shape[1] + 2)
    big[1::2, 2::3] = base
    return {
        "c": base,
        "fortran": np.asfortranarray(base),
        "stepped": big[1::2, 2::3],
        "transposed": np.ascontiguousarray(base.T).T,
        "reversed": base[::-1, ::-1].copy()[::-1, ::-1],
    }


@pytest.mark.parametrize("layout_a", ["c", "fortran", "stepped", "transposed", "reversed"])
@pytest.mark.parametrize("layout_b", ["c", "fortran", "stepped", "reversed"])
def test_any_strides(isa, rng, layout_a, layout_b):
    m, n, k = 37, 53, 29
    a = strided_views(rng, (m, k))[layout_a]
    b = strided_views(rng, (k, n))[layout_b]
    for out in (
        np.full((m, n), np.nan, np.float32),
        np.full((n, m), np.nan, np.float32).T,
        np.full((2 * m, 3 * n), np.nan, np.float32)[::2, ::3],
    ):
        ops.gemm(a, b, out=out)
        assert rel_err(out, ref.gemm(a.astype(np.float64), b.astype(np.float64))) < TOL


def test_beta_zero_does_not_read_c(isa, rng):
    a, b = randn(rng, 20, 30), randn(rng, 30, 40)
    c = np.full((20, 40), np.nan, np.float32)
    got = ops.gemm(a, b, c=c, beta=0.0, alpha=2.0)
    assert rel_err(got, 2.0 * (a.astype(np.float64) @ b)) < TOL


def test_out_is_c_and_c_broadcasts(isa, rng):
    a, b = randn(rng, 20, 30), randn(rng, 30, 40)
    c = randn(rng, 20, 40)
    want = 1.5 * (a.astype(np.float64) @ b) + 0.25 * c
    assert ops.gemm(a, b, alpha=1.5, beta=0.25, c=c, out=c) is c
    assert rel_err(c, want) < TOL
    bias = randn(rng, 40)
    got = ops.gemm(a, b, beta=1.0, c=bias)
    assert rel_err(got, a.astype(np.float64) @ b + bias) < TOL


def test_nan_and_inf_propagate(isa, rng):
    a, b = randn(rng, 13, 9), randn(rng, 9, 21)
    a[3, 4] = np.nan
    b[2, 5] = np.inf
    got = ops.gemm(a, b)
    with np.errstate(invalid="ignore"):
        want = a.astype(np.float64) @ b
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (4, 0, 3), (0, 0, 0)])
def test_empty_result(isa, m, n, k):
    got = ops.gemm(np.ones((m, k), np.float32), np.ones((k, n), np.float32))
    assert got.shape == (m, n) and got.dtype == np.float32


def test_empty_inner_dimension(isa, rng):
    a, b = np.ones((4, 0), np.float32), np.ones((0, 6), np.float32)
    np.testing.assert_array_equal(ops.gemm(a, b, out=np.full((4, 6), np.nan, np.float32)), 0)
    c = randn(rng, 4, 6)
    np.testing.assert_allclose(ops.gemm(a, b, beta=2.0, c=c), 2.0 * c, rtol=1e-6)


def test_float64_is_exact(rng):
    a, b, c = (
        randn(rng, 30, 40, dtype=np.float64),
        randn(rng, 40, 50, dtype=np.float64),
        randn(rng, 30, 50, dtype=np.float64),
    )
    got = ops.gemm(a, b, trans_b=False, alpha=0.5, beta=2.0, c=c)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, 0.5 * (a @ b) + 2.0 * c, rtol=1e-12)


def test_big_endian_and_misaligned_inputs_are_read_correctly(rng):
    a, b = randn(rng, 17, 19), randn(rng, 19, 23)
    want = a.astype(np.float64) @ b
    assert rel_err(ops.gemm(a.astype(">f4"), b), want) < TOL
    raw = np.zeros(17 * 19 * 4 + 1, np.uint8)[1:].view(np.float32).reshape(17, 19)
    raw[...] = a
    assert not raw.flags.aligned
    assert rel_err(ops.gemm(raw, b), want) < TOL


def test_thread_count_does_not_change_results(isa, rng):
    # every element gets the same arithmetic wherever the threads cut C: results are bitwise equal
    k = 2 * blocking()["kc"] + 5
    a, b, c = randn(rng, 301, k), randn(rng, k, 199), randn(rng, 301, 199)
    threads = ember.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3, 4):
            ember.set_num_threads(n)
            results.append(ops.gemm(a, b, alpha=0.7, beta=1.3, c=c))
    finally:
        ember.set_num_threads(threads)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_large_probe(rng):
    # a 2048^2 product checked cheaply: C @ t against A @ (B @ t) for a random vector t
    a, b = randn(rng, 2048, 1500), randn(rng, 1500, 2048)
    c = ops.gemm(a, b)
    t = rng.standard_normal(2048)
    assert rel_err(c @ t, a.astype(np.float64) @ (b.astype(np.float64) @ t)) < TOL


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    m=st.integers(1, 70),
    n=st.integers(1, 70),
    k=st.integers(0, 300),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    step=st.integers(1, 3),
    beta=st.sampled_from([0.0, 1.0, -0.5]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_random_shapes(m, n, k, trans_a, trans_b, step, beta, seed):
    rng = np.random.default_rng(seed)
    a = randn(rng, *((k, m * step) if trans_a else (m, k * step)))[:, ::step]
    b = randn(rng, *((n * step, k) if trans_b else (k * step, n)))[::step, :]
    c = randn(rng, m, n)
    got = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.75, beta=beta, c=c)
    want = ref.gemm(
        a.astype(np.float64),
        b.astype(np.float64),
        trans_a=trans_a,
        trans_b=trans_b,
        alpha=0.75,
        beta=beta,
        c=c.astype(np.float64),
    )
    assert rel_err(got, want) < TOL or np.abs(got - want).max() < 1e-5


# ---- bad input --------------------------------------------------------------------------


def f32(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize(
    "a,b,kwargs,error,match",
    [
        (f32(2, 3), np.ones((3, 4), np.int64), {}, TypeError, "b must be float32 or float64"),
        (np.ones((2, 3), np.float16), f32(3, 4), {}, TypeError, "a must be float32"),
        (np.ones((2, 3), np.complex64), f32(3, 4), {}, TypeError, "a must be float32"),
        (np.ones((2, 3), object), f32(3, 4), {}, TypeError, "a must be float32"),
        (f32(2, 3), np.ones((3, 4)), {}, TypeError, "one dtype"),
        ([[1.0, 2.0]], f32(2, 1), {}, TypeError, "a must be a NumPy array"),
        (f32(2, 3), f32(4, 5), {}, ValueError, r"inner dimensions differ.*\(2, 3\).*\(4, 5\)"),
        (f32(2, 3), f32(2, 4), {"trans_b": True}, ValueError, "inner dimensions differ"),
        (f32(3), f32(3, 4), {}, ValueError, r"a must be 2-D, got shape \(3,\)"),
        (f32(2, 3, 1), f32(3, 4), {}, ValueError, "a must be 2-D"),
        (f32(2, 3), f32(3, 4), {"c": f32(3, 4), "beta": 1.0}, ValueError, "does not broadcast"),
        (f32(2, 3), f32(3, 4), {"c": f32(1, 1, 4), "beta": 1.0}, ValueError, "does not broadcast"),
        (f32(2, 3), f32(3, 4), {"out": f32(4, 2)}, ValueError, r"out must have shape \(2, 4\)"),
        (f32(2, 3), f32(3, 4), {"out": np.ones((2, 4))}, TypeError, "one dtype"),
        (f32(2, 3), f32(3, 4), {"alpha": "2"}, TypeError, "alpha must be a real number"),
        (f32(2, 3), f32(3, 4), {"beta": 1j}, TypeError, "beta must be a real number"),
    ],
)
def test_bad_input_raises(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.gemm(a, b, **kwargs)


def test_out_overlapping_an_input_raises():
    buf = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="must not overlap"):
        ops.gemm(buf, buf, out=buf)


def test_read_only_out_raises():
    out = f32(2, 4)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.gemm(f32(2, 3), f32(3, 4), out=out)


def test_extension_checks_again():
    # the C++ layer refuses what ember.ops would have refused, without crashing
    with pytest.raises(TypeError, match="float32"):
        ember._C.gemm(np.ones((2, 3)), f32(3, 4), f32(2, 4))
    with pytest.raises(ValueError, match="shapes do not match"):
        ember._C.gemm(f32(2, 3), f32(4, 4), f32(2, 4))
    with pytest.raises(ValueError, match="overlap"):
        buf = f32(4, 4)
        ember._C.gemm(buf, f32(4, 4), buf)
    with pytest.raises(ValueError, match="zero stride"):
        rows_alias = np.lib.stride_tricks.as_strided(f32(4), (2, 4), (0, 4))
        ember._C.gemm(f32(2, 3), f32(3, 4), rows_alias)
