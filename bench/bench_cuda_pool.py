"""Pooling on the GPU: ember's CUDA kernels against PyTorch's (aten's max_pool2d_with_indices,
avg_pool2d and their backward passes, no autograd bookkeeping) and against a device copy of the
same number of bytes (cupy.copyto: the bandwidth a memory-bound kernel can hope for), timed with
CUDA events after warm-up. Skips without a GPU.

"flops" counts window elements visited (one compare or add each) for every row of a group, so
the throughput ratios are time ratios; "bytes" counts the arrays read and written once. Against
the copy, the ratio is the fraction of the device's copy bandwidth the pooling pass reaches.

python -m pytest bench/bench_cuda_pool.py --benchmark-json=bench/cuda_pool.json
python bench/report.py bench/cuda_pool.json torch
python bench/report.py bench/cuda_pool.json copy
"""

import numpy as np
import pytest

from ember import ops

# (shape, kernel, stride, padding): 2x2/2 on a VGG-like layer, ResNet's 3x3/2 stem pooling
CASES = [((64, 128, 112, 112), 2, 2, 0), ((64, 64, 112, 112), 3, 2, 1)]
IMPLS = ["ember", "torch", "copy"]


def case_id(case):
    shape, k, s, p = case
    return "x".join(map(str, shape)) + f"-{k}x{k}/{s}/{p}"


def runners(impl, op, x, dy, k, s, p):
    """(forward, forward + backward) callables returning CuPy arrays (y, dx or None)."""
    import cupy

    if impl == "ember":
        if op == "max":

            def fwd():
                return ops.max_pool2d(x, k, s, p)[0], None

            def fwd_bwd():
                y, idx = ops.max_pool2d(x, k, s, p)
                return y, ops.max_pool2d_backward(dy, idx, x.shape)

        else:

            def fwd():
                return ops.avg_pool2d(x, k, s, p), None

            def fwd_bwd():
                return ops.avg_pool2d(x, k, s, p), ops.avg_pool2d_backward(dy, x.shape, k, s, p)

        return fwd, fwd_bwd

    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    aten = torch.ops.aten
    tx, tdy = torch.as_tensor(x, device="cuda"), torch.as_tensor(dy, device="cuda")
    kk, ss, pp, dd = [k, k], [s, s], [p, p], [1, 1]
    stream = torch.cuda.ExternalStream(cupy.cuda.get_current_stream().ptr)

    def on_stream(fn):
        def run():
            with torch.cuda.stream(stream):
                y, dx = fn()
            return cupy.asarray(y), None if dx is None else cupy.asarray(dx)

        return run

    if op == "max":

        def fwd():
            return aten.max_pool2d_with_indices(tx, kk, ss, pp, dd, False)[0], None

        def fwd_bwd():
            y, idx = aten.max_pool2d_with_indices(tx, kk, ss, pp, dd, False)
            return y, aten.max_pool2d_with_indices_backward(tdy, tx, kk, ss, pp, dd, False, idx)

    else:

        def fwd():
            return aten.avg_pool2d(tx, kk, ss, pp, False, True, None), None

        def fwd_bwd():
            y = aten.avg_pool2d(tx, kk, ss, pp, False, True, None)
            return y, aten.avg_pool2d_backward(tdy, tx, kk, ss, pp, False, True, None)

    return on_stream(fwd), on_stream(fwd_bwd)


def rel_err(out, want) -> float:
    want = np.asarray(want, np.float64)
    return float(np.linalg.norm(out - want) / np.linalg.norm(want))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def bench_cuda_pool2d(benchmark, cuda_benchmark, case, op, pass_, impl):
    import cupy

    shape, k, s, p = case
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal(shape, dtype=np.float32)
    x = cupy.asarray(x_host)
    if op == "max":
        y_host, idx_host = ops.max_pool2d(x_host, k, s, p)  # the CPU kernels: the oracle
    else:
        y_host = ops.avg_pool2d(x_host, k, s, p)
    dy_host = rng.standard_normal(y_host.shape, dtype=np.float32)
    dy = cupy.asarray(dy_host)

    outputs = y_host.size
    visits = outputs * k * k * (1 if pass_ == "fwd" else 2)
    index_bytes = 8 * outputs if op == "max" else 0  # int64 indices, written and read back
    moved = 4 * (x.size + outputs) + index_bytes
    if pass_ == "fwd+bwd":
        moved += 4 * (dy.size + x.size) + index_bytes

    if impl == "copy":
        src = cupy.empty(moved // 8, dtype=cupy.float32)  # read half the bytes, write half
        dst = cupy.empty_like(src)

        def run():
            cupy.copyto(dst, src)

    else:
        fwd, fwd_bwd = runners(impl, op, x, dy, k, s, p)
        run = fwd if pass_ == "fwd" else fwd_bwd
        y, dx = run()
        # maxima are exact; sums may be added in another order
        assert rel_err(y.get(), y_host) <= (0 if op == "max" else 1e-6), "refusing to time"
        if dx is not None:
            if op == "max":
                want = ops.max_pool2d_backward(dy_host, idx_host, shape)
            else:
                want = ops.avg_pool2d_backward(dy_host, shape, k, s, p)
            assert rel_err(dx.get(), want) < 1e-6, "refusing to time a wrong kernel"

    benchmark.group = f"cuda {op}_pool2d {case_id(case)} {pass_}"
    cuda_benchmark(run, samples=50, flops=float(visits), bytes=float(moved), impl=impl)
