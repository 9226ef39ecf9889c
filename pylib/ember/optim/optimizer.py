"""`Optimizer`: parameter groups, per-parameter state, zero_grad and state dicts; subclasses
write the update of one parameter (NumPy/CuPy expressions) and a fused step that updates a whole
float32 group with one call into ember._C (NumPy arrays) or ember._cuda (CuPy arrays on one GPU:
multi-tensor kernel launches). The state of a parameter lives on the parameter's device: it is
made there at the first step, and moves with the parameter when the model is moved later."""

from __future__ import annotations

import copy
import functools
import sys

import numpy as np

from ember import _C, _device, _runtime
from ember.autograd import enable_grad, no_grad
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
                if "cupy" in sys.modules:  # a GPU may be in use: check where things are
                    for p in params:
                        _device.check_same((p.data, p.grad.data), "a parameter and its gradient")
                        _state_follows(self.state.get(p), p.data)
                xp = _fusable(params) if params else None
                if xp:
                    grads = [xp.ascontiguousarray(p.grad.data) for p in params]
                    self._fused_step(group, params, grads, xp)
                    continue
                for p in params:
                    self._update(p.data, p.grad.data, self.state.setdefault(p, {}), group)
        return loss

    def _fused_step(self, group: dict, params: list, grads: list, xp) -> None:
        """One step for the parameters of `group` that have gradients, all float32 C-contiguous
        arrays of the array module xp (NumPy, or CuPy on one GPU); grads are C-contiguous
        float32 copies or the gradients themselves. The kernels: fused_kernel(xp, ...)."""
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
            device = _device.device_of(p.data)
            self.state[p] = {
                k: _device.move(v, device).astype(p.dtype) if hasattr(v, "shape") else v
                for k, v in copy.deepcopy(saved).items()
            }


def _state_follows(state, data) -> None:
    """Moves the arrays of a parameter's state (in place in the dict) to the parameter's device
    when the parameter was moved after the state was made."""
    if not state:
        return
    for key, value in state.items():
        if hasattr(value, "shape") and type(value) is not type(data):
            state[key] = _device.move(value, _device.device_of(data))


def fused_kernel(xp, name: str, data):
    """The fused step `name` for parameters like `data` (the array of one of them): ember._C's
    for NumPy arrays; ember._cuda's for CuPy arrays, enqueued on CuPy's current stream of their
    GPU."""
    if xp is np:
        return getattr(_C, name)
    with xp.cuda.Device(data.device.id):
        stream = xp.cuda.get_current_stream().ptr
    return functools.partial(getattr(_runtime._cuda, name), stream=stream)


def _fusable(params: list):
    """The array module (numpy or cupy) whose fused kernels, ember._C's or ember._cuda's, can
    update these parameters in place; None for the per-parameter array path. Fusable: float32,
    C-contiguous, writeable arrays of one library (CuPy: on one GPU, with ember's CUDA module
    built) with float32 gradients of the same library and shape, each parameter listed once (the
    kernels update a group's tensors concurrently)."""
    if len({id(p) for p in params}) != len(params):
        return None
    first = params[0].data
    if type(first) is np.ndarray:
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
                return None
        return np
    if not _device.is_cupy(first) or not hasattr(_runtime._cuda, "adam_step"):
        return None
    kind, gpu = type(first), first.device.id
    for p in params:
        data, grad = p.data, p.grad.data
        if not (
            type(data) is kind
            and data.dtype == np.float32
            and data.flags.c_contiguous
            and data.device.id == gpu
            and type(grad) is kind
            and grad.dtype == np.float32
            and grad.shape == data.shape
            and grad.device.id == gpu
        ):
            return None
    return _device.require_cuda()
