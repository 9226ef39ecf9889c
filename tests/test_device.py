"""Devices without a GPU: device strings are validated, every reason 'cuda' cannot be used (no
CUDA module, no GPU, no CuPy, no such GPU) is a RuntimeError saying which, nothing moves when a
move fails, and the CUDA optimizer bindings check their arguments before touching a device."""

import sys

import numpy as np
import pytest

import ember
import fake_cupy
from ember import _device, nn


@pytest.mark.parametrize(
    ("given", "parsed"),
    [("cpu", "cpu"), ("cpu:0", "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda:0"),
     ("cuda:12", "cuda:12"), (0, "cuda:0"), (3, "cuda:3"), (np.int64(1), "cuda:1")],
)  # fmt: skip
def test_device_strings(given, parsed):
    assert _device.parse(given) == parsed


@pytest.mark.parametrize(
    "bad", ["gpu", "tpu", "cuda:", "cuda:-1", "cuda:x", "cuda:0:1", "cpu:1", "CUDA", " cuda", "",
            "cuda:١", -1, "mps"],
)  # fmt: skip
def test_bad_device_strings_are_rejected(bad):
    with pytest.raises(ValueError, match="device"):
        _device.parse(bad)
    t = ember.ones(2)
    with pytest.raises(ValueError, match="device"):
        t.to(bad) if not isinstance(bad, str) or bad else t.to(device=bad)
    with pytest.raises(ValueError, match="device"):
        ember.zeros(2, device=bad)
    with pytest.raises(ValueError, match="device"):
        nn.Linear(2, 2).to(device=bad)


def test_to_tells_devices_from_dtypes():
    t = ember.ones(2)
    assert t.to("float64").dtype == np.float64 and t.to("cpu") is t
    assert t.to("cpu", "float64").dtype == np.float64
    assert t.to(dtype="float16").dtype == np.float16
    assert t.to(ember.zeros(1, dtype=np.int64)).dtype == np.int64


def no_gpu_reasons(monkeypatch):
    """(name, set-up, expected message) for each reason 'cuda' cannot be used."""

    class NoDevice(fake_cupy.FakeCudaModule):
        def device_count(self):
            return 0

    def without_module():
        monkeypatch.setattr(ember._runtime, "_cuda", None)

    def without_gpu():
        monkeypatch.setattr(ember._runtime, "_cuda", NoDevice())

    def without_cupy():
        monkeypatch.setattr(ember._runtime, "_cuda", fake_cupy.FakeCudaModule())
        monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError

    return [
        (without_module, "CUDA is not available because ember was built without its CUDA module"),
        (without_gpu, "CUDA is not available because no GPU is visible"),
        (without_cupy, "CuPy is not installed"),
    ]


@pytest.mark.parametrize("reason", range(3))
def test_cuda_without_module_gpu_or_cupy_is_a_clear_error(monkeypatch, reason):
    set_up, message = no_gpu_reasons(monkeypatch)[reason]
    set_up()
    t = ember.tensor([1.0, 2.0], requires_grad=True)
    for attempt in (
        lambda: t.to("cuda"),
        lambda: t.cuda(),
        lambda: t.to("cuda:0"),
        lambda: ember.zeros(2, device="cuda"),
        lambda: ember.randn(2, device="cuda"),
        lambda: ember.arange(3, device="cuda"),
        lambda: ember.tensor([1.0], device="cuda"),
    ):
        with pytest.raises(RuntimeError, match=message):
            attempt()
    model = nn.Linear(3, 2)
    weight = model.weight
    with pytest.raises(RuntimeError, match=message):
        model.to("cuda")
    with pytest.raises(RuntimeError, match=message):
        model.cuda()
    assert model.weight is weight and isinstance(weight.data, np.ndarray)  # nothing moved


def test_a_gpu_that_does_not_exist(monkeypatch):
    fake_cupy.install(monkeypatch)  # one GPU
    with pytest.raises(RuntimeError, match="'cuda:1' does not exist: 1 GPU"):
        ember.ones(2).to("cuda:1")
    with pytest.raises(RuntimeError, match="does not exist"):
        nn.Linear(2, 2).cuda(1)
    assert ember.ones(2).to("cuda:0").is_cuda


def test_the_cuda_module_is_described_when_absent(monkeypatch):
    monkeypatch.setattr(ember._runtime, "_cuda", None)
    assert not ember.cuda_available()
    assert ember.cuda_info() == {"built": False, "devices": []}


# ---- the CUDA optimizer bindings check their arguments first -------------------------------


@pytest.fixture
def cuda_module():
    return pytest.importorskip("ember._cuda")


def arrays(*sizes, dtype=np.float32):
    """Stand-in CuPy arrays: the bindings read their pointer, shape, strides and device."""
    return [fake_cupy.ndarray(np.zeros(n, dtype)) for n in sizes]


SGD = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, stream=0)
ADAM = dict(
    lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, step_size=0.1,
    bias_correction2_sqrt=0.5, decoupled=False, stream=0,
)  # fmt: skip


def test_cuda_sgd_binding_rejects_bad_arguments(cuda_module):
    p, g, b = arrays(5, 3), arrays(5, 3), arrays(5, 3)
    with pytest.raises(ValueError, match="grads must have one array per parameter"):
        cuda_module.sgd_step(p, g[:1], b, [True, True], **SGD)
    with pytest.raises(ValueError, match="init_buffers"):
        cuda_module.sgd_step(p, g, b, [True], **SGD)
    with pytest.raises(ValueError, match=r"grads\[1\] has 4 elements, its parameter 3"):
        cuda_module.sgd_step(p, [g[0], *arrays(4)], b, [True, True], **SGD)
    with pytest.raises(TypeError, match=r"params\[0\] has 8-byte elements"):
        cuda_module.sgd_step(arrays(5, dtype=np.float64), g[:1], b[:1], [True], **SGD)
    with pytest.raises(ValueError, match=r"momentum_buffers\[0\] must be C-contiguous"):
        strided = fake_cupy.ndarray(np.zeros(10, np.float32)[::2])
        cuda_module.sgd_step(p[:1], g[:1], [strided], [True], **SGD)
    with pytest.raises(ValueError, match="overlaps"):
        cuda_module.sgd_step(p, g, [p[0], b[1]], [True, True], **SGD)
    with pytest.raises(ValueError, match="overlaps"):
        cuda_module.sgd_step([p[0], p[0]], [g[0], *arrays(5)], [], [], **{**SGD, "momentum": 0})
    with pytest.raises(TypeError, match="CuPy array"):
        cuda_module.sgd_step([np.zeros(3, np.float32)], g[1:], [], [], **{**SGD, "momentum": 0})
    cuda_module.sgd_step([], [], [], [], **SGD)  # nothing to do


def test_cuda_adam_binding_rejects_bad_arguments(cuda_module):
    p, g, m, v = (arrays(7, 2) for _ in range(4))
    with pytest.raises(ValueError, match="exp_avg_sqs must have one array per parameter"):
        cuda_module.adam_step(p, g, m, v[:1], [], **ADAM)
    with pytest.raises(ValueError, match="max_exp_avg_sqs must have one array"):
        cuda_module.adam_step(p, g, m, v, arrays(7), **ADAM)
    with pytest.raises(ValueError, match=r"exp_avgs\[1\] has 3 elements, its parameter 2"):
        cuda_module.adam_step(p, g, [m[0], *arrays(3)], v, [], **ADAM)
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[0\] overlaps exp_avgs\[0\]|exp_avgs\[0\] "):
        cuda_module.adam_step(p, g, m, [m[0], v[1]], [], **ADAM)
    whole = np.zeros(9, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        halves = [fake_cupy.ndarray(whole[:7]), fake_cupy.ndarray(whole[6:8])]
        cuda_module.adam_step(halves, g, m, v, [], **ADAM)
    cuda_module.adam_step([], [], [], [], [], **ADAM)
