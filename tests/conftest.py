import os
import zlib

import numpy as np
import pytest
from hypothesis import settings

import ember

# EMBER_CUPY_POOL=0 (for compute-sanitizer, README): every CuPy array its own device allocation,
# so memcheck sees each array's end instead of the end of a pooled block.
if os.environ.get("EMBER_CUPY_POOL") == "0" and ember.cuda_available():
    import cupy

    cupy.cuda.set_allocator(None)
    cupy.cuda.set_pinned_memory_allocator(None)

# Hypothesis draws the same examples on every run (seeded from each test), so CI is stable.
settings.register_profile("ember", derandomize=True, deadline=None)
settings.load_profile("ember")

ISAS = ("generic", "avx2", "avx512")


def pytest_collection_modifyitems(config, items):
    if ember.cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible to ember._cuda")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cp():
    """CuPy, for the GPU tests (marked cuda: skipped before this runs where no GPU is visible)."""
    return pytest.importorskip("cupy")


@pytest.fixture
def rng(request):
    # fresh inputs per test, the same on every run: seeded from the test's name (crc32, not
    # hash(), which Python randomises per process), so a failure reproduces
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs the test once per ISA path (switching the kernel table); skips those the CPU lacks."""
    name = request.param
    if name not in ember.cpu_info()["supported_isas"]:
        pytest.skip(f"this CPU has no {name} (supported: {ember.cpu_info()['supported_isas']})")
    before = ember.cpu_info()["isa"]
    ember._C._select_isa(name)
    yield name
    ember._C._select_isa(before)


def rel_err(out, ref) -> float:
    """||out - ref|| / ||ref|| in float64 (0 when both are empty or zero)."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert np.isfinite(out).all(), "output has NaN/Inf: an element was not written"
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(out - ref) / denom) if denom else float(np.linalg.norm(out))


def randn(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def check_grad(fn, *inputs, eps=1e-6, rtol=1e-5, atol=1e-7, seed=0):
    """Checks the gradients ember's autograd gives for fn against central finite differences,
    in float64. `inputs` are arrays: float64 ones become tensors that require grad, others
    (indices, masks) constant tensors. The output is contracted with a random weight so every
    output element's gradient is tested. Returns fn's output on the inputs."""
    inputs = [np.array(x) for x in inputs]

    def run(arrays, requires_grad):
        tensors = [
            ember.tensor(a, requires_grad=requires_grad and a.dtype == np.float64) for a in arrays
        ]
        return tensors, fn(*tensors)

    tensors, out = run(inputs, True)
    assert out.dtype == np.float64, f"fn should compute in float64, got {out.dtype}"
    weight = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(weight)
    for x, t in zip(inputs, tensors, strict=True):
        if x.dtype != np.float64:
            continue
        numeric = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            saved = x[i]
            x[i] = saved + eps
            up = float((run(inputs, False)[1].numpy() * weight).sum())
            x[i] = saved - eps
            down = float((run(inputs, False)[1].numpy() * weight).sum())
            x[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        assert t.grad is not None, "an input that requires grad got no gradient"
        assert t.grad.shape == x.shape and t.grad.dtype == np.float64
        np.testing.assert_allclose(t.grad.numpy(), numeric, rtol=rtol, atol=atol)
    return out
