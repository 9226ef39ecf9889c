"""Process-wide settings and what the machine offers: CPU kernels, threads, the CUDA module."""

from __future__ import annotations

from ember import _C

try:  # built only where a CUDA toolkit was found at install time
    from ember import _cuda
except ImportError:
    _cuda = None

_PRECISIONS = ("highest", "high")
_matmul_precision = "highest"


def cpu_info() -> dict:
    """CPU vendor, brand and SIMD features, the supported and chosen ISA paths, the kernels in
    use and the thread count. The path is chosen once at import; set EMBER_CPU_ISA=generic|avx2|
    avx512 before importing ember to force one."""
    return _C.cpu_info()


def get_num_threads() -> int:
    """The number of OpenMP threads ember's CPU kernels use."""
    return _C.num_threads()


def set_num_threads(n: int) -> None:
    """Set the number of threads ember's CPU kernels use (default: OMP_NUM_THREADS or the core
    count). PyTorch bundles the same OpenMP runtime: in one process, torch.set_num_threads does
    not change ember's setting, but both draw on one thread pool."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _C.set_num_threads(n)


def set_float32_matmul_precision(precision: str) -> None:
    """'highest' (default): exact fp32 everywhere. 'high': GPU GEMM-like kernels may use TF32
    tensor cores. CPU kernels are always exact fp32."""
    global _matmul_precision
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    _matmul_precision = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision


def cuda_info() -> dict:
    """Whether the CUDA module was built, its runtime and driver versions, the visible devices."""
    if _cuda is None:
        return {"built": False, "devices": []}
    count = _cuda.device_count()
    return {
        "built": True,
        "runtime_version": _cuda.runtime_version(),
        "driver_version": _cuda.driver_version(),
        "devices": [_cuda.device_info(i) for i in range(count)],
    }


def cuda_available() -> bool:
    """True when ember's CUDA module is built and sees a GPU."""
    return _cuda is not None and _cuda.device_count() > 0
