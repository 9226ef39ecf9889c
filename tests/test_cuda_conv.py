"""ember.ops convolution on CuPy arrays: the CUDA kernels (im2col + sgemm, the implicit GEMM,
col2im, the bias reduction) against ember.ref on host copies, every output poisoned with NaN
(EMBER_CUDA_POISON) so that an element left unwritten fails. Under compute-sanitizer, set
EMBER_CUPY_POOL=0: every array then gets its own cudaMalloc instead of a slice of CuPy's
pool, so that an out-of-bounds access is caught."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ember
from conftest import rel_err
from ember import ops, ref

pytestmark = pytest.mark.cuda

TOL = 2e-5  # fp32 sums of up to ~1200 products against the float64 reference, norm-wise

# (N, C, H, W, K, R, S, stride, padding, dilation, groups): sizes around the implicit GEMM's
# 128 x 128 x 8 tiles (K = 130, N*P*Q not a multiple of 128, C*R*S not a multiple of 8) and
# P*Q both a multiple of 4 (vector stores) and not
CASES = {
    "batch1-1x1-C1-K1": (1, 1, 5, 5, 1, 1, 1, 1, 0, 1, 1),
    "3x3-pad1": (2, 3, 7, 6, 5, 3, 3, 1, 1, 1, 1),
    "1x1": (3, 4, 9, 11, 6, 1, 1, 1, 0, 1, 1),
    "1x1-stride2": (2, 3, 6, 7, 4, 1, 1, 2, 0, 1, 1),
    "1x1-groups2": (2, 6, 5, 5, 4, 1, 1, 1, 0, 1, 2),
    "5x5-pad2": (2, 3, 12, 10, 4, 5, 5, 1, 2, 1, 1),
    "stride2": (2, 3, 11, 9, 4, 3, 3, 2, 1, 1, 1),
    "dilation2": (2, 3, 13, 12, 4, 3, 3, 1, 2, 2, 1),
    "groups2": (2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 2),
    "depthwise": (2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 8),
    "depthwise-x2-stride2": (2, 4, 9, 9, 8, 3, 3, 2, 1, 1, 4),
    "K130-3-images": (3, 3, 9, 9, 130, 3, 3, 1, 1, 1, 1),
    "rect-mixed": (3, 5, 10, 10, 7, 2, 3, (2, 1), (1, 0), (1, 2), 1),
    "image-1x1-padded": (2, 3, 1, 1, 4, 3, 3, 1, 1, 1, 1),
    "batch1-Kdim-20": (1, 5, 6, 6, 3, 2, 2, 1, 0, 1, 1),
}
# a few realistic layers: many tiles along every axis (deselect with -k "not large")
LARGE = {
    "large-64x30x30-K130": (8, 64, 30, 30, 130, 3, 3, 1, 1, 1, 1),
    "large-5x5-groups4": (4, 32, 28, 28, 64, 5, 5, 1, 2, 1, 4),
    "large-stride2-1x1": (16, 64, 28, 28, 128, 1, 1, 2, 0, 1, 1),
}
ALL = {**CASES, **LARGE}


@pytest.fixture(autouse=True)
def poisoned(monkeypatch):
    monkeypatch.setenv("EMBER_CUDA_POISON", "1")


@pytest.fixture(params=["auto", "im2col", "implicit"])
def algorithm(request, monkeypatch):
    monkeypatch.setenv("EMBER_CUDA_CONV_ALGO", request.param)
    return request.param


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def make(rng, case):
    """Host arrays x, w, b, dy and conv2d's keyword arguments for a case."""
    n, c, h, w_, k, r, s, stride, padding, dilation, groups = case
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    x = randn(rng, n, c, h, w_)
    w = randn(rng, k, c // groups, r, s)
    b = randn(rng, k)
    dy = randn(rng, n, *ref.conv2d(x[:1], w, None, **kwargs).shape[1:])
    return x, w, b, dy, kwargs


def check(got, want):
    assert got is not None and want is not None
    assert rel_err(got.get(), want) < TOL


# ---- conv2d ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", ALL.values(), ids=ALL.keys())
def test_conv2d_matches_reference(cp, rng, case, algorithm, bias):
    x, w, b, _, kwargs = make(rng, case)
    b = b if bias else None
    y = ops.conv2d(cp.asarray(x), cp.asarray(w), None if b is None else cp.asarray(b), **kwargs)
    assert isinstance(y, cp.ndarray) and y.dtype == cp.float32
    check(y, ref.conv2d(x.astype(np.float64), w, b, **kwargs))


@pytest.mark.parametrize("case", ALL.values(), ids=ALL.keys())
def test_conv2d_backward_matches_reference(cp, rng, case):
    x, w, _, dy, kwargs = make(rng, case)
    got = ops.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w), **kwargs)
    want = ref.conv2d_backward(dy.astype(np.float64), x, w, **kwargs)
    for g, r in zip(got, want, strict=True):
        check(g, r)


@pytest.mark.parametrize(
    "need", [(True, False, False), (False, True, False), (False, False, True), (True, True, False)]
)
def test_conv2d_backward_honours_need(cp, rng, need):
    x, w, _, dy, kwargs = make(rng, CASES["groups2"])
    got = ops.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w), **kwargs, need=need)
    want = ref.conv2d_backward(dy.astype(np.float64), x, w, **kwargs)
    for g, r, wanted in zip(got, want, need, strict=True):
        if wanted:
            check(g, r)
        else:
            assert g is None


@pytest.mark.parametrize("images", [1, 2, 3])
def test_conv2d_in_workspace_chunks(cp, rng, monkeypatch, algorithm, images):
    """A workspace for `images` images at a time: the GEMM paths loop over chunks (the last one
    short), and dw sums the chunks' products."""
    x, w, b, dy, kwargs = make(rng, (5, 3, 7, 8, 4, 3, 3, 1, 1, 1, 1))
    per_image = 3 * 9 * 7 * 8 + 4 * 7 * 8  # the backward's: columns and dy reordered
    monkeypatch.setattr(ember.ops.conv, "_WORKSPACE_FLOATS", images * per_image)
    xd, wd = cp.asarray(x), cp.asarray(w)
    check(ops.conv2d(xd, wd, cp.asarray(b), **kwargs), ref.conv2d(x, w, b, **kwargs))
    got = ops.conv2d_backward(cp.asarray(dy), xd, wd, **kwargs)
    for g, r in zip(got, ref.conv2d_backward(dy, x, w, **kwargs), strict=True):
        check(g, r)


def test_conv2d_unbatched(cp, rng, algorithm):
    x, w, b, dy, kwargs = make(rng, CASES["stride2"])
    y = ops.conv2d(cp.asarray(x[0]), cp.asarray(w), cp.asarray(b), **kwargs)
    check(y, ref.conv2d(x[0], w, b, **kwargs))
    got = ops.conv2d_backward(cp.asarray(dy[0]), cp.asarray(x[0]), cp.asarray(w), **kwargs)
    for g, r in zip(got, ref.conv2d_backward(dy[0], x[0], w, **kwargs), strict=True):
        check(g, r)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel", [(4, 4), (3, 2)])
def test_conv2d_padding_strings(cp, rng, algorithm, padding, kernel):
    """'same' with an even kernel pads one more at the bottom/right: asymmetric padding."""
    x, w = randn(rng, 2, 3, 9, 8), randn(rng, 5, 3, *kernel)
    y = ops.conv2d(cp.asarray(x), cp.asarray(w), padding=padding, dilation=(1, 2))
    check(y, ref.conv2d(x, w, padding=padding, dilation=(1, 2)))
    dy = randn(rng, *y.shape)
    got = ops.conv2d_backward(
        cp.asarray(dy), cp.asarray(x), cp.asarray(w), padding=padding, dilation=(1, 2)
    )
    want = ref.conv2d_backward(dy, x, w, padding=padding, dilation=(1, 2))
    for g, r in zip(got, want, strict=True):
        check(g, r)


def test_conv2d_non_contiguous_inputs(cp, rng, algorithm):
    """Views with gaps, reversed and permuted axes: x is read through its strides; w, b and dy
    are made contiguous (or read through a stride) as needed."""
    x_nhwc = cp.asarray(randn(rng, 3, 14, 9, 10))
    x = x_nhwc.transpose(0, 3, 1, 2)[:, ::2, ::-1, 1:]  # (3, 5, 9, 8), no unit stride
    w = cp.asarray(randn(rng, 6, 5, 3, 3)).transpose(0, 1, 3, 2)[::-1]
    b = cp.asarray(randn(rng, 12))[::2]
    kwargs = dict(stride=(1, 2), padding=1)
    y = ops.conv2d(x, w, b, **kwargs)
    check(y, ref.conv2d(x.get(), w.get(), b.get(), **kwargs))
    dy = cp.asarray(randn(rng, *y.shape[::-1])).transpose(3, 2, 1, 0)
    got = ops.conv2d_backward(dy, x, w, **kwargs)
    for g, r in zip(got, ref.conv2d_backward(dy.get(), x.get(), w.get(), **kwargs), strict=True):
        check(g, r)


def test_conv2d_pointwise_reads_strided_planes(cp, rng, algorithm):
    """A 1x1 convolution whose planes do not fold into rows (a column slice): the GEMM path must
    gather it rather than read x in place."""
    x = cp.asarray(randn(rng, 2, 4, 6, 9))[:, :, :, 1:8]
    w = cp.asarray(randn(rng, 3, 4, 1, 1))
    check(ops.conv2d(x, w), ref.conv2d(x.get(), w.get()))


def test_conv2d_empty_batch_and_no_channels(cp, rng, algorithm):
    x, w, b = randn(rng, 0, 3, 6, 6), randn(rng, 4, 3, 3, 3), randn(rng, 4)
    y = ops.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b))
    assert y.shape == (0, 4, 4, 4)
    dx, dw, db = ops.conv2d_backward(
        cp.asarray(randn(rng, 0, 4, 4, 4)), cp.asarray(x), cp.asarray(w)
    )
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw.get(), np.zeros(w.shape))
    np.testing.assert_array_equal(db.get(), np.zeros(4))
    # no input channels: y is the bias, dx and dw have no elements
    x0, w0 = randn(rng, 2, 0, 5, 5), randn(rng, 4, 0, 3, 3)
    y = ops.conv2d(cp.asarray(x0), cp.asarray(w0), cp.asarray(b))
    np.testing.assert_array_equal(y.get(), np.broadcast_to(b[:, None, None], (2, 4, 3, 3)))
    dy = randn(rng, 2, 4, 3, 3)
    dx, dw, db = ops.conv2d_backward(cp.asarray(dy), cp.asarray(x0), cp.asarray(w0))
    assert dx.shape == x0.shape and dw.shape == w0.shape
    check(db, dy.astype(np.float64).sum(axis=(0, 2, 3)))


def test_conv2d_no_output_channels(cp, rng, algorithm):
    x, w = randn(rng, 2, 3, 6, 6), randn(rng, 0, 3, 3, 3)
    assert ops.conv2d(cp.asarray(x), cp.asarray(w)).shape == (2, 0, 4, 4)
    dy = cp.asarray(randn(rng, 2, 0, 4, 4))
    dx, dw, db = ops.conv2d_backward(dy, cp.asarray(x), cp.asarray(w))
    np.testing.assert_array_equal(dx.get(), np.zeros(x.shape))
    assert dw.shape == w.shape and db.shape == (0,)


def test_conv2d_beyond_the_kernels_index_range(cp):
    """The CPU computes this (a 2x2 output); the CUDA kernels index H and W in 32 bits and refuse
    a kernel reach beyond 2**30 rather than overflow."""
    x, w = cp.ones((1, 1, 1, 1), dtype=cp.float32), cp.ones((1, 1, 1, 1), dtype=cp.float32)
    with pytest.raises(ValueError, match="2\\*\\*30"):
        ops.conv2d(x, w, stride=2**31 - 1, padding=2**30)


def test_conv2d_matches_torch(cp, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    torch.backends.cudnn.allow_tf32 = False
    x, w, b, dy, kwargs = make(rng, CASES["dilation2"])
    xt, wt, bt = (torch.tensor(a, device="cuda", requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kwargs)
    grads = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(dy, device="cuda"))
    y = ops.conv2d(cp.asarray(x), cp.asarray(w), cp.asarray(b), **kwargs)
    check(y, yt.detach().cpu().numpy())
    got = ops.conv2d_backward(cp.asarray(dy), cp.asarray(x), cp.asarray(w), **kwargs)
    for g, t in zip(got, grads, strict=True):
        check(g, t.cpu().numpy())


# ---- im2col / col2im ------------------------------------------------------------------------

WINDOWS = {
    "3x3": ((3, 3), 1, 0, 1),
    "5x5-pad2-stride2": ((5, 5), 2, 2, 1),
    "2x3-dilated": ((2, 3), (2, 1), (1, 0), (2, 1)),
    "1x1": ((1, 1), 1, 0, 1),
}


@pytest.mark.parametrize("window", WINDOWS.values(), ids=WINDOWS.keys())
@pytest.mark.parametrize("batched", [True, False])
def test_im2col_col2im_match_reference(cp, rng, window, batched):
    kernel, stride, padding, dilation = window
    x = randn(rng, 2, 3, 9, 10) if batched else randn(rng, 3, 9, 10)
    cols = ops.im2col(cp.asarray(x), kernel, stride, padding, dilation)
    want = ref.im2col(x, kernel, stride, padding, dilation)
    np.testing.assert_array_equal(cols.get(), want)  # a copy: exact
    dcols = randn(rng, *want.shape)
    back = ops.col2im(cp.asarray(dcols), x.shape, kernel, stride, padding, dilation)
    check(back, ref.col2im(dcols.astype(np.float64), x.shape, kernel, stride, padding, dilation))


def test_im2col_col2im_non_contiguous(cp, rng):
    x = cp.asarray(randn(rng, 2, 9, 3, 12)).transpose(0, 2, 1, 3)[:, :, ::-1, ::2]
    cols = ops.im2col(x, 3, padding=1)
    np.testing.assert_array_equal(cols.get(), ref.im2col(x.get(), 3, padding=1))
    dcols = cp.asarray(randn(rng, *cols.shape[::-1])).transpose(2, 1, 0)
    back = ops.col2im(dcols, x.shape, 3, padding=1)
    check(back, ref.col2im(dcols.get().astype(np.float64), x.shape, 3, padding=1))


# ---- errors ---------------------------------------------------------------------------------


def test_dtype_and_device_errors(cp, rng):
    x, w = randn(rng, 1, 2, 5, 5), randn(rng, 3, 2, 3, 3)
    with pytest.raises(TypeError, match="float32"):
        ops.conv2d(cp.asarray(x, dtype=cp.float64), cp.asarray(w, dtype=cp.float64))
    with pytest.raises(TypeError, match="CuPy"):
        ops.conv2d(cp.asarray(x), w)
    with pytest.raises(TypeError, match="CuPy"):
        ops.conv2d_backward(cp.asarray(randn(rng, 1, 3, 3, 3)), cp.asarray(x), w)


BAD_CALLS = {
    "channels": lambda a: ops.conv2d(a(1, 3, 5, 5), a(2, 2, 3, 3)),
    "groups": lambda a: ops.conv2d(a(1, 4, 5, 5), a(3, 2, 3, 3), groups=2),
    "kernel-too-large": lambda a: ops.conv2d(a(1, 1, 2, 2), a(1, 1, 3, 3)),
    "bias-shape": lambda a: ops.conv2d(a(1, 1, 5, 5), a(2, 1, 3, 3), a(3)),
    "negative-padding": lambda a: ops.conv2d(a(1, 1, 5, 5), a(2, 1, 3, 3), padding=-1),
    "dy-shape": lambda a: ops.conv2d_backward(a(1, 2, 2, 2), a(1, 1, 5, 5), a(2, 1, 3, 3)),
    "need": lambda a: ops.conv2d_backward(
        a(1, 2, 3, 3), a(1, 1, 5, 5), a(2, 1, 3, 3), need=(True,)
    ),
    "im2col-rank": lambda a: ops.im2col(a(5, 5), 3),
    "col2im-shape": lambda a: ops.col2im(a(1, 9, 8), (1, 1, 5, 5), 3),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_errors_are_those_of_the_cpu(cp, call):
    """The CuPy branches run the same checks: the same exception with the same message."""
    with pytest.raises(Exception) as on_cpu:
        call(lambda *shape: np.ones(shape, np.float32))
    with pytest.raises(on_cpu.type) as on_gpu:
        call(lambda *shape: cp.ones(shape, dtype=cp.float32))
    assert str(on_gpu.value) == str(on_cpu.value)


# ---- the example ----------------------------------------------------------------------------


def test_cnn_example_runs_on_the_gpu():
    pytest.importorskip("sklearn")
    example = Path(__file__).resolve().parent.parent / "examples" / "cnn_digits.py"
    out = subprocess.run(
        [sys.executable, str(example), "--smoke", "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith("test accuracy: ")
