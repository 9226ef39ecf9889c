"""Scaled-dot-product attention reference: the L x S score matrix materialised, in float64."""

from __future__ import annotations

import math

import numpy as np

from ember import _random

# splitmix64's constants: the dropout bits of ember's attention kernel (csrc/attention/attention.h)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def dropout_seed() -> int:
    """The seed of one attention call's dropout, drawn from ember's generator (ember.manual_seed
    makes the dropout reproducible)."""
    return int(_random.generator().integers(0, 2**63 - 1, dtype=np.int64))


def dropout_keep(seed: int, batch: int, L: int, S: int, p: float) -> np.ndarray:
    """The (batch, L, S) keep mask of dropout with probability p: weight (b, i, j) is kept when
    the top 24 bits of splitmix64(seed + (counter + 1) * golden), counter = (b * L + i) * S + j,
    are >= ceil(p * 2^24)."""
    counter = np.arange(batch * L * S, dtype=np.uint64).reshape(batch, L, S)
    z = np.uint64(seed) + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(40)) >= np.uint64(math.ceil(p * 2**24))


def _scores(q, k, attn_mask, is_causal, scale):
    """scale * q @ k^T with the mask applied (-inf where a key does not take part), float64."""
    L, E = q.shape[-2:]
    S = k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    s = scale * (q @ np.swapaxes(k, -1, -2))
    if is_causal:
        s = np.where(np.tril(np.ones((L, S), dtype=bool)), s, -np.inf)
    elif attn_mask is not None:
        if attn_mask.dtype == np.bool_:
            s = np.where(attn_mask, s, -np.inf)
        else:
            s = s + np.asarray(attn_mask, dtype=np.float64)
    return s, scale


def _logsumexp(s):
    """Natural-log log-sum-exp over the last axis; -inf for a row that is all -inf."""
    m = np.max(s, axis=-1, keepdims=True) if s.shape[-1] else np.full(s.shape[:-1] + (1,), -np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (m + np.log(np.sum(np.exp(s - m), axis=-1, keepdims=True)))[..., 0]


def sum_to_shape(x, shape):
    """x summed over the leading axes it was broadcast along, down to `shape` (the gradient of a
    broadcast input)."""
    if x.shape == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    x = x.sum(axis=tuple(range(lead))) if lead else x
    axes = tuple(d for d, n in enumerate(shape[:-2]) if n == 1 and x.shape[d] != 1)
    return x.sum(axis=axes, keepdims=True) if axes else x


def scaled_dot_product_attention(
    q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, *, return_lse=False
):
    """softmax(scale * q @ k^T + mask) @ v for q (..., L, E), k (..., S, E), v (..., S, Ev).

    A boolean mask keeps the keys where it is True, a float mask is added to the scores; causal
    lets query i see keys j <= i. A row with every key masked out gives NaN (lse -inf). With
    dropout_p > 0 the weights are dropped as in ember's kernel (seeded from NumPy's global RNG)
    and the kept ones scaled by 1 / (1 - dropout_p). Returns out, or (out, lse) with lse the
    log-sum-exp of each score row, shape (..., L)."""
    dtype = np.result_type(q, k, v)
    q64, k64, v64 = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    s, _ = _scores(q64, k64, attn_mask, is_causal, scale)
    lse = _logsumexp(s)
    with np.errstate(invalid="ignore"):
        w = np.exp(s - lse[..., None])  # NaN on a fully masked row (-inf - -inf)
    if dropout_p > 0:
        batch = s.shape[:-2]
        keep = dropout_keep(dropout_seed(), math.prod(batch), *s.shape[-2:], dropout_p)
        w = w * keep.reshape(s.shape) / (1.0 - dropout_p)
    if s.shape[-1] == 0:  # softmax over no keys: zeros, as PyTorch
        w = np.zeros(s.shape)
    out = (w @ v64).astype(dtype)
    return (out, lse.astype(dtype)) if return_lse else out


def scaled_dot_product_attention_backward(
    dout, q, k, v, out, lse, attn_mask=None, is_causal=False, scale=None
):
    """(dq, dk, dv) of scaled_dot_product_attention (without dropout), from its out and lse:
    P = exp(S - lse), dv = P^T dout, dS = P * (dout v^T - rowsum(dout * out)),
    dq = scale dS k, dk = scale dS^T q; each summed back to its input's shape."""
    dtype = np.result_type(q, k, v)
    q64, k64, v64, g, o, lse64 = (
        np.asarray(x, dtype=np.float64) for x in (q, k, v, dout, out, lse)
    )
    s, scale = _scores(q64, k64, attn_mask, is_causal, scale)
    with np.errstate(invalid="ignore"):
        w = np.exp(s - lse64[..., None])
    dv = np.swapaxes(w, -1, -2) @ g
    delta = np.sum(g * o, axis=-1, keepdims=True)
    ds = w * (g @ np.swapaxes(v64, -1, -2) - delta)
    dq = scale * (ds @ k64)
    dk = scale * (np.swapaxes(ds, -1, -2) @ q64)
    return (
        sum_to_shape(dq, q.shape).astype(dtype),
        sum_to_shape(dk, k.shape).astype(dtype),
        sum_to_shape(dv, v.shape).astype(dtype),
    )
