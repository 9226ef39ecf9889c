"""ember.nn's sequence layers (LSTMCell, LSTM, MultiheadAttention, TransformerEncoderLayer)
against torch with copied weights (outputs and every gradient), their state_dict keys against
torch's, and the LSTM layer Function against finite differences in float64."""

import math

import numpy as np
import pytest

import ember
from conftest import check_grad, randn
from ember import nn
from ember.nn.rnn import _LSTMLayer

torch = pytest.importorskip("torch")

RTOL = 1e-4


def copy_weights(ours, theirs):
    """Loads ember's parameters into the torch module (the state dicts have the same keys)."""
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})


def close(ours, theirs, rtol=RTOL, atol=1e-5):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=atol)


def leaves(arrays):
    """The same arrays as ember and torch tensors that require grad."""
    ours = [ember.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def backward_both(ours, theirs, rng):
    """Back-propagates the same random weighting of each output through both graphs."""
    total_ours, total_theirs = 0, 0
    for o, t in zip(ours, theirs, strict=True):
        w = randn(rng, *t.shape)
        total_ours = total_ours + (o * ember.tensor(w)).sum()
        total_theirs = total_theirs + (t * torch.tensor(w)).sum()
    total_ours.backward()
    total_theirs.backward()


def check_param_grads(ours, theirs):
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad is not None, name
        close(p.grad.numpy(), named[name].grad)


# ---- LSTM -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_layers, batch_first, bidirectional, bias, with_state",
    [
        (1, False, False, True, False),
        (2, False, False, True, True),
        (2, True, False, False, True),
        (1, False, True, True, True),
        (2, True, True, True, False),
        (3, False, True, True, True),
    ],
)
def test_lstm_matches_torch(rng, num_layers, batch_first, bidirectional, bias, with_state):
    steps, batch, inputs, hidden = 5, 3, 4, 6
    ours = nn.LSTM(inputs, hidden, num_layers, bias, batch_first, 0.0, bidirectional)
    theirs = torch.nn.LSTM(inputs, hidden, num_layers, bias, batch_first, 0.0, bidirectional)
    copy_weights(ours, theirs)
    d = 2 if bidirectional else 1
    shape = (batch, steps, inputs) if batch_first else (steps, batch, inputs)
    arrays = [randn(rng, *shape)]
    if with_state:
        arrays += [randn(rng, num_layers * d, batch, hidden) for _ in range(2)]
    (x, *state), (tx, *tstate) = leaves(arrays)
    y, (h, c) = ours(x, tuple(state) if state else None)
    ty, (th, tc) = theirs(tx, tuple(tstate) if tstate else None)
    assert y.shape == tuple(ty.shape) and h.shape == tuple(th.shape) and c.shape == tuple(tc.shape)
    for o, t in ((y, ty), (h, th), (c, tc)):
        close(o.numpy(), t)
    backward_both((y, h, c), (ty, th, tc), rng)
    for o, t in zip([x, *state], [tx, *tstate], strict=True):
        close(o.grad.numpy(), t.grad)
    check_param_grads(ours, theirs)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_unbatched_matches_torch(rng, bidirectional):
    ours = nn.LSTM(3, 5, num_layers=2, bidirectional=bidirectional)
    theirs = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=bidirectional)
    copy_weights(ours, theirs)
    d = 2 if bidirectional else 1
    (x, h0, c0), (tx, th0, tc0) = leaves(
        [randn(rng, 4, 3), randn(rng, 2 * d, 5), randn(rng, 2 * d, 5)]
    )
    y, (h, c) = ours(x, (h0, c0))
    ty, (th, tc) = theirs(tx, (th0, tc0))
    assert y.shape == (4, 5 * d) and h.shape == (2 * d, 5)
    for o, t in ((y, ty), (h, th), (c, tc)):
        close(o.numpy(), t)
    backward_both((y, h, c), (ty, th, tc), rng)
    for o, t in ((x, tx), (h0, th0), (c0, tc0)):
        close(o.grad.numpy(), t.grad)
    check_param_grads(ours, theirs)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_state_dict_and_init_as_torch(bidirectional):
    ours = nn.LSTM(3, 16, num_layers=2, bidirectional=bidirectional)
    theirs = torch.nn.LSTM(3, 16, num_layers=2, bidirectional=bidirectional)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for k, v in ours_sd.items():
        assert tuple(v.shape) == tuple(theirs_sd[k].shape), k
        assert np.abs(np.asarray(v)).max() <= 1 / math.sqrt(16)
        assert np.asarray(v).std() > 0.1 / math.sqrt(16), k  # not left at zero
    # and a torch state dict loads into ember
    ours.load_state_dict({k: v.numpy() for k, v in theirs_sd.items()})
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(np.asarray(v), theirs_sd[k].numpy())


def test_lstm_dropout_between_layers_only_in_training(rng):
    x = ember.tensor(randn(rng, 6, 2, 4))
    ours = nn.LSTM(4, 8, num_layers=2, dropout=0.5)
    theirs = torch.nn.LSTM(4, 8, num_layers=2, dropout=0.5)
    copy_weights(ours, theirs)
    ours.eval()
    theirs.eval()
    close(ours(x)[0].numpy(), theirs(torch.tensor(x.numpy()))[0])
    ours.train()
    ember.manual_seed(0)
    a = ours(x)[0].numpy()
    ember.manual_seed(1)
    b = ours(x)[0].numpy()
    assert not np.allclose(a, b)


def test_lstm_rejects_wrong_shapes(rng):
    lstm = nn.LSTM(4, 5, num_layers=2)
    with pytest.raises(RuntimeError, match="input_size"):
        lstm(ember.tensor(randn(rng, 3, 2, 6)))
    with pytest.raises(RuntimeError, match="hidden size"):
        state = ember.tensor(randn(rng, 1, 2, 5))
        lstm(ember.tensor(randn(rng, 3, 2, 4)), (state, state))
    with pytest.raises(ValueError, match="2D or 3D"):
        lstm(ember.tensor(randn(rng, 4)))


def test_lstm_backward_twice_needs_retain_graph(rng):
    lstm = nn.LSTM(3, 4, num_layers=2)
    y, (h, _) = lstm(ember.tensor(randn(rng, 5, 2, 3)))
    loss = y.sum() + h.sum()
    loss.backward(retain_graph=True)
    first = lstm.weight_hh_l0.grad.numpy().copy()
    loss.backward()  # accumulates
    np.testing.assert_allclose(lstm.weight_hh_l0.grad.numpy(), 2 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_lstm_layer_function_finite_differences(rng, reverse, batch_first):
    steps, batch, inputs, hidden = 3, 2, 3, 2
    x = rng.standard_normal((batch, steps, inputs) if batch_first else (steps, batch, inputs))
    h0, c0 = rng.standard_normal((2, batch, hidden))
    w_ih, w_hh = (
        rng.standard_normal((4 * hidden, inputs)),
        rng.standard_normal((4 * hidden, hidden)),
    )
    b_ih, b_hh = rng.standard_normal((2, 4 * hidden))

    def layer(*args):
        y, h, c = _LSTMLayer.apply(*args, batch_first=batch_first, reverse=reverse)
        return ember.cat([y.reshape(-1), h.reshape(-1), c.reshape(-1)])

    check_grad(layer, x, h0, c0, w_ih, w_hh, b_ih, b_hh)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_lstm_cell_matches_torch(rng, bias, batched, with_state):
    ours, theirs = nn.LSTMCell(5, 7, bias), torch.nn.LSTMCell(5, 7, bias)
    copy_weights(ours, theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    batch = (3,) if batched else ()
    arrays = [randn(rng, *batch, 5)]
    if with_state:
        arrays += [randn(rng, *batch, 7), randn(rng, *batch, 7)]
    (x, *state), (tx, *tstate) = leaves(arrays)
    h, c = ours(x, tuple(state) if state else None)
    th, tc = theirs(tx, tuple(tstate) if tstate else None)
    close(h.numpy(), th)
    close(c.numpy(), tc)
    backward_both((h, c), (th, tc), rng)
    for o, t in zip([x, *state], [tx, *tstate], strict=True):
        close(o.grad.numpy(), t.grad)
    check_param_grads(ours, theirs)


def test_lstm_cell_init_as_torch():
    cell = nn.LSTMCell(3, 25)
    for p in cell.parameters():
        assert np.abs(p.numpy()).max() <= 0.2 and p.numpy().std() > 0.05


# ---- MultiheadAttention ---------------------------------------------------------------------


def masks(kind, rng, batch, heads, tgt_len, src_len):
    """(attn_mask, key_padding_mask, is_causal) as NumPy arrays for a named case; no row is
    masked out entirely."""
    causal = np.triu(np.ones((tgt_len, src_len), bool), k=1)
    padding = np.zeros((batch, src_len), bool)
    padding[:, -1] = True
    padding[0, -2] = True
    if kind == "none":
        return None, None, False
    if kind == "bool":
        return causal, None, False
    if kind == "float":
        return randn(rng, tgt_len, src_len), None, False
    if kind == "bool3d":
        mask = rng.random((batch * heads, tgt_len, src_len)) < 0.3
        mask[..., 0] = False
        return mask, None, False
    if kind == "float3d":
        return randn(rng, batch * heads, tgt_len, src_len), None, False
    if kind == "padding":
        return None, padding, False
    if kind == "float_padding":
        return None, np.where(padding, -np.inf, 0.0).astype(np.float32), False
    if kind == "both":
        return causal, padding, False
    if kind == "causal":
        return causal, None, True
    if kind == "causal_padding":
        return causal, padding, True
    raise AssertionError(kind)


MASKS = ["none", "bool", "float", "bool3d", "float3d", "padding", "float_padding", "both"]
MASKS += ["causal", "causal_padding"]


def run_mha(
    rng, kind, need_weights, *, batch_first=False, average=True, cross=False, bias=True,
    kdim=None, vdim=None, add_bias_kv=False, add_zero_attn=False,
):  # fmt: skip
    embed, heads, batch, tgt_len = 8, 2, 3, 5
    src_len = 6 if cross else tgt_len
    kwargs = dict(bias=bias, batch_first=batch_first, kdim=kdim, vdim=vdim)
    kwargs.update(add_bias_kv=add_bias_kv, add_zero_attn=add_zero_attn)
    ours = nn.MultiheadAttention(embed, heads, **kwargs)
    theirs = torch.nn.MultiheadAttention(embed, heads, **kwargs)
    copy_weights(ours, theirs)

    def shape(length, features=embed):
        return (batch, length, features) if batch_first else (length, batch, features)

    attn_mask, padding, is_causal = masks(kind, rng, batch, heads, tgt_len, src_len)
    if cross:
        arrays = [
            randn(rng, *shape(tgt_len)),
            randn(rng, *shape(src_len, kdim or embed)),
            randn(rng, *shape(src_len, vdim or embed)),
        ]
        (q, k, v), (tq, tk, tv) = leaves(arrays)
    else:
        (q,), (tq,) = leaves([randn(rng, *shape(tgt_len))])
        k = v = q
        tk = tv = tq
    kwargs = dict(need_weights=need_weights, average_attn_weights=average, is_causal=is_causal)
    out, weights = ours(
        q,
        k,
        v,
        key_padding_mask=None if padding is None else ember.tensor(padding),
        attn_mask=None if attn_mask is None else ember.tensor(attn_mask),
        **kwargs,
    )
    tout, tweights = theirs(
        tq,
        tk,
        tv,
        key_padding_mask=None if padding is None else torch.tensor(padding),
        attn_mask=None if attn_mask is None else torch.tensor(attn_mask),
        **kwargs,
    )
    close(out.numpy(), tout)
    if need_weights:
        close(weights.numpy(), tweights)
    else:
        assert weights is None and tweights is None
    backward_both((out,), (tout,), rng)
    for o, t in zip((q, k, v), (tq, tk, tv), strict=True):
        close(o.grad.numpy(), t.grad)
    check_param_grads(ours, theirs)


@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_masks_match_torch(rng, kind, need_weights):
    run_mha(rng, kind, need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kind", ["none", "both"])
def test_mha_cross_attention_batch_first_matches_torch(rng, need_weights, kind):
    run_mha(rng, kind, need_weights, batch_first=True, cross=True)


def test_mha_per_head_weights_without_bias_match_torch(rng):
    run_mha(rng, "padding", True, average=False, bias=False, cross=True)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kdim,vdim", [(5, 3), (5, None), (None, 11)])
def test_mha_kdim_vdim_match_torch(rng, need_weights, kdim, vdim):
    """Keys and values with their own feature counts: separate q/k/v projection weights."""
    run_mha(rng, "both", need_weights, batch_first=True, cross=True, kdim=kdim, vdim=vdim)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("kind", ["none", "both", "causal"])
@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_mha_bias_kv_and_zero_attn_match_torch(rng, need_weights, kind, bias_kv, zero_attn):
    """A learned and a zero key/value appended to every sequence, the masks extended over them;
    bias_k and bias_v get their gradients."""
    run_mha(rng, kind, need_weights, add_bias_kv=bias_kv, add_zero_attn=zero_attn)


def test_mha_bias_kv_state_dict_as_torch():
    ours, theirs = (m.MultiheadAttention(8, 2, add_bias_kv=True) for m in (nn, torch.nn))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.bias_k.shape == (1, 1, 8) and ours.bias_k.numpy().std() > 0  # xavier-normal
    assert nn.MultiheadAttention(8, 2).bias_k is None


def test_mha_kdim_vdim_state_dict_and_checks():
    ours = nn.MultiheadAttention(8, 2, kdim=5, vdim=3)
    theirs = torch.nn.MultiheadAttention(8, 2, kdim=5, vdim=3)
    assert (
        list(ours.state_dict())
        == list(theirs.state_dict())
        == [
            "q_proj_weight",
            "k_proj_weight",
            "v_proj_weight",
            "in_proj_bias",
            "out_proj.weight",
            "out_proj.bias",
        ]
    )
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(theirs.state_dict()[k].shape), k
    assert ours.in_proj_weight is None and ours.k_proj_weight.shape == (8, 5)
    # kdim == vdim == embed_dim is the packed layout
    assert nn.MultiheadAttention(8, 2, kdim=8, vdim=8).q_proj_weight is None
    x = ember.tensor(np.ones((4, 1, 8), np.float32))
    with pytest.raises(AssertionError, match="kdim=5 and vdim=3"):
        ours(x, x, x)
    with pytest.raises(ValueError, match="kdim must be at least 1"):
        nn.MultiheadAttention(8, 2, kdim=0)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_unbatched_matches_torch(rng, need_weights):
    ours, theirs = nn.MultiheadAttention(6, 3), torch.nn.MultiheadAttention(6, 3)
    copy_weights(ours, theirs)
    padding = np.array([False, False, True, False])
    (q,), (tq,) = leaves([randn(rng, 4, 6)])
    out, w = ours(q, q, q, key_padding_mask=ember.tensor(padding), need_weights=need_weights)
    tout, tw = theirs(tq, tq, tq, key_padding_mask=torch.tensor(padding), need_weights=need_weights)
    close(out.numpy(), tout)
    if need_weights:
        assert w.shape == (4, 4)
        close(w.numpy(), tw)
    backward_both((out,), (tout,), rng)
    close(q.grad.numpy(), tq.grad)


def test_mha_state_dict_and_init_as_torch():
    ours, theirs = nn.MultiheadAttention(16, 4), torch.nn.MultiheadAttention(16, 4)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict()) == [
        "in_proj_weight",
        "in_proj_bias",
        "out_proj.weight",
        "out_proj.bias",
    ]
    w = ours.in_proj_weight.numpy()
    assert w.shape == (48, 16) and np.abs(w).max() <= math.sqrt(6 / 64)
    assert w.std() > 0.5 * math.sqrt(6 / 64) / math.sqrt(3)  # xavier: std = bound / sqrt(3)
    assert not ours.in_proj_bias.numpy().any() and not ours.out_proj.bias.numpy().any()
    assert np.abs(ours.out_proj.weight.numpy()).max() <= 1 / 4


def test_mha_dropout_only_in_training(rng):
    ours, theirs = nn.MultiheadAttention(8, 2, dropout=0.5), torch.nn.MultiheadAttention(8, 2, 0.5)
    copy_weights(ours, theirs)
    x = randn(rng, 5, 3, 8)
    ours.eval()
    theirs.eval()
    for need_weights in (True, False):
        out = ours(ember.tensor(x), ember.tensor(x), ember.tensor(x), need_weights=need_weights)
        close(out[0].numpy(), theirs(*[torch.tensor(x)] * 3, need_weights=need_weights)[0])
    ours.train()
    q = ember.tensor(x, requires_grad=True)
    out, weights = ours(q, q, q, need_weights=False)
    assert weights is None
    out.sum().backward()  # the explicit path: dropout on the weights, with gradients
    assert q.grad is not None and np.isfinite(q.grad.numpy()).all()
    causal = ember.tensor(np.triu(np.ones((5, 5), bool), k=1))
    outs = []
    for last in (0.0, 1.0):  # the causal hint keeps the mask: later steps do not leak back
        y = x.copy()
        y[-1] += last
        ember.manual_seed(2)
        y = ember.tensor(y)
        outs.append(ours(y, y, y, attn_mask=causal, is_causal=True, need_weights=False)[0])
    np.testing.assert_array_equal(outs[0].numpy()[:-1], outs[1].numpy()[:-1])
    ember.manual_seed(0)
    a = ours(q, q, q)[1].numpy()
    ember.manual_seed(1)
    b = ours(q, q, q)[1].numpy()
    assert not np.allclose(a, b) and ((a == 0).any() or (b == 0).any())


def test_mha_rejects_bad_masks(rng):
    mha = nn.MultiheadAttention(4, 2)
    x = ember.tensor(randn(rng, 3, 2, 4))
    with pytest.raises(RuntimeError, match="2D attn_mask"):
        mha(x, x, x, attn_mask=ember.tensor(np.zeros((2, 3), bool)))
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=ember.tensor(np.zeros((3, 3), bool)))


# ---- TransformerEncoderLayer ----------------------------------------------------------------


def run_encoders(rng, ours, theirs, kind, shape, mask_arg):
    """An ember and a torch encoder (a layer or a stack, 2 heads) with the same weights on the
    same input and masks (the attention mask passed as `mask_arg`): the outputs, the input's
    gradient and every parameter's."""
    copy_weights(ours, theirs)
    attention = next(m for m in ours.modules() if isinstance(m, nn.MultiheadAttention))
    batch, length = shape[:2] if attention.batch_first else (shape[1], shape[0])
    attn_mask, padding, is_causal = masks(kind, rng, batch, 2, length, length)
    (x,), (tx,) = leaves([randn(rng, *shape)])
    y = ours(
        x,
        **{mask_arg: None if attn_mask is None else ember.tensor(attn_mask)},
        src_key_padding_mask=None if padding is None else ember.tensor(padding),
        is_causal=is_causal,
    )
    ty = theirs(
        tx,
        **{mask_arg: None if attn_mask is None else torch.tensor(attn_mask)},
        src_key_padding_mask=None if padding is None else torch.tensor(padding),
        is_causal=is_causal,
    )
    close(y.numpy(), ty)
    backward_both((y,), (ty,), rng)
    close(x.grad.numpy(), tx.grad)
    check_param_grads(ours, theirs)


@pytest.mark.parametrize(
    "norm_first, activation, batch_first, kind",
    [
        (False, "relu", False, "none"),
        (True, "gelu", False, "both"),
        (False, "gelu", True, "padding"),
        (True, "relu", True, "causal"),
    ],
)
def test_transformer_encoder_layer_matches_torch(rng, norm_first, activation, batch_first, kind):
    d_model, nhead, batch, length = 8, 2, 3, 5
    kwargs = dict(
        dim_feedforward=16,
        dropout=0.0,
        activation=activation,
        batch_first=batch_first,
        norm_first=norm_first,
    )
    ours = nn.TransformerEncoderLayer(d_model, nhead, **kwargs)
    theirs = torch.nn.TransformerEncoderLayer(d_model, nhead, **kwargs)
    shape = (batch, length, d_model) if batch_first else (length, batch, d_model)
    run_encoders(rng, ours, theirs, kind, shape, "src_mask")


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("kind", ["none", "causal", "padding"])
def test_transformer_encoder_matches_torch(rng, norm_first, kind):
    """A 3-layer stack with a final LayerNorm: outputs, input and every parameter gradient."""
    d_model, nhead, batch, length = 8, 2, 3, 5
    kwargs = dict(dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=norm_first)
    ours = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(d_model, nhead, **kwargs), 3, norm=nn.LayerNorm(d_model)
    )
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(d_model, nhead, **kwargs),
        3,
        norm=torch.nn.LayerNorm(d_model),
        enable_nested_tensor=False,
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    run_encoders(rng, ours, theirs, kind, (batch, length, d_model), "mask")


def test_transformer_encoder_layers_are_independent_copies():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    stack = nn.TransformerEncoder(layer, 2)
    assert len(stack.layers) == stack.num_layers == 2 and stack.norm is None
    first, second = (dict(m.named_parameters()) for m in stack.layers)
    for name, p in layer.named_parameters():
        np.testing.assert_array_equal(first[name].numpy(), p.numpy())  # copies of the layer
        assert first[name] is not p and first[name] is not second[name]
    first["linear1.weight"].data[...] = 0
    assert second["linear1.weight"].numpy().any()
    with pytest.raises(TypeError, match="encoder_layer must be a Module"):
        nn.TransformerEncoder("layer", 2)


def test_transformer_encoder_layer_state_dict_and_dropout():
    ours = nn.TransformerEncoderLayer(8, 2, dim_feedforward=32)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=32)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in ours.state_dict().items():
        assert tuple(v.shape) == tuple(theirs.state_dict()[k].shape), k
    x = ember.tensor(np.random.default_rng(0).standard_normal((5, 2, 8)).astype(np.float32))
    ours.train()
    assert not np.allclose(ours(x).numpy(), ours(x).numpy())  # dropout 0.1 in training
    ours.eval()
    np.testing.assert_array_equal(ours(x).numpy(), ours(x).numpy())
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
