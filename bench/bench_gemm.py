"""SGEMM: ember against numpy.matmul (OpenBLAS) in the same run, same threads.

python -m pytest bench/bench_gemm.py --benchmark-json=bench/gemm.json
python bench/report.py bench/gemm.json
"""

import numpy as np
import pytest

import ember

# (M, K, N): the MLP layer 64x784x128, square sizes, and a wide-K projection
SHAPES = [
    (64, 784, 128),
    (256, 256, 256),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (4096, 4096, 4096),
    (128, 4096, 1024),
]


def probe_error(a, b, c, rng) -> float:
    """||C t - A (B t)|| / ||A (B t)|| for a random vector t: validates big products cheaply."""
    t = rng.standard_normal(c.shape[1])
    want = a.astype(np.float64) @ (b.astype(np.float64) @ t)
    return float(np.linalg.norm(c @ t - want) / np.linalg.norm(want))


@pytest.mark.parametrize("impl", ["ember", "numpy"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def bench_sgemm(benchmark, rng, shape, impl):
    m, k, n = shape
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    out = np.empty((m, n), np.float32)
    run = (
        (lambda: ember.ops.gemm(a, b, out=out))
        if impl == "ember"
        else (lambda: np.matmul(a, b, out=out))
    )
    run()
    assert probe_error(a, b, out, rng) < 1e-5, "refusing to time a wrong kernel"
    benchmark.group = "sgemm " + "x".join(map(str, shape))
    benchmark.extra_info.update(flops=2.0 * m * n * k, impl=impl, threads=ember.get_num_threads())
    benchmark.pedantic(run, rounds=max(5, min(200, int(2e10 / (2.0 * m * n * k)))), warmup_rounds=1)
