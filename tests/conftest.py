import numpy as np
import pytest

import ember

ISAS = ("generic", "avx2", "avx512")


def pytest_collection_modifyitems(config, items):
    if ember.cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible to ember._cuda")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request):
    # fresh inputs per test, reproducible from the test's name
    return np.random.default_rng(abs(hash(request.node.nodeid)) % 2**32)


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
