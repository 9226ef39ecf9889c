"""ember.Tensor: construction, dtypes, devices, conversions, operators, and the routing of float32
matrix products through ember's GEMM."""

import numpy as np
import pytest

import ember
from conftest import rel_err


def test_tensor_from_python_data_uses_pytorch_default_dtypes():
    assert ember.tensor([1.0, 2.0]).dtype == np.float32
    assert ember.tensor([[1, 2], [3, 4]]).dtype == np.int64
    assert ember.tensor([True, False]).dtype == np.bool_
    assert ember.tensor(2.5).shape == ()
    assert ember.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert ember.tensor(np.zeros(3, np.float64)).dtype == np.float64  # arrays keep their dtype


def test_tensor_copies_and_from_numpy_shares():
    a = np.arange(6, dtype=np.float32)
    copied, shared = ember.tensor(a), ember.from_numpy(a)
    a[0] = 100
    assert copied.numpy()[0] == 0 and shared.numpy()[0] == 100
    assert shared.numpy() is a
    with pytest.raises(TypeError):
        ember.from_numpy([1, 2])


@pytest.mark.parametrize("make", [ember.zeros, ember.ones, ember.randn, ember.rand])
def test_factories_take_sizes_either_way(make):
    assert make(2, 3).shape == (2, 3) == make((2, 3)).shape == make([2, 3]).shape
    assert make(2, 3).dtype == np.float32
    assert make(4, dtype=np.float64).dtype == np.float64
    assert make(2, requires_grad=True).requires_grad


def test_full_like_and_arange():
    assert ember.full((2, 2), 7.0).numpy().tolist() == [[7, 7], [7, 7]]
    t = ember.randn(3, 2, dtype=np.float64)
    assert ember.zeros_like(t).dtype == np.float64 and ember.ones_like(t).shape == (3, 2)
    assert ember.arange(5).dtype == np.int64
    assert ember.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert ember.arange(1, 2, 0.25).dtype == np.float32
    np.testing.assert_allclose(ember.arange(1, 2, 0.25).numpy(), [1, 1.25, 1.5, 1.75])


def test_manual_seed_makes_every_draw_reproducible():
    def draws():
        x = ember.randn(5).numpy().copy()
        u = ember.rand(3).numpy().copy()
        i = ember.randint(0, 10, (4,)).numpy().copy()
        w = ember.nn.Linear(3, 2).weight.numpy().copy()
        d = ember.nn.functional.dropout(ember.ones(20), 0.5).numpy().copy()
        loader = ember.data.DataLoader(
            ember.data.TensorDataset(np.arange(8)), batch_size=3, shuffle=True
        )
        order = np.concatenate([batch[0].numpy() for batch in loader])
        return x, u, i, w, d, order

    ember.manual_seed(123)
    first = draws()
    ember.manual_seed(123)
    second = draws()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError):
        ember.manual_seed(1.5)


def test_attributes():
    t = ember.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dim() == 3 and t.numel() == 24
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and len(t) == 2
    assert isinstance(t.dtype, np.dtype) and t.device == "cpu"
    assert t.grad is None and not t.requires_grad and t.is_leaf
    assert [s.shape for s in t] == [(3, 4), (3, 4)]


def test_item_float_and_bool():
    assert ember.tensor([[2.5]]).item() == 2.5
    assert float(ember.tensor(1.5)) == 1.5 and int(ember.tensor(3)) == 3
    assert bool(ember.tensor(1.0))
    with pytest.raises(ValueError):
        ember.tensor([1.0, 2.0]).item()


def test_to_cpu_dtype_and_cuda():
    t = ember.tensor([1.0, 2.0], requires_grad=True)
    assert t.to("cpu") is t and t.cpu() is t
    d = t.to(np.float64)
    assert d.dtype == np.float64 and d.requires_grad
    (d * 2).sum().backward()
    assert t.grad.dtype == np.float32
    assert t.double().dtype == np.float64 and t.float() is t
    assert ember.tensor([1.5]).long().dtype == np.int64
    with pytest.raises(ValueError, match="unknown device"):
        t.to(device="tpu")
    if not ember.cuda_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            t.to("cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            ember.zeros(2, device="cuda")


def test_numpy_interop():
    t = ember.tensor([1.0, 2.0])
    assert t.numpy() is t.data
    np.testing.assert_array_equal(np.asarray(t), [1, 2])
    # an array on the left defers to the Tensor's reflected operators
    r = np.array([10.0, 20.0], np.float32) + t
    assert isinstance(r, ember.Tensor) and r.tolist() == [11, 22]
    assert isinstance(np.float32(2) * t, ember.Tensor)


def test_dlpack_round_trips_with_numpy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = ember.from_dlpack(a)
    assert np.shares_memory(t.numpy(), a)
    back = np.from_dlpack(t)
    assert np.shares_memory(back, a)
    assert t.__dlpack_device__()[0] == 1
    assert ember.from_dlpack(t).numpy() is t.numpy()


def test_dlpack_round_trips_with_torch():
    torch = pytest.importorskip("torch")
    source = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    t = ember.from_dlpack(source)
    assert t.shape == (2, 3) and t.dtype == np.float32
    source[0, 0] = 42
    assert t.numpy()[0, 0] == 42  # shared memory
    back = torch.from_dlpack(ember.tensor([[1.0, 2.0]]))
    assert back.tolist() == [[1.0, 2.0]]


def test_operators_match_numpy(rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2, (4,)).astype(np.float32)
    x, y = ember.tensor(a), ember.tensor(b)
    cases = {
        "add": (x + y, a + b),
        "radd": (2 + x, 2 + a),
        "sub": (x - y, a - b),
        "rsub": (1 - x, 1 - a),
        "mul": (x * y, a * b),
        "div": (x / y, a / b),
        "rdiv": (1 / y, 1 / b),
        "pow": (y**2.5, b**2.5),
        "rpow": (2**x, 2**a),
        "neg": (-x, -a),
        "abs": (abs(x), abs(a)),
        "methods": (x.add(y).mul(2).sub(1).div(y), ((a + b) * 2 - 1) / b),
    }
    for name, (got, want) in cases.items():
        assert got.dtype == np.float32, name
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, err_msg=name)


def test_comparisons_give_boolean_tensors():
    x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (x > 1.5).tolist() == [False, True, True]
    assert (x <= 2).tolist() == [True, True, False]
    assert (x == ember.tensor([1.0, 0.0, 3.0])).tolist() == [True, False, True]
    assert (x != 2).tolist() == [True, False, True]
    assert (x >= 3).dtype == np.bool_ and not (x < 2).requires_grad
    assert len({x, x}) == 1  # hashable by identity


def test_repr():
    assert repr(ember.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(ember.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert "dtype=float64" in repr(ember.tensor([1.0], dtype=np.float64))
    assert "grad_fn=<MulBackward>" in repr(ember.tensor([1.0], requires_grad=True) * 2)
    assert repr(ember.nn.Parameter(ember.zeros(1))).startswith("Parameter containing:\n")


def test_setitem_outside_the_graph():
    t = ember.zeros(2, 3)
    t[0, 1:] = 5.0
    t[1] = ember.tensor([1.0, 2.0, 3.0])
    assert t.tolist() == [[0, 5, 5], [1, 2, 3]]
    p = ember.zeros(2, requires_grad=True)
    with ember.no_grad():
        p[0] = 1.0
    assert p.tolist() == [1, 0]


def test_view_transpose_flatten_shapes():
    t = ember.arange(24).reshape(2, 3, 4)
    assert t.view(6, 4).shape == (6, 4) and t.view(-1).shape == (24,)
    assert t.transpose(0, 2).shape == (4, 3, 2) and t.permute(1, 2, 0).shape == (3, 4, 2)
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12)
    assert t.flatten(0, 1).shape == (6, 4) and t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert t.unsqueeze(0).squeeze(0).shape == (2, 3, 4) and t[:, :1].squeeze(1).shape == (2, 4)
    assert t[:, :1].squeeze(0).shape == (2, 1, 4)  # a dim that is not 1 stays
    assert t[:1].expand(5, -1, -1).shape == (5, 3, 4)
    with pytest.raises(IndexError):
        t.sum(3)


# ---- float32 matrix products run on ember's GEMM -----------------------------------------


def test_float32_matmul_forward_and_backward_use_embers_gemm(rng, monkeypatch):
    calls = []
    real_gemm, real_matmul = ember.ops.gemm, ember.ops.matmul

    def gemm(a, b, **kwargs):
        calls.append(("gemm", kwargs.get("trans_a", False), kwargs.get("trans_b", False)))
        return real_gemm(a, b, **kwargs)

    def matmul(a, b):
        calls.append(("matmul",))
        return real_matmul(a, b)

    monkeypatch.setattr(ember.ops, "gemm", gemm)
    monkeypatch.setattr(ember.ops, "matmul", matmul)
    a = rng.standard_normal((5, 7)).astype(np.float32)
    b = rng.standard_normal((7, 3)).astype(np.float32)
    x, y = ember.tensor(a, requires_grad=True), ember.tensor(b, requires_grad=True)
    out = x @ y
    out.backward(np.ones((5, 3), np.float32))
    assert calls == [("matmul",), ("gemm", False, True), ("gemm", True, False)]
    assert rel_err(out.numpy(), a.astype(np.float64) @ b) < 1e-6
    assert rel_err(x.grad.numpy(), np.ones((5, 3)) @ b.T) < 1e-6
    assert rel_err(y.grad.numpy(), a.T @ np.ones((5, 3))) < 1e-6

    calls.clear()
    lin = ember.nn.Linear(7, 4)
    lin(ember.tensor(a[None].repeat(2, 0), requires_grad=True)).sum().backward()
    assert calls == [("gemm", False, True), ("gemm", False, False), ("gemm", True, False)]


def test_batched_matmul_against_torch(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    b = rng.standard_normal((3, 4, 6)).astype(np.float32)
    x, y = ember.tensor(a, requires_grad=True), ember.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    g = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    (x @ y).backward(g)
    (tx @ ty).backward(torch.tensor(g))
    assert rel_err(x.grad.numpy(), tx.grad.numpy()) < 1e-5
    assert rel_err(y.grad.numpy(), ty.grad.numpy()) < 1e-5


def test_matmul_of_an_empty_batch():
    x = ember.zeros(0, 4, requires_grad=True)
    w = ember.ones(4, 3, requires_grad=True)
    out = x @ w
    assert out.shape == (0, 3)
    out.sum().backward()
    assert x.grad.shape == (0, 4) and w.grad.numpy().tolist() == [[0.0] * 3] * 4
