"""Bad-input cases of the main ember.nn modules and functionals (see bad_inputs/__init__.py).
Where PyTorch raises another exception type for the same mistake (AssertionError in
MultiheadAttention, IndexError for an out-of-range class or index, RuntimeError for LSTM
sizes), ember raises PyTorch's."""

from __future__ import annotations

import numpy as np

import ember
from bad_inputs import assert_close, bad, f32, f64, good, rand, shapes
from ember import nn
from ember.nn import functional as F


def t(*shape, dtype=f32, seed=0):
    return ember.tensor(rand(*shape, dtype=dtype, seed=seed))


def ints(*values):
    return ember.tensor(np.array(values, np.int64))


def backward_ok(result):
    out = result[0] if isinstance(result, tuple) else result
    out.sum().backward()


def input_cases(call, shape, word="input", *, float64_ok=False):
    """`call(input)` for an input Tensor of `shape`: other dtypes, non-tensors and (unless the
    layer takes it) float64 are TypeErrors naming `word`; a NumPy array or a transposed view
    gives the Tensor's result; the backward runs."""
    x = rand(*shape)
    cases = [
        good("float32", lambda: call(ember.tensor(x))),
        good("backward", lambda: backward_ok(call(ember.tensor(x, requires_grad=True)))),
        good(
            "a NumPy array",
            lambda: call(x),
            lambda r: assert_close(r, call(ember.tensor(x))),
        ),
        good(
            "a transposed view",
            lambda: call(ember.tensor(np.ascontiguousarray(x.T)).T),
            lambda r: assert_close(r, call(ember.tensor(x))),
        ),
        bad("a list", lambda: call(x.tolist()), TypeError, word),
        bad("None", lambda: call(None), TypeError, word),
        bad("a Python float", lambda: call(1.5), TypeError, word),
        bad("a NumPy object array", lambda: call(x.astype(object)), TypeError, word),
    ]
    for dtype in (np.int64, np.int32, np.bool_, np.float16, np.complex64):
        name = np.dtype(dtype).name
        cases.append(
            bad(f"input {name}", lambda d=dtype: call(ember.tensor(x.astype(d))), TypeError, name)
        )
    if float64_ok:
        cases.append(good("input float64", lambda: call(ember.tensor(x.astype(f64)))))
    else:
        cases.append(
            bad("input float64", lambda: call(ember.tensor(x.astype(f64))), TypeError, "float64")
        )
    return cases


def size_cases(make, names, minimum=None):
    """A layer's constructor: each size in `names` refuses floats, strings, bools and values
    below its minimum (0 unless given), naming itself."""
    minimum = minimum or {}
    cases = []
    for name in names:
        low = minimum.get(name, 0) - 1
        cases += [
            bad(f"{name}={low}", lambda n=name, v=low: make(**{n: v}), ValueError, name),
            bad(f"{name}=2.5", lambda n=name: make(**{n: 2.5}), TypeError, name),
            bad(f"{name}='4'", lambda n=name: make(**{n: "4"}), TypeError, name),
            bad(f"{name}=True", lambda n=name: make(**{n: True}), TypeError, name),
            good(f"{name} a NumPy int", lambda n=name: make(**{n: np.int64(4)})),
        ]
    return cases


# ---- layers ------------------------------------------------------------------------------------


def linear_cases():
    layer = nn.Linear(4, 3)

    def make(in_features=4, out_features=3):
        return nn.Linear(in_features, out_features)

    cases = input_cases(layer, (2, 4))
    cases += size_cases(make, ("in_features", "out_features"))
    cases += [
        bad("too many features", lambda: layer(t(2, 5)), ValueError, "input", "(2, 5)"),
        bad("a 0-D input", lambda: layer(t()), ValueError, "input"),
        good("1-D input", lambda: layer(t(4)), shapes((3,))),
        good("3-D input", lambda: layer(t(5, 2, 4)), shapes((5, 2, 3))),
        good("an empty batch", lambda: layer(t(0, 4)), shapes((0, 3))),
        good("no features gives the bias", lambda: nn.Linear(0, 3)(t(2, 0)), shapes((2, 3))),
        good(
            "float64 layer, float64 input", lambda: nn.Linear(4, 3, dtype=f64)(t(2, 4, dtype=f64))
        ),
        good(
            "functional with an explicit weight", lambda: F.linear(t(2, 4), t(3, 4)), shapes((2, 3))
        ),
        bad(
            "functional, weight of other features",
            lambda: F.linear(t(2, 4), t(3, 5)),
            ValueError,
            "weight",
        ),
    ]
    return cases


def conv2d_cases():
    layer = nn.Conv2d(4, 6, 3, padding=1)

    def make(in_channels=4, out_channels=8, groups=1):
        return nn.Conv2d(in_channels, out_channels, 3, groups=groups)

    cases = input_cases(layer, (2, 4, 5, 5))
    cases += size_cases(make, ("in_channels", "out_channels", "groups"), {"groups": 1})
    cases += [
        bad(
            "channels differ", lambda: layer(t(2, 3, 5, 5)), ValueError, "channels", "(2, 3, 5, 5)"
        ),
        bad("2-D input", lambda: layer(t(5, 5)), ValueError, "(5, 5)"),
        bad(
            "kernel larger than the padded input",
            lambda: nn.Conv2d(4, 6, 5)(t(2, 4, 3, 3)),
            ValueError,
            "kernel",
        ),
        bad("groups not dividing", lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "groups"),
        bad("kernel_size 0", lambda: nn.Conv2d(4, 6, 0), ValueError, "kernel_size"),
        bad("stride 0", lambda: nn.Conv2d(4, 6, 3, stride=0), ValueError, "stride"),
        bad("padding -1", lambda: nn.Conv2d(4, 6, 3, padding=-1), ValueError, "padding"),
        bad("dilation (1, 0)", lambda: nn.Conv2d(4, 6, 3, dilation=(1, 0)), ValueError, "dilation"),
        bad(
            "padding 'same' at stride 2",
            lambda: nn.Conv2d(4, 6, 3, padding="same", stride=2)(t(1, 4, 5, 5)),
            ValueError,
            "same",
        ),
        bad(
            "padding_mode 'reflect'",
            lambda: nn.Conv2d(4, 6, 3, padding_mode="reflect"),
            NotImplementedError,
            "padding_mode",
        ),
        good("an empty batch", lambda: layer(t(0, 4, 5, 5)), shapes((0, 6, 5, 5))),
        good("unbatched", lambda: layer(t(4, 5, 5)), shapes((6, 5, 5))),
    ]
    return cases


def max_pool2d_cases():
    layer = nn.MaxPool2d(2)
    cases = input_cases(layer, (2, 3, 6, 6), float64_ok=True)
    cases += [
        bad("2-D input", lambda: layer(t(6, 6)), ValueError, "(6, 6)"),
        bad("no channels", lambda: layer(t(2, 0, 6, 6)), ValueError, "x"),
        bad("kernel_size 0", lambda: nn.MaxPool2d(0)(t(1, 1, 4, 4)), ValueError, "kernel_size"),
        bad(
            "padding past half the kernel",
            lambda: nn.MaxPool2d(2, padding=2)(t(1, 1, 4, 4)),
            ValueError,
            "padding",
        ),
        bad(
            "kernel larger than the input",
            lambda: nn.MaxPool2d(7)(t(1, 1, 4, 4)),
            ValueError,
            "kernel_size",
        ),
        good("an empty batch", lambda: layer(t(0, 3, 6, 6)), shapes((0, 3, 3, 3))),
        good(
            "return_indices",
            lambda: nn.MaxPool2d(2, return_indices=True)(t(2, 3, 6, 6)),
            shapes((2, 3, 3, 3), (2, 3, 3, 3)),
        ),
    ]
    return cases


def avg_pool2d_cases():
    layer = nn.AvgPool2d(3, stride=2, padding=1)
    cases = input_cases(layer, (2, 3, 6, 6), float64_ok=True)
    cases += [
        bad("5-D input", lambda: layer(t(1, 2, 3, 6, 6)), ValueError, "x"),
        bad("stride 0", lambda: nn.AvgPool2d(2, stride=0)(t(1, 1, 4, 4)), ValueError, "stride"),
        bad(
            "divisor_override 0",
            lambda: nn.AvgPool2d(2, divisor_override=0)(t(1, 1, 4, 4)),
            ValueError,
            "divisor_override",
        ),
        good("an empty batch", lambda: layer(t(0, 3, 6, 6)), shapes((0, 3, 3, 3))),
    ]
    return cases


def adaptive_avg_pool2d_cases():
    layer = nn.AdaptiveAvgPool2d((2, 3))
    cases = input_cases(layer, (2, 3, 6, 7), float64_ok=True)
    cases += [
        bad(
            "output_size -1",
            lambda: nn.AdaptiveAvgPool2d(-1)(t(1, 1, 4, 4)),
            ValueError,
            "output_size",
        ),
        bad(
            "output_size 2.5",
            lambda: nn.AdaptiveAvgPool2d(2.5)(t(1, 1, 4, 4)),
            TypeError,
            "output_size",
        ),
        good("no channels", lambda: layer(t(2, 0, 6, 7)), shapes((2, 0, 2, 3))),
        good("an empty batch", lambda: layer(t(0, 3, 6, 7)), shapes((0, 3, 2, 3))),
    ]
    return cases


def lstm_cases():
    layer = nn.LSTM(4, 5, num_layers=2)

    def make(input_size=4, hidden_size=5, num_layers=1):
        return nn.LSTM(input_size, hidden_size, num_layers)

    h = t(2, 3, 5)
    cases = input_cases(lambda x: layer(x)[0], (6, 3, 4))
    cases += size_cases(
        make,
        ("input_size", "hidden_size", "num_layers"),
        dict(input_size=1, hidden_size=1, num_layers=1),
    )
    cases += [
        bad("another input size", lambda: layer(t(6, 3, 7)), RuntimeError, "input_size", "7"),
        bad("4-D input", lambda: layer(t(1, 6, 3, 4)), ValueError, "4D"),
        bad("hx one tensor", lambda: layer(t(6, 3, 4), h), TypeError, "hx"),
        bad("hx of three", lambda: layer(t(6, 3, 4), (h, h, h)), TypeError, "hx"),
        bad("hx of lists", lambda: layer(t(6, 3, 4), (h.numpy().tolist(), h)), TypeError, "hx"),
        bad(
            "hx of another batch",
            lambda: layer(t(6, 3, 4), (t(2, 2, 5), t(2, 2, 5))),
            RuntimeError,
            "(2, 2, 5)",
        ),
        bad(
            "hx float64",
            lambda: layer(t(6, 3, 4), (t(2, 3, 5, dtype=f64), h)),
            TypeError,
            "float64",
        ),
        bad("dropout 1.5", lambda: nn.LSTM(4, 5, dropout=1.5), ValueError, "dropout"),
        good("an empty batch", lambda: layer(t(6, 0, 4))[0], shapes((6, 0, 5))),
        good("unbatched", lambda: layer(t(6, 4))[0], shapes((6, 5))),
        good("no time steps", lambda: layer(t(0, 3, 4))[0], shapes((0, 3, 5))),
        good(
            "batch_first and bidirectional",
            lambda: nn.LSTM(4, 5, batch_first=True, bidirectional=True)(t(3, 6, 4))[0],
            shapes((3, 6, 10)),
        ),
    ]
    return cases


def lstm_cell_cases():
    cell = nn.LSTMCell(4, 5)
    cases = input_cases(lambda x: cell(x)[0], (3, 4))
    cases += size_cases(
        lambda input_size=4, hidden_size=5: nn.LSTMCell(input_size, hidden_size),
        ("input_size", "hidden_size"),
    )
    cases += [
        bad("another input size", lambda: cell(t(3, 6)), ValueError, "w_ih", "(3, 6)"),
        bad("3-D input", lambda: cell(t(1, 3, 4)), ValueError, "3D"),
        bad("hx one tensor", lambda: cell(t(3, 4), t(3, 5)), TypeError, "hx"),
        bad("hx of another batch", lambda: cell(t(3, 4), (t(2, 5), t(2, 5))), ValueError, "(2, 5)"),
        good("an empty batch", lambda: cell(t(0, 4)), shapes((0, 5), (0, 5))),
        good("unbatched", lambda: cell(t(4)), shapes((5,), (5,))),
    ]
    return cases


def multihead_attention_cases():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = t(2, 3, 8)

    def self_attention(q):
        return mha(q, q, q)[0]

    cases = input_cases(self_attention, (2, 3, 8), word="query")
    cases += size_cases(
        lambda embed_dim=8, num_heads=2: nn.MultiheadAttention(embed_dim, num_heads), ("embed_dim",)
    )
    cases += [
        bad(
            "num_heads not dividing embed_dim",
            lambda: nn.MultiheadAttention(8, 3),
            AssertionError,
            "divisible",
        ),
        bad("num_heads 2.5", lambda: nn.MultiheadAttention(8, 2.5), TypeError, "num_heads"),
        bad(
            "another embed_dim",
            lambda: mha(t(2, 3, 6), t(2, 3, 6), t(2, 3, 6)),
            (AssertionError, TypeError, ValueError),
            "6",
        ),
        bad("4-D query", lambda: mha(t(1, 2, 3, 8), x, x), AssertionError, "query"),
        bad(
            "key and value lengths differ",
            lambda: mha(x, t(2, 4, 8), t(2, 5, 8)),
            AssertionError,
            "key",
        ),
        bad("key a list", lambda: mha(x, x.numpy().tolist(), x), TypeError, "key"),
        bad(
            "key_padding_mask of the wrong shape",
            lambda: mha(x, x, x, key_padding_mask=ember.tensor(np.zeros((2, 4), bool))),
            AssertionError,
            "key_padding_mask",
        ),
        bad(
            "attn_mask of the wrong shape",
            lambda: mha(x, x, x, attn_mask=ember.tensor(np.zeros((3, 4), bool))),
            RuntimeError,
            "attn_mask",
        ),
        bad(
            "an int attn_mask",
            lambda: mha(x, x, x, attn_mask=ember.tensor(np.zeros((3, 3), np.int64))),
            AssertionError,
            "attn_mask",
        ),
        bad(
            "is_causal without a mask",
            lambda: mha(x, x, x, is_causal=True),
            RuntimeError,
            "is_causal",
        ),
        good(
            "an empty batch", lambda: mha(t(0, 3, 8), t(0, 3, 8), t(0, 3, 8))[0], shapes((0, 3, 8))
        ),
        good("no queries", lambda: mha(t(2, 0, 8), x, x)[0], shapes((2, 0, 8))),
        good("unbatched", lambda: mha(t(3, 8), t(3, 8), t(3, 8))[0], shapes((3, 8))),
    ]
    cases += size_cases(
        lambda kdim=5, vdim=3: nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim),
        ("kdim", "vdim"),
        minimum={"kdim": 1, "vdim": 1},
    )
    cross = nn.MultiheadAttention(8, 2, batch_first=True, kdim=5, vdim=3)
    extra = nn.MultiheadAttention(8, 2, batch_first=True, add_bias_kv=True, add_zero_attn=True)
    cases += [
        good(
            "add_bias_kv and add_zero_attn: two more keys",
            lambda: extra(x, x, x, key_padding_mask=ember.tensor(np.zeros((2, 3), bool))),
            shapes((2, 3, 8), (2, 3, 5)),
        ),
        good("kdim and vdim", lambda: cross(x, t(2, 4, 5), t(2, 4, 3))[0], shapes((2, 3, 8))),
        bad(
            "key without kdim features",
            lambda: cross(x, t(2, 4, 8), t(2, 4, 3)),
            AssertionError,
            "kdim",
        ),
        bad(
            "value without vdim features",
            lambda: cross(x, t(2, 4, 5), t(2, 4, 5)),
            AssertionError,
            "vdim",
        ),
    ]
    return cases


def transformer_encoder_cases():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    cases = input_cases(lambda x: encoder(x), (2, 3, 8), word="src")
    cases += input_cases(lambda x: layer(x), (2, 3, 8), word="src")
    cases += size_cases(
        lambda num_layers=2: nn.TransformerEncoder(layer, num_layers), ("num_layers",)
    )
    cases += [
        bad(
            "a layer that is not a Module",
            lambda: nn.TransformerEncoder(None, 2),
            TypeError,
            "encoder_layer",
        ),
        bad("another d_model", lambda: encoder(t(2, 3, 6)), AssertionError, "6"),
        bad(
            "a mask of the wrong shape",
            lambda: encoder(t(2, 3, 8), mask=ember.tensor(np.zeros((4, 4), bool))),
            RuntimeError,
            "attn_mask",
        ),
        good("no layers", lambda: nn.TransformerEncoder(layer, 0)(t(2, 3, 8)), shapes((2, 3, 8))),
        good("an empty batch", lambda: encoder(t(0, 3, 8)), shapes((0, 3, 8))),
        good("unbatched", lambda: encoder(t(3, 8)), shapes((3, 8))),
    ]
    return cases


def cosine_similarity_cases():
    cases = input_cases(lambda x: F.cosine_similarity(x, x), (4, 5), word="x1", float64_ok=True)
    # x2 float64 against a float32 x1: a TypeError naming both
    cases += input_cases(lambda x: F.cosine_similarity(t(4, 5), x), (4, 5), word="x2")
    cases += [
        bad(
            "shapes that do not broadcast",
            lambda: F.cosine_similarity(t(4, 5), t(3, 5)),
            ValueError,
            "x1",
            "x2",
        ),
        bad(
            "dim out of range",
            lambda: F.cosine_similarity(t(4, 5), t(4, 5), dim=2),
            IndexError,
            "dim",
        ),
        good(
            "broadcast",
            lambda: F.cosine_similarity(t(4, 1, 5), t(1, 3, 5), dim=2),
            shapes((4, 3)),
        ),
        good("an empty batch", lambda: F.cosine_similarity(t(0, 5), t(0, 5)), shapes((0,))),
        good(
            "zero vectors",
            lambda: F.cosine_similarity(ember.zeros(2, 3), t(2, 3)),
            lambda r: assert_close(r, np.zeros(2, np.float32)),
        ),
        good("the module", lambda: nn.CosineSimilarity(dim=0)(t(4, 5), t(4, 5)), shapes((5,))),
    ]
    return cases


def normalize_cases():
    cases = input_cases(lambda x: F.normalize(x), (4, 5), float64_ok=True)
    cases += [
        bad("p = 0", lambda: F.normalize(t(4, 5), p=0), ValueError, "p"),
        bad("dim out of range", lambda: F.normalize(t(4, 5), dim=-3), IndexError, "dim"),
        good("an empty batch", lambda: F.normalize(t(0, 5)), shapes((0, 5))),
        good(
            "a zero vector stays zero",
            lambda: F.normalize(ember.zeros(2, 3)),
            lambda r: assert_close(r, np.zeros((2, 3), np.float32)),
        ),
    ]
    return cases


def embedding_cases():
    emb = nn.Embedding(10, 3)
    idx = np.array([[1, 2], [9, 0]])
    cases = size_cases(
        lambda num_embeddings=10, embedding_dim=3: nn.Embedding(num_embeddings, embedding_dim),
        ("num_embeddings", "embedding_dim"),
    )
    cases += [
        good("int64 indices", lambda: emb(ember.tensor(idx)), shapes((2, 2, 3))),
        good(
            "int32 indices",
            lambda: emb(ember.tensor(idx.astype(np.int32))),
            lambda r: assert_close(r, emb(ember.tensor(idx))),
        ),
        good("NumPy indices", lambda: emb(idx), shapes((2, 2, 3))),
        good("backward", lambda: emb(ember.tensor(idx)).sum().backward()),
        good(
            "no indices", lambda: emb(ember.tensor(np.zeros((0, 2), np.int64))), shapes((0, 2, 3))
        ),
        bad("an index past the end", lambda: emb(ints(1, 10)), IndexError, "10"),
        bad("a negative index", lambda: emb(ints(-1, 2)), IndexError, "-1"),
        bad("float indices", lambda: emb(t(2)), TypeError, "float32"),
        bad("bool indices", lambda: emb(ember.tensor(np.array([True]))), TypeError, "bool"),
        bad("a list", lambda: emb([1, 2]), TypeError, "input"),
        bad("None", lambda: emb(None), TypeError, "input"),
        bad(
            "padding_idx past the end",
            lambda: nn.Embedding(10, 3, padding_idx=10),
            ValueError,
            "padding_idx",
        ),
    ]
    return cases


def batch_norm2d_cases():
    bn = nn.BatchNorm2d(3)
    return [
        good("float32", lambda: bn(t(2, 3, 4, 4)), shapes((2, 3, 4, 4))),
        bad(
            "other channels", lambda: bn(t(2, 4, 4, 4)), ValueError, "num_features", "(2, 4, 4, 4)"
        ),
        bad("3-D input", lambda: bn(t(3, 4, 4)), ValueError, "(3, 4, 4)"),
        bad(
            "one value per channel in training",
            lambda: nn.BatchNorm2d(3)(t(1, 3, 1, 1)),
            ValueError,
            "(1, 3, 1, 1)",
        ),
        good(
            "one value per channel in eval",
            lambda: nn.BatchNorm2d(3).eval()(t(1, 3, 1, 1)),
            shapes((1, 3, 1, 1)),
        ),
    ]


# ---- losses and functionals ----------------------------------------------------------------------


def cross_entropy_cases():
    logits = t(4, 5)
    target = ints(0, 1, 2, 4)
    cases = input_cases(lambda x: F.cross_entropy(x, target), (4, 5), float64_ok=True)
    cases += [
        bad(
            "a class past the end",
            lambda: F.cross_entropy(logits, ints(0, 1, 2, 5)),
            IndexError,
            "5",
        ),
        bad(
            "a negative class", lambda: F.cross_entropy(logits, ints(0, 1, -2, 3)), IndexError, "-2"
        ),
        bad(
            "target of another batch",
            lambda: F.cross_entropy(logits, ints(0, 1, 2)),
            ValueError,
            "(3,)",
        ),
        bad(
            "target 2-D",
            lambda: F.cross_entropy(logits, ember.tensor(np.zeros((4, 1), np.int64))),
            ValueError,
            "(4, 1)",
        ),
        bad("target a list", lambda: F.cross_entropy(logits, [0, 1, 2, 3]), TypeError, "target"),
        bad("target None", lambda: F.cross_entropy(logits, None), TypeError, "target"),
        bad(
            "bool target",
            lambda: F.cross_entropy(logits, ember.tensor(np.zeros(4, bool))),
            TypeError,
            "bool",
        ),
        bad(
            "probabilities of another shape",
            lambda: F.cross_entropy(logits, t(4, 6)),
            ValueError,
            "(4, 6)",
        ),
        bad("a 0-D input", lambda: F.cross_entropy(t(), ints(0)), ValueError, "input"),
        bad(
            "label_smoothing 1.5",
            lambda: F.cross_entropy(logits, target, label_smoothing=1.5),
            ValueError,
            "label_smoothing",
        ),
        bad(
            "reduction 'avg'",
            lambda: F.cross_entropy(logits, target, reduction="avg"),
            ValueError,
            "avg",
        ),
        good(
            "an empty batch gives NaN",
            lambda: F.cross_entropy(t(0, 5), ember.tensor(np.zeros(0, np.int64))),
            lambda r: np.testing.assert_equal(r.item(), np.nan),
        ),
        good(
            "every target ignored gives NaN",
            lambda: F.cross_entropy(logits, ints(-100, -100, -100, -100)),
            lambda r: np.testing.assert_equal(r.item(), np.nan),
        ),
        good(
            "int32 target",
            lambda: F.cross_entropy(logits, ember.tensor(np.array([0, 1, 2, 4], np.int32))),
            lambda r: assert_close(r, F.cross_entropy(logits, target)),
        ),
        good(
            "NaN logits give NaN",
            lambda: F.cross_entropy(ember.tensor(np.full((4, 5), np.nan, f32)), target),
            lambda r: np.testing.assert_equal(r.item(), np.nan),
        ),
        good("unbatched", lambda: F.cross_entropy(t(5), ember.tensor(np.array(3))), shapes(())),
    ]
    return cases


def sdpa_cases():
    q = t(2, 4, 8)
    mask = ember.tensor(np.tril(np.ones((4, 4), bool)))
    cases = input_cases(lambda x: F.scaled_dot_product_attention(x, q, q), (2, 4, 8), word="q")
    cases += [
        good(
            "a boolean mask",
            lambda: F.scaled_dot_product_attention(q, q, q, mask),
            shapes((2, 4, 8)),
        ),
        bad(
            "a mask that requires grad",
            lambda: F.scaled_dot_product_attention(q, q, q, t(4, 4).requires_grad_()),
            NotImplementedError,
            "attn_mask",
        ),
        bad(
            "a backward through dropout",
            lambda: (
                F.scaled_dot_product_attention(t(2, 4, 8).requires_grad_(), q, q, dropout_p=0.5)
                .sum()
                .backward()
            ),
            RuntimeError,
            "dropout_p",
        ),
    ]
    return cases


def tensor_cases():
    return [
        good("nested lists", lambda: ember.tensor([[1.0, 2.0], [3.0, 4.0]]), shapes((2, 2))),
        bad("ragged lists", lambda: ember.tensor([[1.0, 2.0], [3.0]]), ValueError, "inhomogeneous"),
        bad("None", lambda: ember.tensor(None), TypeError, "NoneType"),
        bad("a string", lambda: ember.tensor("abc"), TypeError, "str"),
        bad("objects", lambda: ember.tensor(np.array([object()])), TypeError, "object"),
        good("an empty list", lambda: ember.tensor([]), shapes((0,))),
        bad(
            "matmul of mismatched shapes", lambda: t(2, 3) @ t(4, 2), ValueError, "(2, 3)", "(4, 2)"
        ),
        good("matmul of an empty batch", lambda: t(0, 2, 3) @ t(3, 4), shapes((0, 2, 4))),
    ]


TABLE = {
    "nn.Linear": linear_cases,
    "nn.Conv2d": conv2d_cases,
    "nn.MaxPool2d": max_pool2d_cases,
    "nn.AvgPool2d": avg_pool2d_cases,
    "nn.AdaptiveAvgPool2d": adaptive_avg_pool2d_cases,
    "nn.LSTM": lstm_cases,
    "nn.LSTMCell": lstm_cell_cases,
    "nn.MultiheadAttention": multihead_attention_cases,
    "nn.TransformerEncoder": transformer_encoder_cases,
    "F.cosine_similarity": cosine_similarity_cases,
    "F.normalize": normalize_cases,
    "nn.Embedding": embedding_cases,
    "nn.BatchNorm2d": batch_norm2d_cases,
    "F.cross_entropy": cross_entropy_cases,
    "F.scaled_dot_product_attention": sdpa_cases,
    "ember.tensor": tensor_cases,
}
