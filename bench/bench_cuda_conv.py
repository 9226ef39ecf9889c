"""conv2d on the GPU: ember's CUDA kernels (the automatic choice and both forward algorithms
forced) against cuDNN through PyTorch (fp32, TF32 off) in the same run, forward and forward +
backward (dx, dw, db). Device time from CUDA events (the cuda_benchmark fixture); ember is
validated against the float64 reference on two images of the same layer before it is timed.
Skipped without a GPU.

python -m pytest bench/bench_cuda_conv.py --benchmark-json=bench/cuda_conv.json
python bench/report.py bench/cuda_conv.json torch
"""

import numpy as np
import pytest

from ember import ops, ref

# (N, C, H, W, K), 3x3 kernels, stride 1, padding 1 (same-size outputs, as in a ResNet stage)
SHAPES = [
    (64, 1, 28, 28, 32),
    (256, 64, 56, 56, 64),
    (256, 128, 28, 28, 128),
    (256, 256, 14, 14, 256),
]
IMPLS = ["ember", "ember-im2col", "ember-implicit", "torch"]


def flops(shape, pass_) -> float:
    """Forward 2*N*K*C*R*S*P*Q; the backward's two products (dx, dw) twice that."""
    n, c, h, w, k = shape
    forward = 2.0 * n * k * c * 9 * h * w
    return forward if pass_ == "fwd" else 3 * forward


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def bench_cuda_conv2d(benchmark, cuda_benchmark, monkeypatch, shape, pass_, impl):
    import cupy as cp

    n, c, h, w, k = shape
    rng = cp.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=cp.float32)
    wt = rng.standard_normal((k, c, 3, 3), dtype=cp.float32) / float(np.sqrt(9 * c))
    b = rng.standard_normal(k, dtype=cp.float32)
    dy = rng.standard_normal((n, k, h, w), dtype=cp.float32)

    if impl.startswith("ember"):
        if impl != "ember":
            monkeypatch.setenv("EMBER_CUDA_CONV_ALGO", impl.split("-")[1])

        def run():
            y = ops.conv2d(x, wt, b, padding=1)
            return y if pass_ == "fwd" else (y, *ops.conv2d_backward(dy, x, wt, padding=1))

        got = (
            ops.conv2d(x[:2], wt, b, padding=1),
            *ops.conv2d_backward(dy[:2], x[:2], wt, padding=1),
        )
        host = [a.get().astype(np.float64) for a in (x[:2], wt, b, dy[:2])]
        want = (
            ref.conv2d(host[0], host[1], host[2], padding=1),
            *ref.conv2d_backward(host[3], host[0], host[1], padding=1),
        )
        for g, r in zip(got, want, strict=True):
            assert rel_err(g.get(), r) < 1e-4, "refusing to time a wrong kernel"
    else:
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch without CUDA")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithm per shape
        xt, wtt, bt = (torch.from_dlpack(a).requires_grad_() for a in (x, wt, b))
        dyt = torch.from_dlpack(dy)

        def run():
            if pass_ == "fwd":
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wtt, bt, padding=1)
            y = torch.nn.functional.conv2d(xt, wtt, bt, padding=1)
            return (y, *torch.autograd.grad(y, (xt, wtt, bt), dyt))

    benchmark.group = f"cuda conv2d {pass_} " + "x".join(map(str, shape)) + " 3x3 pad 1"
    cuda_benchmark(run, flops=flops(shape, pass_), impl=impl, precision="fp32, TF32 off")
