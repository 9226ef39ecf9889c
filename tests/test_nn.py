"""ember.nn: Module mechanics, state dicts interchangeable with PyTorch's, every layer and loss
against torch (copied weights) and against finite differences, and a small training run."""

import math

import numpy as np
import pytest

import ember
from conftest import check_grad
from ember import nn
from ember.nn import functional as F


def torch_or_skip():
    return pytest.importorskip("torch")


def copy_weights(theirs, ours):
    """Loads a torch module's state dict, converted to NumPy, into the ember module."""
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def compare_module(rng, ours, theirs, *input_shape, train=True, rtol=1e-5):
    """Same input and upstream gradient through both modules (float32): outputs, input
    gradients and parameter gradients must agree."""
    torch = torch_or_skip()
    copy_weights(theirs, ours)
    ours.train(train)
    theirs.train(train)
    x = rng.standard_normal(input_shape).astype(np.float32)
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = ours(ex), theirs(tx)
    np.testing.assert_allclose(ey.numpy(), ty.detach().numpy(), rtol=rtol, atol=1e-5)
    g = rng.standard_normal(ty.shape).astype(np.float32)
    ey.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=1e-5)
    for (name, p), (tname, tp) in zip(
        ours.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert name == tname
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=rtol, atol=1e-5)
    return ours, theirs


# ---- Module mechanics --------------------------------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8))
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8, bias=False)])
        self.head = nn.Linear(8, 3)

    def forward(self, idx):
        h = self.body(self.embed(idx))
        for block in self.blocks:
            h = h + block(h).tanh()
        return self.head(h)


def test_named_parameters_children_and_modules():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "embed.weight",
        "body.0.weight",
        "body.0.bias",
        "body.2.weight",
        "body.2.bias",
        "blocks.0.weight",
        "blocks.0.bias",
        "blocks.1.weight",
        "head.weight",
        "head.bias",
    ]
    assert len(list(net.parameters())) == 10
    assert [n for n, _ in net.named_children()] == ["embed", "body", "blocks", "head"]
    assert len(list(net.modules())) == 10
    assert net.blocks[1].bias is None and len(net.blocks) == 2 and len(net.body) == 3
    assert isinstance(net.body[:2], nn.Sequential) and len(net.body[:2]) == 2


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_attribute_assignment_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Parameter or None"):
        m.weight = ember.zeros(2, 2)
    m.bias = None
    assert "bias" not in m.state_dict()
    m.scale = 3.0  # plain attributes stay plain
    assert m.scale == 3.0 and "scale" not in dict(m.named_parameters())
    del m.weight
    assert "weight" not in m.state_dict()

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ember.zeros(1))

    with pytest.raises(AttributeError, match="__init__"):
        NoInit()


def test_train_eval_return_self_and_recurse():
    net = Net()
    assert net.eval() is net and not any(m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    assert net.to("cpu") is net


def test_zero_grad_and_double():
    net = Net()
    net(ember.tensor([[1, 2, 3]])).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all((p.grad.numpy() == 0).all() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    params = list(net.parameters())
    net.double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert all(a is b for a, b in zip(params, net.parameters(), strict=True))


def test_state_dict_shares_memory_and_loads_arrays_and_tensors():
    a, b = Net(), Net()
    state = a.state_dict()
    assert all(isinstance(v, ember.Tensor) and not v.requires_grad for v in state.values())
    assert np.shares_memory(state["head.weight"].numpy(), a.head.weight.numpy())
    result = b.load_state_dict({k: v.numpy() for k, v in state.items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k].numpy())
    b.load_state_dict(state)  # Tensors work too


def test_load_state_dict_errors_name_the_keys():
    net = Net()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    del state["head.bias"]
    state["head.extra"] = np.zeros(3)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(state)
    message = str(err.value)
    assert "Missing key(s) in state_dict: 'head.bias'" in message
    assert "Unexpected key(s) in state_dict: 'head.extra'" in message
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.bias"] and result.unexpected_keys == ["head.extra"]
    state["head.weight"] = np.zeros((4, 8))
    with pytest.raises(RuntimeError, match=r"size mismatch for head.weight.*\(4, 8\).*\(3, 8\)"):
        net.load_state_dict(state, strict=False)


def torch_net():
    torch = torch_or_skip()
    tnn = torch.nn

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tnn.Embedding(10, 4)
            self.body = tnn.Sequential(tnn.Linear(4, 8), tnn.ReLU(), tnn.LayerNorm(8))
            self.blocks = tnn.ModuleList([tnn.Linear(8, 8), tnn.Linear(8, 8, bias=False)])
            self.head = tnn.Linear(8, 3)

        def forward(self, idx):
            h = self.body(self.embed(idx))
            for block in self.blocks:
                h = h + block(h).tanh()
            return self.head(h)

    return TorchNet()


def test_state_dicts_interchange_with_torch():
    torch = torch_or_skip()
    theirs, ours = torch_net(), Net()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_weights(theirs, ours)
    idx = np.array([[1, 5, 9], [0, 2, 2]])
    want = theirs(torch.tensor(idx)).detach().numpy()
    np.testing.assert_allclose(ours(ember.tensor(idx)).numpy(), want, rtol=1e-5, atol=1e-6)
    # and back: ember's state dict loads into a fresh torch model
    fresh = torch_net()
    fresh.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    np.testing.assert_allclose(fresh(torch.tensor(idx)).detach().numpy(), want, rtol=1e-6)


def test_batchnorm_state_dict_matches_torch():
    torch = torch_or_skip()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    their_state = theirs.state_dict()
    our_state = ours.state_dict()
    assert list(our_state) == list(their_state)
    for k in our_state:
        assert our_state[k].shape == tuple(their_state[k].shape), k
    assert our_state["1.num_batches_tracked"].dtype == np.int64
    assert "running_mean" not in dict(nn.BatchNorm2d(3, track_running_stats=False).state_dict())


def test_repr_matches_torch():
    torch = torch_or_skip()
    tnn = torch.nn
    theirs = tnn.Sequential(
        tnn.Linear(4, 8), tnn.ReLU(), tnn.Sequential(tnn.GELU(), tnn.Flatten()), tnn.Tanh()
    )
    ours = nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.GELU(), nn.Flatten()), nn.Tanh()
    )
    assert repr(ours) == repr(theirs)


# ---- initialisation ----------------------------------------------------------------------


def test_linear_default_init_is_pytorchs():
    ember.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    for p in (lin.weight.numpy(), lin.bias.numpy()):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.95 * bound  # uniform over the whole range
    assert lin.weight.shape == (300, 400) and lin.bias.shape == (300,)
    assert abs(lin.weight.numpy().std() - bound / np.sqrt(3)) < 0.01 * bound


def test_embedding_init_and_padding_row():
    emb = nn.Embedding(1000, 16, padding_idx=-1)
    w = emb.weight.numpy()
    assert emb.padding_idx == 999 and (w[999] == 0).all()
    assert abs(w[:999].std() - 1) < 0.02


# ---- layers against torch (float32, copied weights) --------------------------------------


def test_linear_against_torch(rng):
    torch = torch_or_skip()
    compare_module(rng, nn.Linear(7, 5), torch.nn.Linear(7, 5), 2, 3, 7)
    compare_module(rng, nn.Linear(7, 5, bias=False), torch.nn.Linear(7, 5, bias=False), 4, 7)


@pytest.mark.parametrize(
    "name, args",
    [("ReLU", ()), ("Tanh", ()), ("Sigmoid", ()), ("GELU", ()), ("Softmax", (1,)),
     ("LogSoftmax", (-1,)), ("Flatten", ()), ("Identity", ())],
)  # fmt: skip
def test_activations_against_torch(rng, name, args):
    torch = torch_or_skip()
    compare_module(rng, getattr(nn, name)(*args), getattr(torch.nn, name)(*args), 3, 4, 5)


def test_gelu_tanh_against_torch(rng):
    torch = torch_or_skip()
    compare_module(rng, nn.GELU("tanh"), torch.nn.GELU("tanh"), 4, 9)


def test_gelu_float32_is_accurate_in_both_tails():
    x = np.linspace(-12, 12, 2001).astype(np.float32)
    exact = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    got = F.gelu(ember.tensor(x)).numpy()
    assert got.dtype == np.float32
    # relative accuracy even where x * Phi(x) is tiny (PyTorch's 1 + erf loses it there)
    np.testing.assert_allclose(got, exact, rtol=2e-5, atol=1e-35)
    torch = torch_or_skip()
    want = torch.nn.functional.gelu(torch.tensor(x)).numpy()
    # PyTorch's vectorised erf differs per CPU: on AVX-512 its GELU is off the exact value by up
    # to 1.3e-3 relative (6e-7 absolute) near x = -3.7; ember agrees with it to that bound and is
    # never farther from the exact value than PyTorch is (beyond a few float32 ulps).
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert (np.abs(got - exact) <= np.abs(want - exact) + 5e-7 * np.abs(exact)).all()


def test_layernorm_against_torch(rng):
    torch = torch_or_skip()
    ours, theirs = nn.LayerNorm(6), torch.nn.LayerNorm(6)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    compare_module(rng, ours, theirs, 3, 4, 6)
    ours, theirs = (
        nn.LayerNorm((4, 6), elementwise_affine=False),
        torch.nn.LayerNorm((4, 6), elementwise_affine=False),
    )
    compare_module(rng, ours, theirs, 3, 4, 6)


@pytest.mark.parametrize("kind, shape", [("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3))])
@pytest.mark.parametrize(
    "options",
    [{}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}, {"eps": 1e-3}],
)
def test_batchnorm_against_torch(rng, kind, shape, options):
    torch = torch_or_skip()
    ours, theirs = getattr(nn, kind)(3, **options), getattr(torch.nn, kind)(3, **options)
    if theirs.affine:
        with torch.no_grad():
            theirs.weight.normal_()
            theirs.bias.normal_()
    compare_module(rng, ours, theirs, *shape, train=True)
    for _ in range(3):  # more training steps update the running statistics
        x = rng.standard_normal(shape).astype(np.float32) * 2 + 1
        ours(ember.tensor(x))
        theirs(torch.tensor(x))
    for (k, v), (tk, tv) in zip(
        ours.state_dict().items(), theirs.state_dict().items(), strict=True
    ):
        assert k == tk
        np.testing.assert_allclose(v.numpy(), tv.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)
    ours.zero_grad()
    theirs.zero_grad()
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(
        ours(ember.tensor(x)).numpy(),
        theirs(torch.tensor(x)).detach().numpy(),
        rtol=1e-5,
        atol=1e-5,
    )


def test_batchnorm_eval_gradients_against_torch(rng):
    torch = torch_or_skip()
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        theirs.running_mean.normal_()
        theirs.running_var.uniform_(0.5, 2)
        theirs.weight.normal_()
    compare_module(rng, ours, theirs, 2, 3, 4, 4, train=False)


def test_batchnorm_needs_more_than_one_value_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ember.randn(1, 3))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(ember.randn(2, 3))


def test_embedding_against_torch(rng):
    torch = torch_or_skip()
    ours, theirs = nn.Embedding(7, 3, padding_idx=2), torch.nn.Embedding(7, 3, padding_idx=2)
    copy_weights(theirs, ours)
    idx = np.array([[1, 2, 2], [6, 1, 0]])
    ey, ty = ours(ember.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(ey.numpy(), ty.detach().numpy())
    g = rng.standard_normal(ey.shape).astype(np.float32)
    ey.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6)


def test_dropout_train_and_eval():
    ember.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = ember.ones(200, 100, requires_grad=True)
    y = drop(x)
    kept = y.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y.numpy()[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75)
    assert drop.eval()(x) is x
    assert (nn.Dropout(1.0)(x).numpy() == 0).all()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


# ---- similarities and norms ------------------------------------------------------------


@pytest.mark.parametrize(
    "s1,s2,dim,zero",
    [
        ((5, 7), (5, 7), 1, True),  # row 0 of x1 a zero vector: similarity 0, PyTorch's gradient
        ((3, 1, 4), (1, 6, 4), -1, False),  # broadcast
        ((4, 3), (4, 3), 0, False),
        ((7,), (7,), 0, False),
        ((2, 7), (7,), 1, False),
    ],
)
def test_cosine_similarity_matches_torch(rng, s1, s2, dim, zero):
    torch = torch_or_skip()
    a = rng.standard_normal(s1).astype(np.float32)
    b = rng.standard_normal(s2).astype(np.float32)
    if zero:
        a[0] = 0
    ours = [ember.tensor(v, requires_grad=True) for v in (a, b)]
    theirs = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    got = F.cosine_similarity(*ours, dim=dim)
    want = torch.nn.functional.cosine_similarity(*theirs, dim=dim)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = np.asarray(rng.standard_normal(want.shape), np.float32)
    got.backward(g)
    want.backward(torch.tensor(g))
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)
    module = nn.CosineSimilarity(dim=dim)(*ours)
    np.testing.assert_array_equal(module.numpy(), got.numpy())


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_normalize_matches_torch(rng, p):
    torch = torch_or_skip()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    x[1] = 0  # stays 0, with PyTorch's gradient (through the eps clamp alone)
    ours, theirs = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got = F.normalize(ours, p=p, dim=1)
    want = torch.nn.functional.normalize(theirs, p=p, dim=1)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal((4, 5)).astype(np.float32)
    got.backward(g)
    want.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_similarity_gradients_and_errors(rng):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    check_grad(lambda s, t: F.cosine_similarity(s, t), a, b)
    check_grad(lambda s, t: F.cosine_similarity(s, t, dim=0), a, b[:1])
    check_grad(lambda s: F.normalize(s, dim=0), a)
    check_grad(lambda s: F.normalize(s, p=3.0), a)
    with pytest.raises(ValueError, match="do not broadcast"):
        F.cosine_similarity(ember.tensor(a), ember.tensor(b[:, :3]))
    with pytest.raises(TypeError, match="x1 is float64 but x2 is float32"):
        F.cosine_similarity(ember.tensor(a), ember.tensor(b.astype(np.float32)))
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        F.cosine_similarity(ember.tensor(a), ember.tensor(b), dim=2)
    with pytest.raises(ValueError, match="p must be positive"):
        F.normalize(ember.tensor(a), p=0)


# ---- functional gradients against finite differences (float64) ---------------------------


def test_functional_gradients(rng):
    x = rng.standard_normal((4, 5))
    w, b = rng.standard_normal((3, 5)), rng.standard_normal(3)
    check_grad(F.linear, x, w, b)
    check_grad(lambda t: F.gelu(t), x)
    check_grad(lambda t: F.gelu(t, approximate="tanh"), x)
    affine = rng.standard_normal(5), rng.standard_normal(5)
    check_grad(lambda t, g, h: F.layer_norm(t, 5, g, h), x, *affine)
    check_grad(lambda t: F.layer_norm(t, (4, 5)), x)
    check_grad(lambda t: F.softmax(t, dim=0), x)
    check_grad(lambda t: F.log_softmax(t, dim=1), x)


def test_batch_norm_gradients(rng):
    x = rng.standard_normal((3, 2, 2, 2))
    g, b = rng.standard_normal(2), rng.standard_normal(2)
    check_grad(lambda t, w, c: F.batch_norm(t, None, None, w, c, training=True), x, g, b)
    mean, var = ember.tensor(rng.standard_normal(2)), ember.tensor(rng.uniform(0.5, 2, 2))
    check_grad(lambda t, w, c: F.batch_norm(t, mean, var, w, c, training=False), x, g, b)


def test_embedding_gradient(rng):
    idx = np.array([[0, 2, 2], [3, 0, 1]])
    check_grad(lambda w, i: F.embedding(i, w), rng.standard_normal((4, 3)), idx)


# ---- losses ------------------------------------------------------------------------------


def torch_loss(name, *args, **kwargs):
    torch = torch_or_skip()
    return getattr(torch.nn.functional, name)(*args, **kwargs)


def compare_loss(rng, ember_fn, torch_name, x, target, grad_target=False, torch_extra=(), **kwargs):
    """The loss and its gradients (input, and target when grad_target) match torch's; kwargs go
    to both, torch_extra to torch only."""
    torch = torch_or_skip()
    ex = ember.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    if grad_target:
        et, tt = ember.tensor(target, requires_grad=True), torch.tensor(target, requires_grad=True)
    else:
        et, tt = ember.tensor(target), torch.tensor(target)
    ours = ember_fn(ex, et, **kwargs)
    theirs = torch_loss(torch_name, tx, tt, **kwargs, **dict(torch_extra))
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(theirs.shape).astype(x.dtype)
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    if grad_target:
        np.testing.assert_allclose(et.grad.numpy(), tt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_against_torch(rng, reduction, smoothing, weighted):
    torch = torch_or_skip()
    weight = rng.uniform(0.5, 2, 5).astype(np.float32) if weighted else None
    kwargs = dict(reduction=reduction, label_smoothing=smoothing)
    for x_shape, t_shape in [((6, 5), (6,)), ((3, 5, 2, 2), (3, 2, 2)), ((5,), ())]:
        x = rng.standard_normal(x_shape).astype(np.float32)
        target = rng.integers(0, 5, t_shape)
        if t_shape:
            target.flat[0] = -100  # ignored
        torch_weight = None if weight is None else torch.tensor(weight)
        compare_loss(rng, lambda a, b, **k: F.cross_entropy(a, b, weight=weight, **k),
                     "cross_entropy", x, target, torch_extra={"weight": torch_weight},
                     **kwargs)  # fmt: skip


def test_cross_entropy_module_and_probability_targets(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((4, 3)).astype(np.float32)
    probs = rng.dirichlet(np.ones(3), 4).astype(np.float32)
    compare_loss(rng, F.cross_entropy, "cross_entropy", x, probs, label_smoothing=0.1)
    loss = nn.CrossEntropyLoss(ignore_index=1)(ember.tensor(x), ember.tensor([0, 1, 2, 1]))
    want = torch.nn.CrossEntropyLoss(ignore_index=1)(torch.tensor(x), torch.tensor([0, 1, 2, 1]))
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(ember.tensor(x), ember.tensor([0, 1, 3, 1]))


def test_cross_entropy_gradient_float64(rng):
    target = np.array([0, 2, 1, 2])
    weight = ember.tensor(rng.uniform(0.5, 2, 3))
    check_grad(lambda t: F.cross_entropy(t, target, weight=weight, label_smoothing=0.3),
               rng.standard_normal((4, 3)))  # fmt: skip


def test_nll_and_mse_against_torch(rng):
    x = np.log(rng.dirichlet(np.ones(4), 5)).astype(np.float32)
    compare_loss(rng, F.nll_loss, "nll_loss", x, rng.integers(0, 4, 5))
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4))
    for reduction in ("mean", "sum", "none"):
        compare_loss(rng, F.mse_loss, "mse_loss", a, b.astype(np.float32), grad_target=True,
                     reduction=reduction)  # fmt: skip
    assert nn.MSELoss()(ember.tensor(a), ember.tensor(a)).item() == 0
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(ember.tensor(a), ember.tensor(a[0]))


def test_bce_with_logits_against_torch(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((4, 3)).astype(np.float32) * 5
    x[0] = 0.0  # the kink-free stable form must still give the right gradient at 0
    y = rng.random((4, 3)).astype(np.float32)
    for reduction in ("mean", "sum", "none"):
        compare_loss(rng, F.binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits",
                     x, y, grad_target=True, reduction=reduction)  # fmt: skip
    pos_weight = rng.uniform(0.5, 3, 3).astype(np.float32)
    weight = rng.uniform(0.5, 2, (4, 3)).astype(np.float32)
    ours = nn.BCEWithLogitsLoss(weight=ember.tensor(weight), pos_weight=ember.tensor(pos_weight))
    theirs = torch.nn.BCEWithLogitsLoss(
        weight=torch.tensor(weight), pos_weight=torch.tensor(pos_weight)
    )
    ex, tx = ember.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ey, ty = ours(ex, ember.tensor(y)), theirs(tx, torch.tensor(y))
    assert ey.item() == pytest.approx(ty.item(), rel=1e-5)
    ey.backward()
    ty.backward()
    np.testing.assert_allclose(ex.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(ember.tensor(x), ember.tensor(y[0]))


def test_bce_with_logits_gradient_float64(rng):
    pos_weight = ember.tensor(rng.uniform(0.5, 2, 3))
    check_grad(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=pos_weight),
               rng.standard_normal((2, 3)), rng.random((2, 3)))  # fmt: skip


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_against_torch(rng, log_target):
    x = np.log(rng.dirichlet(np.ones(5), 4)).astype(np.float32)
    t = rng.dirichlet(np.ones(5), 4).astype(np.float32)
    t = np.log(t) if log_target else t
    for reduction in ("batchmean", "sum", "none"):
        compare_loss(rng, F.kl_div, "kl_div", x, t, grad_target=True, reduction=reduction,
                     log_target=log_target)  # fmt: skip
    with pytest.warns(UserWarning, match="batchmean"):
        nn.KLDivLoss(log_target=log_target)(ember.tensor(x), ember.tensor(t))
    check_grad(lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=log_target),
               x.astype(np.float64), t.astype(np.float64))  # fmt: skip


def test_bad_reduction_raises():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(ember.zeros(2), ember.zeros(2), reduction="avg")


# ---- gradient clipping -------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_against_torch(rng, norm_type, max_norm):
    torch = torch_or_skip()
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,), (2, 2, 2)]]
    ours = [ember.zeros(g.shape, requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads, strict=True):
        o.grad, t.grad = ember.tensor(g), torch.tensor(g)
    norm = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert norm.item() == pytest.approx(want.item(), rel=1e-5)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-5)


def test_clip_grad_norm_without_gradients_is_a_float32_zero():
    norm = nn.utils.clip_grad_norm_(nn.Linear(2, 2).parameters(), 1.0)
    assert norm.item() == 0.0 and norm.dtype == np.float32  # PyTorch's tensor(0.)


def test_clip_grad_value():
    p = ember.zeros(3, requires_grad=True)
    p.grad = ember.tensor([-3.0, 0.5, 2.0])
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.5, 1.0]


# ---- end to end --------------------------------------------------------------------------


def test_mlp_learns_the_digits():
    pytest.importorskip("sklearn")
    from ember.data import DataLoader, TensorDataset, load_digits

    ember.manual_seed(0)
    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:1400], order[1400:]
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = ember.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(images[train], labels[train]), batch_size=32, shuffle=True)
    for _ in range(3):
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x), y).backward()
            optimizer.step()
    model.eval()
    with ember.no_grad():
        predicted = model(ember.tensor(images[test])).argmax(1).numpy()
    assert (predicted == labels[test]).mean() > 0.9
