"""SGEMM on the GPU: ember's CUDA kernels against cuBLAS (through cupy.matmul) and PyTorch in the
same run, exact fp32 and TF32, timed with CUDA events after warm-up (the cuda_benchmark fixture).
Skips without a GPU. Shapes are (M, K, N) as in bench_gemm.py: C (M, N) = A (M, K) @ B (K, N),
all row-major.

ember's TF32 rows run with ember.set_float32_matmul_precision('high'); cuBLAS's TF32 rows set
CUBLAS_TF32_TENSOR_OP_MATH on CuPy's cuBLAS handle, torch's set
torch.backends.cuda.matmul.allow_tf32. Every implementation is validated before it is timed: fp32
rows to 1e-5, TF32 rows to 3e-3 and above 1e-6 (a "TF32" row that computed in fp32 is skipped,
not mislabelled).

python -m pytest bench/bench_cuda_gemm.py --benchmark-json=bench/cuda_gemm.json
python bench/report.py bench/cuda_gemm.json cublas
"""

import numpy as np
import pytest

import ember

SHAPES = [(1024, 1024, 1024), (4096, 4096, 4096), (8192, 8192, 8192), (64, 784, 128)]
IMPLS = ["ember", "cublas", "torch"]


def probe_error(a, b, c, rng) -> float:
    """||C t - A (B t)|| / ||A (B t)|| in float64 on host copies, for a random vector t."""
    t = rng.standard_normal(c.shape[1])
    want = a.get().astype(np.float64) @ (b.get().astype(np.float64) @ t)
    return float(np.linalg.norm(c.get() @ t - want) / np.linalg.norm(want))


@pytest.fixture
def precision_settings():
    """Restores every library's matmul precision after the benchmark."""
    yield
    ember.set_float32_matmul_precision("highest")
    import cupy
    from cupy_backends.cuda.libs import cublas

    cublas.setMathMode(cupy.cuda.device.get_cublas_handle(), cublas.CUBLAS_DEFAULT_MATH)
    try:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
    except ImportError:
        pass


def runner(impl, tf32, a, b, out):
    """A callable computing out = a @ b with `impl`, and a description for extra_info."""
    import cupy

    if impl == "ember":
        ember.set_float32_matmul_precision("high" if tf32 else "highest")
        kernel = ember._cuda.gemm_kernel(a, b, out, False, False, tf32)
        return (lambda: ember.ops.gemm(a, b, out=out)), kernel
    if impl == "cublas":
        from cupy_backends.cuda.libs import cublas

        tf32_math = getattr(cublas, "CUBLAS_TF32_TENSOR_OP_MATH", 3)  # cublas_api.h's value
        mode = tf32_math if tf32 else cublas.CUBLAS_DEFAULT_MATH
        cublas.setMathMode(cupy.cuda.device.get_cublas_handle(), mode)
        return (lambda: cupy.matmul(a, b, out=out)), "cupy.matmul"
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    torch.backends.cuda.matmul.allow_tf32 = tf32
    ta, tb, tout = (torch.as_tensor(x, device="cuda") for x in (a, b, out))
    stream = torch.cuda.ExternalStream(cupy.cuda.get_current_stream().ptr)

    def run():
        with torch.cuda.stream(stream):
            torch.matmul(ta, tb, out=tout)

    return run, f"torch {torch.__version__}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def bench_cuda_sgemm(benchmark, cuda_benchmark, precision_settings, rng, shape, precision, impl):
    import cupy

    m, k, n = shape
    a = cupy.asarray(rng.standard_normal((m, k), dtype=np.float32))
    b = cupy.asarray(rng.standard_normal((k, n), dtype=np.float32))
    out = cupy.full((m, n), cupy.nan, dtype=cupy.float32)
    tf32 = precision == "tf32"
    run, what = runner(impl, tf32, a, b, out)
    run()
    err = probe_error(a, b, out, rng)
    assert err < (3e-3 if tf32 else 1e-5), f"refusing to time a wrong kernel ({what}: {err:.1e})"
    if tf32 and err < 1e-6:
        pytest.skip(f"{what} did not use TF32 (error {err:.1e})")
    benchmark.group = f"cuda sgemm {precision} " + "x".join(map(str, shape))
    flops = 2.0 * m * n * k
    samples = int(min(200, max(10, 2e12 / flops)))
    cuda_benchmark(run, samples=samples, flops=flops, impl=impl, kernel=what, precision=precision)
