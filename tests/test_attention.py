"""ember.ops.scaled_dot_product_attention (csrc/attention) against ember.ref and, when installed,
torch.nn.functional.scaled_dot_product_attention, on every ISA path."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import ember
from conftest import randn, rel_err
from ember import ops, ref

TOL = 1e-5


def blocking():
    return ember._C.attention_blocking()


def qkv(rng, batch, L, S, E, Ev=None):
    Ev = E if Ev is None else Ev
    return randn(rng, *batch, L, E), randn(rng, *batch, S, E), randn(rng, *batch, S, Ev)


def f64(*xs):
    return [None if x is None else (x.astype(np.float64) if x.dtype != np.bool_ else x) for x in xs]


def check(rng, q, k, v, *, attn_mask=None, is_causal=False, scale=None, grads=True, tol=TOL):
    """Forward (out and lse) and, with grads, the backward against the float64 reference."""
    out, lse = ops.scaled_dot_product_attention(
        q, k, v, attn_mask, is_causal=is_causal, scale=scale, return_lse=True
    )
    q64, k64, v64, m64 = f64(q, k, v, attn_mask)
    want, want_lse = ref.scaled_dot_product_attention(
        q64, k64, v64, m64, is_causal=is_causal, scale=scale, return_lse=True
    )
    assert out.dtype == np.float32 and lse.dtype == np.float32
    assert rel_err(out, want) < tol
    assert rel_err(lse, want_lse) < tol
    if not grads:
        return
    dout = randn(rng, *out.shape)
    got = ops.scaled_dot_product_attention_backward(
        dout, q, k, v, out, lse, attn_mask, is_causal=is_causal, scale=scale
    )
    wants = ref.scaled_dot_product_attention_backward(
        dout.astype(np.float64), q64, k64, v64, want, want_lse, m64, is_causal, scale
    )
    for name, g, w, x in zip("qkv", got, wants, (q, k, v), strict=True):
        assert g.shape == x.shape and g.dtype == np.float32, name
        assert rel_err(g, w) < tol, f"d{name}"


def around(n):
    return sorted({1, n - 1, n, n + 1} - {0})


# ---- shapes -------------------------------------------------------------------------------


def test_sequence_lengths_around_the_blocks(isa, rng):
    b = blocking()
    Ls = sorted(
        {1, 2, b["row_panel"] + 1, 4 * b["row_panel"] + 3, b["backward_q"] + 1}
        | set(around(b["forward_rows"]))
    )
    Ss = sorted({1, 3, b["backward_k"] + 5} | set(around(b["forward_keys"])))
    for L in Ls:
        for S in Ss:
            q, k, v = qkv(rng, (1, 1), L, S, 8, 5)
            # one key: dq = dk = 0 exactly, tested below; beyond 60k scores, the forward only
            check(rng, q, k, v, grads=1 < S and L * S < 60_000)


def test_one_key(isa, rng):
    # softmax over one key is 1: out = v, dv = the sum of dout, dq = dk = 0 (up to rounding)
    q, k, v = qkv(rng, (2,), 50, 1, 8, 5)
    out, lse = ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    np.testing.assert_allclose(out, np.broadcast_to(v, out.shape), rtol=1e-6)
    dout = randn(rng, *out.shape)
    dq, dk, dv = ops.scaled_dot_product_attention_backward(dout, q, k, v, out, lse)
    np.testing.assert_allclose(dv, dout.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)
    assert np.abs(dq).max() < 1e-5 and np.abs(dk).max() < 1e-4


@pytest.mark.parametrize("E", [1, 7, 32, 64, 80, 128])
def test_head_dims(isa, rng, E):
    q, k, v = qkv(rng, (2, 2), 37, 45, E)
    check(rng, q, k, v)
    q, k, v = qkv(rng, (1, 2), 30, 19, E, Ev=max(1, E // 2 + 3))  # Ev != E
    check(rng, q, k, v, is_causal=True)


@pytest.mark.parametrize(
    "L,S", [(2, 3), (3, 2), (5, 300), (300, 5), (70, 70), (129, 257), (257, 129), (600, 40)]
)
def test_causal_with_L_and_S_apart(isa, rng, L, S):
    q, k, v = qkv(rng, (1, 2), L, S, 16, 24)
    check(rng, q, k, v, is_causal=True)


def test_several_query_and_key_blocks_per_batch_item(isa, rng):
    q, k, v = qkv(rng, (3,), 530, 610, 32)
    check(rng, q, k, v)
    check(rng, q, k, v, is_causal=True)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_backward_split_over_key_blocks(isa, rng, threads):
    # batch < threads splits one batch item's key blocks over threads (dq added in order)
    before = ember.get_num_threads()
    ember.set_num_threads(threads)
    try:
        q, k, v = qkv(rng, (1,), 150, 3 * blocking()["backward_k"] + 7, 16)
        check(rng, q, k, v)
        check(rng, q, k, v, is_causal=True)
    finally:
        ember.set_num_threads(before)


def test_unbatched_and_many_leading_dims(isa, rng):
    check(rng, *qkv(rng, (), 20, 30, 8))
    check(rng, *qkv(rng, (2, 1, 3), 9, 11, 4, 6))


def test_scale(isa, rng):
    q, k, v = qkv(rng, (2, 2), 33, 40, 16)
    check(rng, q, k, v, scale=0.3)
    check(rng, q, k, v, scale=2, is_causal=True)


def test_broadcast_leading_dims(isa, rng):
    q = randn(rng, 2, 3, 20, 8)
    k = randn(rng, 1, 3, 25, 8)
    v = randn(rng, 3, 25, 6)
    check(rng, q, k, v)  # gradients come back in each input's shape, summed over broadcasts


def test_empty_sizes(isa):
    q, k, v = np.ones((0, 4, 5, 8), np.float32), np.ones((0, 4, 6, 8), np.float32), None
    v = np.ones((0, 4, 6, 3), np.float32)
    out, lse = ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    assert out.shape == (0, 4, 5, 3) and lse.shape == (0, 4, 5)
    dq, dk, dv = ops.scaled_dot_product_attention_backward(out, q, k, v, out, lse)
    assert (dq.shape, dk.shape, dv.shape) == (q.shape, k.shape, v.shape)
    out = ops.scaled_dot_product_attention(*(np.ones((2, 0, 4), np.float32),) * 3)
    assert out.shape == (2, 0, 4)


def test_no_keys_gives_zeros(isa, rng):
    q = randn(rng, 2, 3, 4)
    k, v = np.ones((2, 0, 4), np.float32), np.ones((2, 0, 5), np.float32)
    out, lse = ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    assert out.shape == (2, 3, 5) and not out.any()
    assert np.all(lse == -np.inf)
    want = ref.scaled_dot_product_attention(*f64(q, k, v))
    np.testing.assert_array_equal(out, want)


# ---- masks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mask_shape",
    [(2, 3, 33, 47), (33, 47), (3, 33, 47), (2, 1, 33, 47), (1, 3, 1, 47), (33, 1), (47,)],
    ids=str,
)
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks(isa, rng, mask_shape, kind):
    q, k, v = qkv(rng, (2, 3), 33, 47, 16, 12)
    if kind == "bool":
        mask = rng.random(mask_shape) < 0.7
        mask[..., 0] = True  # no row is fully masked out
    else:
        mask = randn(rng, *mask_shape) * 2
        mask[rng.random(mask_shape) < 0.2] = -np.inf
        mask[..., 0] = 0.5
    check(rng, q, k, v, attn_mask=mask)


def test_mask_with_strides(isa, rng):
    q, k, v = qkv(rng, (2,), 40, 50, 8)
    bool_mask = (rng.random((50, 2, 80)) < 0.6).transpose(1, 2, 0)[:, ::2]  # (2, 40, 50) view
    bool_mask[..., 3] = True
    check(rng, q, k, v, attn_mask=bool_mask)
    float_mask = np.asfortranarray(randn(rng, 40, 50))
    check(rng, q, k, v, attn_mask=float_mask[::-1])


def test_fully_masked_rows_give_nan(isa, rng):
    q, k, v = qkv(rng, (2, 2), 30, 200, 8)
    mask = rng.random((2, 2, 30, 200)) < 0.5
    mask[0, 1, 3] = False
    mask[1, 0, 29] = False
    fmask = np.where(mask, np.float32(0.25), np.float32(-np.inf))
    for m in (mask, fmask):
        out, lse = ops.scaled_dot_product_attention(q, k, v, m, return_lse=True)
        want, want_lse = ref.scaled_dot_product_attention(*f64(q, k, v, m), return_lse=True)
        dead = ~mask.any(axis=-1)
        assert np.isnan(out[dead]).all() and np.isnan(want[dead]).all()
        assert np.all(lse[dead] == -np.inf) and np.all(want_lse[dead] == -np.inf)
        assert rel_err(out[~dead], want[~dead]) < TOL
        assert rel_err(lse[~dead], want_lse[~dead]) < TOL


# ---- layouts ------------------------------------------------------------------------------


def test_non_contiguous_inputs(isa, rng):
    # (B, L, H, E) transposed to (B, H, L, E), as a multi-head layer produces them
    B, L, S, H, E = 2, 41, 37, 3, 16
    q = randn(rng, B, L, H, E).transpose(0, 2, 1, 3)
    k = randn(rng, B, S, H, E).transpose(0, 2, 1, 3)
    v = randn(rng, B, S, H, 2 * E)[..., ::2].transpose(0, 2, 1, 3)
    check(rng, q, k, v)
    check(rng, q, k, v, is_causal=True)
    # reversed, Fortran-order, last dimension strided
    q2 = np.asfortranarray(randn(rng, 2, 30, 8))[:, ::-1]
    k2 = randn(rng, 2, 8, 25).transpose(0, 2, 1)
    v2 = randn(rng, 2, 50, 6)[:, ::2]
    check(rng, q2, k2, v2)


def test_outputs_are_fully_written(isa, rng):
    # fresh np.empty outputs: a NaN or garbage element would show in the comparison, and the
    # same call twice gives identical bits (deterministic, including the backward)
    q, k, v = qkv(rng, (3, 2), 70, 90, 24)
    first = ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    second = ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    dout = randn(rng, *first[0].shape)
    g1 = ops.scaled_dot_product_attention_backward(dout, q, k, v, *first)
    g2 = ops.scaled_dot_product_attention_backward(dout, q, k, v, *first)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_array_equal(a, b)


def test_float64_runs_the_reference(rng):
    q, k, v = f64(*qkv(rng, (2,), 10, 12, 4))
    out, lse = ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    want, want_lse = ref.scaled_dot_product_attention(q, k, v, return_lse=True)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(lse, want_lse)
    grads = ops.scaled_dot_product_attention_backward(out, q, k, v, out, lse)
    assert all(g.dtype == np.float64 for g in grads)


def test_concurrent_calls_from_python_threads(rng):
    q, k, v = qkv(rng, (4,), 120, 130, 32)
    want = ops.scaled_dot_product_attention(q, k, v)
    results = [None] * 4

    def work(i):
        results[i] = ops.scaled_dot_product_attention(q, k, v)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)


def test_scores_are_never_materialised():
    # at L = S = 8192 the L x S scores alone would be 256 MiB per head (float32)
    code = textwrap.dedent(
        """
        import resource, numpy as np, ember
        from ember import ops
        rng = np.random.default_rng(0)
        q, k, v = (rng.standard_normal((1, 8192, 64), dtype=np.float32) for _ in range(3))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out, lse = ops.scaled_dot_product_attention(q, k, v, is_causal=True, return_lse=True)
        ops.scaled_dot_product_attention_backward(out, q, k, v, out, lse, is_causal=True)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
        """
    )
    grown_mib = int(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert grown_mib < 128


# ---- bad input ----------------------------------------------------------------------------


def test_bad_inputs(rng):
    q, k, v = qkv(rng, (2,), 5, 6, 4)
    sdpa = ops.scaled_dot_product_attention
    with pytest.raises(TypeError, match="float32 or float64"):
        sdpa(q.astype(np.int32), k, v)
    with pytest.raises(TypeError, match="float32 or float64"):
        sdpa(q, k.astype(np.float16), v)
    with pytest.raises(TypeError, match="one dtype"):
        sdpa(q, k, v.astype(np.float64))
    with pytest.raises(TypeError, match="NumPy array"):
        sdpa(q.tolist(), k, v)
    with pytest.raises(TypeError, match="attn_mask"):
        sdpa(q, k, v, attn_mask=np.zeros((5, 6), np.int64))
    with pytest.raises(TypeError, match="attn_mask"):
        sdpa(q, k, v, attn_mask=np.zeros((5, 6), np.float64))
    with pytest.raises(ValueError, match="at least 2-D"):
        sdpa(q[0, 0], k, v)
    with pytest.raises(ValueError, match="last dimension"):
        sdpa(q, randn(rng, 2, 6, 3), v)
    with pytest.raises(ValueError, match="sequence length"):
        sdpa(q, k, randn(rng, 2, 7, 4))
    with pytest.raises(ValueError, match="do not broadcast"):
        sdpa(q, randn(rng, 3, 6, 4), randn(rng, 3, 6, 4))
    with pytest.raises(ValueError, match="attn_mask of shape"):
        sdpa(q, k, v, attn_mask=np.ones((5, 7), bool))
    with pytest.raises(ValueError, match="attn_mask of shape"):
        sdpa(q, k, v, attn_mask=np.ones((3, 2, 5, 6), bool))  # would grow the batch
    with pytest.raises(ValueError, match="is_causal"):
        sdpa(q, k, v, attn_mask=np.ones((5, 6), bool), is_causal=True)
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, k, v, dropout_p=1.0)
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, k, v, dropout_p=-0.1)
    with pytest.raises(ValueError, match="head dimension"):
        sdpa(q[..., :0], k[..., :0], v)
    with pytest.raises(TypeError, match="scale"):
        sdpa(q, k, v, scale="1")

    out, lse = sdpa(q, k, v, return_lse=True)
    bwd = ops.scaled_dot_product_attention_backward
    with pytest.raises(ValueError, match="dout must have shape"):
        bwd(out[:, :4], q, k, v, out, lse)
    with pytest.raises(ValueError, match="lse must have shape"):
        bwd(out, q, k, v, out, lse[:, :, None])
    with pytest.raises(TypeError, match="one dtype"):
        bwd(out, q, k, v, out, lse.astype(np.float64))


def test_extension_rechecks_its_arguments(rng):
    q, k, v = qkv(rng, (2,), 5, 6, 4)
    out, lse = np.empty((2, 5, 4), np.float32), np.empty((2, 5), np.float32)
    fwd = ember._C.sdpa_forward
    with pytest.raises(ValueError, match="k must have shape"):
        fwd(q, k[:, :, :3], v, None, out, lse, 0.5, False, 0.0, 0)
    with pytest.raises(ValueError, match="out must have shape"):
        fwd(q, k, v, None, out[:, :4], lse, 0.5, False, 0.0, 0)
    strided = np.empty((2, 4, 5), np.float32).transpose(0, 2, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        fwd(q, k, v, None, strided, lse, 0.5, False, 0.0, 0)
    with pytest.raises(ValueError, match="overlaps"):
        fwd(q, k, v, None, q, lse, 0.5, False, 0.0, 0)
    with pytest.raises(ValueError, match="cannot be combined"):
        fwd(q, k, v, np.ones((2, 5, 6), bool), out, lse, 0.5, True, 0.0, 0)
    with pytest.raises(TypeError, match="attn_mask must be float32"):
        fwd(q, k, v, np.ones((2, 5, 6), np.int32), out, lse, 0.5, False, 0.0, 0)


# ---- dropout ------------------------------------------------------------------------------


def test_dropout_matches_the_reference_generator(isa, rng):
    q, k, v = qkv(rng, (2, 2), 40, 70, 16)
    ember.manual_seed(7)
    out = ops.scaled_dot_product_attention(q, k, v, dropout_p=0.3)
    ember.manual_seed(7)
    want = ref.scaled_dot_product_attention(*f64(q, k, v), dropout_p=0.3)
    assert rel_err(out, want) < TOL
    again = ops.scaled_dot_product_attention(q, k, v, dropout_p=0.3)  # the next draw differs
    assert not np.allclose(again, out)


def test_dropout_keeps_one_minus_p_of_the_weights():
    keep = ref.attention.dropout_keep(12345, 4, 64, 64, 0.25)
    assert abs(keep.mean() - 0.75) < 0.01
    # v = identity: out = dropped weights, rows sum to 1 in expectation
    rng = np.random.default_rng(0)
    q, k = 0.01 * randn(rng, 1, 256, 8), randn(rng, 1, 256, 8)  # near-uniform weights
    out = ops.scaled_dot_product_attention(q, k, np.eye(256, dtype=np.float32), dropout_p=0.5)
    assert abs(out.sum(axis=-1).mean() - 1.0) < 0.05


# ---- gradients of the reference -----------------------------------------------------------


def numeric_grads(f, xs, eps=1e-6):
    grads = []
    for x in xs:
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            hi = f()
            x[i] = old - eps
            lo = f()
            x[i] = old
            g[i] = (hi - lo) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case", ["plain", "causal", "bool", "float", "scale", "broadcast"])
def test_reference_backward_matches_finite_differences(rng, case):
    L, S, E, Ev = 4, 5, 3, 2
    q = rng.standard_normal((2, L, E))
    k = rng.standard_normal((1 if case == "broadcast" else 2, S, E))
    v = rng.standard_normal((2, S, Ev))
    kw = {}
    if case == "causal":
        kw["is_causal"] = True
    elif case == "bool":
        m = rng.random((L, S)) < 0.6
        m[:, 1] = True
        kw["attn_mask"] = m
    elif case == "float":
        kw["attn_mask"] = rng.standard_normal((2, L, S))
    elif case == "scale":
        kw["scale"] = 0.7
    dout = rng.standard_normal((2, L, Ev))

    def f():
        return float(np.sum(ref.scaled_dot_product_attention(q, k, v, **kw) * dout))

    out, lse = ref.scaled_dot_product_attention(q, k, v, return_lse=True, **kw)
    got = ref.scaled_dot_product_attention_backward(
        dout,
        q,
        k,
        v,
        out,
        lse,
        kw.get("attn_mask"),
        kw.get("is_causal", False),
        kw.get("scale"),
    )
    for g, n in zip(got, numeric_grads(f, [q, k, v]), strict=True):
        np.testing.assert_allclose(g, n, rtol=1e-6, atol=1e-8)


# ---- PyTorch ------------------------------------------------------------------------------


TORCH_CASES = {
    "plain": dict(shape=(2, 3, 64, 80, 32, 32)),
    "causal": dict(shape=(2, 3, 64, 80, 32, 32), is_causal=True),
    "causal L > S": dict(shape=(1, 2, 90, 40, 16, 16), is_causal=True),
    "causal L < S": dict(shape=(1, 2, 40, 90, 16, 16), is_causal=True),
    "Ev != E, scale": dict(shape=(2, 2, 33, 47, 64, 24), scale=0.2),
    "bool mask": dict(shape=(2, 3, 50, 60, 16, 16), mask="bool"),
    "float mask": dict(shape=(2, 3, 50, 60, 16, 16), mask="float"),
    "broadcast mask": dict(shape=(2, 3, 50, 60, 16, 16), mask="row"),
    "head dim 128": dict(shape=(1, 2, 100, 130, 128, 128), is_causal=True),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_against_torch(isa, rng, case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    spec = dict(TORCH_CASES[case])
    B, H, L, S, E, Ev = spec.pop("shape")
    q, k, v = qkv(rng, (B, H), L, S, E, Ev)
    mask = None
    kind = spec.pop("mask", None)
    if kind == "bool":
        mask = rng.random((B, H, L, S)) < 0.6
        mask[..., 0] = True
    elif kind == "float":
        mask = randn(rng, B, 1, L, S)
    elif kind == "row":
        mask = rng.random((1, S)) < 0.5  # one row of keys for every query
        mask[0, 0] = True
    out, lse = ops.scaled_dot_product_attention(q, k, v, mask, return_lse=True, **spec)
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    tmask = None if mask is None else torch.from_numpy(mask)
    want = F.scaled_dot_product_attention(tq, tk, tv, tmask, **spec)
    assert rel_err(out, want.detach().numpy()) < TOL
    dout = randn(rng, *out.shape)
    want.backward(torch.from_numpy(dout))
    grads = ops.scaled_dot_product_attention_backward(dout, q, k, v, out, lse, mask, **spec)
    for name, g, t in zip("qkv", grads, (tq, tk, tv), strict=True):
        assert rel_err(g, t.grad.numpy()) < TOL, f"d{name}"


def test_no_keys_against_torch(rng):
    torch = pytest.importorskip("torch")
    q, k, v = randn(rng, 2, 3, 4), np.ones((2, 0, 4), np.float32), np.ones((2, 0, 5), np.float32)
    want = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)))
    np.testing.assert_array_equal(ops.scaled_dot_product_attention(q, k, v), want.numpy())
