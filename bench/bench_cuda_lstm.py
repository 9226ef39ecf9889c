"""One LSTM layer on the GPU: ember's CUDA layer against torch.nn.LSTM (cuDNN; fp32, TF32 off)
with the same weights in the same run, forward and forward + backward (dx, dh0, dc0 and the
weight gradients). Device time from CUDA events (the cuda_benchmark fixture); ember is validated
against the float64 reference on a slice of the same layer (10 steps, 4 rows) before it is timed.
Skipped without a GPU.

python -m pytest bench/bench_cuda_lstm.py --benchmark-json=bench/cuda_lstm.json
python bench/report.py bench/cuda_lstm.json torch
"""

import numpy as np
import pytest

from ember import ops, ref

# (T, B, I, H)
SHAPES = [(50, 64, 128, 256), (100, 256, 512, 1024)]


def flops(shape, pass_) -> float:
    """The GEMMs': forward 2 T B 4H (I + H), backward twice that."""
    steps, batch, inputs, hidden = shape
    forward = 2.0 * steps * batch * 4 * hidden * (inputs + hidden)
    return forward if pass_ == "fwd" else 3 * forward


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def validate(x, h0, c0, weights, dy):
    """ember against the reference on the first 10 steps and 4 rows, forward and backward."""
    x, h0, c0, dy = x[:10, :4], h0[:4], c0[:4], dy[:10, :4]
    y, (h_n, c_n), saved = ops.lstm(x, h0, c0, weights, return_saved=True)
    dx, dh0, dc0, dw = ops.lstm_backward(dy, None, None, saved)
    host = [a.get() for a in (x, h0, c0, dy)]
    w_host = tuple(a.get() for a in weights)
    yr, (hr, cr), saved_r = ref.lstm(*host[:3], w_host, return_saved=True)
    dxr, dh0r, dc0r, dwr = ref.lstm_backward(host[3], None, None, saved_r)
    got = (y, h_n, c_n, dx, dh0, dc0, *dw)
    want = (yr, hr, cr, dxr, dh0r, dc0r, *dwr)
    for g, r in zip(got, want, strict=True):
        assert rel_err(g.get(), r) < 1e-4, "refusing to time a wrong kernel"


@pytest.mark.parametrize("impl", ["ember", "ember-launches", "torch"])
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-B{}-I{}-H{}".format(*s))
def bench_cuda_lstm(benchmark, cuda_benchmark, monkeypatch, shape, pass_, impl):
    """ember replays each layer as a cached CUDA graph; ember-launches launches its kernels one by
    one (EMBER_CUDA_LSTM_GRAPH=0), what the graph saves."""
    import cupy as cp

    steps, batch, inputs, hidden = shape
    rng = cp.random.default_rng(0)
    bound = 1.0 / np.sqrt(hidden)
    x = rng.standard_normal((steps, batch, inputs), dtype=cp.float32)
    h0, c0 = (rng.standard_normal((batch, hidden), dtype=cp.float32) for _ in range(2))
    weights = tuple(
        (rng.uniform(-bound, bound, s)).astype(cp.float32)
        for s in [(4 * hidden, inputs), (4 * hidden, hidden), (4 * hidden,), (4 * hidden,)]
    )
    dy = rng.standard_normal((steps, batch, hidden), dtype=cp.float32)

    if impl.startswith("ember"):
        monkeypatch.setenv("EMBER_CUDA_LSTM_GRAPH", "0" if impl == "ember-launches" else "1")
        validate(x, h0, c0, weights, dy)

        def run():
            if pass_ == "fwd":
                return ops.lstm(x, h0, c0, weights)
            y, _, saved = ops.lstm(x, h0, c0, weights, return_saved=True)
            return y, ops.lstm_backward(dy, None, None, saved)
    else:
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch without CUDA")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        layer = torch.nn.LSTM(inputs, hidden).cuda()
        with torch.no_grad():
            for p, w in zip(layer.parameters(), weights, strict=True):
                p.copy_(torch.from_dlpack(w))
        xt = torch.from_dlpack(x).requires_grad_()
        state = (torch.from_dlpack(h0)[None], torch.from_dlpack(c0)[None])
        dyt = torch.from_dlpack(dy)

        def run():
            if pass_ == "fwd":
                with torch.no_grad():
                    return layer(xt, state)
            y, _ = layer(xt, state)
            return torch.autograd.grad(y, (xt, *layer.parameters()), dyt)

    benchmark.group = f"cuda lstm {pass_} T={steps} B={batch} I={inputs} H={hidden}"
    cuda_benchmark(run, flops=flops(shape, pass_), impl=impl, precision="fp32, TF32 off")
