"""ember.ops pooling (max, average, adaptive average; forward and backward) against ember.ref
on every ISA path, against torch.nn.functional when PyTorch is installed, and the references'
gradients against finite differences."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember
from conftest import randn, rel_err
from ember import ops, ref
from ember.ops.pool import _rows_ready

TOL = 1e-5

# (x shape, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    ((2, 3, 26, 26), 2, 2, 0, 1, False),  # the benchmark layers
    ((2, 3, 56, 56), 2, 2, 0, 1, False),
    ((2, 3, 56, 57), 3, 2, 1, 1, False),  # ResNet's stem pooling
    ((2, 3, 57, 56), 3, 2, 1, 1, True),
    ((1, 4, 33, 35), 3, 1, 1, 1, False),  # stride 1
    ((1, 2, 21, 40), (3, 2), (2, 1), (1, 1), (2, 3), True),
    ((1, 2, 17, 45), (2, 3), (1, 2), (0, 1), (3, 2), False),  # dilated stride 2
    ((1, 2, 19, 50), 4, 3, 2, 1, True),  # stride 3 (scalar loops), ceil rule drops a window
    ((1, 2, 5, 70), 1, 2, 0, 1, False),  # a 1-wide window at stride 2
    ((1, 1, 1, 1), 1, 1, 0, 1, False),
    ((3, 1, 7, 9), (7, 9), 1, 0, 1, False),  # global
    ((1, 2, 9, 9), 5, 2, 2, 2, True),
]

# (x shape, kernel_size, stride, padding, ceil_mode)
AVG_CASES = [
    ((2, 3, 26, 26), 2, 2, 0, False),
    ((2, 3, 56, 57), 3, 2, 1, False),
    ((2, 3, 57, 56), 3, 2, 1, True),
    ((1, 4, 33, 35), 3, 1, 1, False),
    ((1, 4, 6, 6), 3, 2, 1, True),  # the last window runs past the padded border
    ((1, 2, 19, 50), 4, 3, 2, True),  # stride 3 (scalar loops)
    ((1, 2, 20, 41), (2, 3), (1, 2), (1, 1), True),
    ((1, 2, 5, 70), 1, 2, 0, False),
    ((3, 1, 7, 9), (7, 9), 1, 0, False),
]

ADAPTIVE_CASES = [
    ((2, 3, 26, 26), 1),
    ((2, 3, 7, 7), (1, 1)),
    ((2, 3, 26, 26), (13, 13)),
    ((1, 4, 10, 37), (3, 5)),
    ((1, 2, 5, 9), (7, 11)),  # output larger than the input: windows overlap
    ((1, 2, 40, 70), (None, 4)),
    ((2, 2, 3, 64), (2, 1)),
]


def case_id(case):
    if isinstance(case, dict):
        return "-".join(f"{k}={v}" for k, v in case.items()).replace(" ", "")
    if isinstance(case, tuple):
        return "-".join(str(v).replace(" ", "") for v in case)
    return str(case)


def max_args(case):
    return dict(
        zip(("kernel_size", "stride", "padding", "dilation", "ceil_mode"), case[1:], strict=True)
    )


def avg_args(case, count_include_pad=True, divisor_override=None):
    args = dict(zip(("kernel_size", "stride", "padding", "ceil_mode"), case[1:], strict=True))
    return dict(args, count_include_pad=count_include_pad, divisor_override=divisor_override)


def check_max(x, dy=None, **args):
    """ops against ref: values and indices exactly, dx to TOL."""
    y, idx = ops.max_pool2d(x, **args)
    want_y, want_idx = ref.max_pool2d(x.astype(np.float64), **args)
    assert y.dtype == np.float32 and idx.dtype == np.int64
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    dy = randn(np.random.default_rng(1), *y.shape) if dy is None else dy
    if idx.max() >= x.shape[-1] * x.shape[-2]:  # a dilated window that skips the whole plane
        with pytest.raises(ValueError, match="indices must lie in"):
            ops.max_pool2d_backward(dy, idx, x.shape)
        return y, idx
    dx = ops.max_pool2d_backward(dy, idx, x.shape)
    assert rel_err(dx, ref.max_pool2d_backward(dy.astype(np.float64), idx, x.shape)) < TOL
    return y, idx


def check_avg(x, **args):
    y = ops.avg_pool2d(x, **args)
    assert rel_err(y, ref.avg_pool2d(x.astype(np.float64), **args)) < TOL
    dy = randn(np.random.default_rng(2), *y.shape)
    dx = ops.avg_pool2d_backward(dy, x.shape, **args)
    assert rel_err(dx, ref.avg_pool2d_backward(dy.astype(np.float64), x.shape, **args)) < TOL
    return y


def check_adaptive(x, output_size):
    y = ops.adaptive_avg_pool2d(x, output_size)
    assert rel_err(y, ref.adaptive_avg_pool2d(x.astype(np.float64), output_size)) < TOL
    dy = randn(np.random.default_rng(3), *y.shape)
    dx = ops.adaptive_avg_pool2d_backward(dy, x.shape)
    assert rel_err(dx, ref.adaptive_avg_pool2d_backward(dy.astype(np.float64), x.shape)) < TOL
    return y


# ---- against the reference on every ISA path ---------------------------------------------------


@pytest.mark.parametrize("case", MAX_CASES, ids=case_id)
def test_max_pool(isa, rng, case):
    check_max(randn(rng, *case[0]), **max_args(case))


@pytest.mark.parametrize("divisor_override", [None, 3, -2])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
def test_avg_pool(isa, rng, case, count_include_pad, divisor_override):
    check_avg(randn(rng, *case[0]), **avg_args(case, count_include_pad, divisor_override))


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=case_id)
def test_adaptive_avg_pool(isa, rng, case):
    check_adaptive(randn(rng, *case[0]), case[1])


# widths around the vector widths (8 and 16 lanes, 2 x for stride 2), for the common windows
WIDTHS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 18, 31, 32, 33, 34, 35, 47, 63, 64, 65, 66]
EDGE_WINDOWS = [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0), (3, 2, 0), (2, 2, 1)]


@pytest.mark.parametrize("kernel,stride,padding", EDGE_WINDOWS, ids=case_id)
def test_edge_widths(isa, rng, kernel, stride, padding):
    for w in WIDTHS:
        if w + 2 * padding < kernel:
            continue
        x = randn(rng, 2, 3, 5, w)
        for ceil_mode in (False, True):
            check_max(x, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
            check_avg(x, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
        check_adaptive(x, (2, max(1, w // kernel)))


def test_overlapping_windows_sum_their_gradients(isa, rng):
    # 3x3 stride 1: most inputs are the maximum of several windows
    x = randn(rng, 2, 3, 20, 21)
    _, idx = check_max(x, kernel_size=3, stride=1, padding=1)
    assert np.unique(idx).size < idx.size


def test_nan_inf_and_ties_follow_pytorch(isa, rng):
    # few distinct values: many ties; NaN and +-Inf sprinkled in
    x = rng.integers(-2, 3, size=(2, 3, 23, 37)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.03] = np.inf
    x[rng.random(x.shape) < 0.03] = -np.inf
    for kernel, stride, padding, dilation in [
        (2, 2, 0, 1),
        (3, 1, 1, 1),
        (3, 2, 1, 2),
        (4, 3, 2, 1),
    ]:
        args = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
        y, idx = ops.max_pool2d(x, **args)
        want_y, want_idx = ref.max_pool2d(x.astype(np.float64), **args)
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(idx, want_idx)
        with np.errstate(invalid="ignore"):
            want = ref.avg_pool2d(x.astype(np.float64), kernel, stride, padding)
        got = ops.avg_pool2d(x, kernel, stride, padding)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


def test_max_pool_nan_rules():
    x = np.array([[[[1.0, np.nan, 3.0, np.nan, 7.0, 7.0, -np.inf, -np.inf]]]], np.float32)
    y, idx = ops.max_pool2d(x, (1, 4))
    np.testing.assert_array_equal(y, [[[[np.nan, 7.0]]]])
    np.testing.assert_array_equal(idx, [[[[3, 4]]]])  # the last NaN; the first of tied maxima
    y, idx = ops.max_pool2d(np.full((1, 1, 3, 3), -np.inf, np.float32), 2, 2, padding=1)
    np.testing.assert_array_equal(idx, [[[[0, 1], [3, 4]]]])  # each window's first inside


# ---- against PyTorch ---------------------------------------------------------------------------


def torch_grad(fn, x, dy):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(x).requires_grad_()
    out = fn(t)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(torch.from_numpy(dy))
    return t.grad.numpy()


@pytest.mark.parametrize("case", MAX_CASES, ids=case_id)
def test_max_pool_matches_torch(rng, case):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = randn(rng, *case[0])
    args = max_args(case)
    y, idx = ops.max_pool2d(x, **args)
    ty, tidx = functional.max_pool2d(torch.from_numpy(x), **args, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())
    dy = randn(rng, *y.shape)
    want = torch_grad(lambda t: functional.max_pool2d(t, **args), x, dy)
    assert rel_err(ops.max_pool2d_backward(dy, idx, x.shape), want) < TOL


@pytest.mark.parametrize(
    "count_include_pad,divisor_override", [(True, None), (False, None), (True, 5)]
)
@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
def test_avg_pool_matches_torch(rng, case, count_include_pad, divisor_override):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = randn(rng, *case[0])
    args = avg_args(case, count_include_pad, divisor_override)
    y = ops.avg_pool2d(x, **args)
    assert rel_err(y, functional.avg_pool2d(torch.from_numpy(x), **args).numpy()) < TOL
    dy = randn(rng, *y.shape)
    want = torch_grad(lambda t: functional.avg_pool2d(t, **args), x, dy)
    assert rel_err(ops.avg_pool2d_backward(dy, x.shape, **args), want) < TOL


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=case_id)
def test_adaptive_avg_pool_matches_torch(rng, case):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = randn(rng, *case[0])
    y = ops.adaptive_avg_pool2d(x, case[1])
    assert rel_err(y, functional.adaptive_avg_pool2d(torch.from_numpy(x), case[1]).numpy()) < TOL
    dy = randn(rng, *y.shape)
    want = torch_grad(lambda t: functional.adaptive_avg_pool2d(t, case[1]), x, dy)
    assert rel_err(ops.adaptive_avg_pool2d_backward(dy, x.shape), want) < TOL


def test_nan_and_ties_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.integers(-2, 3, size=(2, 3, 19, 29)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    for args in [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, dilation=2)]:
        y, idx = ops.max_pool2d(x, **args)
        ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), **args, return_indices=True)
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())


def test_dilation_that_skips_the_plane():
    # every tap of the window lies in the padding: PyTorch gives -inf at index h0 * W + w0 = 6
    # (outside the plane); the backward refuses that index (PyTorch's writes out of bounds)
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 2, 2)
    y, idx = ops.max_pool2d(x, 2, stride=1, padding=1, dilation=3)
    np.testing.assert_array_equal(y, [[[[-np.inf]]]])
    np.testing.assert_array_equal(idx, [[[[6]]]])
    np.testing.assert_array_equal(ref.max_pool2d(x, 2, 1, 1, 3)[1], idx)
    with pytest.raises(ValueError, match="indices must lie in"):
        ops.max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), idx, x.shape)


# ---- layouts, batch shapes, dtypes -------------------------------------------------------------


def layouts(rng, shape):
    """One (N, C, H, W) image batch in layouts the kernels read in place and ones they copy."""
    n, c, h, w = shape
    base = randn(rng, *shape)
    big = randn(rng, n, 2 * c, h + 3, 2 * w + 1)
    big[:, ::2, 1:-2, 1::2] = base
    cropped = randn(rng, n, c, h + 2, w + 5)
    cropped[:, :, 1:-1, 2:-3] = base
    return {
        "c": (base, True),
        "cropped": (cropped[:, :, 1:-1, 2:-3], True),
        "channels_swapped": (
            np.ascontiguousarray(base.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3),
            True,
        ),
        "reversed": (base[:, ::-1, ::-1].copy()[:, ::-1, ::-1], True),
        "stepped": (big[:, ::2, 1:-2, 1::2], False),
        "fortran": (np.asfortranarray(base), False),
        "hw_transposed": (
            np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2),
            False,
        ),
        "big_endian": (base.astype(">f4"), False),
    }


LAYOUTS = list(layouts(np.random.default_rng(0), (1, 1, 1, 1)))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_strides(isa, rng, layout):
    x, in_place = layouts(rng, (2, 3, 17, 22))[layout]
    base = np.ascontiguousarray(x, dtype=np.float32)
    assert (_rows_ready(x) is x) == in_place
    y, idx = ops.max_pool2d(x, 3, 2, 1)
    want_y, want_idx = ops.max_pool2d(base, 3, 2, 1)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(ops.avg_pool2d(x, 2, 1, 1), ops.avg_pool2d(base, 2, 1, 1))
    np.testing.assert_array_equal(
        ops.adaptive_avg_pool2d(x, (3, 4)), ops.adaptive_avg_pool2d(base, (3, 4))
    )
    # the same layouts as gradients
    dy, _ = layouts(rng, idx.shape)[layout]
    dy_base = np.ascontiguousarray(dy, dtype=np.float32)
    np.testing.assert_array_equal(
        ops.max_pool2d_backward(dy, idx, x.shape), ops.max_pool2d_backward(dy_base, idx, x.shape)
    )
    np.testing.assert_array_equal(
        ops.max_pool2d_backward(dy_base, idx[:, ::-1].copy()[:, ::-1], x.shape),
        ops.max_pool2d_backward(dy_base, idx, x.shape),
    )
    np.testing.assert_array_equal(
        ops.avg_pool2d_backward(dy, x.shape, 3, 2, 1),
        ops.avg_pool2d_backward(dy_base, x.shape, 3, 2, 1),
    )
    np.testing.assert_array_equal(
        ops.adaptive_avg_pool2d_backward(dy, x.shape),
        ops.adaptive_avg_pool2d_backward(dy_base, x.shape),
    )


def test_misaligned_input_is_read_correctly(rng):
    x = randn(rng, 2, 3, 9, 10)
    raw = np.zeros(x.size * 4 + 1, np.uint8)[1:].view(np.float32).reshape(x.shape)
    raw[...] = x
    assert not raw.flags.aligned
    np.testing.assert_array_equal(ops.max_pool2d(raw, 2)[0], ops.max_pool2d(x, 2)[0])


def test_unbatched_images(isa, rng):
    x = randn(rng, 3, 15, 16)
    y, idx = ops.max_pool2d(x, 3, 2, 1)
    want_y, want_idx = ops.max_pool2d(x[None], 3, 2, 1)
    np.testing.assert_array_equal(y, want_y[0])
    np.testing.assert_array_equal(idx, want_idx[0])
    dy = randn(rng, *y.shape)
    np.testing.assert_array_equal(
        ops.max_pool2d_backward(dy, idx, x.shape),
        ops.max_pool2d_backward(dy[None], idx[None], (1,) + x.shape)[0],
    )
    avg = ops.avg_pool2d(x, 2, ceil_mode=True)
    np.testing.assert_array_equal(avg, ops.avg_pool2d(x[None], 2, ceil_mode=True)[0])
    dx = ops.avg_pool2d_backward(avg, x.shape, 2, ceil_mode=True)
    assert dx.shape == x.shape
    assert (
        rel_err(dx, ref.avg_pool2d_backward(avg.astype(np.float64), x.shape, 2, ceil_mode=True))
        < TOL
    )
    ad = ops.adaptive_avg_pool2d(x, 4)
    assert ad.shape == (3, 4, 4)
    assert ops.adaptive_avg_pool2d_backward(ad, x.shape).shape == x.shape


def test_empty_batch(isa):
    x = np.ones((0, 3, 10, 11), np.float32)
    y, idx = ops.max_pool2d(x, 2)
    assert y.shape == idx.shape == (0, 3, 5, 5)
    assert ops.max_pool2d_backward(y, idx, x.shape).shape == x.shape
    assert ops.avg_pool2d(x, 3, 2, 1).shape == (0, 3, 5, 6)
    assert (
        ops.avg_pool2d_backward(np.ones((0, 3, 5, 6), np.float32), x.shape, 3, 2, 1).shape
        == x.shape
    )
    assert ops.adaptive_avg_pool2d(x, 1).shape == (0, 3, 1, 1)
    assert (
        ops.adaptive_avg_pool2d_backward(np.ones((0, 3, 1, 1), np.float32), x.shape).shape
        == x.shape
    )
    # adaptive pooling also takes no channels and an empty output, as PyTorch
    assert ops.adaptive_avg_pool2d(np.ones((2, 0, 4, 4), np.float32), 2).shape == (2, 0, 2, 2)
    np.testing.assert_array_equal(
        ops.adaptive_avg_pool2d_backward(np.ones((2, 3, 0, 2), np.float32), (2, 3, 4, 4)), 0.0
    )


def test_float64_goes_through_the_reference(rng):
    x = randn(rng, 2, 3, 11, 12, dtype=np.float64)
    y, idx = ops.max_pool2d(x, 3, 2, 1)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(idx, ops.max_pool2d(x.astype(np.float32), 3, 2, 1)[1])
    dx = ops.max_pool2d_backward(y, idx, x.shape)
    assert dx.dtype == np.float64
    avg = ops.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    assert avg.dtype == np.float64
    np.testing.assert_allclose(avg, ref.avg_pool2d(x, 3, 2, 1, count_include_pad=False), rtol=1e-14)
    assert ops.avg_pool2d_backward(avg, x.shape, 3, 2, 1).dtype == np.float64
    ad = ops.adaptive_avg_pool2d(x, (None, 5))
    assert ad.dtype == np.float64 and ad.shape == (2, 3, 11, 5)
    assert ops.adaptive_avg_pool2d_backward(ad, x.shape).dtype == np.float64


def test_thread_count_and_concurrent_calls_do_not_change_results(rng):
    x = randn(rng, 8, 16, 40, 40)
    want = ops.max_pool2d(x, 3, 2, 1)
    want_avg = ops.avg_pool2d(x, 2)
    threads = ember.get_num_threads()
    try:
        ember.set_num_threads(1)
        np.testing.assert_array_equal(ops.max_pool2d(x, 3, 2, 1)[1], want[1])
        ember.set_num_threads(3)
        np.testing.assert_array_equal(ops.avg_pool2d(x, 2), want_avg)
    finally:
        ember.set_num_threads(threads)
    with ThreadPoolExecutor(4) as pool:
        for y, idx in pool.map(lambda _: ops.max_pool2d(x, 3, 2, 1), range(8)):
            np.testing.assert_array_equal(y, want[0])
            np.testing.assert_array_equal(idx, want[1])


# ---- the references' gradients against finite differences --------------------------------------


def numeric_grad(f, x, dy, eps=1e-3):
    """d sum(f(x) * dy) / dx by central differences, in float64 (exact up to rounding for the
    piecewise-linear pooling functions, so eps need not be tiny)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (np.sum(f(x + step) * dy) - np.sum(f(x - step) * dy)) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "args",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=(3, 2), stride=2, padding=1, dilation=(1, 2), ceil_mode=True),
    ],
    ids=case_id,
)
def test_max_pool_reference_gradient(rng, args):
    # distinct values (gaps >> eps) so that no window's argmax moves
    x = rng.permutation(2 * 2 * 5 * 7).reshape(2, 2, 5, 7) * 0.1
    y, idx = ref.max_pool2d(x, **args)
    dy = rng.standard_normal(y.shape)
    want = numeric_grad(lambda v: ref.max_pool2d(v, **args)[0], x, dy)
    np.testing.assert_allclose(ref.max_pool2d_backward(dy, idx, x.shape), want, atol=1e-8)


@pytest.mark.parametrize(
    "args",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), divisor_override=4),
    ],
    ids=case_id,
)
def test_avg_pool_reference_gradient(rng, args):
    x = rng.standard_normal((2, 2, 6, 7))
    y = ref.avg_pool2d(x, **args)
    dy = rng.standard_normal(y.shape)
    want = numeric_grad(lambda v: ref.avg_pool2d(v, **args), x, dy)
    np.testing.assert_allclose(ref.avg_pool2d_backward(dy, x.shape, **args), want, atol=1e-8)


@pytest.mark.parametrize("output_size", [1, (2, 3), (4, 9)], ids=case_id)
def test_adaptive_avg_pool_reference_gradient(rng, output_size):
    x = rng.standard_normal((2, 2, 6, 7))
    y = ref.adaptive_avg_pool2d(x, output_size)
    dy = rng.standard_normal(y.shape)
    want = numeric_grad(lambda v: ref.adaptive_avg_pool2d(v, output_size), x, dy)
    np.testing.assert_allclose(ref.adaptive_avg_pool2d_backward(dy, x.shape), want, atol=1e-8)


# ---- random geometry -----------------------------------------------------------------------


@st.composite
def geometries(draw):
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, (k[0] - 1) * d[0] + 1 - 2 * p[0]), 30))
    w = draw(st.integers(max(1, (k[1] - 1) * d[1] + 1 - 2 * p[1]), 45))
    return (h, w), k, s, p, d, draw(st.booleans())


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(geometry=geometries(), seed=st.integers(0, 2**32 - 1))
def test_property_random_geometry(geometry, seed):
    (h, w), k, s, p, d, ceil_mode = geometry
    x = randn(np.random.default_rng(seed), 2, 2, h, w)
    before = ember.cpu_info()["isa"]
    try:
        for isa in ember.cpu_info()["supported_isas"]:
            ember._C._select_isa(isa)
            check_max(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode)
            for cip in (True, False):
                check_avg(
                    x,
                    kernel_size=k,
                    stride=s,
                    padding=p,
                    ceil_mode=ceil_mode,
                    count_include_pad=cip,
                )
            check_adaptive(x, (1 + seed % h, 1 + seed % w))
    finally:
        ember._C._select_isa(before)


# ---- bad input ---------------------------------------------------------------------------------


def f32(*shape):
    return np.ones(shape, np.float32)


@pytest.mark.parametrize(
    "x,args,error,match",
    [
        (np.ones((1, 1, 4, 4), np.int64), (2,), TypeError, "x must be float32 or float64"),
        (np.ones((1, 1, 4, 4), np.float16), (2,), TypeError, "x must be float32"),
        ([[[[1.0]]]], (1,), TypeError, "x must be a NumPy array"),
        (
            f32(4, 4),
            (2,),
            ValueError,
            r"x must be \(N, C, H, W\) or \(C, H, W\), got shape \(4, 4\)",
        ),
        (f32(1, 1, 1, 4, 4), (2,), ValueError, "x must be"),
        (f32(1, 0, 4, 4), (2,), ValueError, "must not be empty"),
        (f32(1, 3, 4, 0), (2,), ValueError, "must not be empty"),
        (f32(0, 4, 4), (2,), ValueError, "must not be empty"),
        (f32(1, 1, 4, 4), (0,), ValueError, "kernel_size must be positive"),
        (f32(1, 1, 4, 4), ((2, -1),), ValueError, "kernel_size must be positive"),
        (f32(1, 1, 4, 4), (2, 0), ValueError, "stride must be positive"),
        (f32(1, 1, 4, 4), (2, 2, -1), ValueError, "padding must be non-negative"),
        (f32(1, 1, 4, 4), (2, 2, 2), ValueError, "padding must be at most half of kernel_size"),
        (f32(1, 1, 4, 4), (5,), ValueError, r"output would be empty.*\(4, 4\)"),
        (f32(1, 1, 4, 4), ((2, 2, 2),), TypeError, "kernel_size must be an int or a pair"),
        (f32(1, 1, 4, 4), (2.0,), TypeError, "kernel_size must be an int or a pair"),
        (f32(1, 1, 4, 4), (True,), TypeError, "kernel_size must be an int or a pair"),
        (f32(1, 1, 4, 4), ((2, 2.5),), TypeError, "kernel_size must be an int or a pair of ints"),
        (f32(1, 1, 4, 4), (2**31,), ValueError, r"kernel_size must be at most 2\*\*31 - 1"),
    ],
)
def test_bad_input_raises(x, args, error, match):
    with pytest.raises(error, match=match):
        ops.max_pool2d(x, *args)
    with pytest.raises(error, match=match):
        ops.avg_pool2d(x, *args)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(dilation=0), ValueError, "dilation must be positive"),
        (dict(dilation=(1, -2)), ValueError, "dilation must be positive"),
        (dict(kernel_size=3, dilation=2), ValueError, "output would be empty"),
    ],
)
def test_bad_dilation_raises(kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.max_pool2d(f32(1, 1, 4, 4), **{"kernel_size": 2, **kwargs})


def test_bad_avg_arguments_raise():
    with pytest.raises(ValueError, match="divisor_override must be nonzero"):
        ops.avg_pool2d(f32(1, 1, 4, 4), 2, divisor_override=0)
    with pytest.raises(TypeError, match="divisor_override must be an int"):
        ops.avg_pool2d(f32(1, 1, 4, 4), 2, divisor_override=1.5)
    with pytest.raises(ValueError, match=r"dy must have shape \(1, 1, 2, 2\), got \(1, 1, 3, 3\)"):
        ops.avg_pool2d_backward(f32(1, 1, 3, 3), (1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match="x_shape must be 4 sizes"):
        ops.avg_pool2d_backward(f32(1, 1, 2, 2), (1, 4, 4), 2)
    with pytest.raises(TypeError, match="x_shape must be a sequence of ints"):
        ops.avg_pool2d_backward(f32(1, 1, 2, 2), (1, 1, 4.0, 4), 2)
    with pytest.raises(TypeError, match="dy must be float32"):
        ops.avg_pool2d_backward(np.ones((1, 1, 2, 2), np.int32), (1, 1, 4, 4), 2)


def test_bad_max_backward_arguments_raise():
    y, idx = ops.max_pool2d(randn(np.random.default_rng(0), 2, 3, 6, 6), 2)
    with pytest.raises(TypeError, match="indices must be a NumPy integer array"):
        ops.max_pool2d_backward(y, idx.astype(np.float32), (2, 3, 6, 6))
    with pytest.raises(ValueError, match="indices must have dy's shape"):
        ops.max_pool2d_backward(y, idx[:, :, :2], (2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 4, 3, 3\)"):
        ops.max_pool2d_backward(y, idx, (2, 4, 6, 6))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, H \* W\) = \[0, 16\)"):
        ops.max_pool2d_backward(y, idx, (2, 3, 4, 4))
    with pytest.raises(ValueError, match="indices must lie in"):
        ops.max_pool2d_backward(y, idx - 1, (2, 3, 6, 6))
    with pytest.raises(ValueError, match="indices must lie in"):
        ops.max_pool2d_backward(y.astype(np.float64), idx + 100, (2, 3, 6, 6))
    with pytest.raises(ValueError, match="dy must be"):
        ops.max_pool2d_backward(y[0, 0], idx[0, 0], (6, 6))


def test_bad_adaptive_arguments_raise():
    with pytest.raises(ValueError, match="output_size must not be negative"):
        ops.adaptive_avg_pool2d(f32(1, 1, 4, 4), -1)
    with pytest.raises(TypeError, match="output_size must be an int or a pair"):
        ops.adaptive_avg_pool2d(f32(1, 1, 4, 4), (1, 2, 3))
    with pytest.raises(TypeError, match="output_size must be an int or a pair"):
        ops.adaptive_avg_pool2d(f32(1, 1, 4, 4), 1.5)
    with pytest.raises(ValueError, match="must not be empty"):
        ops.adaptive_avg_pool2d(f32(1, 1, 0, 4), 1)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 1, 3, 3\)"):
        ops.adaptive_avg_pool2d_backward(f32(1, 1, 3, 3), (2, 1, 4, 4))


def test_extension_checks_again():
    # the C++ layer refuses what ember.ops would have refused, without crashing
    c = ember._C
    with pytest.raises(TypeError, match="float32"):
        c.max_pool2d(np.ones((1, 1, 4, 4)), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="4-D"):
        c.max_pool2d(f32(1, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="column stride"):
        c.avg_pool2d(f32(1, 1, 4, 8)[..., ::2], (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="padding must be at most half"):
        c.max_pool2d(f32(1, 1, 4, 4), (2, 2), (2, 2), (0, 2), (1, 1), False)
    with pytest.raises(ValueError, match="output would be empty"):
        c.avg_pool2d(f32(1, 1, 4, 4), (5, 5), (1, 1), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="stride must be in"):
        c.max_pool2d(f32(1, 1, 4, 4), (2, 2), (0, 2), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="C, H, W > 0"):
        c.max_pool2d(f32(1, 0, 4, 4), (2, 2), (2, 2), (0, 0), (1, 1), False)
    idx = np.zeros((1, 1, 2, 2), np.int64)
    with pytest.raises(TypeError, match="C-contiguous int64"):
        c.max_pool2d_backward(f32(1, 1, 2, 2), idx.astype(np.int32), (1, 1, 4, 4))
    with pytest.raises(TypeError, match="C-contiguous int64"):
        c.max_pool2d_backward(
            f32(1, 1, 2, 2), np.zeros((1, 1, 2, 4), np.int64)[..., ::2], (1, 1, 4, 4)
        )
    with pytest.raises(ValueError, match="indices must have dy's shape"):
        c.max_pool2d_backward(f32(1, 1, 2, 2), np.zeros((1, 1, 2, 3), np.int64), (1, 1, 4, 4))
    with pytest.raises(ValueError, match="indices must lie in"):
        c.max_pool2d_backward(f32(1, 1, 2, 2), idx + 16, (1, 1, 4, 4))
    with pytest.raises(ValueError, match="dy must have shape"):
        c.avg_pool2d_backward(f32(1, 1, 3, 2), (1, 1, 4, 4), (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match="x_shape must not be negative"):
        c.adaptive_avg_pool2d_backward(f32(1, 1, 2, 2), (1, 1, -4, 4))
    with pytest.raises(ValueError, match="output_size must not be negative"):
        c.adaptive_avg_pool2d(f32(1, 1, 4, 4), (-1, 2))


def test_cpu_info_names_the_pool_kernels(isa):
    assert ember.cpu_info()["kernels"]["pool"] == f"f32_pool_{isa}"
