"""Scaled-dot-product attention on the GPU: ember's CUDA kernels against
torch.nn.functional.scaled_dot_product_attention on the same GPU in the same run: float32 against
torch's math path (exact fp32: TF32 off), bfloat16 against torch's FlashAttention backend. Device
time from CUDA events (bench/conftest.py's cuda_benchmark). Forward flops are 4 * B * H * L * S * D
(the two products), halved for causal; forward + backward counts the backward as 2.5x the forward
(its five products), as FlashAttention's papers do. Skipped without a GPU.

python -m pytest bench/bench_cuda_attention.py --benchmark-json=bench/cuda_attention.json
python bench/report.py bench/cuda_attention.json torch
"""

import numpy as np
import pytest

from ember import ops, ref

# (B, H, L, D), L = S
SHAPES = [(8, 8, 512, 64), (4, 16, 2048, 64), (2, 16, 4096, 128), (1, 16, 8192, 64)]
ROWS_CHECKED = 256  # query rows of the first head checked against ember.ref before timing


def rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def host(x):
    """The first head of a CuPy or torch array, as float64 NumPy."""
    x = x[0, 0]
    if hasattr(x, "get"):
        return x.astype(np.float32).get().astype(np.float64)
    return x.detach().float().cpu().numpy().astype(np.float64)


def validate(q, k, v, dout, causal, out, grads, tol):
    """Checks the first head against ember.ref (float64): the first ROWS_CHECKED rows of out and
    dq (each row depends only on itself), and dk, dv where a head is small enough to compute
    whole on the host. Refuses to time a wrong kernel."""
    hq, hk, hv, hg, hout = (host(x) for x in (q, k, v, dout, out))
    r = ROWS_CHECKED
    want, want_lse = ref.scaled_dot_product_attention(
        hq[:r], hk, hv, is_causal=causal, return_lse=True
    )
    errors = {"out": rel_err(hout[:r], want)}
    if grads is not None:
        dq = ref.scaled_dot_product_attention_backward(
            hg[:r], hq[:r], hk, hv, want, want_lse, is_causal=causal
        )[0]
        errors["dq"] = rel_err(host(grads[0])[:r], dq)
        if q.shape[2] <= 2048:
            _, full_lse = ref.scaled_dot_product_attention(
                hq, hk, hv, is_causal=causal, return_lse=True
            )
            wants = ref.scaled_dot_product_attention_backward(
                hg, hq, hk, hv, hout, full_lse, is_causal=causal
            )
            errors["dk"] = rel_err(host(grads[1]), wants[1])
            errors["dv"] = rel_err(host(grads[2]), wants[2])
    assert max(errors.values()) < tol, f"refusing to time a wrong kernel: errors {errors}"


def ember_runner(q, k, v, dout, causal, backward):
    last = {}

    def run():
        out, lse = ops.scaled_dot_product_attention(q, k, v, is_causal=causal, return_lse=True)
        last.update(out=out, grads=None)
        if backward:
            last["grads"] = ops.scaled_dot_product_attention_backward(
                dout, q, k, v, out, lse, is_causal=causal
            )

    return run, lambda: (last["out"], last["grads"])


def torch_runner(q, k, v, dout, causal, backward, dtype):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.backends.cuda.matmul.allow_tf32 = False
    backend = SDPBackend.MATH if dtype == "float32" else SDPBackend.FLASH_ATTENTION
    tdtype = torch.float32 if dtype == "float32" else torch.bfloat16
    tq, tk, tv, tg = (
        torch.from_dlpack(x.astype(np.float32))
        .to(tdtype)
        .requires_grad_(backward and x is not dout)
        for x in (q, k, v, dout)
    )
    sdpa = torch.nn.functional.scaled_dot_product_attention
    last = {}

    def run():
        for t in (tq, tk, tv):
            t.grad = None
        with sdpa_kernel(backend):
            if backward:
                out = sdpa(tq, tk, tv, is_causal=causal)
                out.backward(tg)
            else:
                with torch.no_grad():
                    out = sdpa(tq, tk, tv, is_causal=causal)
        last["out"] = out

    return run, lambda: (last["out"], [t.grad for t in (tq, tk, tv)] if backward else None)


@pytest.mark.parametrize("impl", ["ember", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
def bench_cuda_sdpa(cuda_benchmark, benchmark, rng, pass_, shape, causal, dtype, impl):
    import cupy

    B, H, L, D = shape
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        cdtype = np.dtype(ml_dtypes.bfloat16)
    else:
        cdtype = np.dtype(np.float32)
    q, k, v, dout = (
        cupy.asarray(rng.standard_normal((B, H, L, D), dtype=np.float32)).astype(cdtype)
        for _ in range(4)
    )
    backward = pass_ == "fwd+bwd"
    if impl == "ember":
        run, results = ember_runner(q, k, v, dout, causal, backward)
    else:
        run, results = torch_runner(q, k, v, dout, causal, backward, dtype)
    run()
    validate(q, k, v, dout, causal, *results(), tol=1e-4 if dtype == "float32" else 2e-2)
    flops = 4.0 * B * H * L * L * D / (2 if causal else 1) * (3.5 if backward else 1.0)
    benchmark.group = (
        f"cuda sdpa {dtype} {pass_} {'x'.join(map(str, shape))} {'causal' if causal else 'full'}"
    )
    cuda_benchmark(run, samples=10 if L >= 4096 else 30, flops=flops, impl=impl, dtype=dtype)
