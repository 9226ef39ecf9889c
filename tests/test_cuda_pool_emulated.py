"""The CUDA pooling kernels' own source (cuda/pool/pool.cu), run on the CPU emulator of cuda/emu
against ember.ref: every test here runs without a GPU. Inputs are non-contiguous views where the
kernels take strides, outputs start as NaN, every array sits in a fenced buffer (an access
outside it faults) and the blocks run in several orders. tests/test_cuda_pool.py runs the GPU
side through ember.ops."""

import numpy as np
import pytest

import cuda_emu as ce
from ember import ref
from ember.ref.pool import adaptive_output_size, pooled_size

pytestmark = pytest.mark.skipif(ce.compiler() is None, reason="no C++ compiler for the emulator")


@pytest.fixture(scope="module")
def dll():
    return ce.build_kernels()


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def strided(rng, shape):
    """A float32 (N, C, H, W) view with no unit stride: every other column of a wider array,
    channels and batch swapped in memory."""
    n, c, h, w = shape
    base = rng.standard_normal((c, n, h, 2 * w)).astype(np.float32)
    return base.transpose(1, 0, 2, 3)[..., ::2]


def window(x_shape, P, Q, k=(1, 1), s=(1, 1), pad=(0, 0), d=(1, 1)):
    return (x_shape[2], x_shape[3], P, Q, *k, *s, *pad, *d)


POOLS = [  # kernel, stride, padding, dilation, ceil_mode
    (3, 2, 1, 1, False),
    ((2, 3), (1, 2), (1, 0), (2, 1), True),
    (4, 3, 2, 1, True),
    (1, 1, 0, 1, False),
]


@pytest.mark.parametrize("k,s,pad,d,ceil_mode", POOLS)
@pytest.mark.parametrize("order", ["forward", "random"])
def test_max_pool_forward_and_backward(dll, rng, k, s, pad, d, ceil_mode, order):
    k, s, pad, d = pair(k), pair(s), pair(pad), pair(d)
    x = strided(rng, (2, 3, 11, 13))
    x[0, 1, 2, 3] = np.nan  # NaN wins its windows
    P = pooled_size(11, k[0], s[0], pad[0], d[0], ceil_mode)
    Q = pooled_size(13, k[1], s[1], pad[1], d[1], ceil_mode)
    y = np.full((2, 3, P, Q), np.nan, np.float32)
    idx = np.full((2, 3, P, Q), -7, np.int64)
    g = window(x.shape, P, Q, k, s, pad, d)
    ce.pool(dll, "max", x, y, g, aux=idx, order=order)
    want, want_idx = ref.max_pool2d(x, k, s, pad, d, ceil_mode)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(idx, want_idx)

    dy = strided(rng, (2, 3, P, Q))
    dx = np.zeros((2, 3, 11, 13), np.float32)  # the binding's contract: dx zeroed
    bad = np.zeros(1, np.int32)
    ce.pool(dll, "max_backward", dy, dx, window(x.shape, P, Q), aux=idx, bad=bad, order=order)
    np.testing.assert_allclose(dx, ref.max_pool2d_backward(dy, idx, x.shape), rtol=1e-6, atol=1e-6)
    assert bad[0] == 0


def test_max_pool_backward_flags_out_of_range_indices(dll, rng):
    dy = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    idx = np.zeros((1, 2, 3, 3), np.int64)
    idx[0, 1, 2, 2] = 5 * 5  # one past the plane
    dx = np.zeros((1, 2, 5, 5), np.float32)
    bad = np.zeros(1, np.int32)
    ce.pool(dll, "max_backward", dy, dx, window(dx.shape, 3, 3), aux=idx, bad=bad)
    assert bad[0] == 1


@pytest.mark.parametrize("k,s,pad,_,ceil_mode", POOLS)
@pytest.mark.parametrize("count_include_pad,divisor", [(True, 0), (False, 0), (True, 5)])
def test_avg_pool_forward_and_backward(
    dll, rng, k, s, pad, _, ceil_mode, count_include_pad, divisor
):
    k, s, pad = pair(k), pair(s), pair(pad)
    x = strided(rng, (2, 3, 11, 13))
    P = pooled_size(11, k[0], s[0], pad[0], 1, ceil_mode)
    Q = pooled_size(13, k[1], s[1], pad[1], 1, ceil_mode)
    g = window(x.shape, P, Q, k, s, pad)
    kw = dict(count_include_pad=count_include_pad, divisor=divisor)
    y = np.full((2, 3, P, Q), np.nan, np.float32)
    ce.pool(dll, "avg", x, y, g, **kw)
    args = (k, s, pad, ceil_mode, count_include_pad, divisor or None)
    np.testing.assert_allclose(y, ref.avg_pool2d(x, *args), rtol=1e-6, atol=1e-6)

    dy = strided(rng, (2, 3, P, Q))
    dx = np.full((2, 3, 11, 13), np.nan, np.float32)
    ce.pool(dll, "avg_backward", dy, dx, g, **kw)
    want = ref.avg_pool2d_backward(dy, x.shape, *args)
    np.testing.assert_allclose(dx, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("out_size", [(4, 5), (1, 1), (11, 13), (7, 3)])
def test_adaptive_avg_pool_forward_and_backward(dll, rng, out_size):
    x = strided(rng, (2, 3, 11, 13))
    P, Q = adaptive_output_size(x.shape, out_size)
    g = window(x.shape, P, Q)
    y = np.full((2, 3, P, Q), np.nan, np.float32)
    ce.pool(dll, "adaptive", x, y, g)
    np.testing.assert_allclose(y, ref.adaptive_avg_pool2d(x, out_size), rtol=1e-6, atol=1e-6)
    dy = strided(rng, (2, 3, P, Q))
    dx = np.full((2, 3, 11, 13), np.nan, np.float32)
    ce.pool(dll, "adaptive_backward", dy, dx, g)
    want = ref.adaptive_avg_pool2d_backward(dy, x.shape)
    np.testing.assert_allclose(dx, want, rtol=1e-5, atol=1e-6)
