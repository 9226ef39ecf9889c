"""ember: a small deep-learning engine with hand-written CPU (AVX2 / AVX-512) and CUDA kernels.

`ember.ops` runs the kernels on NumPy (and, with the CUDA module, CuPy) arrays; `ember.ref` holds
the plain NumPy references they are tested against.
"""

from ember import _C, data, ops, ref
from ember._runtime import (
    cpu_info,
    cuda_available,
    cuda_info,
    get_float32_matmul_precision,
    get_num_threads,
    set_float32_matmul_precision,
    set_num_threads,
)

__version__ = _C.__version__

__all__ = [
    "__version__",
    "cpu_info",
    "cuda_available",
    "cuda_info",
    "data",
    "get_float32_matmul_precision",
    "get_num_threads",
    "ops",
    "ref",
    "set_float32_matmul_precision",
    "set_num_threads",
]
