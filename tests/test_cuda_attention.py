"""ember.ops.scaled_dot_product_attention(_backward) on CuPy arrays: ember's CUDA kernels against
ember.ref (float64, on host copies), torch on the GPU as an extra oracle where it is installed
with CUDA, and compute-sanitizer's memcheck and racecheck where it is installed. Outputs are
poisoned: CuPy's `empty` hands ember.ops NaN-filled arrays, so an element a kernel fails to write
fails the test. tests/test_cuda_attention_emulated.py runs the kernels' source on the CPU."""

import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ember
from conftest import rel_err
from ember import ref

pytestmark = pytest.mark.cuda

# (batch, L, S, E, Ev): head dims 32, 64, 80 (padded to 96), 100, 128, E != Ev, L != S both
# ways, sizes around the 64- and 128-row tiles, batch 1
SHAPES = [
    ((1,), 1, 1, 32, 32),
    ((2, 3), 63, 65, 32, 32),
    ((1, 2), 128, 128, 64, 64),
    ((2,), 200, 77, 80, 80),
    ((1,), 77, 300, 128, 128),
    ((3,), 129, 129, 100, 48),
    ((2, 2), 1000, 1000, 64, 64),
]


@pytest.fixture
def poisoned(cp, monkeypatch):
    """cupy.empty returns NaN-filled arrays while the test runs (ember.ops allocates its outputs
    and workspaces with it)."""
    real_full = cp.full
    monkeypatch.setattr(
        cp, "empty", lambda shape, dtype=cp.float32: real_full(shape, np.nan, dtype)
    )
    return cp


@pytest.fixture
def bf16():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    return np.dtype(ml_dtypes.bfloat16)


def host(*xs):
    return [None if x is None else np.asarray(x.get(), np.float64) for x in xs]


def inputs(cp, rng, batch, L, S, E, Ev, dtype=np.float32):
    return [
        cp.asarray(rng.standard_normal(batch + shape).astype(np.float32)).astype(dtype)
        for shape in ((L, E), (S, E), (S, Ev))
    ]


def check(got, want, tol):
    """got (CuPy) against want (float64): NaN in the same places, relative error elsewhere."""
    got = np.asarray(got.get(), np.float64)
    assert got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    if finite.any():
        assert rel_err(got[finite], want[finite]) < tol


def forward_and_backward(q, k, v, mask=None, causal=False, scale=None, f_tol=3e-6, b_tol=1e-5):
    """Forward and both backward modes against ember.ref; returns the results."""
    out, lse = ember.ops.scaled_dot_product_attention(
        q, k, v, mask, is_causal=causal, scale=scale, return_lse=True
    )
    hq, hk, hv, hmask = host(q, k, v, mask)
    if mask is not None and mask.dtype == np.bool_:
        hmask = mask.get()
    want, want_lse = ref.scaled_dot_product_attention(
        hq, hk, hv, hmask, is_causal=causal, scale=scale, return_lse=True
    )
    check(out, want, f_tol)
    check(lse, want_lse, f_tol)
    rng = np.random.default_rng(3)
    import cupy

    dout = cupy.asarray(rng.standard_normal(out.shape).astype(np.float32)).astype(q.dtype)
    wants = ref.scaled_dot_product_attention_backward(
        *host(dout), hq, hk, hv, *host(out, lse), hmask, is_causal=causal, scale=scale
    )
    results = []
    for deterministic in (False, True):
        grads = ember.ops.scaled_dot_product_attention_backward(
            dout, q, k, v, out, lse, mask, is_causal=causal, scale=scale,
            deterministic=deterministic,
        )  # fmt: skip
        for g, w in zip(grads, wants, strict=True):
            assert g.dtype == q.dtype
            check(g, w, b_tol)
        results.append(grads)
    return out, lse, results


# ---- float32 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_f32_matches_reference(poisoned, rng, shape, causal):
    forward_and_backward(*inputs(poisoned, rng, *shape), causal=causal)


def test_f32_custom_scale(poisoned, rng):
    forward_and_backward(*inputs(poisoned, rng, (2,), 90, 70, 64, 64), scale=0.3)
    forward_and_backward(*inputs(poisoned, rng, (2,), 90, 70, 64, 64), scale=-2.0, causal=True)


def masks(cp, rng, batch, L, S):
    full = rng.random(batch + (L, S)) > 0.4
    full[..., 3, :] = False  # a row that sees no key: NaN out, lse -inf, NaN gradients
    additive = np.where(
        rng.random(batch + (L, S)) > 0.2, rng.standard_normal(batch + (L, S)), -np.inf
    )
    return {
        "bool": cp.asarray(full),
        "float": cp.asarray(additive.astype(np.float32)),
        "padding": cp.asarray(rng.random(batch[:1] + (1,) * (len(batch) - 1) + (1, S)) > 0.3),
        "shared": cp.asarray(rng.standard_normal((L, S)).astype(np.float32)),
        "transposed": cp.asarray(rng.random(batch + (S, L)) > 0.5).swapaxes(-1, -2),
    }


@pytest.mark.parametrize("kind", ["bool", "float", "padding", "shared", "transposed"])
def test_f32_masks(poisoned, rng, kind):
    q, k, v = inputs(poisoned, rng, (2, 3), 130, 90, 64, 64)
    forward_and_backward(q, k, v, masks(poisoned, rng, (2, 3), 130, 90)[kind])


def test_f32_views(poisoned, rng):
    """q, k, v as MultiheadAttention makes them (head-split views of one projection), k shared
    across the batch (stride 0), transposed and offset views (copied or read element-wise)."""
    cp = poisoned
    B, H, L, S, E = 2, 4, 100, 120, 32
    proj = cp.asarray(rng.standard_normal((L, B, 3 * H * E)).astype(np.float32))
    q = proj[..., : H * E].reshape(L, B, H, E).transpose(1, 2, 0, 3)
    k = cp.asarray(rng.standard_normal((1, H, S, E)).astype(np.float32))
    wide = cp.asarray(rng.standard_normal((B, H, S, E + 5)).astype(np.float32))
    forward_and_backward(q, k, wide[..., 1 : E + 1], causal=True)
    vt = cp.asarray(rng.standard_normal((B, H, E, S)).astype(np.float32)).swapaxes(-1, -2)
    forward_and_backward(q, k, vt)


def test_f32_nan_and_inf_propagate(poisoned, rng):
    q, k, v = inputs(poisoned, rng, (1,), 70, 80, 32, 32)
    q[0, 4, 2] = np.nan
    v[0, 7, 1] = np.inf
    out, lse = ember.ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    want, want_lse = ref.scaled_dot_product_attention(*host(q, k, v), return_lse=True)
    np.testing.assert_array_equal(np.isnan(out.get()), np.isnan(want))
    np.testing.assert_array_equal(np.isnan(lse.get()), np.isnan(want_lse))


def test_edge_shapes(poisoned, rng):
    cp = poisoned
    for q_shape, k_shape, v_shape in [
        ((2, 5, 8), (2, 0, 8), (2, 0, 4)),
        ((2, 0, 8), (2, 6, 8), (2, 6, 4)),
        ((0, 5, 8), (0, 6, 8), (0, 6, 4)),
        ((2, 5, 8), (2, 6, 8), (2, 6, 0)),
        ((5, 8), (6, 8), (6, 4)),
    ]:
        arrays = [rng.standard_normal(s).astype(np.float32) for s in (q_shape, k_shape, v_shape)]
        want, want_lse = ember.ops.scaled_dot_product_attention(*arrays, return_lse=True)
        out, lse = ember.ops.scaled_dot_product_attention(
            *(cp.asarray(a) for a in arrays), return_lse=True
        )
        check(out, want.astype(np.float64), 3e-6)
        check(lse, want_lse.astype(np.float64), 3e-6)


def test_deterministic_backward_is_reproducible(poisoned, rng):
    q, k, v = inputs(poisoned, rng, (2, 4), 500, 700, 64, 64)
    out, lse = ember.ops.scaled_dot_product_attention(q, k, v, return_lse=True)
    dout = poisoned.asarray(rng.standard_normal(out.shape).astype(np.float32))
    runs = [
        ember.ops.scaled_dot_product_attention_backward(dout, q, k, v, out, lse, deterministic=True)
        for _ in range(3)
    ]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            assert bool((a == b).all())


def test_dropout_matches_the_cpu_kernel(poisoned, rng):
    """The same seed (ember.manual_seed) drops the same weights on the GPU as on the CPU."""
    q, k, v = inputs(poisoned, rng, (2, 3), 100, 150, 64, 64)
    outs = []
    for arrays in ((q, k, v), [x.get() for x in (q, k, v)]):
        ember.manual_seed(7)
        out = ember.ops.scaled_dot_product_attention(*arrays, dropout_p=0.25)
        outs.append(out.get() if hasattr(out, "get") else out)
    assert rel_err(outs[0], outs[1]) < 3e-6


def test_errors(cp, rng):
    q, k, v = inputs(cp, rng, (2,), 8, 8, 16, 16)
    with pytest.raises(TypeError, match="must be float32"):
        ember.ops.scaled_dot_product_attention(q.astype(cp.float64), k, v)
    with pytest.raises(TypeError, match="CuPy"):
        ember.ops.scaled_dot_product_attention(q, k, v.get())
    with pytest.raises(NotImplementedError, match="head dimensions up to 128"):
        big = cp.zeros((2, 8, 129), cp.float32)
        ember.ops.scaled_dot_product_attention(big, big, big)
    with pytest.raises(ValueError, match="do not broadcast"):
        ember.ops.scaled_dot_product_attention(q, k[:1].repeat(3, 0), v)


# ---- bfloat16 -----------------------------------------------------------------------------------


def naive_bf16(q, k, v, causal):
    """The computation done plainly in the same precision on the host: fp32 scores and softmax
    from bf16 inputs, weights rounded to bf16 for P V, the output rounded to bf16."""
    bf16 = q.dtype
    qf, kf, vf = (x.get().astype(np.float32) for x in (q, k, v))
    s = (qf @ np.swapaxes(kf, -1, -2)) / np.float32(np.sqrt(q.shape[-1]))
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    e = np.exp(s - s.max(-1, keepdims=True))
    p = e.astype(bf16).astype(np.float32)
    return ((p @ vf) / e.sum(-1, keepdims=True)).astype(bf16).astype(np.float64)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("causal", [False, True])
def test_bf16_forward(poisoned, rng, bf16, shape, causal):
    """The error against float64 is at most ~2x that of the naive bf16 computation."""
    q, k, v = inputs(poisoned, rng, *shape, dtype=bf16)
    out, lse = ember.ops.scaled_dot_product_attention(q, k, v, is_causal=causal, return_lse=True)
    assert out.dtype == bf16 and lse.dtype == np.float32
    want, want_lse = ref.scaled_dot_product_attention(
        *host(q, k, v), is_causal=causal, return_lse=True
    )
    limit = 2 * rel_err(naive_bf16(q, k, v, causal), want) + 1e-4
    assert rel_err(out.get().astype(np.float64), want) < limit
    assert rel_err(lse.get(), want_lse) < 1e-5


@pytest.mark.parametrize("kind", ["bool", "float", "padding"])
def test_bf16_masks_and_backward(poisoned, rng, bf16, kind):
    q, k, v = inputs(poisoned, rng, (2, 3), 130, 90, 64, 64, dtype=bf16)
    mask = masks(poisoned, rng, (2, 3), 130, 90)[kind]
    if mask.dtype != np.bool_:
        mask = mask.astype(bf16)
    forward_and_backward(q, k, v, mask, f_tol=1e-2, b_tol=2e-2)


# ---- torch on the GPU ---------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch(poisoned, rng, bf16, causal):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for dtype, tol in ((np.float32, 3e-6), (bf16, 1e-2)):
        q, k, v = inputs(poisoned, rng, (2, 4), 256, 300, 64, 64, dtype=dtype)
        tq, tk, tv = (torch.from_dlpack(x.astype(np.float32)).requires_grad_() for x in (q, k, v))
        want = sdpa(tq.double(), tk.double(), tv.double(), is_causal=causal)
        out = ember.ops.scaled_dot_product_attention(q, k, v, is_causal=causal)
        got = torch.from_dlpack(out.astype(np.float32)).double()
        assert float((got - want).norm() / want.norm()) < tol


# ---- MultiheadAttention on the GPU --------------------------------------------------------------


def test_multihead_attention_on_the_gpu(rng):
    """The same module on the CPU and moved to the GPU: outputs and parameter gradients agree."""
    mha = ember.nn.MultiheadAttention(64, 4, batch_first=True)
    x = rng.standard_normal((3, 50, 64)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        module = mha.to(device)
        xt = ember.tensor(x).to(device)
        out, _ = module(xt, xt, xt, need_weights=False, is_causal=True, attn_mask=_causal(50))
        out.sum().backward()
        results.append(
            [out.numpy()] + [p.grad.numpy() for p in module.parameters() if p.grad is not None]
        )
        module.zero_grad()
    for got, want in zip(results[1], results[0], strict=True):
        assert rel_err(got, want) < 1e-5


def _causal(n):
    return np.triu(np.ones((n, n), bool), 1)


def test_transformer_example_on_the_gpu():
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / "transformer_classifier.py"
    run = subprocess.run(
        [sys.executable, str(example), "--smoke", "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert re.search(r"test accuracy: [01]\.\d{3} \(.*\)", run.stdout), run.stdout


# ---- compute-sanitizer --------------------------------------------------------------------------

SANITIZED = textwrap.dedent(
    """
    import cupy as cp, numpy as np, ember
    rng = np.random.default_rng(0)
    for dtype in ("float32", "bfloat16"):
        if dtype == "bfloat16":
            import ml_dtypes
            dtype = ml_dtypes.bfloat16
        for E, causal in ((32, False), (80, True), (128, False)):
            q, k, v = (cp.asarray(rng.standard_normal((2, 3, n, E)), np.float32).astype(dtype)
                       for n in (70, 130, 130))
            mask = cp.asarray(rng.random((70, 130)) > 0.3) if not causal else None
            out, lse = ember.ops.scaled_dot_product_attention(q, k, v, mask, is_causal=causal,
                                                             return_lse=True)
            for det in (False, True):
                ember.ops.scaled_dot_product_attention_backward(out, q, k, v, out, lse, mask,
                                                                is_causal=causal, deterministic=det)
    cp.cuda.Device().synchronize()
    """
)


@pytest.mark.parametrize("tool", ["memcheck", "racecheck", "synccheck"])
def test_compute_sanitizer(tool):
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        pytest.skip("compute-sanitizer is not installed")
    pytest.importorskip("ml_dtypes")
    run = subprocess.run(
        [sanitizer, "--tool", tool, "--error-exitcode", "3", sys.executable, "-c", SANITIZED],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
