"""ember.ops.lstm / lstm_cell and their backwards against ember.ref (on every ISA path) and, when
it is importable, torch.nn.LSTM / LSTMCell; the reference's gradients against finite
differences."""

# ruff: noqa: E741  (I is the input size, as everywhere in ember)

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import ember
from conftest import randn, rel_err
from ember import ops, ref

TOL = 1e-5
GRAD_TOL = 1e-4  # the weight gradients sum over T * B rows


def make(rng, T, B, I, H, *, bias=(True, True), states=(True, True), dtype=np.float32):
    """x (T, B, I), h0, c0, weights; biases and states None where asked."""
    scale = 1.0 / np.sqrt(H)
    x = randn(rng, T, B, I, dtype=dtype)
    h0 = randn(rng, B, H, dtype=dtype) if states[0] else None
    c0 = randn(rng, B, H, dtype=dtype) if states[1] else None
    w_ih = (randn(rng, 4 * H, I) * scale).astype(dtype)
    w_hh = (randn(rng, 4 * H, H) * scale).astype(dtype)
    b_ih = (randn(rng, 4 * H) * scale).astype(dtype) if bias[0] else None
    b_hh = (randn(rng, 4 * H) * scale).astype(dtype) if bias[1] else None
    return x, h0, c0, (w_ih, w_hh, b_ih, b_hh)


def f64(a):
    return None if a is None else a.astype(np.float64)


def check_close(got, want, tol):
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
        else:
            assert g.dtype == np.float32
            assert rel_err(g, w) < tol


def run_layer(rng, x, h0, c0, weights, batch_first=False, dy=None):
    """ops.lstm forward and backward against ref.lstm on the same inputs (in float64)."""
    y, (h_n, c_n), saved = ops.lstm(x, h0, c0, weights, batch_first=batch_first, return_saved=True)
    want_y, (want_h, want_c), want_saved = ref.lstm(
        f64(x), f64(h0), f64(c0), tuple(map(f64, weights)), batch_first=batch_first,
        return_saved=True,
    )  # fmt: skip
    check_close((y, h_n, c_n), (want_y, want_h, want_c), TOL)
    dy = randn(rng, *y.shape) if dy is None else dy
    dh_n, dc_n = randn(rng, *h_n.shape), randn(rng, *c_n.shape)
    dx, dh0, dc0, dws = ops.lstm_backward(dy, dh_n, dc_n, saved)
    want = ref.lstm_backward(f64(dy), f64(dh_n), f64(dc_n), want_saved)
    check_close((dx, dh0, dc0), want[:3], TOL)
    check_close(dws, want[3], GRAD_TOL)
    return saved


# ---- the layer against the reference ---------------------------------------------------------


@pytest.mark.parametrize(
    "T,B,I,H",
    [
        (1, 1, 1, 1),
        (3, 2, 5, 7),
        (5, 1, 3, 8),
        (2, 3, 16, 9),
        (4, 6, 9, 16),
        (2, 7, 20, 17),
        (3, 13, 40, 33),
        (2, 20, 33, 70),
        (2, 150, 7, 20),  # more rows than a GEMM row block (MC)
        (2, 7, 5, 401),  # recurrent depths H and 4H over KC; wide unit blocks (A packed)
    ],
)
@pytest.mark.parametrize("batch_first", [False, True])
def test_layer_against_ref(isa, rng, T, B, I, H, batch_first):
    x, h0, c0, weights = make(rng, T, B, I, H)
    if batch_first:
        x = np.ascontiguousarray(x.swapaxes(0, 1))
    run_layer(rng, x, h0, c0, weights, batch_first)


@pytest.mark.parametrize("bias", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("states", [(False, False), (True, False), (False, True)])
def test_layer_none_biases_and_states(isa, rng, bias, states):
    x, h0, c0, weights = make(rng, 4, 3, 5, 12, bias=bias, states=states)
    run_layer(rng, x, h0, c0, weights)


def test_layer_without_dh_dc_and_dy(isa, rng):
    x, h0, c0, weights = make(rng, 3, 2, 4, 9)
    _, _, saved = ops.lstm(x, h0, c0, weights, return_saved=True)
    _, _, want_saved = ref.lstm(
        f64(x), f64(h0), f64(c0), tuple(map(f64, weights)), return_saved=True
    )
    dy = randn(rng, 3, 2, 9)
    got = ops.lstm_backward(dy, None, None, saved)
    want = ref.lstm_backward(f64(dy), None, None, want_saved)
    check_close(got[:3], want[:3], TOL)
    check_close(got[3], want[3], GRAD_TOL)
    dh_n = randn(rng, 2, 9)
    got = ops.lstm_backward(None, dh_n, None, saved)
    want = ref.lstm_backward(None, f64(dh_n), None, want_saved)
    check_close(got[:3], want[:3], TOL)


def test_layer_threads_grid(isa, rng):
    """Sizes and thread counts that cut (B, H) by rows, by units and both (2 x 2)."""
    before = ember.get_num_threads()
    try:
        for threads, (B, H) in [(4, (96, 64)), (3, (64, 70)), (2, (64, 48)), (1, (9, 40))]:
            ember.set_num_threads(threads)
            x, h0, c0, weights = make(rng, 3, B, 8, H)
            run_layer(rng, x, h0, c0, weights)
    finally:
        ember.set_num_threads(before)


def test_layer_non_contiguous(isa, rng):
    T, B, I, H = 4, 5, 6, 11
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh) = make(rng, T, B, 2 * I, H)
    x = x[:, :, ::2]  # every row strided
    h0 = np.asfortranarray(h0)
    c0 = randn(rng, H, B).T  # a transpose: columns not contiguous
    w_ih = np.asfortranarray(w_ih[:, ::2])
    w_hh = (randn(rng, H, 4 * H) / np.float32(np.sqrt(H))).T
    b_ih = np.repeat(b_ih, 2)[::2]
    dy = randn(rng, H, B, T).T  # (T, B, H) with a column stride
    run_layer(rng, x, h0, c0, (w_ih, w_hh, b_ih, b_hh), dy=dy)
    # x whose rows are not evenly spaced over (T, B): the op copies it
    wide = randn(rng, T, B + 1, I)[:, :B]
    run_layer(rng, wide, h0, c0, (w_ih, w_hh, b_ih, b_hh))
    # time reversed: negative strides, read in place with B = 1
    run_layer(rng, randn(rng, T, 1, I)[::-1], h0[:1], c0[:1], (w_ih, w_hh, b_ih, b_hh))
    run_layer(rng, randn(rng, T, B, I)[::-1], h0, c0, (w_ih, w_hh, b_ih, b_hh))
    # broadcast (zero strides): every row of x, and of dy, the same
    x_b = np.broadcast_to(randn(rng, I), (T, B, I))
    run_layer(
        rng, x_b, h0, c0, (w_ih, w_hh, b_ih, b_hh), dy=np.broadcast_to(randn(rng, H), (T, B, H))
    )
    # batch_first given as a transposed view: time-major storage
    x_bf = randn(rng, T, B, I).swapaxes(0, 1)
    run_layer(rng, x_bf, h0, c0, (w_ih, w_hh, b_ih, b_hh), batch_first=True)


def test_layer_unbatched(isa, rng):
    x, h0, c0, weights = make(rng, 5, 1, 4, 10)
    for batch_first in (False, True):
        run_layer(rng, x[:, 0], h0[0], c0[0], weights, batch_first)


def test_layer_empty(isa, rng):
    x, h0, c0, weights = make(rng, 3, 0, 4, 10)
    run_layer(rng, x, h0, c0, weights)
    x, h0, c0, weights = make(rng, 0, 3, 4, 10)
    y, (h_n, c_n), saved = ops.lstm(x, h0, c0, weights, return_saved=True)
    assert y.shape == (0, 3, 10)
    np.testing.assert_array_equal(h_n, h0)
    np.testing.assert_array_equal(c_n, c0)
    dh_n, dc_n = randn(rng, 3, 10), randn(rng, 3, 10)
    dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh) = ops.lstm_backward(
        np.zeros((0, 3, 10), np.float32), dh_n, dc_n, saved
    )
    assert dx.shape == (0, 3, 4)
    np.testing.assert_array_equal(dh0, dh_n)
    np.testing.assert_array_equal(dc0, dc_n)
    for g in (dw_ih, dw_hh, db_ih, db_hh):
        assert not g.any()
    y, (h_n, _) = ops.lstm(x, None, None, weights)
    assert y.shape == (0, 3, 10) and not h_n.any()


def test_layer_leaves_inputs_alone_and_backward_repeats(isa, rng):
    x, h0, c0, weights = make(rng, 4, 3, 5, 9)
    copies = [a.copy() for a in (x, h0, c0, *weights)]
    saved = run_layer(rng, x, h0, c0, weights)
    for a, b in zip((x, h0, c0, *weights), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    dy = randn(rng, 4, 3, 9)
    first = ops.lstm_backward(dy, None, None, saved)
    second = ops.lstm_backward(dy, None, None, saved)
    for a, b in zip((*first[:3], *first[3]), (*second[:3], *second[3]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_layer_from_several_threads(rng):
    x, h0, c0, weights = make(rng, 6, 8, 12, 40)
    want = ops.lstm(x, h0, c0, weights)[0]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ops.lstm(x, h0, c0, weights)[0], range(8)))
    for y in results:
        np.testing.assert_array_equal(y, want)


def test_float64_through_ref(rng):
    x, h0, c0, weights = make(rng, 3, 2, 4, 5, dtype=np.float64)
    y, (h_n, c_n), saved = ops.lstm(x, h0, c0, weights, return_saved=True)
    want_y, (want_h, _), want_saved = ref.lstm(x, h0, c0, weights, return_saved=True)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, want_y)
    dy = randn(rng, 3, 2, 5, dtype=np.float64)
    got = ops.lstm_backward(dy, None, None, saved)
    np.testing.assert_array_equal(got[0], ref.lstm_backward(dy, None, None, want_saved)[0])
    h, c, saved = ops.lstm_cell(x[0], h0, c0, *weights, return_saved=True)
    assert h.dtype == np.float64
    assert ops.lstm_cell_backward(h, c, saved)[0].dtype == np.float64


# ---- the cell -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "B,I,H", [(1, 1, 1), (2, 3, 7), (3, 9, 8), (5, 17, 15), (4, 8, 16), (7, 31, 33)]
)
def test_cell_against_ref(isa, rng, B, I, H):
    x, h0, c0, weights = make(rng, 1, B, I, H)
    x = x[0]
    h, c, saved = ops.lstm_cell(x, h0, c0, *weights, return_saved=True)
    want_h, want_c, want_saved = ref.lstm_cell(
        x.astype(np.float64), f64(h0), f64(c0), *map(f64, weights), return_saved=True
    )
    check_close((h, c), (want_h, want_c), TOL)
    dh, dc = randn(rng, B, H), randn(rng, B, H)
    got = ops.lstm_cell_backward(dh, dc, saved)
    want = ref.lstm_cell_backward(f64(dh), f64(dc), want_saved)
    check_close(got, want, GRAD_TOL)


@pytest.mark.parametrize("bias", [(False, False), (True, False), (False, True)])
def test_cell_none_and_unbatched(isa, rng, bias):
    x, h0, c0, weights = make(rng, 1, 1, 6, 10, bias=bias)
    for xs, hs, cs in [(x[0], None, None), (x[0, 0], h0[0], c0[0]), (x[0, 0], None, c0[0])]:
        h, c, saved = ops.lstm_cell(xs, hs, cs, *weights, return_saved=True)
        want_h, want_c, want_saved = ref.lstm_cell(
            f64(xs), f64(hs), f64(cs), *map(f64, weights), return_saved=True
        )
        check_close((h, c), (want_h, want_c), TOL)
        dh = randn(rng, *h.shape)
        got = ops.lstm_cell_backward(dh, None, saved)
        want = ref.lstm_cell_backward(f64(dh), None, want_saved)
        check_close(got, want, GRAD_TOL)
        assert (got[5] is None) == (bias == (False, False))


def test_cell_is_a_one_step_layer(rng):
    x, h0, c0, weights = make(rng, 1, 4, 6, 20)
    h, c = ops.lstm_cell(x[0], h0, c0, *weights)
    y, (h_n, c_n) = ops.lstm(x, h0, c0, weights)
    np.testing.assert_array_equal(h, y[0])
    np.testing.assert_array_equal(c, c_n)


# ---- against PyTorch ------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_against_torch(isa, rng, batch_first, bias):
    torch = pytest.importorskip("torch")
    T, B, I, H = 6, 5, 13, 24
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh) = make(rng, T, B, I, H, bias=(bias, bias))
    if batch_first:
        x = np.ascontiguousarray(x.swapaxes(0, 1))
    m = torch.nn.LSTM(I, H, bias=bias, batch_first=batch_first).double()
    with torch.no_grad():
        for name, w in [("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh)] + (
            [("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)] if bias else []
        ):
            getattr(m, name).copy_(torch.from_numpy(w))
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    th0 = torch.tensor(h0[None], dtype=torch.float64, requires_grad=True)
    tc0 = torch.tensor(c0[None], dtype=torch.float64, requires_grad=True)
    ty, (th, tc) = m(tx, (th0, tc0))

    y, (h_n, c_n), saved = ops.lstm(
        x, h0, c0, (w_ih, w_hh, b_ih, b_hh), batch_first=batch_first, return_saved=True
    )
    check_close(
        (y, h_n, c_n), (ty.detach().numpy(), th[0].detach().numpy(), tc[0].detach().numpy()), TOL
    )

    dy, dh_n, dc_n = randn(rng, *y.shape), randn(rng, B, H), randn(rng, B, H)
    loss = (ty * torch.from_numpy(dy)).sum() + (th[0] * torch.from_numpy(dh_n)).sum()
    loss = loss + (tc[0] * torch.from_numpy(dc_n)).sum()
    loss.backward()
    dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh) = ops.lstm_backward(dy, dh_n, dc_n, saved)
    check_close(
        (dx, dh0[None], dc0[None]), (tx.grad.numpy(), th0.grad.numpy(), tc0.grad.numpy()), TOL
    )
    check_close(
        (dw_ih, dw_hh), (m.weight_ih_l0.grad.numpy(), m.weight_hh_l0.grad.numpy()), GRAD_TOL
    )
    if bias:
        check_close(
            (db_ih, db_hh), (m.bias_ih_l0.grad.numpy(), m.bias_hh_l0.grad.numpy()), GRAD_TOL
        )
    else:
        assert db_ih is None and db_hh is None


def test_cell_against_torch(isa, rng):
    torch = pytest.importorskip("torch")
    B, I, H = 3, 7, 19
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh) = make(rng, 1, B, I, H)
    m = torch.nn.LSTMCell(I, H).double()
    with torch.no_grad():
        for p, w in zip(m.parameters(), (w_ih, w_hh, b_ih, b_hh), strict=True):
            p.copy_(torch.from_numpy(w))
    tx = torch.tensor(x[0], dtype=torch.float64, requires_grad=True)
    th0 = torch.tensor(h0, dtype=torch.float64, requires_grad=True)
    tc0 = torch.tensor(c0, dtype=torch.float64, requires_grad=True)
    th, tc = m(tx, (th0, tc0))
    h, c, saved = ops.lstm_cell(x[0], h0, c0, w_ih, w_hh, b_ih, b_hh, return_saved=True)
    check_close((h, c), (th.detach().numpy(), tc.detach().numpy()), TOL)
    dh, dc = randn(rng, B, H), randn(rng, B, H)
    ((th * torch.from_numpy(dh)).sum() + (tc * torch.from_numpy(dc)).sum()).backward()
    dx, dh0, dc0, dw_ih, dw_hh, db = ops.lstm_cell_backward(dh, dc, saved)
    check_close((dx, dh0, dc0), (tx.grad.numpy(), th0.grad.numpy(), tc0.grad.numpy()), TOL)
    check_close((dw_ih, dw_hh), (m.weight_ih.grad.numpy(), m.weight_hh.grad.numpy()), GRAD_TOL)
    check_close((db, db), (m.bias_ih.grad.numpy(), m.bias_hh.grad.numpy()), GRAD_TOL)


# ---- the reference's gradients against finite differences ------------------------------------


def numeric_grads(loss, arrays, eps=1e-6):
    """Central differences of loss() w.r.t. every element of each array (perturbed in place)."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + eps
            up = loss()
            a[idx] = old - eps
            down = loss()
            a[idx] = old
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("batch_first", [False, True])
def test_ref_layer_gradients(rng, batch_first):
    T, B, I, H = 3, 2, 3, 2
    x, h0, c0, weights = make(rng, T, B, I, H, dtype=np.float64)
    if batch_first:
        x = np.ascontiguousarray(x.swapaxes(0, 1))
    dy = randn(rng, *x.shape[:2], H, dtype=np.float64)
    dh_n, dc_n = randn(rng, B, H, dtype=np.float64), randn(rng, B, H, dtype=np.float64)

    def loss():
        y, (h, c) = ref.lstm(x, h0, c0, weights, batch_first=batch_first)
        return (y * dy).sum() + (h * dh_n).sum() + (c * dc_n).sum()

    _, _, saved = ref.lstm(x, h0, c0, weights, batch_first=batch_first, return_saved=True)
    dx, dh0, dc0, (dw_ih, dw_hh, db_ih, db_hh) = ref.lstm_backward(dy, dh_n, dc_n, saved)
    want = numeric_grads(loss, [x, h0, c0, *weights])
    for got, w in zip((dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-8)


def test_ref_cell_gradients(rng):
    B, I, H = 2, 3, 3
    x, h0, c0, weights = make(rng, 1, B, I, H, dtype=np.float64)
    x = x[0]
    dh, dc = randn(rng, B, H, dtype=np.float64), randn(rng, B, H, dtype=np.float64)

    def loss():
        h, c = ref.lstm_cell(x, h0, c0, *weights)
        return (h * dh).sum() + (c * dc).sum()

    _, _, saved = ref.lstm_cell(x, h0, c0, *weights, return_saved=True)
    got = ref.lstm_cell_backward(dh, dc, saved)
    want = numeric_grads(loss, [x, h0, c0, *weights[:3]])
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)


# ---- bad input -----------------------------------------------------------------------------


def test_bad_inputs(rng):
    x, h0, c0, weights = make(rng, 3, 2, 4, 5)
    w_ih, w_hh, b_ih, b_hh = weights
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.lstm(x.astype(np.int32), h0, c0, weights)
    with pytest.raises(TypeError, match="one dtype"):
        ops.lstm(x, h0.astype(np.float64), c0, weights)
    with pytest.raises(TypeError, match="NumPy array"):
        ops.lstm(x.tolist(), h0, c0, weights)
    with pytest.raises(TypeError, match="x must be a NumPy array"):
        ops.lstm(None, h0, c0, weights)
    with pytest.raises(TypeError, match="weights"):
        ops.lstm(x, h0, c0, (w_ih, w_hh))
    with pytest.raises(ValueError, match="x must be"):
        ops.lstm(x[None], h0, c0, weights)
    with pytest.raises(ValueError, match=r"w_ih must have shape \(4\*H, I\) = \(20, 3\)"):
        ops.lstm(x[:, :, :3], h0, c0, weights)
    with pytest.raises(ValueError, match="w_hh must have shape"):
        ops.lstm(x, h0, c0, (w_ih, w_hh[:19], b_ih, b_hh))
    with pytest.raises(ValueError, match="w_hh must be 2-D"):
        ops.lstm(x, h0, c0, (w_ih, w_hh[None], b_ih, b_hh))
    with pytest.raises(ValueError, match=r"b_hh must have shape \(20,\)"):
        ops.lstm(x, h0, c0, (w_ih, w_hh, b_ih, b_hh[:-1]))
    with pytest.raises(ValueError, match=r"h0 must have shape \(2, 5\)"):
        ops.lstm(x, h0[:1], c0, weights)
    with pytest.raises(ValueError, match=r"c0 must have shape \(3, 5\)"):
        ops.lstm(x, None, c0, weights, batch_first=True)
    with pytest.raises(ValueError, match=r"h must have shape \(2, 5\)"):
        ops.lstm_cell(x[0], h0.T, c0, *weights)
    with pytest.raises(ValueError, match="x must be"):
        ops.lstm_cell(x, h0, c0, *weights)


def test_bad_backward_inputs(rng):
    x, h0, c0, weights = make(rng, 3, 2, 4, 5)
    _, _, saved = ops.lstm(x.swapaxes(0, 1), h0, c0, weights, batch_first=True, return_saved=True)
    _, _, cell_saved = ops.lstm_cell(x[0], h0, c0, *weights, return_saved=True)
    dy = randn(rng, 2, 3, 5)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 5\)"):
        ops.lstm_backward(dy.swapaxes(0, 1), None, None, saved)
    with pytest.raises(TypeError, match="float32 like the forward"):
        ops.lstm_backward(dy.astype(np.float64), None, None, saved)
    with pytest.raises(ValueError, match=r"dh_n must have shape \(2, 5\)"):
        ops.lstm_backward(dy, h0[:1], None, saved)
    with pytest.raises(TypeError, match="saved must come from lstm"):
        ops.lstm_backward(dy, None, None, (1, 2))
    with pytest.raises(ValueError, match="use lstm_cell_backward"):
        ops.lstm_backward(dy, None, None, cell_saved)
    with pytest.raises(ValueError, match="use lstm_backward"):
        ops.lstm_cell_backward(h0, c0, saved)
    with pytest.raises(ValueError, match=r"dc_next must have shape \(2, 5\)"):
        ops.lstm_cell_backward(h0, c0[:1], cell_saved)


def test_extension_rechecks(rng):
    """The compiled wrappers refuse what ember.ops would have refused."""
    x, h0, c0, (w_ih, w_hh, b_ih, b_hh) = make(rng, 3, 2, 4, 5)
    with pytest.raises(ValueError, match="w_ih must have shape"):
        ember._C.lstm_forward(x, h0, c0, w_ih[:, :3], w_hh, b_ih, b_hh, False, False)
    with pytest.raises(TypeError, match="float32"):
        ember._C.lstm_forward(x, h0.astype(np.float64), c0, w_ih, w_hh, b_ih, b_hh, False, False)
    with pytest.raises(ValueError, match="time- or batch-major"):
        ember._C.lstm_forward(
            randn(rng, 3, 3, 4)[:, :2], h0, c0, w_ih, w_hh, None, None, False, False
        )
    _, _, _, bufs = ember._C.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, False, True)
    with pytest.raises(ValueError, match="gates must have shape"):
        ember._C.lstm_backward(
            randn(rng, 3, 2, 5), None, None, x, w_ih, w_hh, True, bufs[0], bufs[1][1:], *bufs[2:]
        )
