"""The CUDA GEMM's own source (cuda/gemm: gemm.cu's planner and the SIMT, TF32 and strided
kernels), run on the CPU emulator of cuda/emu against NumPy in float64: every test here runs
without a GPU. The emulator runs the threads of a block in several orders (a missing
__syncthreads changes the result), lands cp.async copies only at the wait that covers them,
checks that mma operands were rounded to TF32, and puts every operand in a fenced buffer (an
access outside it faults). tests/test_cuda_gemm.py runs the GPU side (speed, the hardware's own
fragment layouts)."""

import numpy as np
import pytest

import cuda_emu as ce

pytestmark = pytest.mark.skipif(ce.compiler() is None, reason="no C++ compiler for the emulator")

SIMT_TILES = [(128, 128), (128, 64), (64, 64), (32, 32)]
TF32_TILES = [(128, 128), (64, 64)]


@pytest.fixture(scope="module")
def dll():
    return ce.build_kernels()


def tf32(x):
    """x rounded to TF32 as cvt.rna does (nearest, ties away from zero)."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    r = ((u + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32)
    return np.where(np.isfinite(x), r, x)


def operands(rng, batch, m, n, k, ta=False, tb=False):
    """A (batch, m, k) and B (batch, k, n), each stored transposed when asked."""
    a = rng.standard_normal((batch, k, m) if ta else (batch, m, k)).astype(np.float32)
    b = rng.standard_normal((batch, n, k) if tb else (batch, k, n)).astype(np.float32)
    return (a.transpose(0, 2, 1) if ta else a), (b.transpose(0, 2, 1) if tb else b)


def check(dll, a, b, c=None, *, alpha=1.0, beta=0.0, use_tf32=False, **kw):
    """Runs the emulated sgemm and compares C with float64 (on TF32-rounded inputs for TF32,
    whose products are exact in float32); returns the kernel name."""
    batch, m, n = a.shape[0], a.shape[1], b.shape[2]
    if c is None:
        c = np.full((batch, m, n), np.nan, np.float32)
    c0 = c.copy()
    name = ce.sgemm(dll, a, b, c, alpha=alpha, beta=beta, tf32=use_tf32, **kw)
    a64, b64 = (tf32(a), tf32(b)) if use_tf32 else (a, b)
    a64, b64 = a64.astype(np.float64), b64.astype(np.float64)
    want = alpha * (a64 @ b64)
    bound = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0.0:
        want += beta * c0
        bound += abs(beta * c0)
    assert np.all(np.abs(c - want) <= 1e-5 * bound + 1e-30), name
    return name


def sms_for(tiles, i, batch, m, n):
    """A multiprocessor count for which gemm.cu picks tiles[i] (the first whose grid covers
    the GPU)."""
    blocks = [-(-m // bm) * -(-n // bn) * batch for bm, bn in tiles]
    assert all(blocks[j] < blocks[i] for j in range(i)), "sizes do not separate the tiles"
    return blocks[i]


@pytest.mark.parametrize("tile", range(len(SIMT_TILES)))
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_simt_every_tile_and_layout(dll, rng, tile, ta, tb):
    m, n, k = 131, 130, 37  # edge tiles, k not a multiple of any BK
    a, b = operands(rng, 1, m, n, k, ta, tb)
    name = check(dll, a, b, multiprocessors=sms_for(SIMT_TILES, tile, 1, m, n))
    bm, bn = SIMT_TILES[tile]
    assert name.startswith(f"sgemm_simt_kernel {bm}x{bn}x")


@pytest.mark.parametrize("tile", range(len(TF32_TILES)))
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_tf32_every_tile_and_layout(dll, rng, tile, ta, tb):
    m, n, k = 131, 130, 37
    a, b = operands(rng, 1, m, n, k, ta, tb)
    name = check(dll, a, b, use_tf32=True, multiprocessors=sms_for(TF32_TILES, tile, 1, m, n))
    bm, bn = TF32_TILES[tile]
    assert name.startswith(f"sgemm_tf32_kernel {bm}x{bn}x")


@pytest.mark.parametrize("use_tf32", [False, True])
@pytest.mark.parametrize("shift", [0, 4, 8])
def test_vector_paths_and_misalignment(dll, rng, use_tf32, shift):
    """Sizes that are multiples of 4 take the 16-byte loads and stores when the operands are
    16-byte aligned; shifted off alignment, the scalar paths."""
    a, b = operands(rng, 2, 64, 72, 48)
    c = rng.standard_normal((2, 64, 72)).astype(np.float32)
    name = check(dll, a, b, c, alpha=0.5, beta=-1.5, use_tf32=use_tf32, shift=shift)
    assert ("scalar" in name) == (shift != 0)


@pytest.mark.parametrize("use_tf32", [False, True])
@pytest.mark.parametrize("order", ["reverse", "random", "warp_serial", "warp_serial_reverse"])
def test_schedules(dll, rng, use_tf32, order):
    """Every thread order gives the exact same C: the barriers order every shared access."""
    a, b = operands(rng, 1, 70, 66, 40, ta=True)
    first = np.full((1, 70, 66), np.nan, np.float32)
    ce.sgemm(dll, a, b, first, tf32=use_tf32, multiprocessors=1)
    for seed in range(2):
        c = np.full((1, 70, 66), np.nan, np.float32)
        kw = dict(multiprocessors=1, order=order, schedule_seed=seed)
        check(dll, a, b, c, use_tf32=use_tf32, **kw)
        np.testing.assert_array_equal(c, first)


@pytest.mark.parametrize("use_tf32", [False, True])
def test_strided_fallback(dll, rng, use_tf32):
    """Operands with no unit stride go to the strided kernel (exact fp32 even with tf32)."""
    a = rng.standard_normal((2, 2 * 45, 3 * 33)).astype(np.float32)[:, ::2, ::3]
    b = rng.standard_normal((2, 33, 70)).astype(np.float32)
    c = np.full((2, 180, 140), 7.0, np.float32)[:, ::4, ::2]  # C strided too
    rest = c.base.copy()
    name = check(dll, a, b, c, alpha=2.0)
    assert name.startswith("sgemm_strided_kernel")
    untouched = np.ones(rest.shape, bool)
    untouched[:, ::4, ::2] = False
    np.testing.assert_array_equal(c.base[untouched], rest[untouched])


@pytest.mark.parametrize("use_tf32", [False, True])
def test_batches_beyond_grid_and_broadcast_operand(dll, rng, use_tf32):
    """A batch stride of 0 (B shared by every batch) and several batches per block loop."""
    a, _ = operands(rng, 3, 20, 18, 11)
    b = np.broadcast_to(rng.standard_normal((1, 11, 18)).astype(np.float32), (3, 11, 18))
    check(dll, a, b, use_tf32=use_tf32)


@pytest.mark.parametrize("use_tf32", [False, True])
def test_beta_only_when_k_is_0_and_nan_c_ignored_when_beta_is_0(dll, rng, use_tf32):
    a, b = operands(rng, 1, 9, 7, 0)
    c = rng.standard_normal((1, 9, 7)).astype(np.float32)
    check(dll, a, b, c, beta=0.25, use_tf32=use_tf32)
    a, b = operands(rng, 1, 9, 7, 5)
    c = np.full((1, 9, 7), np.nan, np.float32)
    check(dll, a, b, c, beta=0.0, use_tf32=use_tf32)
    assert np.isfinite(c).all()
