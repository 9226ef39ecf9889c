"""ember.ops im2col / col2im / conv2d / conv2d_backward against ember.ref (and
torch.nn.functional when importable) on every ISA path; the references' gradients against finite
differences."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ember
from conftest import randn, rel_err
from ember import ops, ref

TOL = 1e-5
TOL_LONG = 1e-4  # dw and db sum over N*P*Q products


def f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


@pytest.fixture
def threads():
    """Restores ember's thread count after a test that changes it."""
    before = ember.get_num_threads()
    yield ember.set_num_threads
    ember.set_num_threads(before)


# ---- cases -----------------------------------------------------------------------------------
# (N, C, H, W, K, R, S, dict of conv2d arguments)
CASES = [
    (2, 3, 7, 9, 4, 3, 3, {}),
    (1, 5, 11, 6, 7, 3, 3, {"padding": 1}),
    (3, 4, 8, 8, 6, 1, 1, {}),  # 1x1: the image is its own column matrix
    (2, 6, 9, 7, 5, 1, 1, {"stride": 2}),
    (2, 3, 13, 12, 8, 5, 5, {"padding": 2}),
    (2, 3, 13, 12, 8, 5, 5, {"stride": 2, "padding": (1, 2)}),
    (2, 4, 10, 11, 3, 3, 2, {"stride": (2, 1), "padding": (2, 0), "dilation": (1, 2)}),
    (1, 2, 12, 12, 3, 3, 3, {"dilation": 3, "padding": 1}),
    (2, 6, 9, 8, 4, 3, 3, {"groups": 2, "padding": 1}),
    (2, 6, 9, 8, 9, 1, 1, {"groups": 3}),
    (2, 8, 10, 9, 8, 3, 3, {"groups": 8, "padding": 1}),  # depthwise
    (2, 4, 9, 10, 12, 3, 3, {"groups": 4, "stride": 2, "dilation": (1, 2)}),  # depthwise x3
    (2, 5, 7, 8, 5, 4, 4, {"groups": 5, "padding": "same"}),  # depthwise, asymmetric
    (2, 3, 9, 8, 5, 4, 2, {"padding": "same"}),  # even kernels: one more at the bottom/right
    (2, 3, 9, 8, 5, 3, 4, {"padding": "same", "dilation": 2}),
    (2, 3, 9, 8, 5, 3, 3, {"padding": "valid"}),
    (1, 1, 5, 5, 2, 5, 5, {}),  # the kernel covers the whole image: P = Q = 1
    (4, 1, 28, 28, 8, 3, 3, {}),  # one input channel: C*R*S = 9
    (5, 64, 21, 19, 16, 3, 3, {"padding": 1}),  # several column chunks per image
    (9, 16, 6, 5, 24, 3, 3, {"padding": 1, "stride": 2}),  # images over the threads, a remainder
    (2, 512, 15, 20, 8, 1, 1, {}),  # 1x1 in several chunks (views of the image)
    (3, 64, 20, 17, 32, 3, 3, {"groups": 2, "padding": 1}),  # groups in several chunks
]


def case_id(case):
    n, c, h, w, k, r, s, kw = case
    args = ",".join(f"{key}={val}" for key, val in kw.items())
    return f"{n}x{c}x{h}x{w}-k{k}-{r}x{s}" + (f"-{args}" if args else "")


def make(rng, case, bias=True):
    n, c, h, w, k, r, s, kw = case
    x = randn(rng, n, c, h, w)
    wt = randn(rng, k, c // kw.get("groups", 1), r, s)
    b = randn(rng, k) if bias else None
    return x, wt, b, kw


def check_forward(x, w, b, kw):
    y = ops.conv2d(x, w, b, **kw)
    assert y.dtype == np.float32
    want = ref.conv2d(*f64(x, w, b), **kw)
    assert rel_err(y, want) < TOL
    return y


def check_backward(dy, x, w, kw, need=(True, True, True)):
    got = ops.conv2d_backward(dy, x, w, **kw, need=need)
    want = ref.conv2d_backward(*f64(dy, x, w), **kw, need=need)
    for name, g, r, tol in zip(
        ("dx", "dw", "db"), got, want, (TOL, TOL_LONG, TOL_LONG), strict=True
    ):
        if r is None:
            assert g is None, name
        else:
            assert g.dtype == np.float32, name
            assert rel_err(g, r) < tol, name


# ---- im2col / col2im ---------------------------------------------------------------------------
WINDOWS = [
    ((2, 3, 7, 8), (3, 3), {}),
    ((2, 3, 7, 8), (2, 3), {"stride": 2, "padding": 1, "dilation": (1, 2)}),
    ((1, 4, 9, 5), (1, 1), {"stride": (2, 3)}),
    ((3, 2, 6, 11), (3, 5), {"padding": (2, 0), "dilation": 2}),
    ((1, 1, 4, 4), (4, 4), {}),
]


@pytest.mark.parametrize("shape,kernel,kw", WINDOWS)
def test_im2col_col2im(rng, shape, kernel, kw):
    x = randn(rng, *shape)
    cols = ops.im2col(x, kernel, **kw)
    assert rel_err(cols, ref.im2col(x.astype(np.float64), kernel, **kw)) == 0
    c = randn(rng, *cols.shape)
    back = ops.col2im(c, shape, kernel, **kw)
    assert rel_err(back, ref.col2im(c.astype(np.float64), shape, kernel, **kw)) < TOL
    # col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>
    lhs = np.vdot(ref.im2col(x.astype(np.float64), kernel, **kw), c.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), ref.col2im(c.astype(np.float64), shape, kernel, **kw))
    assert abs(lhs - rhs) <= 1e-10 * (abs(lhs) + 1)


def test_im2col_col2im_strided_unbatched_empty(rng):
    x = randn(rng, 3, 9, 14)[:, ::2, ::-2]  # unbatched, stepped and reversed
    cols = ops.im2col(x, 3, padding=1)
    assert cols.shape == (27, 5 * 7)
    assert rel_err(cols, ref.im2col(x.astype(np.float64), 3, padding=1)) == 0
    ct = randn(rng, 35, 27).T  # transposed cols
    back = ops.col2im(ct, (3, 5, 7), 3, padding=1)
    assert rel_err(back, ref.col2im(ct.astype(np.float64), (3, 5, 7), 3, padding=1)) < TOL
    assert ops.im2col(np.zeros((0, 2, 5, 5), np.float32), 3).shape == (0, 18, 9)
    assert ops.col2im(np.zeros((0, 18, 9), np.float32), (0, 2, 5, 5), 3).shape == (0, 2, 5, 5)


def test_im2col_col2im_against_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape, kernel, kw in WINDOWS:
        x = randn(rng, *shape)
        cols = ops.im2col(x, kernel, **kw)
        assert rel_err(cols, F.unfold(torch.from_numpy(x), kernel, **kw).numpy()) == 0
        back = ops.col2im(cols, shape, kernel, **kw)
        want = F.fold(torch.from_numpy(cols), shape[2:], kernel, **kw).numpy()
        assert rel_err(back, want) < TOL


# ---- conv2d forward ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv2d(isa, rng, case):
    x, w, b, kw = make(rng, case)
    check_forward(x, w, b, kw)
    check_forward(x, w, None, kw)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_conv2d_backward(isa, rng, case):
    x, w, _, kw = make(rng, case, bias=False)
    dy = randn(rng, *ref.conv2d(x, w, None, **kw).shape)
    check_backward(dy, x, w, kw)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False), (False, False, True)])
@pytest.mark.parametrize("case", [CASES[1], CASES[2], CASES[10]], ids=case_id)
def test_conv2d_backward_parts(rng, case, need):
    x, w, _, kw = make(rng, case, bias=False)
    dy = randn(rng, *ref.conv2d(x, w, None, **kw).shape)
    check_backward(dy, x, w, kw, need)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("case", [CASES[2], CASES[8], CASES[11], CASES[18], CASES[19]], ids=case_id)
def test_thread_counts(rng, threads, n_threads, case):
    """Images or chunks over the threads with per-thread dW partials, or threaded GEMMs; the
    result is the same whatever the split."""
    threads(n_threads)
    x, w, b, kw = make(rng, case)
    check_forward(x, w, b, kw)
    dy = randn(rng, *ref.conv2d(x, w, None, **kw).shape)
    check_backward(dy, x, w, kw)
    again = ops.conv2d_backward(dy, x, w, **kw)
    for first, second in zip(ops.conv2d_backward(dy, x, w, **kw), again, strict=True):
        np.testing.assert_array_equal(first, second)  # deterministic


def strided_views(rng, case):
    """x with stepped H and reversed W, w stepped over K and transposed in (R, S) (no single
    stride over C*R*S unless 1x1), b stepped."""
    n, c, h, w, k, r, s, kw = case
    x = randn(rng, n, c, 2 * h, w)[:, :, ::2, ::-1]
    wt = np.swapaxes(randn(rng, 2 * k, c // kw.get("groups", 1), s, r), 2, 3)[::2]
    b = randn(rng, 2 * k)[::2]
    return x, wt, b, kw


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[6], CASES[9], CASES[11]], ids=case_id)
def test_noncontiguous(isa, rng, case):
    x, w, b, kw = strided_views(rng, case)
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    check_forward(x, w, b, kw)
    y = ref.conv2d(x, w, None, **kw)
    dy = np.swapaxes(randn(rng, *y.shape[:2], y.shape[3], y.shape[2]), 2, 3)  # (P, Q) transposed
    check_backward(dy, x, w, kw)
    xf = np.asfortranarray(x)
    check_forward(xf, w, b, kw)
    check_backward(np.asfortranarray(dy), xf, np.asfortranarray(w), kw)


def test_one_by_one_channels_last(rng):
    """A 1x1 convolution on an NHWC-backed view: (H, W) still fold into one stride."""
    x = np.moveaxis(randn(rng, 2, 6, 5, 8), 3, 1)
    w = randn(rng, 4, 8, 1, 1)
    check_forward(x, w, None, {})
    check_backward(randn(rng, 2, 4, 6, 5), x, w, {})


def test_unbatched_and_empty_batch(rng):
    x, w, b = randn(rng, 3, 8, 7), randn(rng, 5, 3, 3, 3), randn(rng, 5)
    y = ops.conv2d(x, w, b, padding=1)
    assert y.shape == (5, 8, 7)
    assert rel_err(y, ref.conv2d(*f64(x, w, b), padding=1)) < TOL
    dy = randn(rng, 5, 8, 7)
    check_backward(dy, x, w, {"padding": 1})
    assert ops.conv2d_backward(dy, x, w, padding=1)[0].shape == (3, 8, 7)

    x0 = np.zeros((0, 3, 8, 7), np.float32)
    assert ops.conv2d(x0, w, b, stride=2).shape == (0, 5, 3, 3)
    dx, dw, db = ops.conv2d_backward(np.zeros((0, 5, 3, 3), np.float32), x0, w, stride=2)
    assert dx.shape == (0, 3, 8, 7)
    np.testing.assert_array_equal(dw, np.zeros_like(w))
    np.testing.assert_array_equal(db, np.zeros(5, np.float32))


def test_float64_is_exact_reference(rng):
    x, w, b, kw = make(rng, CASES[6])
    x, w, b = f64(x, w, b)
    np.testing.assert_array_equal(ops.conv2d(x, w, b, **kw), ref.conv2d(x, w, b, **kw))
    dy = ref.conv2d(x, w, b, **kw)
    got, want = ops.conv2d_backward(dy, x, w, **kw), ref.conv2d_backward(dy, x, w, **kw)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, r)
    assert ops.im2col(x, 3).dtype == np.float64


def test_nan_and_inf_propagate(rng):
    x, w = randn(rng, 1, 2, 6, 6), randn(rng, 3, 2, 3, 3)
    x[0, 1, 0, 0] = np.nan
    x[0, 0, 5, 5] = np.inf
    y = ops.conv2d(x, w)  # (1, 3, 4, 4): only the corner windows see them
    assert np.isnan(y[0, :, 0, 0]).all() and not np.isinf(y[0, :, 0, 0]).any()
    assert np.isinf(y[0, :, 3, 3]).all() | np.isnan(y[0, :, 3, 3]).all()
    assert np.isfinite(y[0, :, 1:3, :]).all() and np.isfinite(y[0, :, :, 1:3]).all()


def test_threads_at_once(rng):
    """Kernels release the GIL and share nothing between calls."""
    x, w, b, kw = make(rng, CASES[18])
    want = ops.conv2d(x, w, b, **kw)
    results = [None] * 4

    def run(i):
        results[i] = ops.conv2d(x, w, b, **kw)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    cg=st.integers(1, 4),
    groups=st.integers(1, 3),
    kg=st.integers(1, 3),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    r=st.integers(1, 4),
    s=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_random_geometry(n, cg, groups, kg, h, w, r, s, stride, padding, dilation, seed):
    """Any geometry the validation accepts computes what the reference does, forward and back."""
    rng = np.random.default_rng(seed)
    x, wt = randn(rng, n, cg * groups, h, w), randn(rng, kg * groups, cg, r, s)
    kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    try:
        y = ops.conv2d(x, wt, **kw)
    except ValueError as e:
        assert "larger than the padded input" in str(e)
        return
    assert rel_err(y, ref.conv2d(*f64(x, wt), **kw)) < TOL
    check_backward(randn(rng, *y.shape), x, wt, kw)


# ---- against PyTorch -----------------------------------------------------------------------------
# PyTorch warns that it copies the input for 'same' with an even kernel
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_against_torch(rng, case):
    torch = pytest.importorskip("torch")
    x, w, b, kw = make(rng, case)
    xt, wt, bt = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kw)
    assert rel_err(ops.conv2d(x, w, b, **kw), yt.detach().numpy()) < TOL
    dy = randn(rng, *yt.shape)
    yt.backward(torch.from_numpy(dy.astype(np.float64)))
    got = ops.conv2d_backward(dy, x, w, **kw)
    for g, t, tol in zip(got, (xt, wt, bt), (TOL, TOL_LONG, TOL_LONG), strict=True):
        assert rel_err(g, t.grad.numpy()) < tol


# ---- the reference's gradients against finite differences ---------------------------------------
def finite_difference(f, a, eps=1e-6):
    """d f / d a by central differences, f scalar, a float64 (modified in place and restored)."""
    grad = np.empty_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = f()
        flat[i] = keep - eps
        down = f()
        flat[i] = keep
        gflat[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "case",
    [
        (2, 2, 5, 4, 3, 3, 3, {"padding": 1}),
        (1, 4, 6, 7, 2, 2, 3, {"stride": 2, "dilation": (2, 1), "groups": 2}),
        (2, 3, 5, 5, 3, 2, 2, {"padding": "same", "groups": 3}),
        (1, 2, 4, 5, 3, 1, 1, {}),
    ],
    ids=case_id,
)
def test_reference_gradients(rng, case):
    x, w, b, kw = (a if isinstance(a, dict) else a.astype(np.float64) for a in make(rng, case))
    g = rng.standard_normal(ref.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.sum(ref.conv2d(x, w, b, **kw) * g))

    dx, dw, db = ref.conv2d_backward(g, x, w, **kw)
    for analytic, a in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, finite_difference(loss, a), rtol=1e-6, atol=1e-7)


def test_reference_col2im_is_adjoint_of_im2col(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    kw = {"stride": (2, 1), "padding": 1, "dilation": (1, 2)}
    c = rng.standard_normal(ref.im2col(x, 3, **kw).shape)

    def loss():
        return float(np.vdot(ref.im2col(x, 3, **kw), c))

    np.testing.assert_allclose(
        ref.col2im(c, x.shape, 3, **kw), finite_difference(loss, x), rtol=1e-6, atol=1e-7
    )


# ---- bad input ---------------------------------------------------------------------------------
def test_bad_inputs(rng):
    x, w, b = randn(rng, 2, 4, 8, 8), randn(rng, 6, 4, 3, 3), randn(rng, 6)
    dy = randn(rng, 2, 6, 6, 6)
    bad_values = [
        (lambda: ops.conv2d(x[0, 0], w), r"x must be .*got shape \(8, 8\)"),
        (lambda: ops.conv2d(x, w[0]), r"w must be 4-D"),
        (lambda: ops.conv2d(x, w[:, :3]), r"x \(2, 4, 8, 8\) has 4 channels but w \(6, 3, 3, 3\)"),
        (lambda: ops.conv2d(x, w[:, :1], groups=4), r"6 output channels, not divisible"),
        (lambda: ops.conv2d(x, w, groups=0), r"groups must be positive"),
        (lambda: ops.conv2d(x, w, stride=0), r"stride must be positive"),
        (lambda: ops.conv2d(x, w, stride=(1, -1)), r"stride must be positive"),
        (lambda: ops.conv2d(x, w, dilation=0), r"dilation must be positive"),
        (lambda: ops.conv2d(x, w, padding=-1), r"padding must be non-negative"),
        (lambda: ops.conv2d(x, w, padding="full"), r"padding must be 'same', 'valid'"),
        (lambda: ops.conv2d(x, w, stride=2, padding="same"), r"not supported for strided"),
        (lambda: ops.conv2d(x, w, dilation=4), r"kernel \(3, 3\) .* larger than the padded"),
        (lambda: ops.conv2d(x[:, :, :2], w), r"larger than the padded input \(2, 8\)"),
        (lambda: ops.conv2d(x, w, b[:5]), r"b must have shape \(6,\)"),
        (lambda: ops.conv2d_backward(dy[:, :, 1:], x, w), r"dy must have .* \(2, 6, 6, 6\)"),
        (lambda: ops.conv2d_backward(dy, x, w, need=(True,)), r"three flags"),
        (lambda: ops.im2col(x, 9), r"larger than the padded input \(8, 8\)"),
        (lambda: ops.im2col(x, 0), r"kernel_size must be positive"),
        (lambda: ops.im2col(x, 3, padding=-2), r"padding must be non-negative"),
        (lambda: ops.im2col(x[0, 0], 3), r"x must be"),
        (lambda: ops.col2im(randn(rng, 2, 36, 35), x.shape, 3), r"cols must have shape"),
        (lambda: ops.col2im(randn(rng, 2, 36, 36), (2, 4, 8), 3), r"x_shape must be the 4-D"),
    ]
    for call, match in bad_values:
        with pytest.raises(ValueError, match=match):
            call()
    bad_types = [
        lambda: ops.conv2d(x, w.astype(np.float64)),
        lambda: ops.conv2d(x, w, b.astype(np.float64)),
        lambda: ops.conv2d(x.astype(np.int32), w),
        lambda: ops.conv2d(x.tolist(), w),
        lambda: ops.conv2d(x, w, stride=1.5),
        lambda: ops.conv2d(x, w, groups=True),
        lambda: ops.conv2d_backward(dy.astype(np.float64), x, w),
        lambda: ops.im2col(x.astype(np.float16), 3),
    ]
    for call in bad_types:
        with pytest.raises(TypeError):
            call()


def test_extension_rechecks(rng):
    """ember._C refuses inconsistent arguments on its own, without crashing."""
    x, w = randn(rng, 2, 4, 8, 8), randn(rng, 6, 4, 3, 3)
    pads = (1, 1, 1, 1)
    with pytest.raises(ValueError, match="do not match"):
        ember._C.conv2d(x, w[:, :2], None, (1, 1), pads, (1, 1), 1)
    with pytest.raises(ValueError, match="larger than the padded input"):
        ember._C.conv2d(x, w, None, (1, 1), (0, 0, 0, 0), (5, 5), 1)
    with pytest.raises(ValueError, match="stride must be positive"):
        ember._C.conv2d_backward(x, x, w, (0, 1), pads, (1, 1), 1, (True, True, True))
    with pytest.raises(ValueError, match="dy must have"):
        ember._C.conv2d_backward(x, x, w, (1, 1), pads, (1, 1), 1, (True, True, True))
    with pytest.raises(TypeError):
        ember._C.conv2d(x.astype(np.float64), w, None, (1, 1), pads, (1, 1), 1)
    with pytest.raises(ValueError, match="cols must have shape"):
        ember._C.col2im(randn(rng, 2, 36, 5), (2, 4, 8, 8), (3, 3), (1, 1), (0, 0), (1, 1))
