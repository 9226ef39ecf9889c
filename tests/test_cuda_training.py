"""Training on the GPU: Tensor and Module moves, every Function, functional and loss forward and
backward on 'cuda' against the same computation on the CPU, the optimizers' fused CUDA steps
against the CPU's, clip_grad_norm_, checkpoints of GPU models, and the digits MLP on the GPU.

Every test runs twice (the `gpu` fixture): on a GPU with CuPy (marked cuda: skipped where none
is visible), and on a NumPy-backed stand-in for CuPy and ember._cuda (tests/fake_cupy.py), which
runs here and checks everything above the kernels: device bookkeeping, that nothing mixes host
and GPU arrays, that the CUDA branches are taken. The stand-in computes as the CPU does, so
there the comparisons are exact; on a GPU they hold to float32 tolerances (the fused optimizer
steps bitwise).
"""

import importlib.util
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

import ember
import fake_cupy
from ember import nn, optim
from ember.nn import functional as F

RTOL, ATOL = 2e-5, 2e-6  # GPU vs CPU, float32: other summation orders, other exp/log/tanh


@pytest.fixture(params=[pytest.param("gpu", marks=pytest.mark.cuda), "stand-in"])
def gpu(request, monkeypatch):
    """The array module of device 'cuda': CuPy on a GPU, or the NumPy-backed stand-in."""
    if request.param == "gpu":
        return pytest.importorskip("cupy")
    cupy, _ = fake_cupy.install(monkeypatch)
    return cupy


def is_stand_in(gpu) -> bool:
    return gpu.ndarray is fake_cupy.ndarray


def host(t):
    """A tensor's (or an array's) values as a NumPy array."""
    data = t.data if isinstance(t, ember.Tensor) else t
    return data.get() if hasattr(data, "get") else np.asarray(data)


def assert_close(got, want, rtol=RTOL, atol=ATOL):
    got, want = host(got), host(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ---- moving tensors ------------------------------------------------------------------------


def test_tensor_to_cuda_and_back(gpu):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = ember.tensor(a)
    g = t.to("cuda")
    assert isinstance(g.data, gpu.ndarray) and g.device == "cuda" and g.is_cuda
    assert g.device_index == 0 and t.device_index is None
    assert g.to("cuda") is g and g.to("cuda:0") is g and g.cuda() is g
    assert t.cuda().is_cuda and t.to(device="cuda:0").is_cuda and t.to(0).is_cuda
    back = g.cpu()
    assert isinstance(back.data, np.ndarray) and back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), a)
    np.testing.assert_array_equal(np.asarray(g), a)  # explicit conversion copies back
    assert "device='cuda:0'" in repr(g)
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        g.numpy()
    # dtype and device at once, and to(other): other's device and dtype
    d = t.to("cuda", np.float64)
    assert d.is_cuda and d.dtype == np.float64
    like = ember.tensor([1, 2]).to(g)
    assert like.is_cuda and like.dtype == np.float32


def test_gradients_flow_through_moves(gpu):
    x = ember.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    y = (x.to("cuda") * ember.tensor([2.0, 3.0], device="cuda")).relu().sum()
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 0.0], [2.0, 3.0]])
    # a GPU leaf fed to the CPU
    w = ember.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    (w.cpu() * 3).sum().backward()
    assert w.grad.is_cuda
    np.testing.assert_array_equal(host(w.grad), [3.0, 3.0])


def test_factories_on_the_gpu(gpu):
    for t in (
        ember.zeros(2, 3, device="cuda"),
        ember.ones((2, 3), device="cuda"),
        ember.empty(2, 3, device="cuda"),
        ember.full((2, 3), 1.5, device="cuda"),
    ):
        assert t.is_cuda and t.shape == (2, 3) and t.dtype == np.float32
    np.testing.assert_array_equal(host(ember.full((2,), 1.5, device="cuda")), [1.5, 1.5])
    np.testing.assert_array_equal(host(ember.arange(5, device="cuda")), np.arange(5))
    assert ember.arange(0, 1, 0.25, device="cuda").dtype == np.float32
    # ember's generator runs on the host: a seed gives the same numbers on every device
    for make in (
        lambda d: ember.randn(4, 5, device=d),
        lambda d: ember.rand(4, 5, device=d),
        lambda d: ember.randint(0, 10, (4, 5), device=d),
    ):
        ember.manual_seed(3)
        on_cpu = make("cpu")
        ember.manual_seed(3)
        on_gpu = make("cuda")
        assert on_gpu.is_cuda
        np.testing.assert_array_equal(host(on_gpu), on_cpu.numpy())
    g = ember.ones(3, device="cuda")
    for t in (
        ember.zeros_like(g),
        ember.ones_like(g),
        ember.empty_like(g),
        ember.full_like(g, 2.0),
        ember.randn_like(g),
        ember.rand_like(g),
    ):
        assert t.is_cuda and t.shape == (3,)
    assert not ember.zeros_like(g, device="cpu").is_cuda
    assert ember.zeros(2, device="cuda", requires_grad=True).requires_grad


def test_tensor_from_gpu_arrays(gpu):
    array = gpu.asarray(np.arange(4, dtype=np.float32))
    t = ember.tensor(array)
    assert t.is_cuda and t.data is not array  # a copy, on the GPU
    assert not ember.tensor(array, device="cpu").is_cuda
    assert ember.tensor(array, dtype=np.float64).dtype == np.float64
    assert ember.tensor([1.0, 2.0], device="cuda").is_cuda
    assert ember.from_dlpack(t).data is t.data


def test_indexing_and_assignment_across_devices(gpu):
    g = ember.arange(10, dtype=np.float32, device="cuda")
    # a host index for a GPU tensor is moved to the GPU, as in PyTorch
    np.testing.assert_array_equal(host(g[np.array([1, 1, 3])]), [1, 1, 3])
    np.testing.assert_array_equal(host(g[ember.tensor([0, 2])]), [0, 2])
    np.testing.assert_array_equal(host(g[g > 7]), [8, 9])
    with pytest.raises(RuntimeError, match="cannot index a tensor on the cpu"):
        ember.arange(3)[ember.tensor([0], device="cuda")]
    g[np.array([0, 1])] = np.array([5.0, 6.0], np.float32)  # host values are copied over
    g[2] = 7.0
    np.testing.assert_array_equal(host(g)[:3], [5, 6, 7])
    assert bool((g == 5.0).data.any()) and (g == ember.tensor(5.0)).is_cuda


def test_device_mismatch_is_a_clear_error(gpu):
    c, g = ember.ones(3), ember.ones(3, device="cuda")
    for op in (
        lambda: c + g,
        lambda: g * c,
        lambda: ember.cat([c, g]),
        lambda: ember.where(c > 0, g, c),
        lambda: g.masked_fill(c > 0, 0.0),
        lambda: F.linear(ember.ones(2, 3), ember.ones(4, 3, device="cuda")),
        lambda: F.cross_entropy(ember.ones(2, 3, device="cuda"), ember.tensor([0, 1])),
        lambda: F.embedding(ember.tensor([0, 1]), ember.ones(4, 2, device="cuda")),
        lambda: F.nll_loss(
            ember.ones(2, 3, device="cuda"), ember.tensor([0, 1], device="cuda"), ember.ones(3)
        ),
        lambda: g == c,
        lambda: ember.ones(3, device="cuda", requires_grad=True).sum().backward(ember.ones(())),
    ):
        with pytest.raises(RuntimeError, match="cuda:0 and cpu|cpu and cuda:0"):
            op()
    # as PyTorch: a 0-d host tensor that needs no gradient joins GPU operands as a scalar
    out = g * ember.tensor(2.0)
    assert out.is_cuda
    np.testing.assert_array_equal(host(out), [2.0, 2.0, 2.0])


# ---- moving modules ------------------------------------------------------------------------


def test_module_to_moves_parameters_buffers_and_grads_in_place(gpu):
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2))
    params = list(model.parameters())
    model(ember.randn(5, 4)).sum().backward()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    assert model.cuda() is model
    assert list(model.parameters()) == params  # the same Parameter objects
    for name, t in model.state_dict().items():
        assert t.is_cuda, name
        np.testing.assert_array_equal(host(t), before[name])
    assert all(p.grad.is_cuda for p in params)
    out = model(ember.randn(5, 4, device="cuda"))
    assert out.is_cuda and out.shape == (5, 2)
    model.to("cpu")
    assert all(not t.is_cuda for t in model.state_dict().values())
    assert model.to("cuda:0", np.float64) is model
    assert model[0].weight.is_cuda and model[0].weight.dtype == np.float64
    loss = nn.CrossEntropyLoss(weight=ember.ones(2)).to("cuda")  # weights are buffers
    assert loss.weight.is_cuda


# ---- every Function, functional and loss: the GPU against the CPU ------------------------


class const:
    """An input that does not require grad."""

    def __init__(self, array):
        self.array = np.asarray(array)


def run_on(device, fn, inputs, seed):
    """fn on tensors of `inputs` on `device`; returns (outputs, input grads) as host arrays. The
    float outputs are contracted with fixed random weights and back-propagated."""
    tensors = []
    for x in inputs:
        if isinstance(x, const):
            tensors.append(ember.tensor(x.array, device=device))
        else:
            tensors.append(ember.tensor(x, device=device, requires_grad=True))
    ember.manual_seed(seed)  # dropout draws the same masks on both devices
    out = fn(*tensors)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert o.is_cuda == (device == "cuda")
    weights = np.random.default_rng(seed)
    loss = None
    for o in outs:
        if o.dtype.kind == "f" and o.requires_grad:
            w = ember.tensor(weights.standard_normal(o.shape).astype(o.dtype), device=device)
            term = (o * w).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    grads = [None if t.grad is None else host(t.grad) for t in tensors]
    for t in tensors:
        assert t.grad is None or t.grad.is_cuda == (device == "cuda")
    return [host(o) for o in outs], grads


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def positive(rng, *shape):
    return (np.abs(rng.standard_normal(shape)) + 0.2).astype(np.float32)


def labels(rng, n, classes):
    return const(rng.integers(0, classes, n))


def probabilities(rng, *shape):
    e = np.exp(rng.standard_normal(shape))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


# name -> rng -> (fn, inputs)
CASES = {
    "add_sub_broadcast": lambda r: (lambda a, b: a + b - 2 * b, [randn(r, 3, 4), randn(r, 4)]),
    "mul_div": lambda r: (lambda a, b: a * b / (b * b + 1), [randn(r, 2, 3, 4), randn(r, 3, 1)]),
    "pow": lambda r: (
        lambda a, b: (a**b, a**3, 2.0**b, a ** ember.tensor(0.5, device=a.device)),
        [positive(r, 5, 3), randn(r, 5, 3)],
    ),
    "unary": lambda r: (
        lambda a, p: (a.exp(), p.log(), p.sqrt(), abs(a), -a, a.tanh(), a.sigmoid(), a.relu()),
        [randn(r, 4, 6), positive(r, 4, 6)],
    ),
    "clamp": lambda r: (lambda a: (a.clamp(-0.5, 0.7), a.clamp(min=0.1)), [randn(r, 30)]),
    "where_masked_fill": lambda r: (
        lambda a, b: (ember.where(a > 0, a, b * 2), a.masked_fill(b < 0.1, 1.5)),
        [randn(r, 3, 5), randn(r, 3, 5)],
    ),
    "reductions": lambda r: (
        lambda a: (
            (a.sum(), a.sum(1), a.mean((0, 2), keepdim=True), a.max(), a.min())
            + tuple(a.max(1))
            + tuple(a.min(-1, keepdim=True))
        ),
        [randn(r, 3, 4, 5)],
    ),
    "gather": lambda r: (
        lambda a, i: a.gather(1, i),
        [randn(r, 4, 6), const(r.integers(0, 6, (4, 3)))],
    ),
    "getitem": lambda r: (
        lambda a, i: (a[1:, ::2], a[i], a[:, i], a[a > 0.5], a[..., None, 1]),
        [randn(r, 5, 5), const([0, 3, 3, 1])],
    ),
    "shapes": lambda r: (
        lambda a: (
            a.reshape(6, 4),
            a.permute(2, 0, 1),
            a.transpose(0, 1),
            a.T,
            a[:1].expand(3, -1, -1),
            a.flatten(1),
            a.unsqueeze(1).squeeze(1),
        ),
        [randn(r, 2, 3, 4)],
    ),
    "cat_stack": lambda r: (
        lambda a, b: (ember.cat([a, b, a], dim=1), ember.stack([a, b * 2], dim=-1)),
        [randn(r, 2, 3), randn(r, 2, 3)],
    ),
    "matmul": lambda r: (
        lambda a, b, c, v: (a @ b, c @ b, a @ v, v @ b),
        [randn(r, 5, 7), randn(r, 7, 3), randn(r, 2, 4, 7), randn(r, 7)],
    ),
    "linear": lambda r: (
        lambda x, x3, w, b: (F.linear(x, w, b), F.linear(x3, w), F.linear(x, w, b).relu()),
        [randn(r, 9, 5), randn(r, 2, 3, 5), randn(r, 4, 5), randn(r, 4)],
    ),
    "softmax": lambda r: (
        lambda a: (F.softmax(a, dim=-1), F.log_softmax(a, dim=1), F.softmax(a * 30, dim=0)),
        [randn(r, 4, 7)],
    ),
    "gelu": lambda r: (
        lambda a: (F.gelu(a), F.gelu(a, approximate="tanh")),
        [4 * randn(r, 50)],
    ),
    "dropout": lambda r: (
        lambda a: (F.dropout(a, 0.3, True), F.dropout(a, 0.3, False), nn.Dropout(0.5)(a)),
        [randn(r, 8, 16)],
    ),
    "layer_norm": lambda r: (
        lambda x, w, b: (F.layer_norm(x, (6,), w, b), F.layer_norm(x, (4, 6))),
        [randn(r, 3, 4, 6), randn(r, 6), randn(r, 6)],
    ),
    "batch_norm": lambda r: (
        lambda x, w, b, rm, rv: (
            F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2),
            rm,
            rv,
            F.batch_norm(x, rm, rv, w, b, training=False),
        ),
        [randn(r, 6, 3, 4, 4), randn(r, 3), randn(r, 3), const(randn(r, 3)), const(positive(r, 3))],
    ),
    "embedding": lambda r: (
        lambda w, i: (
            F.embedding(i, w),
            F.embedding(i, w, padding_idx=2),
            nn.Embedding(5, 3).to(i.device)(i),
        ),
        [randn(r, 5, 3), const([[0, 2, 4, 2], [1, 1, 1, 3]])],
    ),
    "cross_entropy": lambda r: (
        lambda x, y, x3, y3, w, p: (
            F.cross_entropy(x, y),
            F.cross_entropy(x, y, weight=w, reduction="sum"),
            F.cross_entropy(x, y, ignore_index=2, reduction="none"),
            F.cross_entropy(x, y, weight=w, label_smoothing=0.1),
            F.cross_entropy(x3, y3, label_smoothing=0.2),
            F.cross_entropy(x, p, label_smoothing=0.05),
            F.cross_entropy(x[0], y[0]),
        ),
        [
            randn(r, 6, 4),
            labels(r, 6, 4),
            randn(r, 3, 4, 5),
            const(r.integers(0, 4, (3, 5))),
            const(positive(r, 4)),
            const(probabilities(r, 6, 4)),
        ],
    ),
    "nll_loss": lambda r: (
        lambda x, y, w: (F.nll_loss(F.log_softmax(x, 1), y), F.nll_loss(x, y, w, reduction="sum")),
        [randn(r, 7, 3), labels(r, 7, 3), const(positive(r, 3))],
    ),
    "mse_loss": lambda r: (
        lambda a, b: (F.mse_loss(a, b), F.mse_loss(a, b, reduction="none"), nn.MSELoss()(b, a)),
        [randn(r, 4, 5), randn(r, 4, 5)],
    ),
    "bce_with_logits": lambda r: (
        lambda x, t, w, pw: (
            F.binary_cross_entropy_with_logits(x, t),
            F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction="sum"),
            nn.BCEWithLogitsLoss(pos_weight=pw)(x, t),
        ),
        [
            4 * randn(r, 6, 3),
            r.random((6, 3)).astype(np.float32),
            const(positive(r, 3)),
            const(positive(r, 3)),
        ],
    ),
    "kl_div": lambda r: (
        lambda x, t, lt: (
            F.kl_div(x, t, reduction="batchmean"),
            F.kl_div(x, lt, reduction="sum", log_target=True),
            F.kl_div(x, t, reduction="none"),
        ),
        [randn(r, 4, 5), probabilities(r, 4, 5), randn(r, 4, 5)],
    ),
}

# the kernels of other families on the GPU: compared here only with a real one
GPU_ONLY_CASES = {
    "conv2d": lambda r: (
        lambda x, w, b: (F.conv2d(x, w, b, padding=1), F.conv2d(x, w, stride=2)),
        [randn(r, 2, 3, 9, 7), randn(r, 4, 3, 3, 3), randn(r, 4)],
    ),
    "pooling": lambda r: (
        lambda x: (
            F.max_pool2d(x, 2),
            F.avg_pool2d(x, 3, stride=2, padding=1),
            F.adaptive_avg_pool2d(x, (2, 3)),
        ),
        [randn(r, 2, 3, 9, 8)],
    ),
    "attention": lambda r: (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        [randn(r, 2, 3, 9, 8), randn(r, 2, 3, 9, 8), randn(r, 2, 3, 9, 8)],
    ),
    "lstm": lambda r: (
        lambda x: nn.LSTM(5, 4, num_layers=2, bidirectional=True).to(x.device)(x)[0],
        [randn(r, 6, 2, 5)],
    ),
}


@pytest.mark.parametrize("name", list(CASES) + list(GPU_ONLY_CASES))
def test_gpu_matches_cpu(gpu, name):
    if name in GPU_ONLY_CASES and is_stand_in(gpu):
        pytest.skip("the stand-in does not fake the conv, pooling, attention and LSTM kernels")
    make = CASES.get(name) or GPU_ONLY_CASES[name]
    fn, inputs = make(np.random.default_rng(zlib.crc32(name.encode())))
    ember.manual_seed(0)  # modules made inside fn initialise alike on both devices
    cpu_out, cpu_grads = run_on("cpu", fn, inputs, seed=1)
    ember.manual_seed(0)
    gpu_out, gpu_grads = run_on("cuda", fn, inputs, seed=1)
    for got, want in zip(gpu_out, cpu_out, strict=True):
        assert_close(got, want)
    for got, want in zip(gpu_grads, cpu_grads, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            assert_close(got, want)


def test_one_hot_and_argmax_stay_on_the_gpu(gpu):
    y = ember.tensor([2, 0, 1], device="cuda")
    hot = F.one_hot(y, 4)
    assert hot.is_cuda and hot.dtype == np.int64
    np.testing.assert_array_equal(host(hot), np.eye(4, dtype=np.int64)[[2, 0, 1]])
    assert host(hot.argmax(dim=1)).tolist() == [2, 0, 1]


def test_clip_grad_norm_on_the_gpu(gpu):
    rng = np.random.default_rng(0)
    results = {}
    for device in ("cpu", "cuda"):
        params = [ember.tensor(randn(rng, 3, 4), device=device, requires_grad=True)]
        params.append(ember.tensor(randn(rng, 5), device=device, requires_grad=True))
        for p in params:
            p.grad = ember.tensor(10 * randn(np.random.default_rng(p.numel()), *p.shape))
            p.grad = p.grad.to(device)
        norm = nn.utils.clip_grad_norm_(params, 1.0)
        inf_norm = nn.utils.clip_grad_norm_(params, 1.0, norm_type=math.inf)
        nn.utils.clip_grad_value_(params, 0.05)
        assert all(p.grad.is_cuda == (device == "cuda") for p in params)
        results[device] = [float(norm), float(inf_norm)] + [host(p.grad) for p in params]
    cpu, gpu_ = results["cpu"], results["cuda"]
    assert gpu_[:2] == pytest.approx(cpu[:2], rel=1e-5)
    for got, want in zip(gpu_[2:], cpu[2:], strict=True):
        assert_close(got, want)


# ---- optimizers ----------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9)),
    "sgd_dampening_wd": ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "adam": ("Adam", dict(lr=0.01)),
    "adam_wd_betas": ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adam_amsgrad": ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    "adamw": ("AdamW", dict(lr=0.01)),
    "adamw_amsgrad": ("AdamW", dict(lr=0.03, weight_decay=0.2, betas=(0.5, 0.9), amsgrad=True)),
}
FUSED = {"SGD": "sgd_step", "Adam": "adam_step", "AdamW": "adam_step"}
# around the kernels' 4-wide vectors, 256-thread sweeps and 16384-element chunks
SIZES = [(1,), (3,), (4,), (5,), (7, 9), (255,), (1024,), (1027,), (16384,), (16389,), (130, 257)]


def fake_grad(p, step, i):
    return (np.sin(3 * p + step + i) + 0.1 * p).astype(p.dtype)


def trajectory(device, name, kwargs, arrays, steps, make_param=None):
    """Parameters (host copies) and state after `steps` steps from `arrays` on `device`."""
    make_param = make_param or (lambda a: ember.tensor(a, device=device, requires_grad=True))
    params = [make_param(a) for a in arrays]
    opt = getattr(optim, name)(params, **kwargs)
    for step in range(steps):
        for i, p in enumerate(params):
            p.grad = ember.tensor(fake_grad(host(p), step, i), device=device)
        opt.step()
    state = {
        i: {k: host(v) for k, v in opt.state[p].items() if hasattr(v, "shape")}
        for i, p in enumerate(params)
    }
    return [host(p) for p in params], state, opt


def spy_on_fused(monkeypatch, gpu, name):
    """The parameter counts of each call to ember._cuda's fused step `name`."""
    module = ember._runtime._cuda
    real = getattr(module, name)
    calls = []

    def counted(*args, **kwargs):
        calls.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("config", OPTIMIZERS)
def test_fused_gpu_step_matches_the_cpu_bitwise(gpu, monkeypatch, config):
    name, kwargs = OPTIMIZERS[config]
    rng = np.random.default_rng(7)
    arrays = [randn(rng, *s) for s in SIZES]
    calls = spy_on_fused(monkeypatch, gpu, FUSED[name])
    gpu_params, gpu_state, opt = trajectory("cuda", name, kwargs, arrays, steps=1)
    assert calls == [len(arrays)]  # one call for the group: multi-tensor launches
    for state in opt.state.values():  # made on the parameters' GPU
        assert all(isinstance(v, gpu.ndarray) for k, v in state.items() if k != "step")
    cpu_params, cpu_state, _ = trajectory("cpu", name, kwargs, arrays, steps=1)
    # the same float32 operations in the same order, none contracted into an FMA
    for got, want in zip(gpu_params, cpu_params, strict=True):
        np.testing.assert_array_equal(got, want)
    for i, state in cpu_state.items():
        for key, want in state.items():
            np.testing.assert_array_equal(gpu_state[i][key], want, err_msg=key)
    # and over several steps (uneven step counts split the Adam call by bias correction)
    gpu_params, _, _ = trajectory("cuda", name, kwargs, arrays, steps=5)
    cpu_params, _, _ = trajectory("cpu", name, kwargs, arrays, steps=5)
    for got, want in zip(gpu_params, cpu_params, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_fused_gpu_step_over_many_and_large_tensors(gpu, monkeypatch):
    if is_stand_in(gpu):
        pytest.skip("the launch batching is the CUDA kernel's; the stand-in runs the CPU's")
    rng = np.random.default_rng(8)
    # more tensors than one launch describes (36), and one of more chunks than a launch (320)
    arrays = [randn(rng, n) for n in rng.integers(1, 5000, 80)] + [randn(rng, 320 * 16384 + 77)]
    for name, kwargs in (("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(amsgrad=True))):
        got, _, _ = trajectory("cuda", name, kwargs, arrays, steps=2)
        want, _, _ = trajectory("cpu", name, kwargs, arrays, steps=2)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_fused_gpu_step_on_unaligned_views(gpu):
    """Parameters that are views at an odd offset: not 16-byte aligned, so the kernels take
    their one-element path."""
    rng = np.random.default_rng(9)
    arrays = [randn(rng, n) for n in (5, 1030, 17000)]

    def unaligned(a):
        base = gpu.zeros(a.size + 1, dtype=np.float32)
        base[1:] = gpu.asarray(a)
        return nn.Parameter(base[1:])

    for name, kwargs in (("SGD", dict(lr=0.1, momentum=0.5)), ("AdamW", dict(lr=0.01))):
        got, _, _ = trajectory("cuda", name, kwargs, arrays, 3, make_param=unaligned)
        want, _, _ = trajectory("cpu", name, kwargs, arrays, 3)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_float64_gpu_parameters_take_the_array_path(gpu, monkeypatch):
    calls = spy_on_fused(monkeypatch, gpu, "adam_step")
    arrays = [np.random.default_rng(1).standard_normal((4, 3))]
    got, _, _ = trajectory("cuda", "Adam", dict(lr=0.01, amsgrad=True), arrays, steps=3)
    want, _, _ = trajectory("cpu", "Adam", dict(lr=0.01, amsgrad=True), arrays, steps=3)
    assert calls == []
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


def test_optimizer_state_follows_the_model(gpu):
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(ember.randn(4, 3)).sum().backward()
    opt.step()  # state made on the CPU
    model.cuda()
    model(ember.randn(4, 3, device="cuda")).sum().backward()
    opt.step()  # the state moves to the GPU with its parameter
    for state in opt.state.values():
        assert isinstance(state["exp_avg"], gpu.ndarray) and state["step"] == 2
    model.weight.grad = ember.zeros(2, 3)
    with pytest.raises(RuntimeError, match="a parameter and its gradient to be on the same"):
        opt.step()
    model.weight.grad = None
    # a state dict saved from the GPU loads onto CPU parameters, and back
    saved = opt.state_dict()
    cpu_model = nn.Linear(3, 2)
    cpu_opt = optim.Adam(cpu_model.parameters(), lr=0.1)
    cpu_opt.load_state_dict(saved)
    assert all(isinstance(s["exp_avg"], np.ndarray) for s in cpu_opt.state.values())
    opt.load_state_dict(cpu_opt.state_dict())
    assert all(isinstance(s["exp_avg"], gpu.ndarray) for s in opt.state.values())


# ---- checkpoints -------------------------------------------------------------------------


def test_checkpoint_of_a_gpu_model_round_trips(gpu, tmp_path):
    ember.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).cuda()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = ember.randn(6, 4, device="cuda")
    F.cross_entropy(model(x), ember.tensor([0, 1, 2, 0, 1, 2], device="cuda")).backward()
    opt.step()
    ember.save(model.state_dict(), tmp_path / "model.safetensors")  # moved to the host to write
    loaded = ember.load(tmp_path / "model.safetensors")
    assert all(isinstance(v, np.ndarray) for v in loaded.values())
    model.eval()
    want = host(model(x))
    for device in ("cuda", "cpu"):  # loaded onto each model's device
        other = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        other.to(device).load_state_dict(loaded)
        assert all(t.is_cuda == (device == "cuda") for t in other.state_dict().values())
        assert_close(other.eval()(x.to(device)), want)
    # state dicts of GPU tensors load directly too
    other = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    other.load_state_dict(model.state_dict())
    assert_close(other.eval()(x.cpu()), want)


# ---- the digits MLP --------------------------------------------------------------------------


def run_mlp_example(capsys, *args) -> float:
    path = Path(__file__).resolve().parent.parent / "examples" / "mlp_digits.py"
    spec = importlib.util.spec_from_file_location("mlp_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(list(args))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: "), last
    return float(last.split()[2])


def test_mlp_example_trains_on_the_gpu_to_the_cpu_accuracy(gpu, capsys):
    pytest.importorskip("sklearn")
    epochs = "3" if is_stand_in(gpu) else "30"
    cpu = run_mlp_example(capsys, "--epochs", epochs)
    on_gpu = run_mlp_example(capsys, "--epochs", epochs, "--device", "cuda")
    assert on_gpu >= 0.9
    assert abs(on_gpu - cpu) <= 0.015, (on_gpu, cpu)
    if is_stand_in(gpu):
        calls = ember._runtime._cuda.calls
        assert "gemm" in calls and "sgd_step" in calls
