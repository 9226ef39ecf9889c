"""Reverse-mode automatic differentiation.

Every differentiable operation is a `Function`. Calling `SomeFunction.apply(*args)` runs its
`forward` on plain arrays and, when gradients are wanted, records the Function as the `grad_fn`
of the resulting Tensor(s); each Function keeps its Tensor inputs, so the recorded Functions
form a graph (the tape) from the outputs back to the leaves. `Tensor.backward()` walks that
graph once in reverse topological order, calling each Function's `backward` with the gradient
of its outputs and passing the input gradients it returns on to the Functions that produced
those inputs, or accumulating them into the `.grad` of leaf tensors.
"""

from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from ember import _device

__all__ = ["Function", "enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]

# ---- grad mode ---------------------------------------------------------------------------

_state = threading.local()  # grad mode is per thread, as in PyTorch


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


class no_grad:
    """`with ember.no_grad():` (or `@ember.no_grad()` on a function): operations inside record
    nothing and their results do not require grad."""

    mode = False

    def __enter__(self):
        self._prev = is_grad_enabled()
        _state.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _state.enabled = self._prev

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _state.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = prev

        return wrapper


class enable_grad(no_grad):
    """Turns recording back on inside a no_grad block (context manager or decorator)."""

    mode = True


class set_grad_enabled(no_grad):
    """Sets the grad mode now (`ember.set_grad_enabled(False)`); used in a `with` statement it
    restores the previous mode on exit."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = is_grad_enabled()
        _state.enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        _state.enabled = self._prev  # used as a decorator: the mode applies inside calls only
        return super().__call__(fn)


# ---- Function ----------------------------------------------------------------------------


class Function:
    """One recorded operation. A subclass defines

    - `forward(self, *args, **kwargs)`: computes on plain arrays (Tensor arguments arrive
      unwrapped, everything else as given) and returns an array or a tuple of arrays. It keeps
      the arrays backward needs with `self.save_for_backward(...)` and anything small (shapes,
      axes) as ordinary attributes.
    - `backward(self, *grads)`: takes one gradient array per output and returns one gradient
      per positional argument of forward (a tuple, or a single array for a single argument),
      None where there is none. Returning a gradient in the broadcast shape of the output is
      fine: it is summed down to the input's shape.

    `self.needs_input_grad[i]` says whether argument i wants a gradient, so backward can skip
    work. Backward must not modify the gradients it receives.
    """

    inputs: tuple = ()
    needs_input_grad: tuple = ()
    outputs_meta: tuple = ()  # (shape, dtype, array module) of each output, for zero gradients
    _saved: tuple | None = None
    _released = False

    @classmethod
    def apply(cls, *args, **kwargs):
        from ember.tensor import Tensor

        fn = cls()
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        arrays = _on_one_device(args, arrays, kwargs)
        record = is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad for a in args)
        if record:
            fn.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with np.errstate(all="ignore"):  # IEEE results (inf, nan) without warnings, as PyTorch
            out = fn.forward(*arrays, **kwargs)
        outs = out if isinstance(out, tuple) else (out,)
        if not record:
            results = tuple(Tensor(o) for o in outs)
        else:
            fn.inputs = tuple(a if isinstance(a, Tensor) else None for a in args)
            fn.outputs_meta = tuple((o.shape, o.dtype, array_module(o)) for o in outs)
            results = tuple(
                Tensor(o, requires_grad=True, _grad_fn=fn, _output_index=i)
                for i, o in enumerate(outs)
            )
        return results if isinstance(out, tuple) else results[0]

    def save_for_backward(self, *arrays) -> None:
        self._saved = arrays

    @property
    def saved(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({type(self).__name__} "
                "freed its saved arrays after the first backward). Specify retain_graph=True "
                "when calling .backward() the first time if you need to backward twice."
            )
        return self._saved

    def release(self) -> None:
        """Drops the saved arrays (after a backward without retain_graph)."""
        self._saved = None
        self._released = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError


def _is_array(x) -> bool:
    return isinstance(x, np.ndarray) or _device.is_cupy(x)


def _on_one_device(args, arrays, kwargs) -> list:
    """The arrays of an operation's arguments, checked to be on one device (RuntimeError naming
    two devices otherwise). Arrays among the keyword arguments (masks, indices, statistics,
    index tuples) count too. As PyTorch, a 0-d tensor on the CPU that does not require grad
    joins GPU operands as a scalar would: it is copied to their GPU."""
    if "cupy" not in sys.modules:  # no CuPy array can exist: everything is on the host
        return arrays
    found = [a for a in arrays if _is_array(a)]
    for value in kwargs.values():
        if isinstance(value, tuple):
            found.extend(x for x in value if _is_array(x))
        elif _is_array(value):
            found.append(value)
    if all(type(x) is np.ndarray for x in found):  # the common case: everything on the host
        return arrays
    gpu = next((_device.device_of(x) for x in found if _device.is_cupy(x)), None)
    if gpu is not None:
        from ember.tensor import Tensor

        for i, (arg, a) in enumerate(zip(args, arrays, strict=True)):
            if isinstance(arg, Tensor) and not arg.requires_grad and a.ndim == 0:
                if not _device.is_cupy(a):
                    found = [x for x in found if x is not a]
                    arrays[i] = _device.move(a, gpu)
    _device.check_same(found)
    return arrays


# ---- the backward pass -------------------------------------------------------------------


def sum_to_shape(grad, shape: tuple):
    """Sums a gradient of a broadcast result down to `shape`, the shape of the input that was
    broadcast: over the leading dimensions broadcasting added and over dimensions of size 1."""
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    grad = grad.sum(axis=axes, keepdims=True) if axes else grad
    if lead:
        grad = grad.reshape(grad.shape[lead:])
    if grad.shape != tuple(shape):
        raise RuntimeError(f"gradient of shape {grad.shape} does not reduce to shape {shape}")
    return grad


def _topological_order(root: Function) -> list:
    """The Functions reachable from root, each before every Function that produced one of its
    inputs (an iterative depth-first post-order, reversed: graphs can be deep)."""
    order, visited = [], {root}
    stack = [(root, iter(root.inputs))]
    while stack:
        fn, inputs = stack[-1]
        for x in inputs:
            child = x.grad_fn if x is not None else None
            if child is not None and child not in visited:
                visited.add(child)
                stack.append((child, iter(child.inputs)))
                break
        else:
            stack.pop()
            order.append(fn)
    order.reverse()
    return order


def run_backward(root, grad, retain_graph: bool = False) -> None:
    """Back-propagates `grad` (an array shaped as the Tensor root) through root's graph,
    accumulating into the .grad of every leaf that requires grad."""
    from ember.tensor import Tensor

    pending = {root.grad_fn: [None] * len(root.grad_fn.outputs_meta)}
    pending[root.grad_fn][root._output_index] = grad
    with np.errstate(all="ignore"):
        for fn in _topological_order(root.grad_fn):
            out_grads = pending.pop(fn, None)
            if out_grads is None:  # every path to it returned None: no gradient flows here
                continue
            grads = [
                g if g is not None else xp.zeros(shape, dtype=dtype)
                for g, (shape, dtype, xp) in zip(out_grads, fn.outputs_meta, strict=True)
            ]
            input_grads = fn.backward(*grads)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if not retain_graph:
                fn.release()
            for x, g in zip(fn.inputs, input_grads, strict=True):
                if g is None or x is None or not x.requires_grad:
                    continue
                g = sum_to_shape(g, x.shape)
                if g.dtype != x.dtype:
                    g = g.astype(x.dtype)
                if x.grad_fn is None:  # a leaf: accumulate into .grad (a copy: g may be shared)
                    if x.grad is None:
                        x.grad = Tensor(g.copy())
                    else:
                        x.grad.data += g
                else:
                    slots = pending.setdefault(x.grad_fn, [None] * len(x.grad_fn.outputs_meta))
                    i = x._output_index
                    slots[i] = g if slots[i] is None else slots[i] + g


def array_module(x):
    """numpy, or cupy for a CuPy array: the module whose functions operate on x."""
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np
