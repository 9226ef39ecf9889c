"""The CUDA attention kernels' own source (cuda/attention), run on the CPU emulator of cuda/emu,
against ember.ref: every test here runs without a GPU. The emulator checks what the hardware
would not (a __syncthreads or warp collective not every thread reaches, cp.async data read
before its wait, accesses outside shared memory or outside an array's buffer) and runs the
threads in several orders, so a missing barrier changes the result. What it cannot check is
the hardware's own behaviour (the PTX fragment layouts are written out twice, in ptx.cuh's
comments and in emu.h, from the PTX ISA) and speed: tests/test_cuda_attention.py runs the same
checks on a GPU.

The second half runs ember.ops.scaled_dot_product_attention(_backward) end to end on a stand-in
for CuPy (NumPy arrays that ember takes for CuPy arrays) whose ember._cuda calls go to the
emulator: the Python side's merging of leading dimensions, broadcasting, copies and edge cases."""

import sys

import numpy as np
import pytest

import cuda_emu as ce
import ember
from conftest import rel_err
from ember import ref

pytestmark = pytest.mark.skipif(ce.compiler() is None, reason="no C++ compiler for the emulator")


@pytest.fixture(scope="module")
def dll():
    return ce.build()


def f64(*xs):
    return [np.asarray(x, np.float64) for x in xs]


def qkv(rng, batch, L, S, E, Ev):
    return (
        rng.standard_normal(batch + (L, E)).astype(np.float32),
        rng.standard_normal(batch + (S, E)).astype(np.float32),
        rng.standard_normal(batch + (S, Ev)).astype(np.float32),
    )


def check_forward(dll, q, k, v, mask=None, *, causal=False, scale=None, tol=2e-6, **kw):
    """Runs the emulated float32 forward and compares it with ember.ref; returns (out, lse)."""
    out, lse = ce.forward(dll, q, k, v, mask, causal=causal, scale=scale, **kw)
    want, want_lse = ref.scaled_dot_product_attention(
        *f64(q, k, v), mask, is_causal=causal, scale=scale, return_lse=True
    )
    dead = ~np.isfinite(want_lse)  # rows whose keys are all masked out: NaN, lse -inf
    assert np.isnan(out[dead]).all() and (lse[dead] == -np.inf).all()
    assert rel_err(out[~dead], want[~dead]) < tol
    assert rel_err(lse[~dead], want_lse[~dead]) < tol
    return out, lse


def check_backward(dll, q, k, v, mask=None, *, causal=False, scale=None, tol=4e-6, **kw):
    """The emulated float32 backward (both dq modes) against ember.ref; NaN where ref has NaN
    (the gradients that rows with every key masked out touch)."""
    rng = np.random.default_rng(1)
    out, lse = ce.forward(dll, q, k, v, mask, causal=causal, scale=scale)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    wants = ref.scaled_dot_product_attention_backward(
        *f64(dout, q, k, v, out, lse), mask, is_causal=causal, scale=scale
    )
    results = []
    for deterministic in (False, True):
        dq, dk, dv, delta = ce.backward(
            dll, dout, q, k, v, out, lse, mask, causal=causal, scale=scale,
            deterministic=deterministic, **kw,
        )  # fmt: skip
        want_delta = (dout.astype(np.float64) * out).sum(-1)
        nan = np.isnan(want_delta)
        assert (np.isnan(delta) == nan).all() and rel_err(delta[~nan], want_delta[~nan]) < tol
        for got, want in zip((dq, dk, dv), wants, strict=True):
            nan = np.isnan(want)
            assert (np.isnan(got) == nan).all()
            assert rel_err(got[~nan], want[~nan]) < tol
        results.append((dq, dk, dv))
    return results


# ---- forward, float32 ---------------------------------------------------------------------------

# (batch, L, S, E, Ev): around the 64-row tiles, the head-dim tiles 32/64/96/128 (E = 80 and
# 100 padded), E != Ev, L != S both ways, rows that are not 16-byte multiples (E = 33)
SHAPES = [
    ((1,), 1, 1, 1, 1),
    ((2,), 63, 65, 32, 32),
    ((1,), 64, 64, 64, 64),
    ((1,), 130, 70, 80, 80),
    ((1,), 70, 130, 128, 128),
    ((3,), 17, 200, 33, 7),
    ((2, 1), 129, 129, 100, 128),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_forward_f32(dll, rng, shape, causal):
    check_forward(dll, *qkv(rng, *shape), causal=causal)


def test_forward_f32_custom_scale_and_large_scores(dll, rng):
    q, k, v = qkv(rng, (2,), 40, 90, 64, 64)
    # scores near 400: fp32 rounding of the scores alone is ~400 * 6e-8 relative in the weights
    check_forward(dll, 8 * q, 8 * k, v, scale=0.3, tol=3e-5)
    check_forward(dll, q, k, v, scale=-1.5, causal=True)


def masks(rng, batch, L, S):
    """Boolean and additive masks: random (with some rows fully masked out), broadcast from
    (L, S) and from per-key padding (strides 0), and transposed (non-contiguous)."""
    full = rng.random(batch + (L, S)) > 0.4
    full[..., 3, :] = False  # a row that sees no key
    additive = np.where(
        rng.random(batch + (L, S)) > 0.2, rng.standard_normal(batch + (L, S)), -np.inf
    )
    additive[..., 5, :] = -np.inf
    padding = np.broadcast_to(
        rng.random(batch[:1] + (1,) * len(batch[1:]) + (1, S)) > 0.3, batch + (L, S)
    )
    shared = np.broadcast_to(rng.random((L, S)) > 0.5, batch + (L, S))
    transposed = np.swapaxes(rng.random(batch + (S, L)) > 0.5, -1, -2)
    return {
        "bool": full,
        "float": additive.astype(np.float32),
        "padding": padding,
        "shared_float": np.broadcast_to(
            rng.standard_normal((L, S)).astype(np.float32), batch + (L, S)
        ),
        "shared_bool": shared,
        "transposed": transposed,
    }


@pytest.mark.parametrize(
    "kind", ["bool", "float", "padding", "shared_float", "shared_bool", "transposed"]
)
def test_forward_f32_masks(dll, rng, kind):
    q, k, v = qkv(rng, (2, 2), 70, 75, 40, 40)
    check_forward(dll, q, k, v, masks(rng, (2, 2), 70, 75)[kind])


def test_forward_f32_strided_operands(dll, rng):
    """q, k, v as MultiheadAttention makes them (permuted views of one projection), k shared
    across the batch (stride 0), and rows that are not 16-byte aligned (element loads)."""
    B, H, L, S, E = 2, 3, 50, 70, 16
    proj = rng.standard_normal((L, B, 3 * H * E)).astype(np.float32)
    q = proj[..., : H * E].reshape(L, B, H, E).transpose(1, 2, 0, 3)
    kv = rng.standard_normal((S, B, 2 * H * E)).astype(np.float32)
    k = np.broadcast_to(rng.standard_normal((1, H, S, E)).astype(np.float32), (B, H, S, E))
    v = kv[..., H * E :].reshape(S, B, H, E).transpose(1, 2, 0, 3)
    check_forward(dll, q, k, v, causal=True)
    wide = rng.standard_normal((B, H, L, E + 5)).astype(np.float32)
    check_forward(dll, wide[..., 1 : E + 1], k, v)  # 4-byte offset: element loads
    check_forward(dll, wide[..., :E], k, v)  # row stride 21: element loads


# the emulator's thread orders besides "forward": a missing barrier shows in one of them
ORDERS = ["reverse", "random", "warp_serial", "warp_serial_reverse"]


@pytest.mark.parametrize("order", ORDERS)
def test_forward_does_not_depend_on_thread_order(dll, rng, order):
    """A missing __syncthreads lets one thread read what another has not written yet: the
    emulator switches threads only at barriers and warp collectives, so running them in another
    order (warps far ahead of one another, say) would show."""
    q, k, v = qkv(rng, (2,), 100, 90, 64, 48)
    mask = masks(rng, (2,), 100, 90)["float"]
    first = ce.forward(dll, q, k, v, mask)
    again = ce.forward(dll, q, k, v, mask, order=order, schedule_seed=7)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    qb, kb, vb = (ce.to_bf16(x) for x in (q, k, v))
    first = ce.forward(dll, qb, kb, vb, causal=True)
    again = ce.forward(dll, qb, kb, vb, causal=True, order=order, schedule_seed=7)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_forward_nan_and_inf_propagate(dll, rng):
    q, k, v = qkv(rng, (1,), 20, 30, 16, 16)
    q[0, 4, 2] = np.nan
    v[0, 7, 1] = np.inf
    out, lse = ce.forward(dll, q, k, v)
    want, want_lse = ref.scaled_dot_product_attention(*f64(q, k, v), return_lse=True)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_array_equal(np.isnan(lse), np.isnan(want_lse))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_forward_dropout_matches_the_cpu_kernel(dll, rng, p):
    """A seed drawn from ember's generator drops the same weights as the CPU kernel and
    ember.ref (which draw theirs from the same generator)."""
    q, k, v = qkv(rng, (2, 3), 45, 70, 32, 32)
    ember.manual_seed(5)
    cpu = ember.ops.scaled_dot_product_attention(q, k, v, dropout_p=p)
    ember.manual_seed(5)
    want = ref.scaled_dot_product_attention(*f64(q, k, v), dropout_p=p)
    ember.manual_seed(5)
    seed = ember.ref.attention.dropout_seed()
    out, _ = ce.forward(dll, q, k, v, dropout_p=p, seed=seed)
    assert rel_err(out, want) < 2e-6
    assert rel_err(out, cpu) < 2e-6
    qb, kb, vb = (ce.to_bf16(x) for x in (q, k, v))
    out, _ = ce.forward(dll, qb, kb, vb, dropout_p=p, seed=seed)
    ember.manual_seed(5)
    want = ref.scaled_dot_product_attention(
        *f64(*(ce.from_bf16(x) for x in (qb, kb, vb))), dropout_p=p
    )
    assert rel_err(ce.from_bf16(out), want) < 1e-2


# ---- forward, bf16 ------------------------------------------------------------------------------


def naive_bf16(q, k, v, mask=None, causal=False):
    """The same computation done plainly at the same precision: fp32 scores and softmax from
    bf16 inputs, weights rounded to bf16 for P V, the output rounded to bf16."""
    qf, kf, vf = (ce.from_bf16(x) for x in (q, k, v))
    s = (qf @ np.swapaxes(kf, -1, -2)) / np.float32(np.sqrt(q.shape[-1]))
    L, S = s.shape[-2:]
    if causal:
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    elif mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    with np.errstate(invalid="ignore"):
        m = s.max(-1, keepdims=True)
        e = np.exp(s - m)
        p = ce.from_bf16(ce.to_bf16(e))
        out = (p @ vf) / e.sum(-1, keepdims=True)
    return ce.from_bf16(ce.to_bf16(out.astype(np.float32)))


def check_forward_bf16(dll, q, k, v, mask=None, *, causal=False):
    """bf16 inputs against ember.ref in float64: the error is at most 2x (plus a little) that
    of naive_bf16, the same computation done plainly in the same precision."""
    out, lse = ce.forward(dll, q, k, v, mask, causal=causal)
    qf, kf, vf = (ce.from_bf16(x) for x in (q, k, v))
    want, want_lse = ref.scaled_dot_product_attention(
        *f64(qf, kf, vf), mask, is_causal=causal, return_lse=True
    )
    dead = ~np.isfinite(want_lse)
    got = ce.from_bf16(out)
    assert np.isnan(got[dead]).all() and (lse[dead] == -np.inf).all()
    naive = naive_bf16(q, k, v, mask, causal)
    limit = 2 * rel_err(naive[~dead], want[~dead]) + 1e-4
    assert rel_err(got[~dead], want[~dead]) < limit
    assert rel_err(lse[~dead], want_lse[~dead]) < 1e-5  # lse stays in fp32
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_forward_bf16(dll, rng, shape, causal):
    q, k, v = (ce.to_bf16(x) for x in qkv(rng, *shape))
    check_forward_bf16(dll, q, k, v, causal=causal)


@pytest.mark.parametrize("kind", ["bool", "float", "padding", "transposed"])
def test_forward_bf16_masks(dll, rng, kind):
    q, k, v = (ce.to_bf16(x) for x in qkv(rng, (2, 2), 70, 75, 40, 40))
    check_forward_bf16(dll, q, k, v, masks(rng, (2, 2), 70, 75)[kind])


def test_forward_bf16_strided_operands(dll, rng):
    B, H, L, S, E = 2, 2, 40, 60, 32
    proj = ce.to_bf16(rng.standard_normal((L, B, 3 * H * E)))
    q = proj[..., : H * E].reshape(L, B, H, E).transpose(1, 2, 0, 3)
    k = np.broadcast_to(ce.to_bf16(rng.standard_normal((1, H, S, E))), (B, H, S, E))
    v = ce.to_bf16(rng.standard_normal((B, H, S, E + 9)))[..., 1 : E + 1]  # element loads
    check_forward_bf16(dll, q, k, v, causal=True)


# ---- backward, float32 --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_backward_f32(dll, rng, shape, causal):
    check_backward(dll, *qkv(rng, *shape), causal=causal)


@pytest.mark.parametrize("kind", ["bool", "float", "padding", "transposed"])
def test_backward_f32_masks(dll, rng, kind):
    q, k, v = qkv(rng, (2, 2), 70, 75, 40, 36)
    check_backward(dll, q, k, v, masks(rng, (2, 2), 70, 75)[kind])


def test_backward_f32_strided_operands_and_scale(dll, rng):
    B, H, L, S, E = 2, 3, 50, 70, 16
    proj = rng.standard_normal((L, B, 3 * H * E)).astype(np.float32)
    q = proj[..., : H * E].reshape(L, B, H, E).transpose(1, 2, 0, 3)
    k = np.broadcast_to(rng.standard_normal((1, H, S, E)).astype(np.float32), (B, H, S, E))
    v = rng.standard_normal((B, H, S, E + 3)).astype(np.float32)[..., 1 : E + 1]
    check_backward(dll, q, k, v, causal=True, scale=0.7)


@pytest.mark.parametrize("order", ORDERS)
def test_backward_deterministic_does_not_depend_on_block_order(dll, rng, order):
    """With deterministic=True no result depends on the order blocks or threads run in (the
    atomic dq may differ in its last bits: additions in another order)."""
    q, k, v = qkv(rng, (2,), 130, 100, 48, 48)
    out, lse = ce.forward(dll, q, k, v)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    first = ce.backward(dll, dout, q, k, v, out, lse, deterministic=True)
    again = ce.backward(dll, dout, q, k, v, out, lse, deterministic=True, order=order)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    atomic = ce.backward(dll, dout, q, k, v, out, lse, order=order)
    np.testing.assert_array_equal(atomic[1], first[1])  # dk, dv never use atomics
    np.testing.assert_array_equal(atomic[2], first[2])
    assert rel_err(atomic[0], first[0]) < 1e-6


# ---- backward, bf16 -----------------------------------------------------------------------------


def naive_bf16_backward(dout, q, k, v, out, lse, mask, causal):
    """The backward done plainly at the same precision: fp32 products of the bf16 inputs, the
    weights and dS rounded to bf16 for the products that use them, dk and dv rounded to bf16
    (dq stays fp32, as the kernels' accumulator)."""
    g, qf, kf, vf, of = (ce.from_bf16(x) for x in (dout, q, k, v, out))
    scale = np.float32(1 / np.sqrt(q.shape[-1]))
    s = (qf @ np.swapaxes(kf, -1, -2)) * scale
    L, S = s.shape[-2:]
    if causal:
        s = np.where(np.tril(np.ones((L, S), bool)), s, -np.inf)
    elif mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
    with np.errstate(invalid="ignore"):
        p = np.exp(s - lse[..., None])
        ds = p * (g @ np.swapaxes(vf, -1, -2) - (g * of).sum(-1, keepdims=True)) * scale
    pb, dsb = (ce.from_bf16(ce.to_bf16(x)) for x in (p, ds))
    dv = ce.from_bf16(ce.to_bf16(np.swapaxes(pb, -1, -2) @ g))
    dk = ce.from_bf16(ce.to_bf16(np.swapaxes(dsb, -1, -2) @ qf))
    return dsb @ kf, dk, dv


def check_backward_bf16(dll, q, k, v, mask=None, *, causal=False):
    """bf16 gradients against ember.ref in float64 (on the same bf16 inputs and the kernels'
    own out and lse): each error at most 2x (plus a little) that of naive_bf16_backward."""
    rng = np.random.default_rng(2)
    out, lse = ce.forward(dll, q, k, v, mask, causal=causal)
    dout = ce.to_bf16(rng.standard_normal(out.shape))
    dq, dk, dv, _ = ce.backward(dll, dout, q, k, v, out, lse, mask, causal=causal)
    assert dq.dtype == np.float32 and dk.dtype == dv.dtype == np.uint16
    inputs = [ce.from_bf16(x) for x in (dout, q, k, v, out)]
    wants = ref.scaled_dot_product_attention_backward(*f64(*inputs, lse), mask, is_causal=causal)
    naive = naive_bf16_backward(dout, q, k, v, out, lse, mask, causal)
    for got, want, plain in zip(
        (dq, ce.from_bf16(dk), ce.from_bf16(dv)), wants, naive, strict=True
    ):
        nan = np.isnan(want)
        assert (np.isnan(got) == nan).all()
        limit = 2 * rel_err(plain[~nan], want[~nan]) + 1e-4
        assert rel_err(got[~nan], want[~nan]) < limit


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_backward_bf16(dll, rng, shape, causal):
    q, k, v = (ce.to_bf16(x) for x in qkv(rng, *shape))
    check_backward_bf16(dll, q, k, v, causal=causal)


@pytest.mark.parametrize("kind", ["bool", "float", "padding", "transposed"])
def test_backward_bf16_masks(dll, rng, kind):
    q, k, v = (ce.to_bf16(x) for x in qkv(rng, (2, 2), 70, 75, 40, 36))
    check_backward_bf16(dll, q, k, v, masks(rng, (2, 2), 70, 75)[kind])


def test_backward_bf16_strided_operands(dll, rng):
    B, H, L, S, E = 2, 2, 50, 70, 32
    proj = ce.to_bf16(rng.standard_normal((L, B, 3 * H * E)))
    q = proj[..., : H * E].reshape(L, B, H, E).transpose(1, 2, 0, 3)
    k = np.broadcast_to(ce.to_bf16(rng.standard_normal((1, H, S, E))), (B, H, S, E))
    v = ce.to_bf16(rng.standard_normal((B, H, S, E + 9)))[..., 1 : E + 1]  # element loads
    check_backward_bf16(dll, q, k, v, causal=True)


@pytest.mark.parametrize("order", ORDERS)
def test_backward_bf16_thread_order(dll, rng, order):
    """dk and dv do not depend on the order threads run in (dq's atomics may round differently)."""
    q, k, v = (ce.to_bf16(x) for x in qkv(rng, (2,), 100, 90, 64, 48))
    out, lse = ce.forward(dll, q, k, v)
    dout = ce.to_bf16(rng.standard_normal(out.shape))
    first = ce.backward(dll, dout, q, k, v, out, lse)
    again = ce.backward(dll, dout, q, k, v, out, lse, order=order, schedule_seed=3)
    np.testing.assert_array_equal(again[1], first[1])
    np.testing.assert_array_equal(again[2], first[2])
    assert rel_err(again[0], first[0]) < 1e-6


# ---- the checks of args.cpp ----------------------------------------------------------------------


def test_argument_checks(dll, rng):
    q, k, v = qkv(rng, (2,), 8, 9, 16, 16)
    with pytest.raises(ValueError, match=r"k must have shape \(2, 9, 16\)"):
        ce.forward(dll, q, k[..., :8], v)
    with pytest.raises(ValueError, match="head dimensions must be 1 .. 128"):
        ce.forward(dll, *qkv(rng, (1,), 4, 4, 129, 8))
    with pytest.raises(ValueError, match="q must have 2 to 6 dimensions"):
        ce.forward(dll, *qkv(rng, (1,) * 5, 4, 4, 8, 8))
    with pytest.raises(ValueError, match="last dimension must be contiguous"):
        ce.forward(dll, np.swapaxes(np.ascontiguousarray(np.swapaxes(q, -1, -2)), -1, -2), k, v)
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(2, 8, 9\)"):
        ce.forward(dll, q, k, v, np.ones((2, 9, 8), bool))
    with pytest.raises(ValueError, match="cannot be combined"):
        ce.forward(dll, q, k, v, np.ones((2, 8, 9), bool), causal=True)
    with pytest.raises(ValueError, match="out must not overlap q"):
        ce.forward(dll, q, k, v, out=q)
    with pytest.raises(ValueError, match="dropout_p must be in"):
        ce.forward(dll, q, k, v, dropout_p=1.0)
    L = S = 8
    q, k, v = qkv(rng, (2,), L, S, 16, 16)
    out, lse = ce.forward(dll, q, k, v)
    dq = np.zeros(q.shape, np.float32)
    with pytest.raises(ValueError, match="dq must not overlap dk"):
        ce.backward(dll, out, q, k, v, out, lse, dq=dq, dk=dq)
    with pytest.raises(ValueError, match="dv must not overlap dout"):
        ce.backward(dll, out, q, k, v, out, lse, dv=out)


# ---- ember.ops end to end on the emulator -------------------------------------------------------


@pytest.fixture
def gpu(dll, monkeypatch):
    """ember.ops with a stand-in for CuPy whose ember._cuda calls run on the emulator."""
    monkeypatch.setitem(sys.modules, "cupy", ce.fake_cupy())
    module = ce.FakeCudaModule(dll)
    monkeypatch.setattr(ember._runtime, "_cuda", module)
    return module


def compare(got, want, tol=2e-6):
    """got (a FakeCupyArray) equals want (the CPU op's NumPy result) up to tol, NaN alike."""
    assert isinstance(got, ce.FakeCupyArray)
    got = got.get()
    assert got.shape == want.shape and got.dtype == want.dtype
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    if finite.any():
        assert rel_err(got[finite], want[finite]) < tol


def both(fn, *arrays, **kwargs):
    """fn on the NumPy arrays (the CPU op) and on their CuPy stand-ins."""
    cpu = fn(*arrays, **kwargs)
    gpu = fn(*(None if a is None else ce.fake(a) for a in arrays), **kwargs)
    return cpu, gpu


def test_ops_broadcast_batch_and_mask(gpu, rng):
    """Leading dimensions that broadcast (k shared across the batch, v across heads) and a
    key-padding mask broadcast over heads and queries: the CUDA path gives the CPU op's results,
    gradients summed back to each input's shape."""
    q = rng.standard_normal((2, 3, 37, 24)).astype(np.float32)
    k = rng.standard_normal((1, 3, 45, 24)).astype(np.float32)
    v = rng.standard_normal((2, 1, 45, 27)).astype(np.float32)
    mask = rng.random((2, 1, 1, 45)) > 0.3
    (out, lse), (g_out, g_lse) = both(
        ember.ops.scaled_dot_product_attention, q, k, v, mask, return_lse=True
    )
    compare(g_out, out)
    compare(g_lse, lse)
    assert gpu.calls[-1] == ("forward", (2, 3, 37, 24), (2, 3, 45, 24), (2, 3, 45, 27))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    for deterministic in (False, True):
        cpu, dev = both(
            ember.ops.scaled_dot_product_attention_backward, dout, q, k, v, out, lse, mask,
            deterministic=deterministic,
        )  # fmt: skip
        assert gpu.calls[-1][-1] == deterministic
        for got, want in zip(dev, cpu, strict=True):
            compare(got, want, 4e-6)


def test_ops_causal_scale_float_mask(gpu, rng):
    q, k, v = qkv(rng, (2,), 70, 50, 32, 32)
    (out, lse), (g_out, g_lse) = both(
        ember.ops.scaled_dot_product_attention, q, k, v, is_causal=True, scale=0.3, return_lse=True
    )
    compare(g_out, out)
    mask = masks(rng, (2,), 70, 50)["float"]
    (out, lse), (g_out, g_lse) = both(
        ember.ops.scaled_dot_product_attention, q, k, v, mask, return_lse=True
    )
    compare(g_out, out)
    compare(g_lse, lse)


def test_ops_many_leading_dimensions_are_copied(gpu, rng):
    """Five leading dimensions whose strides no merge folds below four: the operands are copied
    into a contiguous batch."""
    L, S, E = 9, 11, 8
    base = rng.standard_normal((3, 2, 3, 2, 2, L, E)).astype(np.float32)
    q = base.transpose(1, 0, 3, 2, 4, 5, 6)
    k = rng.standard_normal((2, 3, 2, 3, 2, S, E)).astype(np.float32)
    v = rng.standard_normal((2, 3, 2, 3, 2, S, E)).astype(np.float32)
    (out, lse), (g_out, g_lse) = both(
        ember.ops.scaled_dot_product_attention, q, k, v, return_lse=True
    )
    compare(g_out, out)
    assert gpu.calls[-1][1] == (72, L, E)
    cpu, dev = both(
        ember.ops.scaled_dot_product_attention_backward, np.ones_like(out), q, k, v, out, lse
    )
    for got, want in zip(dev, cpu, strict=True):
        compare(got, want, 4e-6)


@pytest.mark.parametrize(
    ("q_shape", "k_shape", "v_shape"),
    [
        ((2, 5, 8), (2, 0, 8), (2, 0, 4)),  # no keys: zeros, lse -inf
        ((2, 0, 8), (2, 6, 8), (2, 6, 4)),  # no queries
        ((0, 5, 8), (0, 6, 8), (0, 6, 4)),  # empty batch
        ((2, 5, 8), (2, 6, 8), (2, 6, 0)),  # Ev == 0
        ((5, 8), (6, 8), (6, 4)),  # no leading dimensions
    ],
)
def test_ops_edge_shapes(gpu, rng, q_shape, k_shape, v_shape):
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in (q_shape, k_shape, v_shape))
    (out, lse), (g_out, g_lse) = both(
        ember.ops.scaled_dot_product_attention, q, k, v, return_lse=True
    )
    compare(g_out, out)
    compare(g_lse, lse)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    cpu, dev = both(ember.ops.scaled_dot_product_attention_backward, dout, q, k, v, out, lse)
    for got, want in zip(dev, cpu, strict=True):
        compare(got, want, 4e-6)


def test_ops_dropout_is_reproducible(gpu, rng):
    q, k, v = qkv(rng, (2, 2), 30, 40, 16, 16)
    outs = []
    for arrays in ((q, k, v), tuple(ce.fake(x) for x in (q, k, v))):
        ember.manual_seed(11)
        outs.append(np.asarray(ember.ops.scaled_dot_product_attention(*arrays, dropout_p=0.3)))
    assert rel_err(outs[1], outs[0]) < 2e-6
    ember.manual_seed(11)
    again = ember.ops.scaled_dot_product_attention(*(ce.fake(x) for x in (q, k, v)), dropout_p=0.3)
    np.testing.assert_array_equal(again.get(), outs[1])


def test_ops_errors_match_the_cpu_op(gpu, rng):
    bad = [
        ((2, 5, 8), (2, 6, 7), (2, 6, 4), None, False),
        ((2, 5, 8), (2, 6, 8), (2, 7, 4), None, False),
        ((2, 5, 8), (3, 6, 8), (3, 6, 4), None, False),
        ((5,), (6, 8), (6, 4), None, False),
        ((2, 5, 8), (2, 6, 8), (2, 6, 4), (5, 7), False),
        ((2, 5, 8), (2, 6, 8), (2, 6, 4), (5, 6), True),
    ]
    for q_shape, k_shape, v_shape, mask_shape, causal in bad:
        q, k, v = (np.zeros(s, np.float32) for s in (q_shape, k_shape, v_shape))
        mask = None if mask_shape is None else np.ones(mask_shape, bool)
        with pytest.raises(ValueError) as cpu:
            ember.ops.scaled_dot_product_attention(q, k, v, mask, is_causal=causal)
        with pytest.raises(ValueError) as dev:
            ember.ops.scaled_dot_product_attention(
                *(None if x is None else ce.fake(x) for x in (q, k, v, mask)), is_causal=causal
            )
        assert str(dev.value) == str(cpu.value)
    q, k, v = (ce.fake(np.zeros((2, 4, 8), np.float32)) for _ in range(3))
    with pytest.raises(TypeError, match="must be float32"):
        ember.ops.scaled_dot_product_attention(q.astype(np.float64), k, v)
    with pytest.raises(TypeError, match="CuPy array like"):
        ember.ops.scaled_dot_product_attention(q, k, v, np.ones((4, 4), bool))
    with pytest.raises(TypeError, match="must be a CuPy array"):
        ember.ops.scaled_dot_product_attention(q, k, np.zeros((2, 4, 8), np.float32))
    with pytest.raises(NotImplementedError, match="head dimensions up to 128"):
        big = ce.fake(np.zeros((2, 4, 129), np.float32))
        ember.ops.scaled_dot_product_attention(big, big, v)
    with pytest.raises(ValueError, match="dropout_p must be in"):
        ember.ops.scaled_dot_product_attention(q, k, v, dropout_p=1.5)


def test_ops_bf16(gpu, rng):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf16 = np.dtype(ml_dtypes.bfloat16)
    q, k, v = (x.astype(bf16) for x in qkv(rng, (2, 2), 70, 45, 40, 24))
    mask = rng.standard_normal((70, 45)).astype(bf16)  # converted to float32 for the kernel
    out, lse = ember.ops.scaled_dot_product_attention(
        *(ce.fake(x) for x in (q, k, v, mask)), return_lse=True
    )
    assert out.dtype == bf16 and lse.dtype == np.float32
    q64, k64, v64, m64 = f64(q, k, v, mask)
    want, want_lse = ref.scaled_dot_product_attention(q64, k64, v64, m64, return_lse=True)
    assert rel_err(out.get().astype(np.float32), want) < 1e-2
    assert rel_err(lse.get(), want_lse) < 1e-5
    dout = rng.standard_normal(want.shape).astype(bf16)
    wants = ref.scaled_dot_product_attention_backward(
        *f64(dout), q64, k64, v64, *f64(out.get()), *f64(lse.get()), m64
    )
    for deterministic in (False, True):  # tensor cores; the float32 kernels on float32 copies
        grads = ember.ops.scaled_dot_product_attention_backward(
            ce.fake(dout), *(ce.fake(x) for x in (q, k, v)), out, lse, ce.fake(mask),
            deterministic=deterministic,
        )  # fmt: skip
        assert gpu.calls[-1][1] == ("float32" if deterministic else "bfloat16")
        for got, want in zip(grads, wants, strict=True):
            assert got.dtype == bf16
            assert rel_err(got.get().astype(np.float32), want) < 1e-2


def test_functional_autograd(gpu, rng):
    """nn.functional.scaled_dot_product_attention on tensors holding (stand-in) CuPy arrays:
    the gradients are the CPU tensors' gradients."""
    q, k, v = qkv(rng, (2, 2), 20, 30, 16, 16)
    grads = []
    for wrap in (np.asarray, ce.fake):
        ts = [ember.tensor(wrap(x), requires_grad=True) for x in (q, k, v)]
        out = ember.nn.functional.scaled_dot_product_attention(*ts, is_causal=True)
        out.backward(wrap(np.ones(out.shape, np.float32)))
        grads.append([np.asarray(t.grad.data) for t in ts])
    for got, want in zip(grads[1], grads[0], strict=True):
        assert rel_err(got, want) < 4e-6
