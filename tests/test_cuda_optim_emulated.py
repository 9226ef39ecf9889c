"""The fused CUDA SGD and Adam steps' own source (cuda/optim/optim.cu), run on the CPU emulator
of cuda/emu: every test here runs without a GPU. Their every operation is an explicitly rounded
intrinsic in the CPU kernels' order, so the results must equal ember._C's fused steps bit for
bit: over more tensors than one launch describes, tensors of several chunks, vector and scalar
tails, and every option."""

import numpy as np
import pytest

import cuda_emu as ce
from ember import _C

pytestmark = pytest.mark.skipif(ce.compiler() is None, reason="no C++ compiler for the emulator")

# more tensors than one launch takes (36), one of several 16384-element chunks, odd lengths
SIZES = [3 * 16384 + 5, 1, 7, 1024, 33] + [4 + k % 9 for k in range(35)]


@pytest.fixture(scope="module")
def dll():
    return ce.build_kernels()


def tensors(rng, count, sizes=SIZES):
    return [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(count)]


def copies(lists):
    return [[x.copy() for x in xs] for xs in lists]


@pytest.mark.parametrize(
    "momentum,dampening,weight_decay,nesterov,maximize,init",
    [
        (0.0, 0.0, 0.0, False, False, False),
        (0.9, 0.1, 1e-2, False, False, True),
        (0.9, 0.0, 1e-2, True, True, False),
    ],
)
def test_sgd_matches_cpu_bit_for_bit(dll, rng, momentum, dampening, weight_decay, nesterov,
                                     maximize, init):  # fmt: skip
    params, grads, bufs = tensors(rng, 3)
    init_buffers = [init] * len(params)
    kw = dict(lr=0.05, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
              nesterov=nesterov, maximize=maximize)  # fmt: skip
    want_p, want_b = copies([params, bufs])
    _C.sgd_step(want_p, grads, want_b, init_buffers, **kw)
    ce.sgd_step(dll, params, grads, bufs, init_buffers, **kw)
    for got, want in zip(params + bufs, want_p + want_b, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "decoupled,amsgrad,maximize,weight_decay",
    [(False, False, False, 0.0), (True, True, False, 1e-2), (False, True, True, 1e-2)],
)
def test_adam_matches_cpu_bit_for_bit(dll, rng, decoupled, amsgrad, maximize, weight_decay):
    params, grads, m, v = tensors(rng, 4)
    v = [np.abs(x) for x in v]
    vmax = [x * 1.5 for x in v] if amsgrad else []
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay,
              step_size=1e-3 / (1 - 0.9**3), bias_correction2_sqrt=(1 - 0.999**3) ** 0.5,
              decoupled=decoupled, maximize=maximize)  # fmt: skip
    want = copies([params, m, v, vmax])
    _C.adam_step(want[0], grads, want[1], want[2], want[3], **kw)
    ce.adam_step(dll, params, grads, m, v, vmax, **kw)
    for got, w in zip(params + m + v + vmax, sum(want, []), strict=True):
        np.testing.assert_array_equal(got, w)


def test_schedules(dll, rng):
    """Blocks in reverse and random order give the same bits."""
    params, grads = tensors(rng, 2, SIZES[:5])
    kw = dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)
    first = [p.copy() for p in params]
    ce.sgd_step(dll, first, grads, [], [False] * 5, **kw)
    for order in ("reverse", "random"):
        got = [p.copy() for p in params]
        ce.sgd_step(dll, got, grads, [], [False] * 5, order=order, schedule_seed=1, **kw)
        for a, b in zip(got, first, strict=True):
            np.testing.assert_array_equal(a, b)
