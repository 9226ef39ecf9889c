"""ember: a small deep-learning engine with hand-written CPU (AVX2 / AVX-512) and CUDA kernels.

`ember.Tensor` with reverse-mode autograd, `ember.nn`, `ember.optim` and `ember.data` give it
a PyTorch-shaped API; `ember.ops` runs the kernels on NumPy (and, with the CUDA module, CuPy)
arrays; `ember.ref` holds the plain NumPy references they are tested against.
"""

from ember import _C, data, nn, ops, optim, ref
from ember._random import manual_seed
from ember._runtime import (
    cpu_info,
    cuda_available,
    cuda_info,
    get_float32_matmul_precision,
    get_num_threads,
    set_float32_matmul_precision,
    set_num_threads,
)
from ember.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ember.checkpoint import load, save
from ember.tensor import (
    Tensor,
    arange,
    cat,
    empty,
    empty_like,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    stack,
    tensor,
    where,
    zeros,
    zeros_like,
)

__version__ = _C.__version__

__all__ = [
    "Tensor",
    "__version__",
    "arange",
    "cat",
    "cpu_info",
    "cuda_available",
    "cuda_info",
    "data",
    "empty",
    "empty_like",
    "enable_grad",
    "from_dlpack",
    "from_numpy",
    "full",
    "full_like",
    "get_float32_matmul_precision",
    "get_num_threads",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "ops",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "ref",
    "save",
    "set_float32_matmul_precision",
    "set_grad_enabled",
    "set_num_threads",
    "stack",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]
