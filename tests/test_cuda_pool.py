"""ember.ops pooling on CuPy arrays (ember's CUDA kernels) against ember.ref and the CPU kernels
on host copies, and against PyTorch when it is installed. The geometries are the CPU tests'."""

import numpy as np
import pytest

from conftest import randn, rel_err
from ember import ops, ref
from test_pool import ADAPTIVE_CASES, AVG_CASES, MAX_CASES, avg_args, case_id, max_args

pytestmark = pytest.mark.cuda

TOL = 1e-5


def f64(x):
    return x.get().astype(np.float64)


def layouts(cp, x):
    """x (N, C, H, W) as CuPy arrays: contiguous, channels-last (a permuted view), and a view with
    a negative column stride and gaps between rows."""
    n, c, h, w = x.shape
    big = cp.full((n, c, 2 * h, w + 3), cp.nan, dtype=cp.float32)
    gappy = big[:, :, ::2, w - 1 :: -1] if w else big[:, :, ::2, :0]
    gappy[...] = cp.asarray(x)
    return {
        "c": cp.asarray(x),
        "nhwc": cp.ascontiguousarray(cp.asarray(x).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        "gappy": gappy,
    }


@pytest.mark.parametrize("case", MAX_CASES, ids=case_id)
@pytest.mark.parametrize("layout", ["c", "nhwc", "gappy"])
def test_max_pool(cp, rng, case, layout):
    x = randn(rng, *case[0])
    args = max_args(case)
    y, idx = ops.max_pool2d(layouts(cp, x)[layout], **args)
    assert isinstance(y, cp.ndarray) and y.dtype == cp.float32 and idx.dtype == cp.int64
    want_y, want_idx = ops.max_pool2d(x, **args)  # the CPU kernels: the same values and indices
    np.testing.assert_array_equal(y.get(), want_y)
    np.testing.assert_array_equal(idx.get(), want_idx)
    dy = randn(rng, *y.shape)
    hw = x.shape[-1] * x.shape[-2]
    if int(idx.max()) >= hw:  # a dilated window that skips the whole plane
        with pytest.raises(ValueError, match="indices must lie in"):
            ops.max_pool2d_backward(cp.asarray(dy), idx, x.shape)
        return
    dx = ops.max_pool2d_backward(cp.asarray(dy), idx, x.shape)
    assert (
        rel_err(dx.get(), ref.max_pool2d_backward(dy.astype(np.float64), want_idx, x.shape)) < TOL
    )


@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
@pytest.mark.parametrize(
    ("count_include_pad", "divisor_override"), [(True, None), (False, None), (True, 3)]
)
@pytest.mark.parametrize("layout", ["c", "gappy"])
def test_avg_pool(cp, rng, case, count_include_pad, divisor_override, layout):
    x = randn(rng, *case[0])
    args = avg_args(case, count_include_pad, divisor_override)
    y = ops.avg_pool2d(layouts(cp, x)[layout], **args)
    assert rel_err(y.get(), ref.avg_pool2d(x.astype(np.float64), **args)) < TOL
    dy = randn(rng, *y.shape)
    dy_gpu = layouts(cp, dy)[layout]
    dx = ops.avg_pool2d_backward(dy_gpu, x.shape, **args)
    want = ref.avg_pool2d_backward(dy.astype(np.float64), x.shape, **args)
    assert rel_err(dx.get(), want) < TOL


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=case_id)
@pytest.mark.parametrize("layout", ["c", "nhwc"])
def test_adaptive_avg_pool(cp, rng, case, layout):
    shape, output_size = case
    x = randn(rng, *shape)
    y = ops.adaptive_avg_pool2d(layouts(cp, x)[layout], output_size)
    assert rel_err(y.get(), ref.adaptive_avg_pool2d(x.astype(np.float64), output_size)) < TOL
    dy = randn(rng, *y.shape)
    dx = ops.adaptive_avg_pool2d_backward(cp.asarray(dy), x.shape)
    want = ref.adaptive_avg_pool2d_backward(dy.astype(np.float64), x.shape)
    assert rel_err(dx.get(), want) < TOL


def test_overlapping_windows_sum_their_gradients(cp, rng):
    x = randn(rng, 2, 3, 20, 21)
    y, idx = ops.max_pool2d(cp.asarray(x), 3, 1, 1)
    assert np.unique(idx.get()).size < idx.size  # atomics add into shared inputs
    dy = randn(rng, *y.shape)
    dx = ops.max_pool2d_backward(cp.asarray(dy), idx, x.shape)
    assert (
        rel_err(dx.get(), ref.max_pool2d_backward(dy.astype(np.float64), idx.get(), x.shape)) < TOL
    )


def test_nan_inf_and_ties_follow_pytorch(cp, rng):
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
        y, idx = ops.max_pool2d(cp.asarray(x), kernel, stride, padding, dilation)
        want_y, want_idx = ref.max_pool2d(x.astype(np.float64), kernel, stride, padding, dilation)
        np.testing.assert_array_equal(y.get(), want_y)
        np.testing.assert_array_equal(idx.get(), want_idx)
        got = ops.avg_pool2d(cp.asarray(x), kernel, stride, padding).get()
        want = ops.avg_pool2d(x, kernel, stride, padding)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


def test_max_pool_nan_rules(cp):
    x = cp.asarray(np.array([[[[1.0, np.nan, 3.0, np.nan, 7.0, 7.0, -np.inf, -np.inf]]]], "f"))
    y, idx = ops.max_pool2d(x, (1, 4))
    np.testing.assert_array_equal(y.get(), [[[[np.nan, 7.0]]]])
    np.testing.assert_array_equal(idx.get(), [[[[3, 4]]]])
    _, idx = ops.max_pool2d(cp.full((1, 1, 3, 3), -cp.inf, dtype=cp.float32), 2, 2, padding=1)
    np.testing.assert_array_equal(idx.get(), [[[[0, 1], [3, 4]]]])


def test_unbatched_and_empty(cp, rng):
    x = randn(rng, 3, 9, 10)
    y, idx = ops.max_pool2d(cp.asarray(x), 2)
    want_y, want_idx = ops.max_pool2d(x, 2)
    np.testing.assert_array_equal(y.get(), want_y)
    assert ops.max_pool2d_backward(cp.asarray(want_y), idx, x.shape).shape == x.shape
    assert ops.avg_pool2d(cp.asarray(x), 3, 2, 1).shape == (3, 5, 5)
    assert ops.adaptive_avg_pool2d(cp.asarray(x), 4).shape == (3, 4, 4)
    empty = cp.zeros((0, 3, 9, 10), cp.float32)
    y, idx = ops.max_pool2d(empty, 2)
    assert y.shape == idx.shape == (0, 3, 4, 5)
    assert ops.max_pool2d_backward(y, idx, empty.shape).shape == empty.shape
    assert ops.avg_pool2d_backward(y, empty.shape, 2).shape == empty.shape
    assert ops.adaptive_avg_pool2d(cp.zeros((2, 0, 5, 5), cp.float32), 2).shape == (2, 0, 2, 2)


def test_big_gradient_uses_64_bit_indices(cp):
    # dx of 4 * 64 * 2048 * 2049 > 2^30 elements: the kernels' 64-bit index path (5.3 GB)
    free, _ = cp.cuda.runtime.memGetInfo()
    if free < 8 * 2**30:
        pytest.skip("needs 8 GiB of free GPU memory")
    dy = cp.random.standard_normal((4, 64, 1024, 1024), dtype=cp.float32)
    dx = ops.avg_pool2d_backward(dy, (4, 64, 2048, 2049), 2)
    v = float(dy[3, 63, -1, -1]) / 4
    np.testing.assert_array_equal(dx[3, 63, -2:, -3:].get(), [[v, v, 0], [v, v, 0]])
    w = float(dy[1, 5, 7, 9]) / 4
    np.testing.assert_array_equal(dx[1, 5, 14:16, 18:20].get(), [[w, w], [w, w]])


def test_errors_match_the_cpu_path(cp, rng):
    x = cp.asarray(randn(rng, 2, 3, 6, 6))
    with pytest.raises(ValueError, match="padding must be at most half of kernel_size"):
        ops.max_pool2d(x, 2, 2, 2)
    with pytest.raises(ValueError, match="output would be empty"):
        ops.avg_pool2d(x, 7)
    with pytest.raises(TypeError, match="float32"):
        ops.max_pool2d(x.astype(cp.float64), 2)
    y, idx = ops.max_pool2d(x, 2)
    with pytest.raises(TypeError, match="indices must be a CuPy integer array"):
        ops.max_pool2d_backward(y, idx.get(), x.shape)
    with pytest.raises(TypeError, match="indices must be a CuPy integer array"):
        ops.max_pool2d_backward(y, idx.astype(cp.float32), x.shape)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, H \* W\) = \[0, 16\)"):
        ops.max_pool2d_backward(y, idx, (2, 3, 4, 4))
    with pytest.raises(ValueError, match="indices must lie in"):
        ops.max_pool2d_backward(y, idx - 1, x.shape)
    # int32 indices are accepted and widened
    dx = ops.max_pool2d_backward(y, idx.astype(cp.int32), x.shape)
    assert dx.shape == x.shape
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 2, 2\)"):
        ops.avg_pool2d_backward(y, x.shape, 3)
    with pytest.raises(TypeError, match="indices must be a NumPy integer array"):
        ops.max_pool2d_backward(y.get(), idx, x.shape)


# ---- against PyTorch ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", MAX_CASES[:8], ids=case_id)
def test_max_pool_matches_torch(cp, rng, case):
    torch = pytest.importorskip("torch")
    x = randn(rng, *case[0])
    args = max_args(case)
    y, idx = ops.max_pool2d(cp.asarray(x), **args)
    ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), **args, return_indices=True)
    np.testing.assert_array_equal(y.get(), ty.numpy())
    np.testing.assert_array_equal(idx.get(), tidx.numpy())


@pytest.mark.parametrize("case", AVG_CASES, ids=case_id)
def test_avg_pool_matches_torch(cp, rng, case):
    torch = pytest.importorskip("torch")
    x = randn(rng, *case[0])
    args = avg_args(case, False, None)
    y = ops.avg_pool2d(cp.asarray(x), **args)
    want = torch.nn.functional.avg_pool2d(torch.from_numpy(x), **args).numpy()
    assert rel_err(y.get(), want) < TOL
