"""ember.ops LSTM on CuPy arrays: the CUDA layer (input projection and recurrent sgemms, fused
cell forward and backward, weight gradients over all steps, bias reduction) against ember.ref on
host copies, every output poisoned with NaN (EMBER_CUDA_POISON). Under compute-sanitizer, set
EMBER_CUPY_POOL=0 (no memory pool: each array's bounds are visible)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import rel_err
from ember import ops, ref

pytestmark = pytest.mark.cuda

TOL = 5e-5  # norm-wise, fp32 against the float64 reference; rounding compounds over the steps

# (T, B, I, H): one step, one row, a unit; sizes off every power of two; no inputs
SHAPES = {
    "1-1-1-1": (1, 1, 1, 1),
    "5-3-4-7": (5, 3, 4, 7),
    "7-2-9-33": (7, 2, 9, 33),
    "4-5-3-130": (4, 5, 3, 130),
    "3-4-0-5": (3, 4, 0, 5),
}
LARGE = {"large-20-64-128-256": (20, 64, 128, 256)}
ALL = {**SHAPES, **LARGE}


@pytest.fixture(autouse=True)
def poisoned(monkeypatch):
    monkeypatch.setenv("EMBER_CUDA_POISON", "1")


def randn(rng, *shape):
    return (0.5 * rng.standard_normal(shape)).astype(np.float32)


def weights(rng, inputs, hidden, biases="both"):
    """Scaled as PyTorch initialises them (~1/sqrt(H)): a well-conditioned recurrence."""

    def draw(*shape):
        return (rng.uniform(-1, 1, shape) / np.sqrt(hidden)).astype(np.float32)

    b_ih = draw(4 * hidden) if biases in ("both", "ih") else None
    b_hh = draw(4 * hidden) if biases in ("both", "hh") else None
    return (draw(4 * hidden, inputs), draw(4 * hidden, hidden), b_ih, b_hh)


def dev(cp, *arrays):
    return tuple(None if a is None else cp.asarray(a) for a in arrays)


def host(a):
    return None if a is None else a.get()


def check(got, want):
    if want is None:
        assert got is None
        return
    assert got is not None and got.shape == want.shape, (got, want.shape)
    assert rel_err(got.get(), want) < TOL


def check_all(got, want):
    for g, w in zip(got, want, strict=True):
        check(g, w)


def run_both(cp, x, h0, c0, w, dy, dh_n, dc_n, **kwargs):
    """(forward, backward) on the GPU and by the reference: y, h_n, c_n, then dx, dh0, dc0 and
    the four weight gradients."""
    y, (h_n, c_n), saved = ops.lstm(*dev(cp, x, h0, c0), dev(cp, *w), return_saved=True, **kwargs)
    grads = ops.lstm_backward(*dev(cp, dy, dh_n, dc_n), saved)
    yr, (hr, cr), saved_r = ref.lstm(x, h0, c0, w, return_saved=True, **kwargs)
    grads_r = ref.lstm_backward(dy, dh_n, dc_n, saved_r)
    got = (y, h_n, c_n, *grads[:3], *grads[3])
    want = (yr, hr, cr, *grads_r[:3], *grads_r[3])
    return got, want


@pytest.mark.parametrize("shape", ALL.values(), ids=ALL.keys())
@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_matches_reference(cp, rng, shape, batch_first):
    steps, batch, inputs, hidden = shape
    x = randn(rng, batch, steps, inputs) if batch_first else randn(rng, steps, batch, inputs)
    h0, c0 = randn(rng, batch, hidden), randn(rng, batch, hidden)
    dy = randn(rng, *x.shape[:2], hidden)
    dh_n, dc_n = randn(rng, batch, hidden), randn(rng, batch, hidden)
    w = weights(rng, inputs, hidden)
    check_all(*run_both(cp, x, h0, c0, w, dy, dh_n, dc_n, batch_first=batch_first))


@pytest.mark.parametrize("biases", ["both", "ih", "hh", "none"])
def test_lstm_bias_variants_and_missing_states(cp, rng, biases):
    """h0, c0, dy, dh_n, dc_n all None (zeros), with every combination of biases."""
    x = randn(rng, 6, 3, 5)
    w = weights(rng, 5, 9, biases)
    check_all(*run_both(cp, x, None, None, w, None, None, None))
    check_all(*run_both(cp, x, None, randn(rng, 3, 9), w, randn(rng, 6, 3, 9), None, None))


def test_lstm_unbatched(cp, rng):
    x, h0, c0 = randn(rng, 5, 4), randn(rng, 6), randn(rng, 6)
    w = weights(rng, 4, 6)
    dy, dh_n, dc_n = randn(rng, 5, 6), randn(rng, 6), randn(rng, 6)
    check_all(*run_both(cp, x, h0, c0, w, dy, dh_n, dc_n))


def test_lstm_no_steps(cp, rng):
    """T = 0: y is empty, the final state is the initial one, the weights get zero gradients."""
    x, h0, c0 = randn(rng, 0, 3, 4), randn(rng, 3, 5), randn(rng, 3, 5)
    w = weights(rng, 4, 5)
    check_all(*run_both(cp, x, h0, c0, w, randn(rng, 0, 3, 5), randn(rng, 3, 5), None))


LAYOUTS = {
    # foldable into (T*B, I) rows, read in place
    "rows-with-gaps": lambda cp, t, b, i, r: cp.asarray(r(t, b, 2 * i))[:, :, :i],
    "batch-major": lambda cp, t, b, i, r: cp.asarray(r(b, t, i)).swapaxes(0, 1),
    "strided-features": lambda cp, t, b, i, r: cp.asarray(r(t, b, 2 * i))[:, :, ::2],
    # not foldable: copied first
    "every-other-step": lambda cp, t, b, i, r: cp.asarray(r(2 * t, b, i))[::2],
    "reversed-in-time": lambda cp, t, b, i, r: cp.asarray(r(t, b, i))[::-1],
    "broadcast-batch": lambda cp, t, b, i, r: cp.broadcast_to(cp.asarray(r(t, 1, i)), (t, b, i)),
}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_lstm_non_contiguous_inputs(cp, rng, layout):
    """x in each layout; h0 and the weights as transposed views, dy as a strided view."""
    steps, batch, inputs, hidden = 6, 4, 5, 7
    x = layout(cp, steps, batch, inputs, lambda *shape: randn(rng, *shape))
    h0 = cp.asarray(randn(rng, hidden, batch)).T
    w = weights(rng, inputs, hidden)
    wd = (*(cp.asarray(np.ascontiguousarray(a.T)).T for a in w[:2]), *dev(cp, *w[2:]))
    dy = cp.asarray(randn(rng, steps, batch, 2 * hidden))[:, :, ::2]
    y, (h_n, c_n), saved = ops.lstm(x, h0, None, wd, return_saved=True)
    grads = ops.lstm_backward(dy, None, None, saved)
    yr, (hr, cr), saved_r = ref.lstm(x.get(), h0.get(), None, w, return_saved=True)
    grads_r = ref.lstm_backward(dy.get(), None, None, saved_r)
    check_all((y, h_n, c_n, *grads[:3], *grads[3]), (yr, hr, cr, *grads_r[:3], *grads_r[3]))


@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("states", [True, False])
def test_lstm_cell_matches_reference(cp, rng, unbatched, states):
    batch = () if unbatched else (3,)
    x = randn(rng, *batch, 6)
    h, c = (randn(rng, *batch, 8), randn(rng, *batch, 8)) if states else (None, None)
    w = weights(rng, 6, 8)
    h_n, c_n, saved = ops.lstm_cell(*dev(cp, x, h, c), *dev(cp, *w), return_saved=True)
    hr, cr, saved_r = ref.lstm_cell(x, h, c, *w, return_saved=True)
    check_all((h_n, c_n), (hr, cr))
    dh, dc = randn(rng, *batch, 8), randn(rng, *batch, 8)
    grads = ops.lstm_cell_backward(*dev(cp, dh, dc), saved)
    check_all(grads, ref.lstm_cell_backward(dh, dc, saved_r))
    grads = ops.lstm_cell_backward(None, cp.asarray(dc), saved)
    check_all(grads, ref.lstm_cell_backward(None, dc, saved_r))


def test_lstm_matches_torch(cp, rng):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    steps, batch, inputs, hidden = 9, 4, 6, 10
    layer = torch.nn.LSTM(inputs, hidden, batch_first=True).cuda()
    w = tuple(
        p.detach().cpu().numpy()
        for p in (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0)
    )
    x = randn(rng, batch, steps, inputs)
    xt = torch.tensor(x, device="cuda", requires_grad=True)
    yt, _ = layer(xt)
    dy = randn(rng, *yt.shape)
    yt.backward(torch.tensor(dy, device="cuda"))
    y, _, saved = ops.lstm(
        cp.asarray(x), None, None, dev(cp, *w), batch_first=True, return_saved=True
    )
    check(y, yt.detach().cpu().numpy())
    dx, _, _, (dw_ih, dw_hh, db_ih, _) = ops.lstm_backward(cp.asarray(dy), None, None, saved)
    check(dx, xt.grad.cpu().numpy())
    check(dw_ih, layer.weight_ih_l0.grad.cpu().numpy())
    check(dw_hh, layer.weight_hh_l0.grad.cpu().numpy())
    check(db_ih, layer.bias_ih_l0.grad.cpu().numpy())


# ---- errors ---------------------------------------------------------------------------------


def test_dtype_and_device_errors(cp, rng):
    x, w = randn(rng, 3, 2, 4), weights(rng, 4, 5)
    with pytest.raises(TypeError, match="float32"):
        ops.lstm(cp.asarray(x, dtype=cp.float64), None, None, dev(cp, *w))
    with pytest.raises(TypeError, match="CuPy"):
        ops.lstm(cp.asarray(x), None, None, w)
    with pytest.raises(TypeError, match="x must be a CuPy array, got None"):
        ops.lstm(None, None, None, dev(cp, *w))
    _, _, saved_gpu = ops.lstm(cp.asarray(x), None, None, dev(cp, *w), return_saved=True)
    _, _, saved_cpu = ops.lstm(x, None, None, w, return_saved=True)
    with pytest.raises(TypeError, match="CuPy arrays like the forward"):
        ops.lstm_backward(randn(rng, 3, 2, 5), None, None, saved_gpu)
    with pytest.raises(TypeError, match="NumPy arrays like the forward"):
        ops.lstm_backward(cp.asarray(randn(rng, 3, 2, 5)), None, None, saved_cpu)


def test_graph_replays_match_direct_launches(cp, rng, monkeypatch):
    """A layer replayed as a cached CUDA graph gives the launches' results bit for bit, over
    repeated calls with new values in the same input buffers (replays of the graph captured by the
    first call, where CuPy's pool hands the outputs the same memory again)."""
    T, B, n_in, H = 6, 3, 5, 7
    w = dev(cp, *weights(rng, n_in, H))
    x, h0, c0, dy = cp.empty((T, B, n_in), cp.float32), cp.empty((B, H), cp.float32), None, None
    for _ in range(3):
        x[...] = cp.asarray(randn(rng, T, B, n_in))
        h0[...] = cp.asarray(randn(rng, B, H))
        dy = cp.asarray(randn(rng, T, B, H))
        results = {}
        for graph in ("0", "1"):
            monkeypatch.setenv("EMBER_CUDA_LSTM_GRAPH", graph)
            y, (h_n, c_n), saved = ops.lstm(x, h0, c0, w, return_saved=True)
            dx, dh0, dc0, dw = ops.lstm_backward(dy, None, None, saved)
            results[graph] = [a.get() for a in (y, h_n, c_n, dx, dh0, dc0, *dw)]
        for direct, replayed in zip(results["0"], results["1"], strict=True):
            np.testing.assert_array_equal(replayed, direct)
    monkeypatch.setenv("EMBER_CUDA_LSTM_GRAPH", "yes")
    with pytest.raises(ValueError, match="EMBER_CUDA_LSTM_GRAPH must be 0 or 1"):
        ops.lstm(x, None, None, w)


BAD_CALLS = {
    "x-rank": lambda a: ops.lstm(a(3), None, None, (a(20, 3), a(20, 5), None, None)),
    "w_ih-shape": lambda a: ops.lstm(a(3, 2, 4), None, None, (a(20, 3), a(20, 5), None, None)),
    "w_hh-shape": lambda a: ops.lstm(a(3, 2, 4), None, None, (a(20, 4), a(20, 4), None, None)),
    "bias-shape": lambda a: ops.lstm(a(3, 2, 4), None, None, (a(20, 4), a(20, 5), a(19), None)),
    "h0-shape": lambda a: ops.lstm(a(3, 2, 4), a(3, 5), None, (a(20, 4), a(20, 5), None, None)),
    "cell-c-shape": lambda a: ops.lstm_cell(a(2, 4), None, a(2, 4), a(20, 4), a(20, 5)),
    "dy-shape": lambda a: ops.lstm_backward(a(3, 2, 4), None, None, saved_from(a)),
}


def saved_from(a):
    weights = (a(20, 4), a(20, 5), None, None)
    return ops.lstm(a(3, 2, 4), None, None, weights, return_saved=True)[2]


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_errors_are_those_of_the_cpu(cp, call):
    """The CuPy branches run the same checks: the same exception with the same message."""
    with pytest.raises(Exception) as on_cpu:
        call(lambda *shape: np.ones(shape, np.float32))
    with pytest.raises(on_cpu.type) as on_gpu:
        call(lambda *shape: cp.ones(shape, dtype=cp.float32))
    assert str(on_gpu.value) == str(on_cpu.value)


# ---- the example ----------------------------------------------------------------------------


def test_lstm_example_runs_on_the_gpu():
    example = Path(__file__).resolve().parent.parent / "examples" / "lstm_charlm.py"
    out = subprocess.run(
        [sys.executable, str(example), "--smoke", "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].startswith("loss: ")
