"""`Optimizer`: parameter groups, per-parameter state, zero_grad and state dicts; subclasses
write the update of one parameter (NumPy/CuPy expressions) and a fused step that updates a whole
float32 NumPy group with one call into ember._C."""

from __future__ import annotations

import copy

import numpy as np

from ember.autograd import array_module, enable_grad, no_grad
from ember.tensor import Tensor

__all__ = ["Optimizer"]


class Optimizer:
    """params: an iterable of Tensors, or of dicts (parameter groups) each with "params" and
    any hyperparameters that differ from the defaults. `state[p]` holds the per-parameter
    buffers (momentum, moments, step)."""

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}
        self.param_groups: list = []
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of "
                "Tensors or dicts, but got a Tensor"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Updates every parameter that has a gradient; with closure (which recomputes the loss
        and its gradients) returns its loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if params and _fusable(params):
                    grads = [np.ascontiguousarray(p.grad.data) for p in params]
                    self._fused_step(group, params, grads)
                    continue
                for p in params:
                    self._update(p.data, p.grad.data, self.state.setdefault(p, {}), group)
        return loss

    def _fused_step(self, group: dict, params: list, grads: list) -> None:
        """One step for the parameters of `group` that have gradients, all float32 C-contiguous
        NumPy arrays (grads: C-contiguous float32 copies or the gradients themselves)."""
        raise NotImplementedError

    def _update(self, param, grad, state: dict, group: dict) -> None:
        """One step for one parameter: param (an array, updated in place), grad, its state."""
        raise NotImplementedError

    # ---- state dict --------------------------------------------------------------------

    def state_dict(self) -> dict:
        """{"state": {index: {name: value}}, "param_groups": [{hyperparameters, "params":
        [index, ...]}]}, parameters numbered in group order as PyTorch does. Arrays are
        copies."""
        index = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: copy.deepcopy(s)
            for group in self.param_groups
            for p in group["params"]
            if (s := self.state.get(p))
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores hyperparameters and per-parameter state saved by state_dict() from an
        optimizer over parameters of the same shapes, in the same group layout."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        by_index = {}
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group"
                )
            by_index.update(zip(saved["params"], group["params"], strict=True))
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, saved in state_dict["state"].items():
            p = by_index[int(i)]
            xp = array_module(p.data)
            self.state[p] = {
                k: xp.array(v, dtype=p.dtype) if hasattr(v, "shape") else v
                for k, v in copy.deepcopy(saved).items()
            }


def _fusable(params: list) -> bool:
    """True if the fused kernels can update these parameters in place: float32, C-contiguous,
    writeable NumPy arrays with float32 NumPy gradients of the same shape, each listed once (the
    kernels update a group's tensors concurrently)."""
    if len({id(p) for p in params}) != len(params):
        return False
    for p in params:
        data, grad = p.data, p.grad.data
        if not (
            type(data) is np.ndarray
            and data.dtype == np.float32
            and data.flags.c_contiguous
            and data.flags.writeable
            and type(grad) is np.ndarray
            and grad.dtype == np.float32
            and grad.shape == data.shape
        ):
            return False
    return True
