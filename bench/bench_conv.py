"""conv2d forward + backward (dx, dw, db): ember against PyTorch CPU (oneDNN) in the same run,
with the same thread count, and the NumPy reference on the small layers.

python -m pytest bench/bench_conv.py --benchmark-json=bench/conv.json
python bench/report.py bench/conv.json torch
"""

import numpy as np
import pytest

import ember
from ember import ops, ref

# (N, C, H, W, K, padding) with 3x3 kernels, stride 1: the two small layers unpadded, the two
# larger ones with padding 1 (same-size outputs, as in a ResNet stage).
SHAPES = [
    (64, 1, 28, 28, 32, 0),
    (64, 32, 13, 13, 64, 0),
    (32, 64, 56, 56, 64, 1),
    (32, 128, 28, 28, 128, 1),
]
NUMPY_MAX_FLOPS = 2e9  # the float64 reference is timed only below this


def flops(shape) -> float:
    """Forward 2*N*K*C*R*S*P*Q; the backward's two products (dx, dw) twice that."""
    n, c, h, w, k, pad = shape
    p, q = h + 2 * pad - 2, w + 2 * pad - 2
    return 3 * 2.0 * n * k * c * 9 * p * q


def rel_err(out, want) -> float:
    out, want = np.asarray(out, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(out - want) / np.linalg.norm(want))


@pytest.mark.parametrize("impl", ["ember", "torch", "numpy"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:5])) + f"-pad{s[5]}")
def bench_conv2d_fwd_bwd(benchmark, rng, shape, impl):
    n, c, h, w, k, pad = shape
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)
    wt = rng.standard_normal((k, c, 3, 3), dtype=np.float32) / float(np.sqrt(9 * c))
    b = rng.standard_normal(k, dtype=np.float32)
    dy = rng.standard_normal((n, k, h + 2 * pad - 2, w + 2 * pad - 2), dtype=np.float32)

    def run_ember():
        y = ops.conv2d(x, wt, b, padding=pad)
        return (y, *ops.conv2d_backward(dy, x, wt, padding=pad))

    if impl == "ember":
        # validate on two images of the same layer (same code path) before timing
        got = (
            ops.conv2d(x[:2], wt, b, padding=pad),
            *ops.conv2d_backward(dy[:2], x[:2], wt, padding=pad),
        )
        want = (
            ref.conv2d(x[:2].astype(np.float64), wt, b, padding=pad),
            *ref.conv2d_backward(dy[:2].astype(np.float64), x[:2], wt, padding=pad),
        )
        for g, r in zip(got, want, strict=True):
            assert rel_err(g, r) < 1e-4, "refusing to time a wrong kernel"
        run = run_ember
    elif impl == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(ember.get_num_threads())
        xt, wtt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, wt, b))
        dyt = torch.from_numpy(dy)

        def run():
            y = torch.nn.functional.conv2d(xt, wtt, bt, padding=pad)
            return (y, *torch.autograd.grad(y, (xt, wtt, bt), dyt))

        mine, theirs = run_ember(), run()
        for e, t in zip(mine, theirs, strict=True):
            assert rel_err(e, t.detach().numpy()) < 1e-4, "ember and torch disagree"
    else:
        if flops(shape) > NUMPY_MAX_FLOPS:
            pytest.skip("the float64 reference is too slow for this layer")
        x64, w64, b64, dy64 = (a.astype(np.float64) for a in (x, wt, b, dy))

        def run():
            y = ref.conv2d(x64, w64, b64, padding=pad)
            return (y, *ref.conv2d_backward(dy64, x64, w64, padding=pad))

    benchmark.group = "conv2d fwd+bwd " + "x".join(map(str, shape[:5])) + f" 3x3 pad {pad}"
    benchmark.extra_info.update(
        flops=flops(shape), impl=impl, threads=ember.get_num_threads(), padding=pad
    )
    rounds = max(3, min(50, int(2e10 / flops(shape))))
    benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)
