"""Gradient clipping: `clip_grad_norm_` and `clip_grad_value_`."""

from __future__ import annotations

import math

import numpy as np

from ember.autograd import array_module
from ember.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad.data for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> Tensor:
    """Scales the gradients in place so that their joint norm (of all of them together, as if
    concatenated) is at most max_norm; returns the norm before clipping."""
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.float32(0.0))  # float32, as PyTorch's default dtype
    xp = array_module(grads[0])
    norm_type = float(norm_type)
    if norm_type == math.inf:
        norms = [abs(g).max() for g in grads if g.size]
        total = xp.max(xp.stack(norms)) if norms else xp.asarray(0.0, grads[0].dtype)
    else:
        norms = [(abs(g) ** norm_type).sum() ** (1.0 / norm_type) for g in grads]
        total = (xp.stack(norms) ** norm_type).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    scale = min(float(max_norm) / (float(total) + 1e-6), 1.0)
    for g in grads:
        g *= scale
    return Tensor(total)


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamps every gradient element into [-clip_value, clip_value], in place."""
    for g in _grads(parameters):
        array_module(g).clip(g, -clip_value, clip_value, out=g)
