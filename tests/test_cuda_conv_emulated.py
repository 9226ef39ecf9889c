"""The CUDA convolution's own source (cuda/conv/conv.cu: the implicit-GEMM kernel, im2col and
col2im, and ember::cuda::sgemm of cuda/gemm for the im2col path), run on the CPU emulator of
cuda/emu against ember.ref: every test here runs without a GPU. Workspaces start as NaN and are
given for one image (chunked loops) or all of them; every array sits in a fenced buffer and the
blocks' threads run in several orders. tests/test_cuda_conv.py runs the GPU side."""

import numpy as np
import pytest

import cuda_emu as ce
from ember import ref

pytestmark = pytest.mark.skipif(ce.compiler() is None, reason="no C++ compiler for the emulator")

# (N, C, H, W), (K, R, S), stride, padding (top, bottom, left, right), dilation, groups
GEOMETRIES = [
    ((2, 3, 9, 11), (5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 4, 10, 9), (6, 3, 2), (2, 1), (1, 1, 0, 0), (2, 1), 2),
    ((3, 5, 7, 6), (4, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 1x1: columns are x itself
    ((1, 6, 12, 13), (6, 5, 3), (3, 2), (2, 2, 1, 1), (1, 2), 3),
    ((2, 2, 8, 7), (3, 3, 3), (1, 2), (0, 2, 1, 0), (1, 1), 1),  # asymmetric padding
    ((2, 3, 12, 14), (130, 2, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # several 128 x 128 tiles
]


@pytest.fixture(scope="module")
def dll():
    return ce.build_kernels()


def inputs(rng, x_shape, w_shape, groups, strided_x=False):
    n, c, h, w = x_shape
    if strided_x:  # no unit stride: every other column of a wider array
        x = rng.standard_normal((n, c, h, 2 * w)).astype(np.float32)[..., ::2]
    else:
        x = rng.standard_normal(x_shape).astype(np.float32)
    k, r, s = w_shape
    wt = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    return x, wt


def output_shape(x, wt, stride, pad, dil):
    n, _, h, w = x.shape
    k, _, r, s = wt.shape
    p = (h + pad[0] + pad[1] - dil[0] * (r - 1) - 1) // stride[0] + 1
    q = (w + pad[2] + pad[3] - dil[1] * (s - 1) - 1) // stride[1] + 1
    return n, k, p, q


def reference(x, wt, b, stride, pad, dil, groups):
    """ember.ref.conv2d on x zero-padded explicitly (so padding may be asymmetric)."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), pad[:2], pad[2:]))
    return ref.conv2d(xp, wt.astype(np.float64), b, stride, 0, dil, groups)


def close(got, want, tol):
    scale = max(1.0, float(np.abs(want).max()))
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() <= tol * scale


@pytest.mark.parametrize("geo", range(len(GEOMETRIES)))
@pytest.mark.parametrize("algo", ["im2col", "implicit"])
@pytest.mark.parametrize("bias,strided_x,images", [(True, False, 1), (False, True, 8)])
def test_forward(dll, rng, geo, algo, bias, strided_x, images):
    x_shape, w_shape, stride, pad, dil, groups = GEOMETRIES[geo]
    x, wt = inputs(rng, x_shape, w_shape, groups, strided_x)
    b = rng.standard_normal(2 * w_shape[0]).astype(np.float32)[::2] if bias else None
    y = np.full(output_shape(x, wt, stride, pad, dil), np.nan, np.float32)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    ran = ce.conv2d(dll, x, wt, b, y, algo=algo, workspace_images=images, **kw)
    assert ran == algo
    close(y, reference(x, wt, b, stride, pad, dil, groups), 1e-5)


@pytest.mark.parametrize("order", ["reverse", "random", "warp_serial"])
def test_implicit_gemm_schedules(dll, rng, order):
    """The implicit GEMM's shared tiles are ordered by its barriers: every thread order gives
    the same bits."""
    x_shape, w_shape, stride, pad, dil, groups = GEOMETRIES[0]
    x, wt = inputs(rng, x_shape, w_shape, groups)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups, algo="implicit")
    first = np.full(output_shape(x, wt, stride, pad, dil), np.nan, np.float32)
    ce.conv2d(dll, x, wt, None, first, **kw)
    y = np.full_like(first, np.nan)
    ce.conv2d(dll, x, wt, None, y, order=order, schedule_seed=3, **kw)
    np.testing.assert_array_equal(y, first)


def test_forward_tf32(dll, rng):
    x_shape, w_shape, stride, pad, dil, groups = GEOMETRIES[1]
    x, wt = inputs(rng, x_shape, w_shape, groups)
    y = np.full(output_shape(x, wt, stride, pad, dil), np.nan, np.float32)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    assert ce.conv2d(dll, x, wt, None, y, tf32=True, **kw) == "im2col"
    close(y, reference(x, wt, None, stride, pad, dil, groups), 3e-3)


@pytest.mark.parametrize("geo", range(len(GEOMETRIES)))
@pytest.mark.parametrize("images", [1, 8])
def test_backward(dll, rng, geo, images):
    x_shape, w_shape, stride, pad, dil, groups = GEOMETRIES[geo]
    if pad[0] != pad[1] or pad[2] != pad[3]:
        pytest.skip("ember.ref's backward takes symmetric padding")
    x, wt = inputs(rng, x_shape, w_shape, groups)
    dy = rng.standard_normal(output_shape(x, wt, stride, pad, dil)).astype(np.float32)
    dx = np.full(x.shape, np.nan, np.float32)
    dw = np.full(wt.shape, np.nan, np.float32)
    db = np.full(wt.shape[0], np.nan, np.float32)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    ce.conv2d_backward(dll, dy, x, wt, dx, dw, db, workspace_images=images, **kw)
    args = (stride, (pad[0], pad[2]), dil, groups)
    want = ref.conv2d_backward(*(a.astype(np.float64) for a in (dy, x, wt)), *args)
    for got, w in zip((dx, dw, db), want, strict=True):
        close(got, w, 1e-5)


def test_backward_only_dw(dll, rng):
    x_shape, w_shape, stride, pad, dil, groups = GEOMETRIES[1]
    x, wt = inputs(rng, x_shape, w_shape, groups)
    dy = rng.standard_normal(output_shape(x, wt, stride, pad, dil)).astype(np.float32)
    dw = np.full(wt.shape, np.nan, np.float32)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    ce.conv2d_backward(dll, dy, x, wt, None, dw, None, **kw)
    args = (stride, (pad[0], pad[2]), dil, groups)
    want = ref.conv2d_backward(*(a.astype(np.float64) for a in (dy, x, wt)), *args)
    close(dw, want[1], 1e-5)
