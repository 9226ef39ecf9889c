"""Adam and AdamW (Adam with decoupled weight decay)."""

from __future__ import annotations

import math

from ember.autograd import array_module
from ember.optim.optimizer import Optimizer, fused_kernel

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """PyTorch's update, for each parameter p with gradient g at step t = 1, 2, ...:

    g = g + weight_decay * p            (Adam)   |   p = p * (1 - lr * weight_decay) (AdamW)
    m = m + (1 - beta1) * (g - m)
    v = beta2 * v + (1 - beta2) * g * g          (amsgrad: v_max = max(v_max, v), used below)
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        xp = array_module(param)
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                param *= 1 - lr * weight_decay
            else:
                grad = grad + weight_decay * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        step_size = lr / (1 - beta1**step)
        denom = xp.sqrt(exp_avg_sq) / math.sqrt(1 - beta2**step) + eps
        param -= step_size * (exp_avg / denom)

    def _fused_step(self, group, params, grads, xp):
        lr, (beta1, beta2), amsgrad = group["lr"], group["betas"], group["amsgrad"]
        # parameters whose steps differ (one had no gradient for a while) need their own bias
        # corrections: one call per distinct step, usually one
        by_step: dict = {}
        for p, grad in zip(params, grads, strict=True):
            state = self.state.setdefault(p, {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = xp.zeros_like(p.data)
                state["exp_avg_sq"] = xp.zeros_like(p.data)
                if amsgrad:
                    state["max_exp_avg_sq"] = xp.zeros_like(p.data)
            state["step"] += 1
            by_step.setdefault(state["step"], []).append((p.data, grad, state))
        adam_step = fused_kernel(xp, "adam_step", params[0].data)
        for step, items in by_step.items():
            states = [s for _, _, s in items]
            adam_step(
                [data for data, _, _ in items],
                [grad for _, grad, _ in items],
                [s["exp_avg"] for s in states],
                [s["exp_avg_sq"] for s in states],
                [s["max_exp_avg_sq"] for s in states] if amsgrad else [],
                lr=lr,
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                step_size=lr / (1 - beta1**step),
                bias_correction2_sqrt=math.sqrt(1 - beta2**step),
                decoupled=self.decoupled_weight_decay,
            )


class AdamW(Adam):
    """Adam whose weight decay shrinks the parameters directly (p *= 1 - lr * weight_decay)
    instead of adding to the gradient; default weight_decay 1e-2."""

    decoupled_weight_decay = True

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
