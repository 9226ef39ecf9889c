"""Scaled-dot-product attention: ember's fused kernel against PyTorch's CPU SDPA (when installed)
in the same run, same thread count. Forward flops are 4 * B * H * L * S * D (the two products),
halved for causal; forward + backward counts the backward as 2.5x the forward (its five
products), as FlashAttention's papers do.

python -m pytest bench/bench_attention.py --benchmark-json=bench/attention.json
python bench/report.py bench/attention.json torch
"""

import numpy as np
import pytest

import ember
from ember import ops, ref

# (B, H, L, D), L = S
SHAPES = [(8, 8, 512, 64), (4, 16, 1024, 64)]


def rel_err(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def validate(q, k, v, dout, causal, out, lse, grads):
    """Checks the first head of a result against ember.ref (float64); heads are independent."""
    f64 = [x[0, 0].astype(np.float64) for x in (q, k, v, dout)]
    want, want_lse = ref.scaled_dot_product_attention(*f64[:3], is_causal=causal, return_lse=True)
    errors = [rel_err(out[0, 0], want)]
    if lse is not None:
        errors.append(rel_err(lse[0, 0], want_lse))
    if grads is not None:
        wants = ref.scaled_dot_product_attention_backward(
            f64[3], *f64[:3], want, want_lse, is_causal=causal
        )
        errors += [rel_err(g[0, 0], w) for g, w in zip(grads, wants, strict=True)]
    assert max(errors) < 1e-4, f"refusing to time a wrong kernel: errors {errors}"


def runner(impl, q, k, v, dout, causal, backward):
    """A callable running one forward (+ backward) and one returning its last results."""
    if impl == "ember":
        last = {}

        def run():
            out, lse = ops.scaled_dot_product_attention(q, k, v, is_causal=causal, return_lse=True)
            last.update(out=out, lse=lse, grads=None)
            if backward:
                last["grads"] = ops.scaled_dot_product_attention_backward(
                    dout, q, k, v, out, lse, is_causal=causal
                )

        return run, lambda: (last["out"], last["lse"], last["grads"])

    torch = pytest.importorskip("torch")
    torch.set_num_threads(ember.get_num_threads())
    sdpa = torch.nn.functional.scaled_dot_product_attention
    tq, tk, tv = (torch.from_numpy(x).requires_grad_(backward) for x in (q, k, v))
    tdout = torch.from_numpy(dout)
    last = {}

    def run():
        for t in (tq, tk, tv):
            t.grad = None
        if backward:
            out = sdpa(tq, tk, tv, is_causal=causal)
            out.backward(tdout)
        else:
            with torch.no_grad():
                out = sdpa(tq, tk, tv, is_causal=causal)
        last["out"] = out

    def results():
        grads = [t.grad.numpy() for t in (tq, tk, tv)] if backward else None
        return last["out"].detach().numpy(), None, grads

    return run, results


@pytest.mark.parametrize("impl", ["ember", "torch"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
def bench_sdpa(benchmark, rng, pass_, shape, causal, impl):
    B, H, L, D = shape
    q, k, v, dout = (rng.standard_normal((B, H, L, D), dtype=np.float32) for _ in range(4))
    backward = pass_ == "fwd+bwd"
    run, results = runner(impl, q, k, v, dout, causal, backward)
    run()
    validate(q, k, v, dout, causal, *results())
    flops = 4.0 * B * H * L * L * D / (2 if causal else 1) * (3.5 if backward else 1.0)
    benchmark.group = f"sdpa {pass_} {'x'.join(map(str, shape))} {'causal' if causal else 'full'}"
    benchmark.extra_info.update(flops=flops, impl=impl, threads=ember.get_num_threads())
    benchmark.pedantic(run, rounds=max(3, min(50, int(3e10 / flops))), warmup_rounds=1)
