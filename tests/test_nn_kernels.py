"""The layers on ember's C++ kernels (Conv2d, pooling, scaled-dot-product attention): autograd
through the kernels against finite differences (float64) and against torch (float32)."""

import numpy as np
import pytest

import ember
from conftest import check_grad
from ember import nn
from ember.nn import functional as F

rng = np.random.default_rng(7)


def f64(*shape):
    return rng.standard_normal(shape)


def test_conv2d_gradients_match_finite_differences():
    check_grad(
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        f64(2, 3, 5, 6),
        f64(4, 3, 3, 2),
        f64(4),
    )
    check_grad(
        lambda x, w: F.conv2d(x, w, groups=2, dilation=(2, 1)), f64(1, 4, 6, 5), f64(2, 2, 2, 2)
    )


@pytest.mark.parametrize(
    "layer",
    [
        lambda x: F.max_pool2d(x, 2, ceil_mode=True),
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False),
        lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    ],
)
def test_pooling_gradients_match_finite_differences(layer):
    check_grad(layer, f64(2, 3, 5, 7))


def torch_copy(module, torch_module):
    import torch

    state = module.state_dict()
    torch_module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return torch_module


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(in_channels=3, out_channels=8, kernel_size=3),
        dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1, bias=False),
        dict(in_channels=4, out_channels=8, kernel_size=3, groups=4, dilation=2),
        dict(in_channels=3, out_channels=5, kernel_size=(3, 5), padding="same", dilation=2),
    ],
)
def test_conv2d_module_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    ember.manual_seed(1)
    conv = nn.Conv2d(**kwargs)
    tconv = torch_copy(conv, torch.nn.Conv2d(**kwargs))
    x = rng.standard_normal((2, kwargs["in_channels"], 11, 10)).astype(np.float32)
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = conv(ex), tconv(tx)
    dy = rng.standard_normal(ey.shape).astype(np.float32)
    ey.backward(ember.tensor(dy))
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(ey.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        conv.weight.grad.numpy(), tconv.weight.grad.numpy(), rtol=1e-4, atol=1e-4
    )
    if conv.bias is not None:
        np.testing.assert_allclose(
            conv.bias.grad.numpy(), tconv.bias.grad.numpy(), rtol=1e-4, atol=1e-4
        )


def test_conv2d_default_init_matches_torch_ranges():
    conv = nn.Conv2d(6, 4, 3, groups=2)
    bound = 1 / np.sqrt(3 * 3 * 3)
    assert conv.weight.shape == (4, 3, 3, 3) and conv.bias.shape == (4,)
    assert np.abs(conv.weight.numpy()).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    assert list(conv.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize(
    "make",
    [
        lambda nn_: nn_.MaxPool2d(2),
        lambda nn_: nn_.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        lambda nn_: nn_.AvgPool2d(2),
        lambda nn_: nn_.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        lambda nn_: nn_.AdaptiveAvgPool2d((1, 1)),
        lambda nn_: nn_.AdaptiveAvgPool2d(3),
    ],
)
def test_pooling_modules_match_torch(make):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = make(nn)(ex), make(torch.nn)(tx)
    dy = rng.standard_normal(ey.shape).astype(np.float32)
    ey.backward(ember.tensor(dy))
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(ey.numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_max_pool_returns_indices_as_torch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    y, idx = nn.MaxPool2d(2, return_indices=True)(ember.tensor(x))
    ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    assert not idx.requires_grad


def test_attention_gradients_match_finite_differences():
    mask = rng.standard_normal((4, 5))
    check_grad(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        f64(2, 4, 3),
        f64(2, 4, 3),
        f64(2, 4, 2),
    )
    check_grad(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
        f64(1, 4, 3),
        f64(1, 5, 3),
        f64(1, 5, 2),
    )


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch(causal):
    torch = pytest.importorskip("torch")
    q, k, v = (rng.standard_normal((2, 3, 17, 8)).astype(np.float32) for _ in range(3))
    mask = None if causal else rng.random((17, 17)) > 0.3
    if mask is not None:
        np.fill_diagonal(mask, True)
    eq, ek, ev = (ember.tensor(a, requires_grad=True) for a in (q, k, v))
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    eo = F.scaled_dot_product_attention(eq, ek, ev, attn_mask=mask, is_causal=causal)
    tmask = None if mask is None else torch.from_numpy(mask)
    to = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=tmask, is_causal=causal
    )
    g = rng.standard_normal(eo.shape).astype(np.float32)
    eo.backward(ember.tensor(g))
    to.backward(torch.from_numpy(g))
    np.testing.assert_allclose(eo.numpy(), to.detach().numpy(), rtol=1e-5, atol=1e-5)
    for a, b in ((eq, tq), (ek, tk), (ev, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_attention_with_dropout_has_no_backward():
    q = ember.randn(1, 4, 8, requires_grad=True)
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    with pytest.raises(RuntimeError, match="dropout_p > 0"):
        out.sum().backward()
