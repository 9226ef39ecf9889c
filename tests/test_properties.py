"""Property tests: every ember.ops family against ember.ref (float64) on shapes, parameters and
memory layouts hypothesis draws — transposed and permuted axes, negative steps, every-other
element, empty dimensions. Derandomized (the profile in conftest.py), so CI sees the same
examples every run."""

# ruff: noqa: E741  (I is the input size, as everywhere in ember)

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ember import ops, ref

# each test is a few milliseconds an example: 150 examples keep the file near 20 seconds
# (.ci/sanitize asks for fewer: the sanitized kernels run several times slower)
PROPERTY = settings(
    max_examples=int(os.environ.get("EMBER_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TOL = 2e-5


@st.composite
def arrays(draw, shape, dtype=np.float32):
    """A float array of `shape` with values N(0, 1) in a drawn memory layout: its axes stored in
    any order, each walked forwards or backwards, with a step of 1 or 2."""
    nd = len(shape)
    order = draw(st.permutations(range(nd)))
    steps = [draw(st.sampled_from([1, 1, 2, -1, -2])) for _ in range(nd)]
    seed = draw(st.integers(0, 2**32 - 1))
    stored = tuple(shape[a] * abs(steps[a]) for a in order)
    base = np.random.default_rng(seed).standard_normal(stored).astype(dtype)
    view = base.transpose(np.argsort(order))[(*(slice(None, None, s) for s in steps), ...)]
    assert view.shape == tuple(shape)
    return view


def f64(*xs):
    return tuple(None if x is None else np.asarray(x, np.float64) for x in xs)


def close(got, want, tol=TOL):
    """got (float32) agrees with the float64 reference to tol relative to the largest value."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(1.0, float(np.abs(want[np.isfinite(want)]).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


# ---- GEMM ----------------------------------------------------------------------------------------


@PROPERTY
@given(
    m=st.integers(0, 40),
    n=st.integers(0, 40),
    k=st.integers(0, 70),
    trans_a=st.booleans(),
    trans_b=st.booleans(),
    alpha=st.sampled_from([1.0, 0.5, -2.0, 0.0]),
    beta=st.sampled_from([0.0, 1.0, 3.0]),
    c_shape=st.sampled_from(["full", "row", "column", "scalar", "none"]),
    data=st.data(),
)
def test_gemm(m, n, k, trans_a, trans_b, alpha, beta, c_shape, data):
    a = data.draw(arrays((k, m) if trans_a else (m, k)))
    b = data.draw(arrays((n, k) if trans_b else (k, n)))
    shape = {"full": (m, n), "row": (n,), "column": (m, 1), "scalar": (), "none": None}[c_shape]
    c = None if shape is None else data.draw(arrays(shape))
    kw = dict(trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    got = ops.gemm(a, b, c=c, **kw)
    close(got, ref.gemm(*f64(a, b), c=f64(c)[0], **kw))


@PROPERTY
@given(
    batch_a=st.lists(st.integers(1, 3), max_size=2),
    batch_b=st.lists(st.integers(1, 3), max_size=2),
    m=st.integers(0, 9),
    n=st.integers(0, 9),
    k=st.integers(0, 20),
    vector=st.sampled_from([None, "a", "b"]),
    data=st.data(),
)
def test_matmul(batch_a, batch_b, m, n, k, vector, data):
    # broadcastable batch shapes: where both have a dimension, one of them is 1 or they agree
    for i in range(1, min(len(batch_a), len(batch_b)) + 1):
        if batch_a[-i] != batch_b[-i]:
            batch_b[-i] = 1
    a_shape = (k,) if vector == "a" else (*batch_a, m, k)
    b_shape = (k,) if vector == "b" else (*batch_b, k, n)
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    close(ops.matmul(a, b), np.matmul(*f64(a, b)))


# ---- convolution ---------------------------------------------------------------------------------


@st.composite
def windows(draw, max_kernel=4):
    """An image (N, C, H, W) and a window that fits it (kernel, stride, padding, dilation)."""
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    spans = [d * (r - 1) + 1 - 2 * p for r, d, p in zip(kernel, dilation, padding, strict=True)]
    h, w = (draw(st.integers(max(1, s), max(1, s) + 6)) for s in spans)
    return (n, c, h, w), dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)


@PROPERTY
@given(geometry=windows(), unbatched=st.booleans(), data=st.data())
def test_im2col_col2im(geometry, unbatched, data):
    shape, kw = geometry
    if unbatched:
        shape = shape[1:]
    x = data.draw(arrays(shape))
    cols = ops.im2col(x, **kw)
    close(cols, ref.im2col(*f64(x), **kw))
    dcols = data.draw(arrays(cols.shape))
    close(ops.col2im(dcols, shape, **kw), ref.col2im(*f64(dcols), shape, **kw))


@PROPERTY
@given(
    geometry=windows(),
    groups=st.integers(1, 3),
    kg=st.integers(1, 3),
    bias=st.booleans(),
    same=st.booleans(),
    data=st.data(),
)
def test_conv2d_forward_and_backward(geometry, groups, kg, bias, same, data):
    (n, cg, h, w), kw = geometry
    r, s = kw.pop("kernel_size")
    if same:  # PyTorch's 'same' (stride 1 only)
        kw.update(stride=1, padding="same")
    x = data.draw(arrays((n, cg * groups, h, w)))
    wt = data.draw(arrays((kg * groups, cg, r, s)))
    b = data.draw(arrays((kg * groups,))) if bias else None
    kw["groups"] = groups
    y = ops.conv2d(x, wt, b, **kw)
    close(y, ref.conv2d(*f64(x, wt, b), **kw))
    dy = data.draw(arrays(y.shape))
    for got, want in zip(
        ops.conv2d_backward(dy, x, wt, **kw),
        ref.conv2d_backward(*f64(dy, x, wt), **kw),
        strict=True,
    ):
        close(got, want, 1e-4)


def test_depthwise_is_drawn():
    """The depthwise path (groups == C, one filter per channel) is one of the drawn geometries:
    cg = 1 with groups = C. This pins one such case so it never drops out of the sample."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)[:, :, ::-1]
    wt = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    close(ops.conv2d(x, wt, padding=1, groups=3), ref.conv2d(*f64(x, wt), padding=1, groups=3))


# ---- pooling -------------------------------------------------------------------------------------


@st.composite
def pool_windows(draw, dilation=True):
    """An image with C, H, W > 0 and a pooling window over it (padding <= half the kernel)."""
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    spans = [d * (k - 1) + 1 - 2 * p for k, d, p in zip(kernel, dil, padding, strict=True)]
    h, w = (draw(st.integers(max(1, s), max(1, s) + 7)) for s in spans)
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=draw(st.booleans()))
    if dilation:
        kw["dilation"] = dil
    return (n, c, h, w), kw


@PROPERTY
@given(geometry=pool_windows(), data=st.data())
def test_max_pool2d(geometry, data):
    shape, kw = geometry
    x = data.draw(arrays(shape))
    y, idx = ops.max_pool2d(x, **kw)
    want_y, want_idx = ref.max_pool2d(*f64(x), **kw)
    np.testing.assert_array_equal(y, want_y.astype(np.float32))
    np.testing.assert_array_equal(idx, want_idx)
    dy = data.draw(arrays(y.shape))
    close(ops.max_pool2d_backward(dy, idx, shape), ref.max_pool2d_backward(*f64(dy), idx, shape))


@PROPERTY
@given(
    geometry=pool_windows(dilation=False),
    count_include_pad=st.booleans(),
    divisor_override=st.sampled_from([None, None, 3, -2]),
    data=st.data(),
)
def test_avg_pool2d(geometry, count_include_pad, divisor_override, data):
    shape, kw = geometry
    kw.update(count_include_pad=count_include_pad, divisor_override=divisor_override)
    x = data.draw(arrays(shape))
    y = ops.avg_pool2d(x, **kw)
    close(y, ref.avg_pool2d(*f64(x), **kw))
    dy = data.draw(arrays(y.shape))
    close(ops.avg_pool2d_backward(dy, shape, **kw), ref.avg_pool2d_backward(*f64(dy), shape, **kw))


@PROPERTY
@given(
    n=st.integers(0, 2),
    c=st.integers(0, 3),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    out=st.tuples(st.one_of(st.none(), st.integers(0, 8)), st.integers(0, 8)),
    data=st.data(),
)
def test_adaptive_avg_pool2d(n, c, h, w, out, data):
    x = data.draw(arrays((n, c, h, w)))
    y = ops.adaptive_avg_pool2d(x, out)
    close(y, ref.adaptive_avg_pool2d(*f64(x), out))
    dy = data.draw(arrays(y.shape))
    close(
        ops.adaptive_avg_pool2d_backward(dy, x.shape),
        ref.adaptive_avg_pool2d_backward(*f64(dy), x.shape),
    )


# ---- LSTM ----------------------------------------------------------------------------------------


@PROPERTY
@given(
    T=st.integers(0, 5),
    B=st.integers(0, 3),
    I=st.integers(1, 6),
    H=st.integers(1, 6),
    batch_first=st.booleans(),
    state=st.booleans(),
    bias=st.booleans(),
    data=st.data(),
)
def test_lstm_forward_and_backward(T, B, I, H, batch_first, state, bias, data):
    x = data.draw(arrays((B, T, I) if batch_first else (T, B, I)))
    h0, c0 = (data.draw(arrays((B, H))), data.draw(arrays((B, H)))) if state else (None, None)
    weights = (
        data.draw(arrays((4 * H, I))),
        data.draw(arrays((4 * H, H))),
        data.draw(arrays((4 * H,))) if bias else None,
        data.draw(arrays((4 * H,))) if bias else None,
    )
    y, (h, c), saved = ops.lstm(x, h0, c0, weights, batch_first=batch_first, return_saved=True)
    want_y, (want_h, want_c), want_saved = ref.lstm(
        *f64(x, h0, c0), f64(*weights), batch_first=batch_first, return_saved=True
    )
    for got, want in ((y, want_y), (h, want_h), (c, want_c)):
        close(got, want)
    dy, dh, dc = data.draw(arrays(y.shape)), data.draw(arrays(h.shape)), data.draw(arrays(c.shape))
    dx, dh0, dc0, dw = ops.lstm_backward(dy, dh, dc, saved)
    want = ref.lstm_backward(*f64(dy, dh, dc), want_saved)
    for got, w in zip((dx, dh0, dc0, *dw), (*want[:3], *want[3]), strict=True):
        if w is None:
            assert got is None
        else:
            close(got, w, 1e-4)


@PROPERTY
@given(B=st.integers(0, 4), I=st.integers(1, 7), H=st.integers(1, 7), data=st.data())
def test_lstm_cell_forward_and_backward(B, I, H, data):
    x, h, c = data.draw(arrays((B, I))), data.draw(arrays((B, H))), data.draw(arrays((B, H)))
    w_ih, w_hh = data.draw(arrays((4 * H, I))), data.draw(arrays((4 * H, H)))
    b_ih, b_hh = data.draw(arrays((4 * H,))), data.draw(arrays((4 * H,)))
    h1, c1, saved = ops.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh, return_saved=True)
    want_h, want_c, want_saved = ref.lstm_cell(
        *f64(x, h, c, w_ih, w_hh, b_ih, b_hh), return_saved=True
    )
    close(h1, want_h)
    close(c1, want_c)
    dh, dc = data.draw(arrays((B, H))), data.draw(arrays((B, H)))
    got = ops.lstm_cell_backward(dh, dc, saved)
    want = ref.lstm_cell_backward(*f64(dh, dc), want_saved)
    for g, w in zip(got, want, strict=True):
        close(g, w, 1e-4)


# ---- attention -----------------------------------------------------------------------------------


@PROPERTY
@given(
    batch_q=st.lists(st.integers(1, 2), max_size=2),
    kv_broadcast=st.booleans(),
    L=st.integers(0, 9),
    S=st.integers(0, 9),
    E=st.integers(1, 8),
    Ev=st.integers(1, 6),
    mask=st.sampled_from(["none", "causal", "bool", "float"]),
    scale=st.sampled_from([None, 0.3]),
    data=st.data(),
)
def test_sdpa_forward_and_backward(batch_q, kv_broadcast, L, S, E, Ev, mask, scale, data):
    batch_kv = [1] * len(batch_q) if kv_broadcast else batch_q
    q = data.draw(arrays((*batch_q, L, E)))
    k = data.draw(arrays((*batch_kv, S, E)))
    v = data.draw(arrays((*batch_kv, S, Ev)))
    kw = dict(scale=scale, is_causal=mask == "causal")
    if mask == "bool":
        allowed = data.draw(arrays((L, S))) > -0.5
        allowed[:, :1] = True  # every row keeps a key (a fully masked row is NaN: tested elsewhere)
        kw["attn_mask"] = allowed
    elif mask == "float":
        kw["attn_mask"] = data.draw(arrays((L, S)))
    out, lse = ops.scaled_dot_product_attention(q, k, v, return_lse=True, **kw)
    want_out, want_lse = ref.scaled_dot_product_attention(*f64(q, k, v), return_lse=True, **kw)
    close(out, want_out)
    if S:
        close(lse, want_lse)
    dout = data.draw(arrays(out.shape))
    got = ops.scaled_dot_product_attention_backward(dout, q, k, v, out, lse, **kw)
    want = ref.scaled_dot_product_attention_backward(*f64(dout, q, k, v, out, lse), **kw)
    for g, w in zip(got, want, strict=True):
        close(g, w, 1e-4)
