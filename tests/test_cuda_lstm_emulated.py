"""One CUDA LSTM layer's own source (cuda/lstm/lstm.cu: the cell kernels, the bias column sums
and ember::cuda::sgemm of cuda/gemm), run on the CPU emulator of cuda/emu against ember.ref:
every test here runs without a GPU. Outputs and workspaces start as NaN, every array sits in a
fenced buffer, time-major and batch-major layouts. tests/test_cuda_lstm.py runs the GPU side."""

import numpy as np
import pytest

import cuda_emu as ce
from ember import ref

pytestmark = pytest.mark.skipif(ce.compiler() is None, reason="no C++ compiler for the emulator")


@pytest.fixture(scope="module")
def dll():
    return ce.build_kernels()


def close(got, want, tol=2e-5):
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() <= tol * max(1.0, float(np.abs(want).max()))


SHAPES = [(5, 3, 7, 9, True, True), (3, 2, 4, 33, False, False)]  # T, B, I, H, bias, h0


@pytest.mark.parametrize("batch_major", [False, True])
@pytest.mark.parametrize("T,B,n_in,H,bias,h0", SHAPES)
@pytest.mark.parametrize("order", ["forward", "random"])
@pytest.mark.parametrize("graph", [False, True], ids=["direct", "graph"])
def test_layer_forward_and_backward(dll, rng, batch_major, T, B, n_in, H, bias, h0, order, graph):
    lead = (B, T) if batch_major else (T, B)
    x = rng.standard_normal(lead + (n_in,)).astype(np.float32)
    w_ih = (0.3 * rng.standard_normal((4 * H, n_in))).astype(np.float32)
    w_hh = (0.3 * rng.standard_normal((4 * H, H))).astype(np.float32)
    b = rng.standard_normal(4 * H).astype(np.float32) if bias else None
    h = rng.standard_normal((B, H)).astype(np.float32) if h0 else None
    c0 = rng.standard_normal((B, H)).astype(np.float32)
    out = ce.lstm_forward(
        dll, x, w_ih, w_hh, b, h, c0, batch_major=batch_major, graph=graph, order=order
    )
    y, (h_n, c_n), saved = ref.lstm(
        x, h, c0, (w_ih, w_hh, b, None), batch_first=batch_major, return_saved=True
    )
    close(out["y"], y)
    close(out["h_n"], h_n)
    close(out["c_n"], c_n)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    dh = rng.standard_normal((B, H)).astype(np.float32)
    dc = rng.standard_normal((B, H)).astype(np.float32)
    dx, dw_ih, dw_hh, db, dh0, dc0 = ce.lstm_backward(
        dll, x, w_ih, w_hh, c0, out, dy, dh, dc, bias=bias, batch_major=batch_major, graph=graph,
        order=order,
    )  # fmt: skip
    want_dx, want_dh0, want_dc0, (want_dw_ih, want_dw_hh, want_db, _) = ref.lstm_backward(
        dy, dh, dc, saved
    )
    close(dx, want_dx)
    close(dw_ih, want_dw_ih)
    close(dw_hh, want_dw_hh)
    close(dh0, want_dh0)
    close(dc0, want_dc0)
    if bias:
        close(db, want_db)
