"""Bad-input cases of ember._C called directly, past ember.ops' validation: the C++ bindings
must refuse on their own anything that would make a kernel read or write out of bounds (see
bad_inputs/__init__.py)."""

# ruff: noqa: E741  (I is the input size, as everywhere in ember)

from __future__ import annotations

import numpy as np

from bad_inputs import bad, f32, good, misaligned, rand, read_only, shapes
from ember import _C

HUGE = 2**40


def empty(*shape, dtype=f32):
    return np.zeros(shape, dtype)


def huge(*shape):
    return np.broadcast_to(np.float32(1.0), shape)


def six_byte_strides(a):
    """An array of a's shape whose strides are 6 bytes: not a whole number of float32s."""
    base = np.zeros(2 * a.size + 1, f32)
    return np.lib.stride_tricks.as_strided(base, a.shape, (6,) * a.ndim)


def array_cases(call, args, names, optional=()):
    """For each float32 array argument in `names`: float64, int32, big-endian, misaligned and
    non-element strides are refused naming it, and None unless it is `optional`."""
    cases = []

    def with_(name, value):
        return lambda: call(**{**args(), name: value})

    for name in names:
        a = args()[name]
        cases += [
            bad(f"{name} float64", with_(name, a.astype(np.float64)), TypeError, name),
            bad(f"{name} int32", with_(name, a.astype(np.int32)), TypeError, name),
            bad(f"{name} big-endian", with_(name, a.astype(">f4")), TypeError, name),
            bad(f"{name} misaligned", with_(name, misaligned(a)), ValueError, name),
        ]
        if name not in optional:
            cases.append(bad(f"{name} None", with_(name, None), TypeError))
        if a.ndim and a.size > 1:
            cases.append(
                bad(
                    f"{name} strides of 6 bytes", with_(name, six_byte_strides(a)), ValueError, name
                )
            )
    return cases


# ---- GEMM --------------------------------------------------------------------------------------


def gemm_cases():
    def args():
        return dict(a=rand(3, 4), b=rand(4, 5), out=np.empty((3, 5), f32))

    a, b = rand(3, 4), rand(4, 5)
    sq = rand(4, 4)
    cases = array_cases(lambda **kw: _C.gemm(**kw), args, ("a", "b", "out"))
    cases += [
        bad("ranks differ", lambda: _C.gemm(rand(2, 3, 4), b, empty(2, 3, 5)), ValueError, "rank"),
        bad("1-D", lambda: _C.gemm(rand(4), rand(4), empty(1)), ValueError, "rank"),
        bad(
            "inner dimensions differ",
            lambda: _C.gemm(a, rand(5, 5), empty(3, 5)),
            ValueError,
            "(5, 5)",
        ),
        bad("out of the wrong shape", lambda: _C.gemm(a, b, empty(3, 6)), ValueError, "out"),
        bad(
            "batch dimensions differ",
            lambda: _C.gemm(rand(2, 3, 4), rand(3, 4, 5), empty(2, 3, 5)),
            ValueError,
            "batch",
        ),
        bad("out read-only", lambda: _C.gemm(a, b, read_only(empty(3, 5))), ValueError, "out"),
        bad(
            "out with a zero stride",
            lambda: _C.gemm(a, b, np.lib.stride_tricks.as_strided(empty(5), (3, 5), (0, 4))),
            ValueError,
            "out",
        ),
        bad("out is a", lambda: _C.gemm(sq, sq.copy(), sq), ValueError, "out"),
        bad("out inside b", lambda: _C.gemm(sq.copy(), sq, sq[1:3, :]), ValueError, "out"),
        good(
            "out with negative strides",
            lambda: _C.gemm(a, b, np.flip(empty(3, 5))),
            lambda r: np.testing.assert_allclose(r, a @ b, rtol=1e-5),
        ),
        good(
            "an empty result of 2**54 batch items",
            lambda: _C.gemm(
                empty(2**27, 2**27, 0, 4), huge(2**27, 2**27, 4, 3), empty(2**27, 2**27, 0, 3)
            ),
            shapes((2**27, 2**27, 0, 3)),
        ),
        good(
            "k = 0 gives beta * out",
            lambda: _C.gemm(empty(3, 0), empty(0, 5), np.ones((3, 5), f32), beta=2.0),
            lambda r: np.testing.assert_array_equal(r, 2.0),
        ),
        bad("alpha a string", lambda: _C.gemm(a, b, empty(3, 5), alpha="1"), TypeError),
    ]
    return cases


# ---- convolution -------------------------------------------------------------------------------

ONE = (1, 1)
PAD0 = (0, 0, 0, 0)


def im2col_cases():
    x = rand(2, 3, 6, 7)

    def call(x=x, kernel_size=(2, 3), stride=ONE, padding=(1, 1), dilation=ONE):
        return _C.im2col(x, kernel_size, stride, padding, dilation)

    cases = array_cases(call, lambda: dict(x=x), ("x",))
    cases += [
        bad("x 3-D", lambda: call(x[0]), ValueError, "x"),
        bad("kernel_size 0", lambda: call(kernel_size=(0, 3)), ValueError, "kernel"),
        bad("stride -1", lambda: call(stride=(1, -1)), ValueError, "stride"),
        bad("dilation 0", lambda: call(dilation=(0, 1)), ValueError, "dilation"),
        bad("padding -1", lambda: call(padding=(-1, 0)), ValueError, "padding"),
        bad(
            "kernel larger than the padded input",
            lambda: call(kernel_size=(9, 3)),
            ValueError,
            "kernel",
        ),
        bad(
            "a kernel of 2**62 taps per channel",
            lambda: call(rand(1, 4, 1, 1), kernel_size=(2**31, 2**31), padding=(2**30, 2**30)),
            ValueError,
            "kernel",
        ),
        bad("kernel_size of three", lambda: call(kernel_size=(2, 3, 4)), TypeError),
        bad("kernel_size past int64", lambda: call(kernel_size=(2**63, 1)), TypeError),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 18, 49))),
    ]
    return cases


def col2im_cases():
    shape = (2, 3, 6, 7)
    cols = _C.im2col(rand(*shape), (2, 3), ONE, (1, 1), ONE)

    def call(
        cols=cols, x_shape=shape, kernel_size=(2, 3), stride=ONE, padding=(1, 1), dilation=ONE
    ):
        return _C.col2im(cols, x_shape, kernel_size, stride, padding, dilation)

    cases = array_cases(call, lambda: dict(cols=cols), ("cols",))
    cases += [
        bad("cols 2-D", lambda: call(cols[0]), ValueError, "cols"),
        bad("cols of the wrong shape", lambda: call(cols[:, 1:]), ValueError, "cols"),
        bad("x_shape negative", lambda: call(x_shape=(2, 3, -6, 7)), ValueError, "negative"),
        bad("x_shape of three", lambda: call(x_shape=(2, 3, 6)), TypeError),
        bad(
            "x_shape of 2**82 elements",
            lambda: call(
                rand(1, 4, 1), (1, 4, HUGE, HUGE), (2**31 - 1,) * 2, (2**31 - 1,) * 2, (0, 0)
            ),
            ValueError,
            "kernel",
        ),
        bad("stride 0", lambda: call(stride=(0, 1)), ValueError, "stride"),
        good("an empty batch", lambda: call(cols[:0], (0, 3, 6, 7)), shapes((0, 3, 6, 7))),
    ]
    return cases


def conv2d_cases():
    x, w, b = rand(2, 4, 7, 6), rand(6, 2, 3, 2), rand(6)

    def call(x=x, w=w, b=b, stride=ONE, padding=(1, 1, 0, 0), dilation=ONE, groups=2):
        return _C.conv2d(x, w, b, stride, padding, dilation, groups)

    cases = array_cases(call, lambda: dict(x=x, w=w, b=b), ("x", "w", "b"), optional=("b",))
    cases += [
        bad("x 3-D", lambda: call(x[0]), ValueError, "x"),
        bad("w 3-D", lambda: call(w=w[0]), ValueError, "w"),
        bad("b 2-D", lambda: call(b=b[None]), ValueError, "b"),
        bad("b of the wrong length", lambda: call(b=b[:5]), ValueError, "b"),
        bad("channels differ", lambda: call(w=rand(6, 3, 3, 2)), ValueError, "groups"),
        bad("groups 0", lambda: call(groups=0), ValueError, "groups"),
        bad("groups -2", lambda: call(groups=-2), ValueError, "groups"),
        bad(
            "groups 2**62 (C / groups overflows)", lambda: call(groups=2**62), ValueError, "groups"
        ),
        bad(
            "groups not dividing K", lambda: call(w=rand(5, 2, 3, 2), b=None), ValueError, "groups"
        ),
        bad("padding negative", lambda: call(padding=(1, -1, 0, 0)), ValueError, "padding"),
        bad("stride 0", lambda: call(stride=(0, 1)), ValueError, "stride"),
        bad(
            "kernel larger than the padded input",
            lambda: call(padding=PAD0, dilation=(4, 1)),
            ValueError,
            "kernel",
        ),
        bad(
            "a kernel whose column matrix passes 2**63 bytes",
            lambda: call(
                rand(1, 1, 1, 1), huge(1, 1, 2**30, 2**30), None, padding=(2**29,) * 4, groups=1
            ),
            ValueError,
            "kernel",
        ),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 6, 7, 5))),
        good(
            "a kernel with zero strides",
            lambda: call(w=np.broadcast_to(w[:1], w.shape)),
            shapes((2, 6, 7, 5)),
        ),
    ]
    return cases


def conv2d_backward_cases():
    x, w = rand(2, 4, 7, 6), rand(6, 2, 3, 2)
    dy = rand(2, 6, 7, 5)

    def call(
        dy=dy,
        x=x,
        w=w,
        stride=ONE,
        padding=(1, 1, 0, 0),
        dilation=ONE,
        groups=2,
        need=(True, True, True),
    ):
        return _C.conv2d_backward(dy, x, w, stride, padding, dilation, groups, need)

    cases = array_cases(call, lambda: dict(dy=dy, x=x, w=w), ("dy", "x", "w"))
    cases += [
        bad("dy of the wrong shape", lambda: call(dy[:, :, 1:]), ValueError, "dy"),
        bad("dy 3-D", lambda: call(dy[0]), ValueError, "dy"),
        bad("channels differ", lambda: call(w=rand(6, 3, 3, 2)), ValueError, "groups"),
        bad("need of two", lambda: call(need=(True, True)), TypeError),
        bad("padding negative", lambda: call(padding=(-1, 1, 0, 0)), ValueError, "padding"),
        good("need nothing", lambda: call(need=(False, False, False)), shapes(None, None, None)),
        good(
            "an empty batch", lambda: call(dy[:0], x[:0]), shapes((0, 4, 7, 6), (6, 2, 3, 2), (6,))
        ),
    ]
    return cases


# ---- pooling -----------------------------------------------------------------------------------


def max_pool2d_cases():
    x = rand(2, 3, 7, 6)

    def call(x=x, kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=ONE, ceil_mode=False):
        return _C.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)

    cases = array_cases(call, lambda: dict(x=x), ("x",))
    cases += [
        bad("x 3-D", lambda: call(x[0]), ValueError, "x"),
        bad("columns not contiguous", lambda: call(x[..., ::2]), ValueError, "x"),
        bad("no channels", lambda: call(x[:, :0]), ValueError, "x"),
        bad("kernel_size 0", lambda: call(kernel_size=(0, 2)), ValueError, "kernel_size"),
        bad("kernel_size 2**31", lambda: call(kernel_size=(2**31, 2)), ValueError, "kernel_size"),
        bad("stride 0", lambda: call(stride=(0, 1)), ValueError, "stride"),
        bad("padding -1", lambda: call(padding=(-1, 0)), ValueError, "padding"),
        bad("padding past half the kernel", lambda: call(padding=(2, 1)), ValueError, "padding"),
        bad("dilation 0", lambda: call(dilation=(1, 0)), ValueError, "dilation"),
        bad(
            "kernel larger than the input",
            lambda: call(kernel_size=(9, 2), padding=(0, 0)),
            ValueError,
            "kernel",
        ),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 3, 4, 7), (0, 3, 4, 7))),
    ]
    return cases


def max_pool2d_backward_cases():
    x = rand(2, 3, 7, 6)
    y, idx = _C.max_pool2d(x, (3, 2), (2, 1), (1, 1), ONE, False)
    dy = rand(*y.shape)

    def call(dy=dy, indices=idx, x_shape=x.shape):
        return _C.max_pool2d_backward(dy, indices, x_shape)

    def at(value):
        bad_idx = idx.copy()
        bad_idx[1, 1, 1, 1] = value
        return bad_idx

    cases = array_cases(call, lambda: dict(dy=dy), ("dy",))
    cases += [
        bad("indices int32", lambda: call(indices=idx.astype(np.int32)), TypeError, "indices"),
        bad("indices not contiguous", lambda: call(indices=np.flip(idx)), TypeError, "indices"),
        bad(
            "indices misaligned",
            lambda: call(indices=misaligned(idx)),
            (TypeError, ValueError),
            "indices",
        ),
        bad(
            "indices of the wrong shape",
            lambda: call(indices=idx[:, :2].copy()),
            ValueError,
            "indices",
        ),
        bad("an index -1", lambda: call(indices=at(-1)), ValueError, "indices"),
        bad("an index H * W", lambda: call(indices=at(42)), ValueError, "indices"),
        bad("an index 2**32 + 1", lambda: call(indices=at(2**32 + 1)), ValueError, "indices"),
        bad("an index 2**63 - 1", lambda: call(indices=at(2**63 - 1)), ValueError, "indices"),
        bad("x_shape negative", lambda: call(x_shape=(2, 3, -7, 6)), ValueError, "x_shape"),
        bad("x_shape of three", lambda: call(x_shape=(2, 3, 7)), ValueError, "x_shape"),
        bad("x_shape of another batch", lambda: call(x_shape=(3, 3, 7, 6)), ValueError, "dy"),
        bad("x_shape of 2**82 elements", lambda: call(x_shape=(2, 3, HUGE, HUGE)), ValueError),
        bad("dy columns not contiguous", lambda: call(np.asfortranarray(dy)), ValueError, "dy"),
    ]
    return cases


def avg_pool2d_cases():
    x = rand(2, 3, 7, 6)

    def call(
        x=x,
        kernel_size=(3, 2),
        stride=(2, 1),
        padding=(1, 1),
        ceil_mode=True,
        count_include_pad=False,
        divisor=0,
    ):
        return _C.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor)

    cases = array_cases(call, lambda: dict(x=x), ("x",))
    cases += [
        bad("x 5-D", lambda: call(x[None]), ValueError, "x"),
        bad("an empty plane", lambda: call(x[:, :, :0]), ValueError, "x"),
        bad("stride 0", lambda: call(stride=(1, 0)), ValueError, "stride"),
        bad("padding past half the kernel", lambda: call(padding=(1, 2)), ValueError, "padding"),
        bad(
            "kernel larger than the input",
            lambda: call(kernel_size=(2, 9), padding=(0, 0)),
            ValueError,
            "kernel",
        ),
        good("divisor -3", lambda: call(divisor=-3), shapes((2, 3, 4, 7))),
    ]
    return cases


def avg_pool2d_backward_cases():
    dy = rand(2, 3, 4, 7)

    def call(
        dy=dy,
        x_shape=(2, 3, 7, 6),
        kernel_size=(3, 2),
        stride=(2, 1),
        padding=(1, 1),
        ceil_mode=True,
        count_include_pad=False,
        divisor=0,
    ):
        return _C.avg_pool2d_backward(
            dy, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor
        )

    cases = array_cases(call, lambda: dict(dy=dy), ("dy",))
    cases += [
        bad("dy of the wrong shape", lambda: call(dy[:, :, 1:]), ValueError, "dy"),
        bad("x_shape with no channels", lambda: call(x_shape=(2, 0, 7, 6)), ValueError, "x_shape"),
        bad("x_shape negative", lambda: call(x_shape=(-2, 3, 7, 6)), ValueError, "x_shape"),
        bad("kernel_size 0", lambda: call(kernel_size=(0, 2)), ValueError, "kernel_size"),
        bad("x_shape of 2**82 elements", lambda: call(x_shape=(2, 3, HUGE, HUGE)), ValueError),
    ]
    return cases


def adaptive_avg_pool2d_cases():
    x = rand(2, 3, 7, 6)

    def call(x=x, output_size=(3, 4)):
        return _C.adaptive_avg_pool2d(x, output_size)

    cases = array_cases(call, lambda: dict(x=x), ("x",))
    cases += [
        bad("x 2-D", lambda: call(x[0, 0]), ValueError, "x"),
        bad("an empty plane", lambda: call(x[:, :, :0]), ValueError, "plane"),
        bad("output_size negative", lambda: call(output_size=(-1, 2)), ValueError, "output_size"),
        bad("output_size of 2**80 elements", lambda: call(output_size=(HUGE, HUGE)), ValueError),
        good("output_size 0", lambda: call(output_size=(0, 0)), shapes((2, 3, 0, 0))),
    ]
    return cases


def adaptive_avg_pool2d_backward_cases():
    dy = rand(2, 3, 3, 4)

    def call(dy=dy, x_shape=(2, 3, 7, 6)):
        return _C.adaptive_avg_pool2d_backward(dy, x_shape)

    cases = array_cases(call, lambda: dict(dy=dy), ("dy",))
    cases += [
        bad("x_shape of another batch", lambda: call(x_shape=(3, 3, 7, 6)), ValueError, "dy"),
        bad("x_shape with an empty plane", lambda: call(x_shape=(2, 3, 0, 6)), ValueError, "plane"),
        bad("x_shape negative", lambda: call(x_shape=(2, 3, 7, -6)), ValueError, "x_shape"),
    ]
    return cases


# ---- LSTM --------------------------------------------------------------------------------------

T, B, I, H = 5, 3, 4, 6


def _lstm_args():
    return dict(
        x=rand(T, B, I),
        h0=rand(B, H),
        c0=rand(B, H),
        w_ih=rand(4 * H, I),
        w_hh=rand(4 * H, H),
        b_ih=rand(4 * H),
        b_hh=rand(4 * H),
        batch_first=False,
        save=True,
    )


def lstm_forward_cases():
    def call(**kw):
        return _C.lstm_forward(**{**_lstm_args(), **kw})

    names = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
    cases = array_cases(call, _lstm_args, names, optional=("h0", "c0", "b_ih", "b_hh"))
    cases += [
        bad("x 2-D", lambda: call(x=rand(T, I)), ValueError, "x"),
        bad("x rows not foldable", lambda: call(x=rand(2 * T, B, I)[::2]), ValueError, "x"),
        bad(
            "w_ih of another input size", lambda: call(w_ih=rand(4 * H, I + 1)), ValueError, "w_ih"
        ),
        bad("w_hh not (4H, H)", lambda: call(w_hh=rand(4 * H + 1, H)), ValueError, "w_hh"),
        bad(
            "w_hh of H = 2**60",
            lambda: call(
                w_ih=empty(0, I), w_hh=empty(0, 2**60), b_ih=None, b_hh=None, h0=None, c0=None
            ),
            ValueError,
            "w_hh",
        ),
        bad("h0 of another batch", lambda: call(h0=rand(B + 1, H)), ValueError, "h0"),
        bad("c0 1-D", lambda: call(c0=rand(H)), ValueError, "c0"),
        bad("b_ih of the wrong length", lambda: call(b_ih=rand(4 * H + 1)), ValueError, "b_ih"),
        bad(
            "2**60 steps of no inputs",
            lambda: call(x=empty(2**60, 1, 0), w_ih=empty(4 * H, 0), h0=None, c0=None),
            ValueError,
            "x",
        ),
        good(
            "an empty batch",
            lambda: call(x=empty(T, 0, I), h0=None, c0=None),
            lambda r: shapes((T, 0, H), (0, H), (0, H))(r[:3]),
        ),
    ]
    return cases


def _backward_args():
    a = _lstm_args()
    y, h_n, c_n, saved = _C.lstm_forward(**a)
    c0, gates, c_all, tanh_c, h_prev = saved
    return dict(
        dy=rand(T, B, H),
        dh_n=rand(B, H),
        dc_n=rand(B, H),
        x=a["x"],
        w_ih=a["w_ih"],
        w_hh=a["w_hh"],
        has_bias=True,
        c0=c0,
        gates=gates,
        c_all=c_all,
        tanh_c=tanh_c,
        h_prev=h_prev,
    )


def lstm_backward_cases():
    def call(**kw):
        return _C.lstm_backward(**{**_backward_args(), **kw})

    names = ("dy", "dh_n", "dc_n", "x", "w_ih", "w_hh", "c0", "gates", "c_all", "tanh_c", "h_prev")
    cases = array_cases(call, _backward_args, names, optional=("dh_n", "dc_n"))
    buffers = ("c0", "gates", "c_all", "tanh_c", "h_prev")
    for name in buffers:
        cases += [
            bad(
                f"{name} of the wrong shape",
                lambda n=name: call(**{n: _backward_args()[n][1:]}),
                ValueError,
                name,
            ),
            bad(
                f"{name} not contiguous",
                lambda n=name: call(**{n: np.asfortranarray(_backward_args()[n])}),
                ValueError,
                name,
            ),
        ]
    cases += [
        bad("dy of the wrong shape", lambda: call(dy=rand(T, B, H + 1)), ValueError, "dy"),
        bad("x of another length than the buffers", lambda: call(x=rand(T + 1, B, I)), ValueError),
        bad("dh_n of another batch", lambda: call(dh_n=rand(B + 1, H)), ValueError, "dh_n"),
        good(
            "dy with strided rows",
            lambda: call(dy=rand(T, B, 2 * H)[..., ::2]),
            lambda r: shapes((T, B, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,))(r),
        ),
    ]
    return cases


# ---- attention ---------------------------------------------------------------------------------


def _sdpa_args():
    return dict(
        q=rand(2, 5, 4),
        k=rand(2, 6, 4),
        v=rand(2, 6, 3),
        attn_mask=None,
        out=empty(2, 5, 3),
        lse=empty(2, 5),
        scale=0.5,
        is_causal=False,
        dropout_p=0.0,
        seed=0,
    )


def sdpa_forward_cases():
    def call(**kw):
        return _C.sdpa_forward(**{**_sdpa_args(), **kw})

    q = rand(2, 5, 4)
    cases = array_cases(call, _sdpa_args, ("q", "k", "v", "out", "lse"))
    cases += [
        bad("q 1-D", lambda: call(q=rand(4), k=rand(4), v=rand(3)), ValueError, "q"),
        bad("ranks differ", lambda: call(k=rand(1, 2, 6, 4)), ValueError, "k"),
        bad("head dimensions differ", lambda: call(k=rand(2, 6, 3)), ValueError, "k"),
        bad("v of another length", lambda: call(v=rand(2, 7, 3)), ValueError, "v"),
        bad("batch sizes differ", lambda: call(k=rand(3, 6, 4), v=rand(3, 6, 3)), ValueError, "k"),
        bad("out of the wrong shape", lambda: call(out=empty(2, 5, 4)), ValueError, "out"),
        bad("lse of the wrong shape", lambda: call(lse=empty(2, 6)), ValueError, "lse"),
        bad(
            "out not contiguous",
            lambda: call(out=np.asfortranarray(empty(2, 5, 3))),
            ValueError,
            "out",
        ),
        bad("out read-only", lambda: call(out=read_only(empty(2, 5, 3))), ValueError, "out"),
        bad(
            "out is q",
            lambda: call(q=q, k=rand(2, 6, 4), v=rand(2, 6, 4), out=q),
            ValueError,
            "out",
        ),
        bad(
            "lse inside out",
            lambda: (lambda o: call(out=o, lse=o.reshape(-1)[:10].reshape(2, 5)))(empty(2, 5, 3)),
            ValueError,
            "lse",
        ),
        bad(
            "a mask of the wrong shape",
            lambda: call(attn_mask=np.ones((2, 5, 5), bool)),
            ValueError,
            "attn_mask",
        ),
        bad(
            "an int mask",
            lambda: call(attn_mask=np.ones((2, 5, 6), np.int32)),
            TypeError,
            "attn_mask",
        ),
        bad("a list mask", lambda: call(attn_mask=[[True]]), TypeError, "attn_mask"),
        bad(
            "a mask with is_causal",
            lambda: call(attn_mask=np.ones((2, 5, 6), bool), is_causal=True),
            ValueError,
            "is_causal",
        ),
        bad("dropout_p 1", lambda: call(dropout_p=1.0), ValueError, "dropout_p"),
        bad("dropout_p NaN", lambda: call(dropout_p=float("nan")), ValueError, "dropout_p"),
        bad("a negative seed", lambda: call(seed=-1), TypeError),
        good(
            "a mask with zero strides",
            lambda: call(attn_mask=np.broadcast_to(np.ones(6, bool), (2, 5, 6))),
        ),
        good(
            "no queries in 2**54 batch items",
            lambda: call(
                q=empty(2**27, 2**27, 0, 4),
                k=huge(2**27, 2**27, 6, 4),
                v=huge(2**27, 2**27, 6, 3),
                out=empty(2**27, 2**27, 0, 3),
                lse=empty(2**27, 2**27, 0),
            ),
        ),
    ]
    return cases


def _sdpa_backward_args():
    a = _sdpa_args()
    _C.sdpa_forward(**a)
    return dict(
        dout=rand(2, 5, 3),
        q=a["q"],
        k=a["k"],
        v=a["v"],
        out=a["out"],
        lse=a["lse"],
        attn_mask=None,
        dq=empty(2, 5, 4),
        dk=empty(2, 6, 4),
        dv=empty(2, 6, 3),
        scale=0.5,
        is_causal=False,
    )


def sdpa_backward_cases():
    def call(**kw):
        return _C.sdpa_backward(**{**_sdpa_backward_args(), **kw})

    names = ("dout", "q", "k", "v", "out", "lse", "dq", "dk", "dv")
    cases = array_cases(call, _sdpa_backward_args, names)
    cases += [
        bad("dout of the wrong shape", lambda: call(dout=rand(2, 5, 4)), ValueError, "dout"),
        bad(
            "lse not contiguous", lambda: call(lse=np.asfortranarray(rand(2, 5))), ValueError, "lse"
        ),
        bad("lse of the wrong shape", lambda: call(lse=rand(2, 6)), ValueError, "lse"),
        bad("dq of the wrong shape", lambda: call(dq=empty(2, 5, 3)), ValueError, "dq"),
        bad(
            "dk not contiguous",
            lambda: call(dk=np.asfortranarray(empty(2, 6, 4))),
            ValueError,
            "dk",
        ),
        bad("dv is dk", lambda: (lambda d: call(dk=d, dv=d))(empty(2, 6, 4)), ValueError),
        bad("dq is q", lambda: (lambda a: call(q=a, dq=a))(rand(2, 5, 4)), ValueError, "dq"),
        bad("dq read-only", lambda: call(dq=read_only(empty(2, 5, 4))), ValueError, "dq"),
        bad(
            "a mask of the wrong shape",
            lambda: call(attn_mask=np.ones((2, 6, 5), bool)),
            ValueError,
            "attn_mask",
        ),
    ]
    return cases


# ---- elementwise math and the optimizers ---------------------------------------------------------


def vmath_cases():
    def call(fn="tanh", x=None, out=None):
        x = rand(37) if x is None else x
        return _C.vmath(fn, x, np.empty_like(x) if out is None else out)

    cases = array_cases(
        lambda x, out: _C.vmath("exp", x, out),
        lambda: dict(x=rand(37), out=empty(37)),
        ("x", "out"),
    )
    cases += [
        bad("an unknown function", lambda: call("cos"), ValueError, "fn"),
        bad("sizes differ", lambda: call(out=empty(36)), ValueError, "out"),
        bad("x not contiguous", lambda: call(x=rand(74)[::2]), ValueError, "x"),
        bad("out read-only", lambda: call(out=read_only(empty(37))), ValueError, "out"),
        good("in place", lambda: (lambda a: call(x=a, out=a))(rand(37))),
        good("empty", lambda: call(x=empty(0)), shapes((0,))),
    ]
    return cases


def _adam(params, grads, m, v, maxes=(), **kw):
    scalars = dict(
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        step_size=1e-3,
        bias_correction2_sqrt=1.0,
        decoupled=False,
    )
    return _C.adam_step(
        list(params), list(grads), list(m), list(v), list(maxes), **{**scalars, **kw}
    )


def _sgd(params, grads, bufs, init, **kw):
    scalars = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    return _C.sgd_step(list(params), list(grads), list(bufs), list(init), **{**scalars, **kw})


def optim_cases():
    p, g, m, v = rand(10), rand(10), np.zeros(10, f32), np.zeros(10, f32)
    return [
        good("adam", lambda: _adam([p.copy()], [g], [m.copy()], [v.copy()])),
        bad(
            "adam: grads shorter",
            lambda: _adam([p.copy(), p.copy()], [g], [m, m], [v, v]),
            ValueError,
            "grads",
        ),
        bad(
            "adam: a grad of another size",
            lambda: _adam([p.copy()], [rand(9)], [m.copy()], [v.copy()]),
            ValueError,
            "grads",
        ),
        bad(
            "adam: a grad float64",
            lambda: _adam([p.copy()], [g.astype(np.float64)], [m.copy()], [v.copy()]),
            TypeError,
            "grads",
        ),
        bad(
            "adam: a param read-only",
            lambda: _adam([read_only(p)], [g], [m.copy()], [v.copy()]),
            ValueError,
            "params",
        ),
        bad(
            "adam: a param not contiguous",
            lambda: _adam([rand(20)[::2]], [g], [m.copy()], [v.copy()]),
            ValueError,
            "params",
        ),
        bad(
            "adam: a param a list",
            lambda: _adam([[1.0] * 10], [g], [m.copy()], [v.copy()]),
            TypeError,
            "params",
        ),
        bad(
            "adam: exp_avg is the param",
            lambda: (lambda q: _adam([q], [g], [q], [v.copy()]))(p.copy()),
            ValueError,
            "exp_avgs",
        ),
        bad(
            "adam: exp_avg_sq is exp_avg",
            lambda: (lambda s: _adam([p.copy()], [g], [s], [s]))(m.copy()),
            ValueError,
            "exp_avg_sqs",
        ),
        bad(
            "adam: max_exp_avg_sqs shorter",
            lambda: _adam(
                [p.copy(), p.copy()], [g, g], [m.copy(), m.copy()], [v.copy(), v.copy()], [v.copy()]
            ),
            ValueError,
            "max_exp_avg_sqs",
        ),
        good("sgd", lambda: _sgd([p.copy()], [g], [m.copy()], [True])),
        bad(
            "sgd: init_buffers shorter",
            lambda: _sgd([p.copy()], [g], [m.copy()], []),
            ValueError,
            "init_buffers",
        ),
        bad(
            "sgd: a momentum buffer is the param",
            lambda: (lambda q: _sgd([q], [g], [q], [True]))(p.copy()),
            ValueError,
            "momentum_buffers",
        ),
        bad(
            "sgd: a momentum buffer misaligned",
            lambda: _sgd([p.copy()], [g], [misaligned(m)], [True]),
            ValueError,
            "momentum_buffers",
        ),
        good(
            "sgd without momentum ignores the buffers",
            lambda: _sgd([p.copy()], [g], [], [], momentum=0.0),
        ),
        good("empty parameters", lambda: _sgd([empty(0)], [empty(0)], [empty(0)], [True])),
    ]


TABLE = {
    "_C.gemm": gemm_cases,
    "_C.im2col": im2col_cases,
    "_C.col2im": col2im_cases,
    "_C.conv2d": conv2d_cases,
    "_C.conv2d_backward": conv2d_backward_cases,
    "_C.max_pool2d": max_pool2d_cases,
    "_C.max_pool2d_backward": max_pool2d_backward_cases,
    "_C.avg_pool2d": avg_pool2d_cases,
    "_C.avg_pool2d_backward": avg_pool2d_backward_cases,
    "_C.adaptive_avg_pool2d": adaptive_avg_pool2d_cases,
    "_C.adaptive_avg_pool2d_backward": adaptive_avg_pool2d_backward_cases,
    "_C.lstm_forward": lstm_forward_cases,
    "_C.lstm_backward": lstm_backward_cases,
    "_C.sdpa_forward": sdpa_forward_cases,
    "_C.sdpa_backward": sdpa_backward_cases,
    "_C.vmath": vmath_cases,
    "_C.optim": optim_cases,
}
