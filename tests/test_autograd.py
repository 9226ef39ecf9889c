"""Reverse-mode autograd: every Tensor operation's gradient against finite differences (float64),
and the engine's semantics (accumulation, shared subgraphs, retain_graph, no_grad)."""

import numpy as np
import pytest

import ember
from conftest import check_grad


def randn(rng, *shape):
    return rng.standard_normal(shape)


def positive(rng, *shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, *shape):
    """Values whose magnitude is at least 0.1, so kinks (relu, abs) are not straddled."""
    x = rng.uniform(0.1, 2.0, shape)
    return x * rng.choice([-1.0, 1.0], shape)


# ---- elementwise -------------------------------------------------------------------------

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((4,), (2, 3, 4))])
def test_binary_broadcasting(rng, op, shapes):
    a, b = positive(rng, *shapes[0]), positive(rng, *shapes[1])
    check_grad(BINARY[op], a, b)


@pytest.mark.parametrize("op", BINARY)
def test_binary_with_plain_numbers(rng, op):
    x = positive(rng, 2, 3)
    check_grad(lambda t: BINARY[op](t, 1.5), x)
    check_grad(lambda t: BINARY[op](1.5, t), x)


UNARY = {
    "neg": (lambda t: -t, randn),
    "exp": (lambda t: t.exp(), randn),
    "log": (lambda t: t.log(), positive),
    "sqrt": (lambda t: t.sqrt(), positive),
    "abs": (lambda t: abs(t), away_from_zero),
    "tanh": (lambda t: t.tanh(), randn),
    "sigmoid": (lambda t: t.sigmoid(), randn),
    "relu": (lambda t: t.relu(), away_from_zero),
    "clamp": (
        lambda t: t.clamp(-0.05, 0.05) + t.clamp(min=0.05) + t.clamp(max=-0.05),
        away_from_zero,
    ),
    "softmax": (lambda t: t.softmax(1), randn),
    "log_softmax": (lambda t: t.log_softmax(-1), randn),
    "clone": (lambda t: t.clone() * 2, randn),
}


@pytest.mark.parametrize("op", UNARY)
def test_unary(rng, op):
    fn, make = UNARY[op]
    check_grad(fn, make(rng, 3, 5))


def test_where_and_masked_fill(rng):
    mask = rng.random((3, 4)) > 0.5
    check_grad(lambda a, b, m: ember.where(m, a, b), randn(rng, 3, 4), randn(rng, 1, 4), mask)
    check_grad(lambda a, m: ember.where(m, a, 2.0), randn(rng, 3, 4), mask)
    check_grad(lambda a, m: a.masked_fill(m, -1.0), randn(rng, 3, 4), mask)


# ---- reductions --------------------------------------------------------------------------


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(rng, reduce, dim, keepdim):
    check_grad(lambda t: getattr(t, reduce)(dim=dim, keepdim=keepdim), randn(rng, 2, 3, 4))


@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min(rng, which):
    x = randn(rng, 3, 4, 2)
    check_grad(lambda t: getattr(t, which)(), x)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            check_grad(lambda t, d=dim, k=keepdim: getattr(t, which)(d, k).values, x)


def test_max_of_ties_shares_the_gradient():
    x = ember.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0.5, 0.5, 0])


def test_max_along_dim_returns_values_and_indices(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    values, indices = ember.tensor(x).max(1)
    np.testing.assert_array_equal(values.numpy(), x.max(1))
    np.testing.assert_array_equal(indices.numpy(), x.argmax(1))
    assert indices.dtype == np.int64
    result = ember.tensor(x).min(dim=0, keepdim=True)
    assert result.values.shape == (1, 5) and result.indices.shape == (1, 5)


# ---- shapes and indexing -----------------------------------------------------------------

SHAPES = {
    "reshape": lambda t: t.reshape(4, 6) * 1.0,
    "reshape_tuple": lambda t: t.reshape((6, -1)),
    "view": lambda t: t.view(-1),
    "transpose": lambda t: t.transpose(0, 2),
    "permute": lambda t: t.permute(2, 0, 1),
    "T": lambda t: t.reshape(6, 4).T,
    "flatten": lambda t: t.flatten(1),
    "unsqueeze": lambda t: t.unsqueeze(1).unsqueeze(-1),
    "squeeze": lambda t: t.reshape(2, 1, 12, 1).squeeze(),
    "squeeze_dim": lambda t: t.reshape(2, 1, 12, 1).squeeze(1),
    "expand": lambda t: t[:, :1].expand(2, 5, 4) * t.sum(),
    "basic_index": lambda t: t[1, ::2, 1:],
    "negative_step": lambda t: t[:, ::-1, -1],
    "ellipsis": lambda t: t[..., None, 0],
    "fancy_repeats": lambda t: t[np.array([0, 1, 1, 0])],
    "fancy_pairs": lambda t: t[np.array([0, 1, 1]), :, np.array([2, 2, 3])],
    "bool_mask": lambda t: t[t.detach() > 0],
    "gather": lambda t: t.gather(1, np.array([[[0, 1, 2, 0]], [[2, 2, 1, 1]]])),
    "cat": lambda t: ember.cat([t, t * 2, t[:, :1]], dim=1),
    "stack": lambda t: ember.stack([t, t.exp()], dim=-1),
}


@pytest.mark.parametrize("op", SHAPES)
def test_shape_ops(rng, op):
    check_grad(SHAPES[op], randn(rng, 2, 3, 4))


def test_indexing_matches_numpy(rng):
    x = randn(rng, 4, 5, 6)
    t = ember.tensor(x)
    for index in [(1,), (slice(None), 2), (Ellipsis, -1), (np.array([3, 0, 3]),), (x > 0,)]:
        np.testing.assert_array_equal(t[index].numpy(), x[index])
    np.testing.assert_array_equal(t[ember.tensor([1, 2])].numpy(), x[[1, 2]])


def test_cat_and_stack_of_several_inputs(rng):
    a, b = randn(rng, 2, 3), randn(rng, 4, 3)
    check_grad(lambda x, y: ember.cat([x, y]), a, b)
    check_grad(lambda x, y: ember.stack([x, y[:2]], dim=1), a, b)


# ---- matrix products ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "shapes",
    [
        ((3, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 3, 4), (4, 5)),
        ((2, 3, 4), (2, 4, 5)),
        ((3, 4), (2, 4, 5)),
        ((2, 1, 3, 4), (3, 4, 2)),
        ((4,), (2, 4, 3)),
        ((2, 3, 4), (4,)),
    ],
)
def test_matmul(rng, shapes):
    a, b = randn(rng, *shapes[0]), randn(rng, *shapes[1])
    out = check_grad(lambda x, y: x @ y, a, b)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-12)


def test_rmatmul_with_an_array(rng):
    a = randn(rng, 3, 4)
    check_grad(lambda y: a @ y, randn(rng, 4, 2))


# ---- the engine --------------------------------------------------------------------------


def test_gradients_accumulate_over_backward_calls():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 + 3, 4 + 3])


def test_shared_subexpressions_sum_their_gradients():
    x = ember.tensor(2.0, requires_grad=True)
    y = x * x  # used twice below
    z = y * y + y
    z.backward()
    assert x.grad.item() == pytest.approx(4 * 2.0**3 + 2 * 2.0)


def test_second_backward_through_a_freed_graph_raises():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)


def test_backward_needs_a_gradient_for_non_scalars():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(grad=ember.tensor([1.0, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2, -2])


def test_backward_without_requires_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ember.tensor([1.0]).sum().backward()


def test_leaf_backward_sets_its_own_gradient():
    x = ember.tensor(3.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_no_grad_records_nothing():
    x = ember.tensor([1.0], requires_grad=True)
    with ember.no_grad():
        y = x * 2
        assert not ember.is_grad_enabled()
    assert ember.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @ember.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    assert ember.is_grad_enabled()
    with ember.no_grad():
        with ember.enable_grad():
            assert (x * 2).requires_grad
    with ember.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ember.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ValueError), ember.no_grad():
        raise ValueError
    assert ember.is_grad_enabled()


def test_detach_and_requires_grad_rules():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.numpy(), y.numpy())
    with pytest.raises(RuntimeError, match="floating point"):
        ember.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    with pytest.raises(RuntimeError, match="in place"):
        x[0] = 5.0


def test_only_inputs_that_require_grad_get_gradients():
    a = ember.tensor([1.0, 2.0], requires_grad=True)
    b = ember.tensor([3.0, 4.0])
    (a * b).sum().backward()
    assert b.grad is None
    np.testing.assert_allclose(a.grad.numpy(), [3, 4])


def test_deep_graphs_do_not_recurse():
    x = ember.tensor(1.0, dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**5000)


def test_float32_stays_float32():
    x = ember.tensor([1.0, 2.0], requires_grad=True)
    y = (2 * x + 1.5) ** 2 / 3 - np.float64(1.0)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_against_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    c = rng.standard_normal(5).astype(np.float32)
    ours = [ember.tensor(v, requires_grad=True) for v in (a, b, c)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (a, b, c)]
    for x, y, z in (ours, theirs):
        h = (x @ y + z).tanh()
        out = (h.softmax(1) * h.sigmoid()).sum() + h.max() - h[1:, ::2].mean()
        out.backward()
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


class SplitRows(ember.autograd.Function):
    """A two-output Function, as the LSTM's (y, (h, c)) will be: x -> (2 x[0], x[1] ** 2)."""

    def forward(self, x):
        self.save_for_backward(x)
        return 2 * x[0], x[1] ** 2

    def backward(self, grad_first, grad_second):
        (x,) = self.saved
        return np.stack([2 * grad_first, 2 * x[1] * grad_second])


def test_functions_with_several_outputs():
    x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    first, second = SplitRows.apply(x)
    assert first.grad_fn is second.grad_fn
    (first.sum() + (second * 10).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2, 2], [60, 80]])
    x.grad = None
    first, _ = SplitRows.apply(x)  # the unused output gets a zero gradient
    first.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[2, 2], [0, 0]])


def test_masked_fill_keeps_float32():
    x = ember.tensor([1.0, 2.0])
    assert x.masked_fill(ember.tensor([True, False]), -1e9).dtype == np.float32
    assert ember.where(x > 1, x, 0.0).dtype == np.float32
