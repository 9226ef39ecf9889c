"""Bad-input cases of every ember.ops entry point (see bad_inputs/__init__.py)."""

# ruff: noqa: E741  (I is the input size, as everywhere in ember)

from __future__ import annotations

import numpy as np

from bad_inputs import (
    assert_close,
    bad,
    f32,
    f64,
    far_apart,
    good,
    misaligned,
    rand,
    read_only,
    shapes,
    standard_cases,
)
from ember import ops, ref

NAN, INF = float("nan"), float("inf")
HUGE = 2**40  # a dimension whose products with another like it overflow every integer type


def huge(*shape):
    """A float32 array of any shape that costs one element of memory."""
    return np.broadcast_to(np.float32(1.0), shape)


def empty(*shape):
    return np.empty(shape, f32)


def all_nan(result):
    assert np.isnan(result).all(), "expected NaN everywhere"


def all_finite(result):
    assert np.isfinite(result).all(), "expected finite values"


def zero_strided_rows(h, w):
    """(1, 1, h, w) float32 whose rows all alias one row 0, 1, ..., w - 1: a plane of h * w
    elements (past 2**32 for h, w > 2**16) in w elements of memory."""
    row = np.arange(w, dtype=f32)
    return np.lib.stride_tricks.as_strided(row, (1, 1, h, w), (0, 0, 0, 4))


# a plane of 65538 x 65538 pooled or convolved with 2 x 2 windows 65536 apart: four windows, the
# last at flat index 65536 * 65538 + 65536 > 2**32
BIG = 65538
FAR = 65536


def window_cases(call, base, *, positive=("kernel_size", "stride", "dilation"), skip=()):
    """kernel_size / stride / dilation (`positive`) and padding: out of range is a ValueError, a
    wrong type a TypeError, both naming the argument; NumPy ints and lists of the values in
    `base` are accepted. `skip`: names of cases that do not apply."""
    cases = []
    for name in (*positive, "padding"):
        low = [0, -1, (2, 0), (1, -3)] if name in positive else [-1, (1, -1)]
        for value in [*low, 2**31]:
            cases.append(
                bad(f"{name}={value!r}", lambda n=name, v=value: call(**{n: v}), ValueError, name)
            )
        for value in (2.5, "2", (2, 2, 2), (2.0, 2), True, [None], {"h": 2}):
            cases.append(
                bad(f"{name}={value!r}", lambda n=name, v=value: call(**{n: v}), TypeError, name)
            )
        value = base[name] if isinstance(base[name], tuple) else (base[name],) * 2
        cases.append(
            good(f"{name} NumPy ints", lambda n=name, v=value: call(**{n: tuple(map(np.int64, v))}))
        )
        cases.append(good(f"{name} a list", lambda n=name, v=value: call(**{n: list(v)})))
    return [c for c in cases if c.name not in skip]


def shape_arg_cases(call, name, base):
    """An image shape argument (`base` a valid one): wrong types are TypeErrors, wrong lengths /
    negative sizes / sizes too large to address ValueErrors, each naming it."""
    ndim = len(base)
    return [
        bad(f"{name} None", lambda: call(**{name: None}), TypeError, name),
        bad(f"{name} a string", lambda: call(**{name: "abcd"[:ndim]}), TypeError, name),
        bad(f"{name} with a float", lambda: call(**{name: base[:-1] + (7.0,)}), TypeError, name),
        bad(f"{name} too short", lambda: call(**{name: base[:-1]}), ValueError, name),
        bad(f"{name} too long", lambda: call(**{name: base + (1,)}), ValueError, name),
        bad(f"{name} negative", lambda: call(**{name: base[:-1] + (-7,)}), ValueError, name),
        bad(
            f"{name} too large to address",
            lambda: call(**{name: base[:-2] + (HUGE, HUGE)}),
            ValueError,
            name,
        ),
    ]


# ---- GEMM --------------------------------------------------------------------------------------


def gemm_cases():
    def make(dtype):
        return dict(
            a=rand(3, 4, dtype=dtype),
            b=rand(4, 5, dtype=dtype, seed=1),
            c=rand(3, 5, dtype=dtype, seed=2),
        )

    def call(a, b, c):
        return ops.gemm(a, b, c=c, alpha=2.0, beta=0.5)

    a, b, c = make(f32).values()
    want = 2.0 * a @ b + 0.5 * c
    out_c = c.copy()
    ones = np.ones((3, 4), f32), np.ones((4, 5), f32)
    overlap = np.ones((4, 4), f32)
    cases = standard_cases(call, make, ("a", "b", "c"), ("a", "b"))
    cases += [
        bad("a 1-D", lambda: ops.gemm(rand(4), b), ValueError, "a", "(4,)"),
        bad("a 0-D", lambda: ops.gemm(np.array(1.0, f32), b), ValueError, "a"),
        bad("b 3-D", lambda: ops.gemm(a, rand(2, 4, 5)), ValueError, "b", "(2, 4, 5)"),
        bad(
            "inner dimensions differ",
            lambda: ops.gemm(a, rand(5, 5)),
            ValueError,
            "(3, 4)",
            "(5, 5)",
        ),
        bad(
            "trans_b makes them differ", lambda: ops.gemm(a, b, trans_b=True), ValueError, "trans_b"
        ),
        good(
            "trans_a and trans_b",
            lambda: ops.gemm(a.T.copy(), b.T.copy(), trans_a=True, trans_b=True),
            lambda r: assert_close(r, a @ b),
        ),
        bad(
            "c does not broadcast",
            lambda: ops.gemm(a, b, c=rand(4), beta=1.0),
            ValueError,
            "c",
            "(4,)",
        ),
        good(
            "c broadcasts from a row",
            lambda: ops.gemm(a, b, c=c[0], beta=1.0),
            lambda r: assert_close(r, a @ b + c[0]),
        ),
        bad(
            "out of the wrong shape",
            lambda: ops.gemm(a, b, out=np.empty((5, 3), f32)),
            ValueError,
            "out",
            "(5, 3)",
        ),
        bad(
            "out read-only",
            lambda: ops.gemm(a, b, out=read_only(np.empty((3, 5), f32))),
            ValueError,
            "out",
        ),
        bad(
            "out a broadcast view",
            lambda: ops.gemm(a, b, out=np.broadcast_to(np.empty(5, f32), (3, 5))),
            ValueError,
            "out",
        ),
        bad(
            "out is a",
            lambda: ops.gemm(overlap, overlap[:, :1].copy(), out=overlap[:, :1]),
            ValueError,
            "out",
        ),
        bad("out int32", lambda: ops.gemm(a, b, out=np.empty((3, 5), np.int32)), TypeError, "out"),
        bad("out float64", lambda: ops.gemm(a, b, out=np.empty((3, 5))), TypeError, "out"),
        bad("out a list", lambda: ops.gemm(a, b, out=[[0.0] * 5] * 3), TypeError, "out"),
        good(
            "out is c",
            lambda: ops.gemm(a, b, c=out_c, out=out_c, alpha=2.0, beta=0.5),
            lambda r: (assert_close(r, want), _is(r, out_c)),
        ),
        good(
            "out with negative strides",
            lambda: ops.gemm(a, b, out=np.flip(np.empty((3, 5), f32))),
            lambda r: assert_close(r, a @ b),
        ),
        good("alpha NaN gives NaN", lambda: ops.gemm(a, b, alpha=NAN), all_nan),
        good(
            "alpha inf gives inf",
            lambda: ops.gemm(*ones, alpha=INF),
            lambda r: np.testing.assert_array_equal(r, INF),
        ),
        good("beta NaN with c gives NaN", lambda: ops.gemm(a, b, c=c, beta=NAN), all_nan),
        good(
            "beta 0 does not read c",
            lambda: ops.gemm(a, b, c=np.full((3, 5), NAN, f32), beta=0.0),
            all_finite,
        ),
        good(
            "alpha a NumPy float32",
            lambda: ops.gemm(a, b, alpha=np.float32(2.0)),
            lambda r: assert_close(r, 2 * a @ b),
        ),
        bad("alpha a string", lambda: ops.gemm(a, b, alpha="2"), TypeError, "alpha"),
        bad("alpha None", lambda: ops.gemm(a, b, alpha=None), TypeError, "alpha"),
        bad("alpha complex", lambda: ops.gemm(a, b, alpha=1j), TypeError, "alpha"),
        bad("alpha an array", lambda: ops.gemm(a, b, alpha=np.ones(3)), TypeError, "alpha"),
        bad("beta a bool", lambda: ops.gemm(a, b, c=c, beta=True), TypeError, "beta"),
        good("m = 0", lambda: ops.gemm(rand(0, 4), b), shapes((0, 5))),
        good("n = 0", lambda: ops.gemm(a, rand(4, 0)), shapes((3, 0))),
        good(
            "k = 0 gives zeros",
            lambda: ops.gemm(rand(3, 0), rand(0, 5)),
            lambda r: np.testing.assert_array_equal(r, 0),
        ),
        good(
            "k = 0 gives beta * c",
            lambda: ops.gemm(rand(3, 0), rand(0, 5), c=c, beta=0.5),
            lambda r: assert_close(r, 0.5 * c),
        ),
        bad(
            "a result too large to allocate",
            lambda: ops.gemm(huge(HUGE, 1), huge(1, HUGE)),
            ValueError,
            "a",
            "b",
        ),
        good(
            "rows of a 2**31 elements apart",
            lambda: ops.gemm(_far(a), b),
            lambda r: assert_close(r, a @ b),
        ),
        good(
            "rows of b 2**31 elements apart",
            lambda: ops.gemm(a, _far(b)),
            lambda r: assert_close(r, a @ b),
        ),
        good(
            "columns of a 2**31 elements apart",
            lambda: ops.gemm(_far(a.T.copy()).T, b),
            lambda r: assert_close(r, a @ b),
        ),
    ]
    return cases


def _is(result, target):
    assert result is target, "the result is not the out array"


def _far(a):
    """a's values in an array whose rows lie 2**31 + 3 elements apart."""
    view = far_apart(a.shape, 2**31 + 3, a.dtype)
    view[...] = a
    return view


def matmul_cases():
    def make(dtype):
        return dict(a=rand(2, 3, 4, dtype=dtype), b=rand(4, 5, dtype=dtype, seed=1))

    a, b = make(f32).values()
    cases = standard_cases(ops.matmul, make, ("a", "b"), ("a", "b"))
    cases += [
        bad("a 0-D", lambda: ops.matmul(np.array(2.0, f32), b), ValueError, "a", "1-D"),
        good("1-D @ 1-D is a scalar", lambda: ops.matmul(b[:, 0], b[:, 1]), shapes(())),
        good("1-D @ 3-D", lambda: ops.matmul(b[:3, 0], a), shapes((2, 4))),
        good("3-D @ 1-D", lambda: ops.matmul(a, b[:, 0]), shapes((2, 3))),
        bad(
            "inner dimensions differ",
            lambda: ops.matmul(a, rand(3, 5)),
            ValueError,
            "(2, 3, 4)",
            "(3, 5)",
        ),
        bad(
            "batch dimensions do not broadcast",
            lambda: ops.matmul(a, rand(3, 4, 5)),
            ValueError,
            "(2, 3, 4)",
            "(3, 4, 5)",
        ),
        good(
            "batch dimensions broadcast",
            lambda: ops.matmul(rand(2, 1, 3, 4), rand(5, 4, 6)),
            shapes((2, 5, 3, 6)),
        ),
        good("an empty batch", lambda: ops.matmul(rand(0, 3, 4), b), shapes((0, 3, 5))),
        good(
            "k = 0 gives zeros",
            lambda: ops.matmul(rand(2, 3, 0), rand(0, 5)),
            lambda r: np.testing.assert_array_equal(r, 0),
        ),
        bad(
            "a result too large to address",
            lambda: ops.matmul(huge(2**31, 1, 1, 1), huge(2**31, 1, 1)),
            ValueError,
            "a",
            "b",
        ),
        good(
            "batch items 2**31 elements apart",
            lambda: ops.matmul(_far(a), b),
            lambda r: assert_close(r, a @ b),
        ),
        good(
            "an empty result of 2**58 batch items",
            lambda: ops.matmul(empty(2**29, 2**29, 0, 4), empty(2**29, 2**29, 4, 0)),
            shapes((2**29, 2**29, 0, 0)),
        ),
        bad(
            "2**58 batch items of a k = 0 product",
            lambda: ops.matmul(empty(2**29, 2**29, 3, 0), empty(0, 5)),
            ValueError,
            "a",
            "b",
        ),
    ]
    return cases


# ---- convolution -------------------------------------------------------------------------------

IM2COL = dict(kernel_size=(2, 3), stride=(1, 2), padding=1, dilation=(2, 1))


def im2col_cases():
    x = rand(2, 3, 6, 7)

    def call(x=x, **kw):
        return ops.im2col(x, **{**IM2COL, **kw})

    def make(dtype):
        return dict(x=x.astype(dtype))

    rows = zero_strided_rows(BIG, BIG)
    cases = standard_cases(call, make, ("x",), ("x",))
    cases += window_cases(call, IM2COL)
    cases += [
        bad("x 2-D", lambda: call(rand(6, 7)), ValueError, "x", "(6, 7)"),
        bad("x 5-D", lambda: call(rand(1, 2, 3, 6, 7)), ValueError, "x"),
        bad(
            "kernel larger than the padded input",
            lambda: call(kernel_size=9, padding=0),
            ValueError,
            "kernel",
            "(6, 7)",
        ),
        good(
            "kernel fits thanks to padding",
            lambda: call(kernel_size=8, padding=1, dilation=1, stride=1),
            shapes((2, 3 * 64, 2)),
        ),
        good("an empty batch", lambda: call(rand(0, 3, 6, 7)), shapes((0, 18, 6 * 4))),
        good("no channels", lambda: call(rand(2, 0, 6, 7)), shapes((2, 0, 24))),
        bad("an empty plane", lambda: call(rand(2, 3, 0, 7)), ValueError, "kernel"),
        good("unbatched", lambda: call(x[0]), lambda r: assert_close(r, call()[0])),
        bad(
            "C * R * S past 2**63",
            lambda: ops.im2col(rand(1, 4, 1, 1), 2**31 - 1, padding=2**30),
            ValueError,
            "kernel_size",
        ),
        good(
            "a 65538 x 65538 plane, windows 2**32 elements in",
            lambda: ops.im2col(rows, 2, stride=FAR),
            lambda r: np.testing.assert_array_equal(
                r[0], [[0, FAR] * 2, [1, FAR + 1] * 2, [0, FAR] * 2, [1, FAR + 1] * 2]
            ),
        ),
        good(
            "batch items 2**31 elements apart",
            lambda: call(_far(x)),
            lambda r: assert_close(r, call()),
        ),
    ]
    return cases


def col2im_cases():
    shape = (2, 3, 6, 7)
    cols = ops.im2col(rand(*shape), **IM2COL)

    def call(cols=cols, x_shape=shape, **kw):
        return ops.col2im(cols, x_shape, **{**IM2COL, **kw})

    def make(dtype):
        return dict(cols=cols.astype(dtype))

    cases = standard_cases(call, make, ("cols",), ("cols",))
    cases += [c for c in window_cases(call, IM2COL) if c.error]  # other windows need other cols
    cases += shape_arg_cases(lambda x_shape: call(x_shape=x_shape), "x_shape", shape)
    cases += [
        bad("cols 1-D", lambda: call(cols[0, 0]), ValueError, "cols"),
        bad(
            "cols of the wrong shape",
            lambda: call(cols[:, :, 1:]),
            ValueError,
            "cols",
            "(2, 18, 23)",
        ),
        bad("x_shape a NumPy array", lambda: call(x_shape=np.array(shape)), TypeError, "x_shape"),
        bad("x_shape of another image", lambda: call(x_shape=(2, 3, 9, 7)), ValueError, "cols"),
        bad(
            "kernel larger than the padded image", lambda: call(kernel_size=9), ValueError, "kernel"
        ),
        good("an empty batch", lambda: call(cols[:0], (0, 3, 6, 7)), shapes((0, 3, 6, 7))),
        good("unbatched", lambda: call(cols[0], shape[1:]), lambda r: assert_close(r, call()[0])),
        bad(
            "x_shape of 2**82 elements",
            lambda: ops.col2im(rand(1, 4, 1), (1, 4, HUGE, HUGE), 2**31 - 1, stride=2**31 - 1),
            ValueError,
            "x_shape",
        ),
    ]
    return cases


CONV = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)


def _conv_make(dtype):
    return dict(
        x=rand(2, 4, 7, 6, dtype=dtype),
        w=rand(6, 2, 3, 2, dtype=dtype, seed=1),
        b=rand(6, dtype=dtype, seed=2),
    )


def conv2d_cases():
    x, w, b = _conv_make(f32).values()

    def call(x=x, w=w, b=b, **kw):
        return ops.conv2d(x, w, b, **{**CONV, **kw})

    def depthwise(x, w, b):
        return ops.conv2d(x, w, b, padding=1, groups=4)

    def depthwise_make(dtype):
        return dict(
            x=rand(2, 4, 7, 6, dtype=dtype), w=rand(4, 1, 3, 3, dtype=dtype), b=rand(4, dtype=dtype)
        )

    rows = zero_strided_rows(BIG, BIG)
    cases = standard_cases(call, _conv_make, ("x", "w", "b"), ("x", "w"))
    cases += [
        _rename(c, "depthwise: ")
        for c in standard_cases(depthwise, depthwise_make, ("x", "w"), ("x", "w"))
    ]
    # a string padding names a mode: ValueError, not TypeError
    cases += window_cases(call, CONV, positive=("stride", "dilation"), skip=("padding='2'",))
    cases += [
        bad("x 2-D", lambda: call(x[0, 0]), ValueError, "x", "(7, 6)"),
        bad("x 5-D", lambda: call(x[None]), ValueError, "x"),
        bad("w 3-D", lambda: call(w=w[0]), ValueError, "w", "(2, 3, 2)"),
        bad("b 2-D", lambda: call(b=b[None]), ValueError, "b"),
        bad("b of the wrong length", lambda: call(b=b[:5]), ValueError, "b", "(5,)"),
        bad("channels differ", lambda: call(w=rand(6, 3, 3, 2)), ValueError, "channels", "x", "w"),
        bad("groups 0", lambda: call(groups=0), ValueError, "groups"),
        bad("groups -2", lambda: call(groups=-2), ValueError, "groups"),
        bad(
            "groups not dividing C",
            lambda: call(w=rand(6, 1, 3, 2), groups=3),
            ValueError,
            "groups",
        ),
        bad(
            "groups not dividing K", lambda: call(w=rand(5, 2, 3, 2), b=None), ValueError, "groups"
        ),
        bad("groups 2.0", lambda: call(groups=2.0), TypeError, "groups"),
        bad("groups True", lambda: call(groups=True), TypeError, "groups"),
        bad("groups None", lambda: call(groups=None), TypeError, "groups"),
        bad("groups 2**63", lambda: call(groups=2**63), ValueError, "groups"),
        good(
            "groups a NumPy int",
            lambda: call(groups=np.int32(2)),
            lambda r: assert_close(r, call()),
        ),
        good("padding 'same'", lambda: call(stride=1, padding="same"), shapes((2, 6, 7, 6))),
        good("padding 'valid'", lambda: call(padding="valid"), shapes((2, 6, 3, 4))),
        bad(
            "padding 'same' with stride 2",
            lambda: call(padding="same"),
            ValueError,
            "same",
            "stride",
        ),
        bad("padding 'full'", lambda: call(padding="full"), ValueError, "padding"),
        bad("padding '2'", lambda: call(padding="2"), ValueError, "padding"),
        bad("padding ('same', 1)", lambda: call(padding=("same", 1)), TypeError, "padding"),
        bad(
            "kernel larger than the padded input",
            lambda: call(w=rand(6, 2, 10, 2)),
            ValueError,
            "kernel",
            "(10, 2)",
        ),
        bad("an empty kernel", lambda: call(w=rand(6, 2, 0, 2)), ValueError, "w"),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 6, 4, 4))),
        good(
            "no input channels gives the bias",
            lambda: call(rand(2, 0, 7, 6), rand(6, 0, 3, 2), groups=1),
            lambda r: assert_close(r, np.broadcast_to(b[:, None, None], (2, 6, 4, 4))),
        ),
        good("no output channels", lambda: call(w=rand(0, 2, 3, 2), b=None), shapes((2, 0, 4, 4))),
        bad("an empty plane", lambda: call(rand(2, 4, 0, 6)), ValueError, "kernel"),
        good("unbatched", lambda: call(x[0]), lambda r: assert_close(r, call()[0])),
        good("NaN in x propagates", lambda: call(np.full_like(x, NAN)), all_nan),
        bad(
            "a kernel whose C * R * S passes 2**63",
            lambda: ops.conv2d(rand(1, 1, 1, 1), huge(1, 1, 2**30, 2**30), padding=2**29),
            ValueError,
            "w",
        ),
        good(
            "a 65538 x 65538 plane, windows 2**32 elements in",
            lambda: ops.conv2d(rows, np.ones((1, 1, 2, 2), f32), stride=FAR),
            lambda r: np.testing.assert_array_equal(r[0, 0], [[2, 4 * FAR + 2]] * 2),
        ),
        good(
            "batch items 2**31 elements apart",
            lambda: call(_far(x)),
            lambda r: assert_close(r, call()),
        ),
        good(
            "filters 2**31 elements apart",
            lambda: call(w=_far(w)),
            lambda r: assert_close(r, call()),
        ),
        bad(
            "2**58 empty images, a 2**64-byte output",
            lambda: ops.conv2d(empty(2**58, 0, 1, 1), rand(16, 0, 1, 1)),
            ValueError,
            "x",
        ),
    ]
    return cases


def _rename(case, prefix):
    from dataclasses import replace

    return replace(case, name=prefix + case.name)


def conv2d_backward_cases():
    x, w, b = _conv_make(f32).values()
    dy = rand(2, 6, 4, 4, seed=3)

    def call(dy=dy, x=x, w=w, **kw):
        return ops.conv2d_backward(dy, x, w, **{**CONV, **kw})

    def make(dtype):
        d = _conv_make(dtype)
        return dict(dy=dy.astype(dtype), x=d["x"], w=d["w"])

    cases = standard_cases(call, make, ("dy", "x", "w"), ("dy", "x", "w"))
    cases += [
        bad("dy of the wrong shape", lambda: call(dy[:, :, 1:]), ValueError, "dy", "(2, 6, 3, 4)"),
        bad("dy 3-D for a batched x", lambda: call(dy[0]), ValueError, "dy"),
        bad("channels differ", lambda: call(w=rand(6, 3, 3, 2)), ValueError, "channels"),
        bad("groups 0", lambda: call(groups=0), ValueError, "groups"),
        bad("stride 0", lambda: call(stride=0), ValueError, "stride"),
        bad("padding -1", lambda: call(padding=-1), ValueError, "padding"),
        bad("need of two flags", lambda: call(need=(True, True)), ValueError, "need"),
        bad("need None", lambda: call(need=None), TypeError, "need"),
        bad("need a bool", lambda: call(need=True), TypeError, "need"),
        good("need nothing", lambda: call(need=(False, False, False)), shapes(None, None, None)),
        good(
            "need dw only",
            lambda: call(need=(False, True, False)),
            shapes(None, (6, 2, 3, 2), None),
        ),
        good(
            "an empty batch: dx empty, dw and db zero",
            lambda: call(dy[:0], x[:0]),
            lambda r: (
                shapes((0, 4, 7, 6), (6, 2, 3, 2), (6,))(r),
                np.testing.assert_array_equal(r[1], 0),
                np.testing.assert_array_equal(r[2], 0),
            ),
        ),
        good("unbatched", lambda: call(dy[0], x[0]), lambda r: assert_close(r[0], call()[0][0])),
        good("dy 2**31 elements apart", lambda: call(_far(dy)), lambda r: assert_close(r, call())),
    ]
    return cases


# ---- pooling -----------------------------------------------------------------------------------

MAXPOOL = dict(kernel_size=(3, 2), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=True)
AVGPOOL = dict(
    kernel_size=(3, 2), stride=(2, 1), padding=1, ceil_mode=True, count_include_pad=False
)


def _image_cases(call, x, fn_words=("x",)):
    """Rank and emptiness of a pooling input: batch 0 is fine, C, H or W 0 is not (PyTorch)."""
    return [
        bad("x 2-D", lambda: call(x[0, 0]), ValueError, "x", "(7, 6)"),
        bad("x 5-D", lambda: call(x[None]), ValueError, "x"),
        bad("no channels", lambda: call(x[:, :0]), ValueError, "x", "(2, 0, 7, 6)"),
        bad("an empty plane", lambda: call(x[:, :, :0]), ValueError, "x", "(2, 3, 0, 6)"),
        good(
            "unbatched",
            lambda: call(x[0]),
            lambda r: assert_close(r, [a[0] for a in _tuple(call(x))]),
        ),
    ]


def _tuple(r):
    return r if isinstance(r, tuple) else (r,)


def max_pool2d_cases():
    x = rand(2, 3, 7, 6)

    def call(x=x, **kw):
        return ops.max_pool2d(x, **{**MAXPOOL, **kw})

    rows = zero_strided_rows(BIG, BIG)
    nan_x = x.copy()
    nan_x[0, 0, 3, 3] = NAN
    cases = standard_cases(call, lambda d: dict(x=x.astype(d)), ("x",), ("x",))
    cases += window_cases(call, MAXPOOL)
    cases += _image_cases(call, x)
    cases += [
        bad("padding more than half the kernel", lambda: call(padding=2), ValueError, "padding"),
        bad(
            "kernel larger than the padded input",
            lambda: call(kernel_size=10, padding=0),
            ValueError,
            "kernel_size",
        ),
        good(
            "stride None is the kernel",
            lambda: call(stride=None),
            lambda r: assert_close(r, call(stride=(3, 2))),
        ),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 3, 4, 6), (0, 3, 4, 6))),
        good(
            "NaN is the maximum",
            lambda: call(nan_x),
            lambda r: assert_close(r, ref.max_pool2d(nan_x.astype(f64), **MAXPOOL)),
        ),
        good(
            "-inf everywhere",
            lambda: call(np.full_like(x, -INF)),
            lambda r: np.testing.assert_array_equal(r[0], -INF),
        ),
        good(
            "a 65538 x 65538 plane: indices past 2**32",
            lambda: ops.max_pool2d(rows, 2, stride=FAR),
            lambda r: (
                np.testing.assert_array_equal(r[0][0, 0], [[1, FAR + 1]] * 2),
                np.testing.assert_array_equal(
                    r[1][0, 0], [[i * FAR * BIG + j * FAR + 1 for j in (0, 1)] for i in (0, 1)]
                ),
            ),
        ),
        good(
            "batch items 2**31 elements apart",
            lambda: call(_far(x)),
            lambda r: assert_close(r, call()),
        ),
    ]
    return cases


def max_pool2d_backward_cases():
    x = rand(2, 3, 7, 6)
    y, idx = ops.max_pool2d(x, **MAXPOOL)
    dy = rand(*y.shape, seed=4)

    def call(dy=dy, indices=idx, x_shape=x.shape):
        return ops.max_pool2d_backward(dy, indices, x_shape)

    def make(dtype):
        return dict(dy=dy.astype(dtype))

    def with_index(value, dtype=np.int64):
        bad_idx = idx.astype(dtype)
        bad_idx[1, 2, 3, 1] = value
        return bad_idx

    cases = standard_cases(call, make, ("dy",), ("dy",))
    cases += shape_arg_cases(lambda x_shape: call(x_shape=x_shape), "x_shape", x.shape)
    cases += [
        bad("indices float", lambda: call(indices=idx.astype(f32)), TypeError, "indices"),
        bad("indices a list", lambda: call(indices=idx.tolist()), TypeError, "indices"),
        bad("indices None", lambda: call(indices=None), TypeError, "indices"),
        bad(
            "indices of the wrong shape", lambda: call(indices=idx[:, :, 1:]), ValueError, "indices"
        ),
        bad("an index -1", lambda: call(indices=with_index(-1)), ValueError, "indices"),
        bad("an index H * W", lambda: call(indices=with_index(42)), ValueError, "indices", "42"),
        bad(
            "an index 2**32 + 1", lambda: call(indices=with_index(2**32 + 1)), ValueError, "indices"
        ),
        bad(
            "an index 2**64 - 1 (uint64)",
            lambda: call(indices=with_index(2**64 - 1, np.uint64)),
            ValueError,
            "indices",
        ),
        good(
            "indices int32",
            lambda: call(indices=idx.astype(np.int32)),
            lambda r: assert_close(r, call()),
        ),
        good(
            "indices misaligned",
            lambda: call(indices=misaligned(idx)),
            lambda r: assert_close(r, call()),
        ),
        good(
            "indices with negative strides",
            lambda: call(dy[::-1].copy(), idx[::-1]),
            lambda r: assert_close(r, call(dy[::-1].copy(), idx[::-1].copy())),
        ),
        bad("dy 2-D", lambda: call(dy[0, 0], idx[0, 0], (7, 6)), ValueError, "dy"),
        bad(
            "dy of another batch than x_shape", lambda: call(x_shape=(3, 3, 7, 6)), ValueError, "dy"
        ),
        good("an empty batch", lambda: call(dy[:0], idx[:0], (0, 3, 7, 6)), shapes((0, 3, 7, 6))),
        good(
            "unbatched",
            lambda: call(dy[0], idx[0], x.shape[1:]),
            lambda r: assert_close(r, call()[0]),
        ),
        good("dy 2**31 elements apart", lambda: call(_far(dy)), lambda r: assert_close(r, call())),
    ]
    return cases


def avg_pool2d_cases():
    x = rand(2, 3, 7, 6)

    def call(x=x, **kw):
        return ops.avg_pool2d(x, **{**AVGPOOL, **kw})

    rows = zero_strided_rows(BIG, BIG)
    cases = standard_cases(call, lambda d: dict(x=x.astype(d)), ("x",), ("x",))
    cases += window_cases(call, AVGPOOL, positive=("kernel_size", "stride"))
    cases += _image_cases(call, x)
    cases += [
        bad("padding more than half the kernel", lambda: call(padding=2), ValueError, "padding"),
        bad(
            "kernel larger than the padded input",
            lambda: call(kernel_size=10, padding=0),
            ValueError,
            "kernel_size",
        ),
        bad("divisor_override 0", lambda: call(divisor_override=0), ValueError, "divisor_override"),
        bad(
            "divisor_override 2**31",
            lambda: call(divisor_override=2**31),
            ValueError,
            "divisor_override",
        ),
        bad(
            "divisor_override 1.5",
            lambda: call(divisor_override=1.5),
            TypeError,
            "divisor_override",
        ),
        bad(
            "divisor_override True",
            lambda: call(divisor_override=True),
            TypeError,
            "divisor_override",
        ),
        good("divisor_override -2", lambda: call(divisor_override=-2), shapes((2, 3, 4, 7))),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 3, 4, 7))),
        good("NaN propagates", lambda: call(np.full_like(x, NAN)), all_nan),
        good(
            "a 65538 x 65538 plane, windows 2**32 elements in",
            lambda: ops.avg_pool2d(rows, 2, stride=FAR),
            lambda r: np.testing.assert_array_equal(r[0, 0], [[0.5, FAR + 0.5]] * 2),
        ),
        good(
            "batch items 2**31 elements apart",
            lambda: call(_far(x)),
            lambda r: assert_close(r, call()),
        ),
    ]
    return cases


def avg_pool2d_backward_cases():
    x = rand(2, 3, 7, 6)
    dy = rand(*ops.avg_pool2d(x, **AVGPOOL).shape, seed=4)

    def call(dy=dy, x_shape=x.shape, **kw):
        return ops.avg_pool2d_backward(dy, x_shape, **{**AVGPOOL, **kw})

    cases = standard_cases(call, lambda d: dict(dy=dy.astype(d)), ("dy",), ("dy",))
    cases += shape_arg_cases(lambda x_shape: call(x_shape=x_shape), "x_shape", x.shape)
    cases += [
        bad("dy of the wrong shape", lambda: call(dy[:, :, 1:]), ValueError, "dy"),
        bad("dy 5-D", lambda: call(dy[None]), ValueError, "dy"),
        bad("stride 0", lambda: call(stride=0), ValueError, "stride"),
        bad("kernel_size 2.5", lambda: call(kernel_size=2.5), TypeError, "kernel_size"),
        bad("padding more than half the kernel", lambda: call(padding=2), ValueError, "padding"),
        bad("divisor_override 0", lambda: call(divisor_override=0), ValueError, "divisor_override"),
        bad("an empty plane in x_shape", lambda: call(x_shape=(2, 3, 0, 6)), ValueError, "x_shape"),
        good("an empty batch", lambda: call(dy[:0], (0, 3, 7, 6)), shapes((0, 3, 7, 6))),
        good("unbatched", lambda: call(dy[0], x.shape[1:]), lambda r: assert_close(r, call()[0])),
        good("dy 2**31 elements apart", lambda: call(_far(dy)), lambda r: assert_close(r, call())),
    ]
    return cases


def adaptive_avg_pool2d_cases():
    x = rand(2, 3, 7, 6)

    def call(x=x, output_size=(3, 4)):
        return ops.adaptive_avg_pool2d(x, output_size)

    cases = standard_cases(call, lambda d: dict(x=x.astype(d)), ("x",), ("x",))
    cases += [
        bad("x 2-D", lambda: call(x[0, 0]), ValueError, "x"),
        bad("an empty plane", lambda: call(x[:, :, :0]), ValueError, "x"),
        good("no channels", lambda: call(x[:, :0]), shapes((2, 0, 3, 4))),
        good("an empty batch", lambda: call(x[:0]), shapes((0, 3, 3, 4))),
        good("unbatched", lambda: call(x[0]), lambda r: assert_close(r, call()[0])),
        good("output_size an int", lambda: call(output_size=2), shapes((2, 3, 2, 2))),
        good("output_size (2,)", lambda: call(output_size=(2,)), shapes((2, 3, 2, 2))),
        good("output_size (None, 3)", lambda: call(output_size=(None, 3)), shapes((2, 3, 7, 3))),
        good("output_size 0", lambda: call(output_size=0), shapes((2, 3, 0, 0))),
        good(
            "output_size larger than the input",
            lambda: call(output_size=(9, 11)),
            shapes((2, 3, 9, 11)),
        ),
        good(
            "2**50 images without channels",
            lambda: call(empty(2**50, 0, 7, 6)),
            shapes((2**50, 0, 3, 4)),
        ),
        bad("output_size -1", lambda: call(output_size=-1), ValueError, "output_size"),
        bad("output_size (2, 2, 2)", lambda: call(output_size=(2, 2, 2)), TypeError, "output_size"),
        bad("output_size 2.0", lambda: call(output_size=2.0), TypeError, "output_size"),
        bad("output_size '2'", lambda: call(output_size="2"), TypeError, "output_size"),
        bad(
            "output_size too large to allocate",
            lambda: call(output_size=HUGE),
            ValueError,
            "output_size",
        ),
        good(
            "batch items 2**31 elements apart",
            lambda: call(_far(x)),
            lambda r: assert_close(r, call()),
        ),
    ]
    return cases


def adaptive_avg_pool2d_backward_cases():
    x = rand(2, 3, 7, 6)
    dy = rand(2, 3, 3, 4, seed=4)

    def call(dy=dy, x_shape=x.shape):
        return ops.adaptive_avg_pool2d_backward(dy, x_shape)

    cases = standard_cases(call, lambda d: dict(dy=dy.astype(d)), ("dy",), ("dy",))
    cases += shape_arg_cases(lambda x_shape: call(x_shape=x_shape), "x_shape", x.shape)
    cases += [
        bad("dy 2-D", lambda: call(dy[0, 0]), ValueError, "dy"),
        bad(
            "dy of another batch than x_shape", lambda: call(x_shape=(3, 3, 7, 6)), ValueError, "dy"
        ),
        good(
            "an empty output",
            lambda: call(dy[:, :, :0, :0]),
            lambda r: np.testing.assert_array_equal(r, 0),
        ),
        good("an empty batch", lambda: call(dy[:0], (0, 3, 7, 6)), shapes((0, 3, 7, 6))),
        good("unbatched", lambda: call(dy[0], x.shape[1:]), lambda r: assert_close(r, call()[0])),
        good("dy 2**31 elements apart", lambda: call(_far(dy)), lambda r: assert_close(r, call())),
    ]
    return cases


# ---- LSTM --------------------------------------------------------------------------------------

B, I, H, T = 3, 5, 4, 6


def _cell_make(dtype, batch=(B,)):
    return dict(
        x=rand(*batch, I, dtype=dtype),
        h=rand(*batch, H, dtype=dtype, seed=1),
        c=rand(*batch, H, dtype=dtype, seed=2),
        w_ih=rand(4 * H, I, dtype=dtype, seed=3),
        w_hh=rand(4 * H, H, dtype=dtype, seed=4),
        b_ih=rand(4 * H, dtype=dtype, seed=5),
        b_hh=rand(4 * H, dtype=dtype, seed=6),
    )


def lstm_cell_cases():
    args = _cell_make(f32)

    def call(**kw):
        return ops.lstm_cell(**{**args, **kw})

    names = ("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh")
    cases = standard_cases(
        lambda **kw: ops.lstm_cell(**kw), _cell_make, names, ("x", "w_ih", "w_hh")
    )
    cases += [
        bad("x 3-D", lambda: call(x=rand(1, B, I)), ValueError, "x"),
        bad("w_ih 1-D", lambda: call(w_ih=rand(4 * H)), ValueError, "w_ih"),
        bad("w_hh not (4H, H)", lambda: call(w_hh=rand(4 * H - 1, H)), ValueError, "w_hh"),
        bad(
            "w_ih of another input size",
            lambda: call(w_ih=rand(4 * H, I + 1)),
            ValueError,
            "w_ih",
            "(16, 6)",
        ),
        bad("b_ih of the wrong length", lambda: call(b_ih=rand(4 * H - 1)), ValueError, "b_ih"),
        bad("h of another batch", lambda: call(h=rand(B + 1, H)), ValueError, "h"),
        bad("c of another size", lambda: call(c=rand(B, H + 1)), ValueError, "c"),
        good(
            "no state, no biases",
            lambda: call(h=None, c=None, b_ih=None, b_hh=None),
            shapes((B, H), (B, H)),
        ),
        good(
            "an empty batch", lambda: ops.lstm_cell(**_cell_make(f32, (0,))), shapes((0, H), (0, H))
        ),
        good(
            "no inputs (I = 0)",
            lambda: call(x=rand(B, 0), w_ih=rand(4 * H, 0)),
            shapes((B, H), (B, H)),
        ),
        good(
            "no hidden units (H = 0)",
            lambda: call(h=None, c=None, w_ih=rand(0, I), w_hh=rand(0, 0), b_ih=None, b_hh=None),
            shapes((B, 0), (B, 0)),
        ),
        good("unbatched", lambda: ops.lstm_cell(**_cell_make(f32, ())), shapes((H,), (H,))),
        good(
            "NaN in x propagates",
            lambda: call(x=np.full((B, I), NAN, f32)),
            lambda r: all_nan(r[0]),
        ),
        good(
            "rows of x 2**31 elements apart",
            lambda: call(x=_far(args["x"])),
            lambda r: assert_close(r, call()),
        ),
    ]
    return cases


def _saved_cell(dtype):
    h, c, saved = ops.lstm_cell(**_cell_make(dtype), return_saved=True)
    return saved


def lstm_cell_backward_cases():
    saved = _saved_cell(f32)

    def make(dtype):
        return dict(
            dh_next=rand(B, H, dtype=dtype, seed=7),
            dc_next=rand(B, H, dtype=dtype, seed=8),
            saved=_saved_cell(dtype),
        )

    def call(**kw):
        return ops.lstm_cell_backward(**{**make(f32), **kw})

    _, _, seq_saved = ops.lstm(rand(T, B, I), None, None, _weights(f32), return_saved=True)
    cases = standard_cases(
        lambda **kw: ops.lstm_cell_backward(**kw), make, ("dh_next", "dc_next"), ()
    )
    cases += [
        bad("saved None", lambda: call(saved=None), TypeError, "saved"),
        bad("saved a dict", lambda: call(saved={}), TypeError, "saved"),
        bad("saved from lstm", lambda: call(saved=seq_saved), ValueError, "saved", "lstm"),
        bad(
            "dh_next of another batch", lambda: call(dh_next=rand(B + 1, H)), ValueError, "dh_next"
        ),
        bad("dc_next 1-D", lambda: call(dc_next=rand(H)), ValueError, "dc_next"),
        bad(
            "float64 gradients of a float32 forward",
            lambda: call(dh_next=rand(B, H, dtype=f64), dc_next=None),
            TypeError,
            "float32",
        ),
        good(
            "no incoming gradients",
            lambda: call(dh_next=None, dc_next=None),
            lambda r: np.testing.assert_array_equal(r[0], 0),
        ),
        good(
            "from an unbatched forward",
            lambda: ops.lstm_cell_backward(
                rand(H), rand(H), ops.lstm_cell(**_cell_make(f32, ()), return_saved=True)[2]
            ),
            shapes((I,), (H,), (H,), (4 * H, I), (4 * H, H), (4 * H,)),
        ),
        good("twice from one saved", lambda: (call(saved=saved), call(saved=saved))),
    ]
    return cases


def _weights(dtype, hidden=H, inputs=I, bias=True):
    return (
        rand(4 * hidden, inputs, dtype=dtype, seed=3),
        rand(4 * hidden, hidden, dtype=dtype, seed=4),
        rand(4 * hidden, dtype=dtype, seed=5) if bias else None,
        rand(4 * hidden, dtype=dtype, seed=6) if bias else None,
    )


def _lstm_make(dtype):
    w_ih, w_hh, b_ih, b_hh = _weights(dtype)
    return dict(
        x=rand(T, B, I, dtype=dtype),
        h0=rand(B, H, dtype=dtype, seed=1),
        c0=rand(B, H, dtype=dtype, seed=2),
        w_ih=w_ih,
        w_hh=w_hh,
        b_ih=b_ih,
        b_hh=b_hh,
    )


def _lstm_call(x, h0, c0, w_ih, w_hh, b_ih, b_hh, **kw):
    return ops.lstm(x, h0, c0, (w_ih, w_hh, b_ih, b_hh), **kw)


def lstm_cases():
    args = _lstm_make(f32)

    def call(**kw):
        return _lstm_call(**{**args, **kw})

    names = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
    x = args["x"]
    cases = standard_cases(_lstm_call, _lstm_make, names, ("x", "w_ih", "w_hh"))
    cases += [
        bad("weights a dict", lambda: ops.lstm(x, None, None, {"w_ih": 1}), TypeError, "weights"),
        bad(
            "weights of three",
            lambda: ops.lstm(x, None, None, _weights(f32)[:3]),
            TypeError,
            "weights",
        ),
        bad("weights None", lambda: ops.lstm(x, None, None, None), TypeError, "weights"),
        good(
            "weights a list",
            lambda: ops.lstm(x, args["h0"], args["c0"], list(_weights(f32))),
            lambda r: assert_close(r, call()),
        ),
        bad("x 4-D", lambda: call(x=x[None]), ValueError, "x"),
        bad("x 1-D", lambda: call(x=x[0, 0]), ValueError, "x"),
        bad(
            "w_ih of another input size", lambda: call(w_ih=rand(4 * H, I + 1)), ValueError, "w_ih"
        ),
        bad("w_hh not (4H, H)", lambda: call(w_hh=rand(4 * H, H + 1)), ValueError, "w_hh"),
        bad("b_hh 2-D", lambda: call(b_hh=rand(1, 4 * H)), ValueError, "b_hh"),
        bad("h0 of another batch", lambda: call(h0=rand(B + 1, H)), ValueError, "h0"),
        bad("c0 3-D", lambda: call(c0=rand(1, B, H)), ValueError, "c0"),
        good(
            "batch_first",
            lambda: call(x=x.swapaxes(0, 1).copy(), batch_first=True),
            lambda r: assert_close(r[0], call()[0].swapaxes(0, 1)),
        ),
        good(
            "no time steps: y empty, the state passes through",
            lambda: call(x=x[:0]),
            lambda r: (
                shapes((0, B, H), (B, H), (B, H))(r),
                assert_close(r[1], (args["h0"], args["c0"])),
            ),
        ),
        good(
            "an empty batch",
            lambda: call(x=x[:, :0], h0=None, c0=None),
            shapes((T, 0, H), (0, H), (0, H)),
        ),
        good(
            "no inputs (I = 0)",
            lambda: call(x=x[:, :, :0], w_ih=rand(4 * H, 0)),
            shapes((T, B, H), (B, H), (B, H)),
        ),
        good("unbatched", lambda: call(x=x[:, 0], h0=None, c0=None), shapes((T, H), (H,), (H,))),
        good(
            "rows interleaved (not foldable)",
            lambda: call(x=rand(T, 2 * B, I)[:, ::2]),
            shapes((T, B, H), (B, H), (B, H)),
        ),
        good(
            "time steps 2**31 elements apart",
            lambda: call(x=_far(x)),
            lambda r: assert_close(r, call()),
        ),
        bad(
            "2**60 steps of no inputs",
            lambda: call(x=empty(2**30, 2**30, 0), w_ih=rand(4 * H, 0), h0=None, c0=None),
            ValueError,
            "x",
        ),
        bad(
            "2**56 steps of 4096 gates",
            lambda: ops.lstm(
                huge(2**28, 2**28, I), None, None, (huge(4096, I), huge(4096, 1024), None, None)
            ),
            ValueError,
            "x",
        ),
    ]
    return cases


def _saved_seq(dtype, **kw):
    return _lstm_call(**_lstm_make(dtype), return_saved=True, **kw)[2]


def lstm_backward_cases():
    def make(dtype):
        return dict(
            dy=rand(T, B, H, dtype=dtype, seed=7),
            dh_n=rand(B, H, dtype=dtype, seed=8),
            dc_n=rand(B, H, dtype=dtype, seed=9),
            saved=_saved_seq(dtype),
        )

    def call(**kw):
        return ops.lstm_backward(**{**make(f32), **kw})

    cell_saved = _saved_cell(f32)
    cases = standard_cases(lambda **kw: ops.lstm_backward(**kw), make, ("dy", "dh_n", "dc_n"), ())
    cases += [
        bad("saved None", lambda: call(saved=None), TypeError, "saved"),
        bad("saved a tuple", lambda: call(saved=(1, 2)), TypeError, "saved"),
        bad(
            "saved from lstm_cell", lambda: call(saved=cell_saved), ValueError, "saved", "lstm_cell"
        ),
        bad("dy of another length", lambda: call(dy=rand(T + 1, B, H)), ValueError, "dy"),
        bad(
            "dy batch-first for a time-first forward",
            lambda: call(dy=rand(B, T, H)),
            ValueError,
            "dy",
        ),
        bad("dh_n of another size", lambda: call(dh_n=rand(B, H + 1)), ValueError, "dh_n"),
        bad(
            "float64 gradients of a float32 forward",
            lambda: call(dy=rand(T, B, H, dtype=f64), dh_n=None, dc_n=None),
            TypeError,
            "float32",
        ),
        good(
            "no incoming gradients",
            lambda: call(dy=None, dh_n=None, dc_n=None),
            lambda r: np.testing.assert_array_equal(r[0], 0),
        ),
        good(
            "batch_first",
            lambda: ops.lstm_backward(
                rand(B, T, H),
                None,
                None,
                _lstm_call(
                    **{**_lstm_make(f32), "x": rand(B, T, I)}, batch_first=True, return_saved=True
                )[2],
            ),
            shapes((B, T, I), (B, H), (B, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)),
        ),
        good(
            "dy 2**31 elements apart",
            lambda: call(dy=_far(rand(T, B, H, seed=7))),
            lambda r: assert_close(r, call()),
        ),
    ]
    return cases


# ---- attention ---------------------------------------------------------------------------------


def _qkv(dtype, lead=(2, 3), L=5, S=6, E=4, Ev=3):
    return dict(
        q=rand(*lead, L, E, dtype=dtype),
        k=rand(*lead, S, E, dtype=dtype, seed=1),
        v=rand(*lead, S, Ev, dtype=dtype, seed=2),
    )


def sdpa_cases():
    sdpa = ops.scaled_dot_product_attention
    q, k, v = _qkv(f32).values()
    mask = np.random.default_rng(0).random((5, 6)) < 0.7
    mask[:, 0] = True
    no_row = mask.copy()
    no_row[2] = False

    def call(**kw):
        return sdpa(**{"q": q, "k": k, "v": v, **kw})

    cases = standard_cases(lambda **kw: sdpa(**kw), _qkv, ("q", "k", "v"), ("q", "k", "v"))
    cases += [
        _rename(c, "with a float mask: ")
        for c in standard_cases(
            lambda **kw: sdpa(**kw),
            lambda d: {**_qkv(d), "attn_mask": rand(5, 6, dtype=d, seed=3)},
            ("attn_mask",),
            (),
        )
        if c.name != "attn_mask bool"  # a boolean mask is valid
    ]
    cases += [
        bad("q 1-D", lambda: call(q=q[0, 0, 0]), ValueError, "q"),
        bad("head dimensions differ", lambda: call(k=k[..., :3]), ValueError, "q", "k"),
        bad("k and v lengths differ", lambda: call(v=v[:, :, :5]), ValueError, "k", "v"),
        bad(
            "leading dimensions do not broadcast",
            lambda: call(k=rand(3, 3, 6, 4), v=rand(3, 3, 6, 3)),
            ValueError,
            "q",
            "k",
        ),
        good(
            "leading dimensions broadcast",
            lambda: call(q=rand(2, 1, 5, 4), k=rand(1, 3, 6, 4), v=rand(3, 6, 3)),
            shapes((2, 3, 5, 3)),
        ),
        good("a boolean mask", lambda: call(attn_mask=mask), all_finite),
        bad("an int mask", lambda: call(attn_mask=mask.astype(np.int64)), TypeError, "attn_mask"),
        bad("a list mask", lambda: call(attn_mask=mask.tolist()), TypeError, "attn_mask"),
        bad(
            "a mask of the wrong shape",
            lambda: call(attn_mask=mask[:, :5]),
            ValueError,
            "attn_mask",
            "(5, 5)",
        ),
        bad(
            "a mask growing the batch",
            lambda: call(attn_mask=np.ones((4, 2, 3, 5, 6), bool)),
            ValueError,
            "attn_mask",
        ),
        bad(
            "a mask with is_causal",
            lambda: call(attn_mask=mask, is_causal=True),
            ValueError,
            "attn_mask",
            "is_causal",
        ),
        good(
            "a row with every key masked gives NaN",
            lambda: call(attn_mask=no_row),
            lambda r: (all_nan(r[:, :, 2]), all_finite(r[:, :, :2])),
        ),
        bad("dropout_p 1", lambda: call(dropout_p=1.0), ValueError, "dropout_p"),
        bad("dropout_p -0.1", lambda: call(dropout_p=-0.1), ValueError, "dropout_p"),
        bad("dropout_p NaN", lambda: call(dropout_p=NAN), ValueError, "dropout_p"),
        bad("dropout_p a string", lambda: call(dropout_p="0.1"), TypeError, "dropout_p"),
        bad("scale a string", lambda: call(scale="1"), TypeError, "scale"),
        good("scale NaN gives NaN", lambda: call(scale=NAN), all_nan),
        good(
            "scale 0 averages v",
            lambda: call(scale=0.0),
            lambda r: assert_close(r, np.broadcast_to(v.mean(-2, keepdims=True), r.shape)),
        ),
        good("scale inf", lambda: call(scale=INF)),
        good(
            "is_causal with L > S",
            lambda: call(q=rand(2, 3, 8, 4), is_causal=True),
            shapes((2, 3, 8, 3)),
        ),
        good("no queries (L = 0)", lambda: call(q=q[:, :, :0]), shapes((2, 3, 0, 3))),
        good(
            "no keys (S = 0) gives zeros",
            lambda: call(k=k[:, :, :0], v=v[:, :, :0]),
            lambda r: np.testing.assert_array_equal(r, 0),
        ),
        good("an empty batch", lambda: call(q=q[:0], k=k[:0], v=v[:0]), shapes((0, 3, 5, 3))),
        good("Ev = 0", lambda: call(v=v[..., :0]), shapes((2, 3, 5, 0))),
        bad("E = 0", lambda: call(q=q[..., :0], k=k[..., :0]), ValueError, "q"),
        good("return_lse", lambda: call(return_lse=True), shapes((2, 3, 5, 3), (2, 3, 5))),
        good("3-D", lambda: call(q=q[0], k=k[0], v=v[0]), lambda r: assert_close(r, call()[0])),
        good(
            "heads 2**31 elements apart",
            lambda: call(q=_far(q[0])),
            lambda r: assert_close(r, call(q=q[0])),
        ),
        good(
            "no queries in 2**58 batch items",
            lambda: call(q=empty(2**29, 2**29, 0, 4), k=k[0, 0], v=v[0, 0]),
            shapes((2**29, 2**29, 0, 3)),
        ),
        bad(
            "no keys for 2**62 batch items",
            lambda: call(q=huge(2**31, 1, 2, 4), k=empty(1, 2**31, 0, 4), v=empty(1, 2**31, 0, 3)),
            ValueError,
            "q",
            "k",
        ),
    ]
    return cases


def _sdpa_backward_make(dtype):
    args = _qkv(dtype)
    out, lse = ops.scaled_dot_product_attention(**args, return_lse=True)
    return dict(dout=rand(*out.shape, dtype=dtype, seed=5), **args, out=out, lse=lse)


def sdpa_backward_cases():
    bwd = ops.scaled_dot_product_attention_backward
    args = _sdpa_backward_make(f32)

    def call(**kw):
        return bwd(**{**args, **kw})

    names = ("dout", "q", "k", "v", "out", "lse")
    cases = standard_cases(lambda **kw: bwd(**kw), _sdpa_backward_make, names, names)
    cases += [
        bad(
            "dout of the wrong shape", lambda: call(dout=args["dout"][:, :, 1:]), ValueError, "dout"
        ),
        bad("out of the wrong shape", lambda: call(out=args["out"][..., 1:]), ValueError, "out"),
        bad("lse of the wrong shape", lambda: call(lse=args["lse"][..., None]), ValueError, "lse"),
        bad("head dimensions differ", lambda: call(k=args["k"][..., :3]), ValueError, "q", "k"),
        bad(
            "an int mask", lambda: call(attn_mask=np.ones((5, 6), np.int8)), TypeError, "attn_mask"
        ),
        bad(
            "a mask of the wrong shape",
            lambda: call(attn_mask=np.ones((6, 5), bool)),
            ValueError,
            "attn_mask",
        ),
        bad(
            "a mask with is_causal",
            lambda: call(attn_mask=np.ones((5, 6), bool), is_causal=True),
            ValueError,
            "is_causal",
        ),
        bad("scale a list", lambda: call(scale=[1.0]), TypeError, "scale"),
        good(
            "no keys (S = 0)",
            lambda: bwd(**_no_keys()),
            shapes((2, 3, 5, 4), (2, 3, 0, 4), (2, 3, 0, 3)),
        ),
        good(
            "an empty batch",
            lambda: bwd(**{n: a[:0] for n, a in args.items()}),
            shapes((0, 3, 5, 4), (0, 3, 6, 4), (0, 3, 6, 3)),
        ),
        good(
            "lse misaligned",
            lambda: call(lse=misaligned(args["lse"])),
            lambda r: assert_close(r, call()),
        ),
        good(
            "no queries (L = 0)",
            lambda: bwd(**_no_queries()),
            lambda r: (
                shapes((2, 3, 0, 4), (2, 3, 6, 4), (2, 3, 6, 3))(r),
                np.testing.assert_array_equal(r[1], 0),
            ),
        ),
    ]
    return cases


def _no_queries():
    args = _qkv(f32, L=0)
    out, lse = ops.scaled_dot_product_attention(**args, return_lse=True)
    return dict(dout=np.ones_like(out), **args, out=out, lse=lse)


def _no_keys():
    args = _qkv(f32, S=0)
    out, lse = ops.scaled_dot_product_attention(**args, return_lse=True)
    return dict(dout=np.ones_like(out), **args, out=out, lse=lse)


TABLE = {
    "ops.gemm": gemm_cases,
    "ops.matmul": matmul_cases,
    "ops.im2col": im2col_cases,
    "ops.col2im": col2im_cases,
    "ops.conv2d": conv2d_cases,
    "ops.conv2d_backward": conv2d_backward_cases,
    "ops.max_pool2d": max_pool2d_cases,
    "ops.max_pool2d_backward": max_pool2d_backward_cases,
    "ops.avg_pool2d": avg_pool2d_cases,
    "ops.avg_pool2d_backward": avg_pool2d_backward_cases,
    "ops.adaptive_avg_pool2d": adaptive_avg_pool2d_cases,
    "ops.adaptive_avg_pool2d_backward": adaptive_avg_pool2d_backward_cases,
    "ops.lstm_cell": lstm_cell_cases,
    "ops.lstm_cell_backward": lstm_cell_backward_cases,
    "ops.lstm": lstm_cases,
    "ops.lstm_backward": lstm_backward_cases,
    "ops.scaled_dot_product_attention": sdpa_cases,
    "ops.scaled_dot_product_attention_backward": sdpa_backward_cases,
}
