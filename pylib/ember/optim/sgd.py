"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from ember.optim.optimizer import Optimizer, fused_kernel

__all__ = ["SGD"]


class SGD(Optimizer):
    """PyTorch's update, for each parameter p with gradient g:

    g = g + weight_decay * p
    buf = g (first step) or momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (nesterov) or buf         (when momentum != 0)
    p = p - lr * g
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        if weight_decay != 0:
            grad = grad + weight_decay * param
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * grad

    def _fused_step(self, group, params, grads, xp):
        momentum = group["momentum"]
        buffers, init = [], []
        for p in params:
            state = self.state.setdefault(p, {})
            if momentum != 0:
                buf = state.get("momentum_buffer")
                init.append(buf is None)
                if buf is None:
                    buf = state["momentum_buffer"] = xp.empty_like(p.data)
                buffers.append(buf)
        fused_kernel(xp, "sgd_step", params[0].data)(
            [p.data for p in params],
            grads,
            buffers,
            init,
            lr=group["lr"],
            momentum=momentum,
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
        )
