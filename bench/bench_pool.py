"""Pooling: ember against PyTorch CPU and the NumPy reference in the same run, same threads.

Max and average pooling 2 x 2, stride 2 (the layers of issue 3), forward alone and forward +
backward. PyTorch runs its kernels directly (max_pool2d_with_indices and its backward,
avg_pool2d and its backward: no autograd bookkeeping), so the comparison is kernel to kernel;
ember's max_pool2d always returns the indices too. "flops" counts window elements visited
(one compare or add each); "bytes" the arrays read and written once.

python -m pytest bench/bench_pool.py --benchmark-json=bench/pool.json
python bench/report.py bench/pool.json torch
"""

import functools

import numpy as np
import pytest

import ember
from ember import ops, ref

SHAPES = [(64, 32, 26, 26), (32, 64, 56, 56)]
KERNEL = 2
IMPLS = ["ember", "torch", "numpy"]


def inputs(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    n, c, h, w = shape
    dy = rng.standard_normal((n, c, h // KERNEL, w // KERNEL), dtype=np.float32)
    return x, dy


@functools.cache
def expected(op, shape):
    """The reference's (output, dx) for validating every implementation before timing it."""
    x, dy = inputs(shape)
    if op == "max":
        y, idx = ref.max_pool2d(x, KERNEL)
        return y, ref.max_pool2d_backward(dy, idx, x.shape)
    return ref.avg_pool2d(x, KERNEL), ref.avg_pool2d_backward(dy, x.shape, KERNEL)


def runners(impl, op, x, dy):
    """(forward, forward + backward) callables returning (y, dx or None) as NumPy arrays."""
    if impl == "ember":
        if op == "max":

            def fwd():
                return ops.max_pool2d(x, KERNEL)[0], None

            def fwd_bwd():
                y, idx = ops.max_pool2d(x, KERNEL)
                return y, ops.max_pool2d_backward(dy, idx, x.shape)

        else:

            def fwd():
                return ops.avg_pool2d(x, KERNEL), None

            def fwd_bwd():
                return ops.avg_pool2d(x, KERNEL), ops.avg_pool2d_backward(dy, x.shape, KERNEL)

        return fwd, fwd_bwd
    if impl == "numpy":
        if op == "max":

            def fwd():
                return ref.max_pool2d(x, KERNEL)[0], None

            def fwd_bwd():
                y, idx = ref.max_pool2d(x, KERNEL)
                return y, ref.max_pool2d_backward(dy, idx, x.shape)

        else:

            def fwd():
                return ref.avg_pool2d(x, KERNEL), None

            def fwd_bwd():
                return ref.avg_pool2d(x, KERNEL), ref.avg_pool2d_backward(dy, x.shape, KERNEL)

        return fwd, fwd_bwd

    torch = pytest.importorskip("torch")
    torch.set_num_threads(ember.get_num_threads())
    aten = torch.ops.aten
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
    k, s, p, d = [KERNEL, KERNEL], [KERNEL, KERNEL], [0, 0], [1, 1]
    if op == "max":

        def fwd():
            return aten.max_pool2d_with_indices(tx, k, s, p, d, False)[0].numpy(), None

        def fwd_bwd():
            y, idx = aten.max_pool2d_with_indices(tx, k, s, p, d, False)
            dx = aten.max_pool2d_with_indices_backward(tdy, tx, k, s, p, d, False, idx)
            return y.numpy(), dx.numpy()

    else:

        def fwd():
            return aten.avg_pool2d(tx, k, s, p, False, True, None).numpy(), None

        def fwd_bwd():
            y = aten.avg_pool2d(tx, k, s, p, False, True, None)
            dx = aten.avg_pool2d_backward(tdy, tx, k, s, p, False, True, None)
            return y.numpy(), dx.numpy()

    return fwd, fwd_bwd


def rel_err(out, want):
    want = np.asarray(want, np.float64)
    return float(np.linalg.norm(out - want) / np.linalg.norm(want))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("pass_", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("op", ["max", "avg"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def bench_pool2d(benchmark, shape, op, pass_, impl):
    x, dy = inputs(shape)
    fwd, fwd_bwd = runners(impl, op, x, dy)
    run = fwd if pass_ == "fwd" else fwd_bwd
    y, dx = run()
    want_y, want_dx = expected(op, shape)
    assert rel_err(y, want_y) < 1e-6, "refusing to time a wrong kernel"
    if dx is not None:
        assert rel_err(dx, want_dx) < 1e-6, "refusing to time a wrong kernel"

    outputs = y.size
    visits = outputs * KERNEL * KERNEL * (1 if pass_ == "fwd" else 2)
    index_bytes = 8 * outputs if op == "max" else 0  # int64 indices, written and read back
    moved = 4 * (x.size + outputs) + index_bytes
    if pass_ == "fwd+bwd":
        moved += 4 * (dy.size + x.size) + index_bytes
    benchmark.group = f"{op}_pool2d 2x2/2 {pass_} " + "x".join(map(str, shape))
    benchmark.extra_info.update(
        flops=float(visits), bytes=float(moved), impl=impl, threads=ember.get_num_threads()
    )
    rounds = 3 if impl == "numpy" else 50
    benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)
