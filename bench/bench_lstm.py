"""One LSTM layer, forward + backward (dx, dh0, dc0 and the weight gradients): ember against
torch.nn.LSTM (same weights, same threads) in the same run. The NumPy reference (float64, a
Python loop over steps) takes tens of seconds per round at these sizes: it only validates.

python -m pytest bench/bench_lstm.py --benchmark-json=bench/lstm.json
python bench/report.py bench/lstm.json torch
"""

import functools

import numpy as np
import pytest

import ember

# (T, B, I, H)
SHAPES = [(50, 64, 128, 256), (100, 32, 256, 512)]


def flops(T, B, I, H):  # noqa: E741
    """The GEMMs': forward 2 T B 4H (I + H), backward twice that."""
    return 3 * 2.0 * T * B * 4 * H * (I + H)


def rel_err(a, b) -> float:
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def inputs(rng, T, B, I, H):  # noqa: E741
    k = 1.0 / np.sqrt(H)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    h0, c0 = (rng.standard_normal((B, H), dtype=np.float32) for _ in range(2))
    weights = tuple(
        rng.uniform(-k, k, shape).astype(np.float32)
        for shape in [(4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    )
    dy = rng.standard_normal((T, B, H), dtype=np.float32)
    return x, h0, c0, weights, dy


def ember_run(x, h0, c0, weights, dy):
    y, _, saved = ember.ops.lstm(x, h0, c0, weights, return_saved=True)
    return y, ember.ops.lstm_backward(dy, None, None, saved)


def numpy_run(x, h0, c0, weights, dy):
    y, _, saved = ember.ref.lstm(x, h0, c0, weights, return_saved=True)
    return y, ember.ref.lstm_backward(dy, None, None, saved)


def torch_run(x, h0, c0, weights, dy):
    import torch

    torch.set_num_threads(ember.get_num_threads())
    T, B, I = x.shape  # noqa: E741
    m = torch.nn.LSTM(I, weights[1].shape[1])
    with torch.no_grad():
        for p, w in zip(m.parameters(), weights, strict=True):
            p.copy_(torch.from_numpy(w))
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None]))
    tdy = torch.from_numpy(dy)

    def run():
        m.zero_grad(set_to_none=True)
        for t in (tx, th0, tc0):
            t.grad = None
        y, _ = m(tx, (th0, tc0))
        y.backward(tdy)
        return y

    return run


# Validation runs the reference on the first steps only: it takes seconds per step at full size.
CHECK_STEPS = 4


@functools.cache
def problem(shape):
    """The inputs; ember validated against the reference on their first CHECK_STEPS steps."""
    args = inputs(np.random.default_rng(0), *shape)
    x, h0, c0, weights, dy = args
    head = (x[:CHECK_STEPS], h0, c0, weights, dy[:CHECK_STEPS])
    y, grads = ember_run(*head)
    want_y, want_grads = numpy_run(*head)
    assert rel_err(y, want_y) < 1e-5, "refusing to time a wrong kernel"
    for got, want in zip(grads[3], want_grads[3], strict=True):
        assert rel_err(got, want) < 1e-4, "refusing to time a wrong kernel"
    return args


@pytest.mark.parametrize("impl", ["ember", "torch"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}_B{}_I{}_H{}".format(*s))
def bench_lstm_layer_fwd_bwd(benchmark, shape, impl):
    args = problem(shape)
    if impl == "ember":
        run = lambda: ember_run(*args)  # noqa: E731
    else:
        pytest.importorskip("torch")
        run = torch_run(*args)
        assert rel_err(run().detach().numpy(), ember_run(*args)[0]) < 1e-5, "not the same LSTM"
    benchmark.group = "lstm fwd+bwd T={} B={} I={} H={}".format(*shape)
    benchmark.extra_info.update(flops=flops(*shape), impl=impl, threads=ember.get_num_threads())
    benchmark.pedantic(run, rounds=max(5, min(50, int(5e10 / flops(*shape)))), warmup_rounds=1)
