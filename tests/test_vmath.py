"""The vectorised exp / sigmoid / tanh (csrc/vmath, common/simd_math.h) against float64 libm."""

import numpy as np
import pytest

import ember

REFS = {
    "exp": np.exp,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}


def run(fn, x):
    out = np.full_like(x, np.nan)
    return ember._C.vmath(fn, x, out)


def max_rel_err(got, x, fn):
    want = REFS[fn](x.astype(np.float64))
    scale = np.maximum(np.abs(want), np.finfo(np.float32).tiny)
    err = np.abs(got.astype(np.float64) - want) / scale
    return float(err.max())


@pytest.mark.parametrize("fn", sorted(REFS))
def test_relative_error_over_the_normal_range(isa, rng, fn):
    lo, hi = (-87.0, 88.0) if fn == "exp" else (-30.0, 30.0)
    x = np.concatenate(
        [
            rng.uniform(lo, hi, 100_003),
            rng.uniform(-1.0, 1.0, 10_007),
            rng.standard_normal(1001) * 1e-4,
            np.linspace(-0.7, 0.7, 999),  # both sides of tanh's polynomial/exponential switch
        ]
    ).astype(np.float32)
    assert max_rel_err(run(fn, x), x, fn) < 1e-6


@pytest.mark.parametrize("fn", sorted(REFS))
@pytest.mark.parametrize("n", [1, 7, 8, 15, 16, 17, 33])
def test_tail_lengths(isa, rng, fn, n):
    x = rng.uniform(-5, 5, n).astype(np.float32)
    assert max_rel_err(run(fn, x), x, fn) < 1e-6


def test_special_values(isa):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 89.0, -104.0, -200.0, 1e-30], np.float32)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(run("exp", x), np.exp(x))
        np.testing.assert_array_equal(run("tanh", x), np.tanh(x))
        sig = run("sigmoid", x)
    assert np.isnan(sig[0]) and sig[1] == 1.0 and sig[2] == 0.0 and sig[3] == 0.5


def test_in_place_and_bad_input():
    x = np.linspace(-3, 3, 50, dtype=np.float32)
    want = np.tanh(x)
    ember._C.vmath("tanh", x, x)
    np.testing.assert_allclose(x, want, rtol=1e-6)
    with pytest.raises(ValueError, match="fn must be"):
        ember._C.vmath("log", x, x.copy())
    with pytest.raises(TypeError, match="float32"):
        ember._C.vmath("exp", x.astype(np.float64), x.copy())
    with pytest.raises(ValueError, match="C-contiguous"):
        ember._C.vmath("exp", x[::2], np.empty(25, np.float32))
