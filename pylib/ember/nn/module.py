"""`Module`, the base of every layer, and `Parameter`, the tensors a module trains.

A module keeps its parameters, buffers (state that is saved but not trained, such as
BatchNorm's running statistics) and child modules in three dicts, filled by plain attribute
assignment (`self.weight = Parameter(...)`, `self.fc = Linear(...)`). Every name-based
method walks them in assignment order, which is what makes `state_dict()` keys and order
match PyTorch's: `fc.weight`, `fc.bias`, `bn.running_mean`, ...
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ember import _device
from ember.tensor import Tensor, _to_args

__all__ = ["Module", "Parameter"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (requires_grad=True by default). It
    shares memory with the array or Tensor it is made from."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclasses set parameters and submodules as attributes
    in __init__ and define forward()."""

    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration ------------------------------------------------------------------

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call (call super().__init__())"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as parameter {name!r} "
                    "(ember.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} as child module {name!r}")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign a {type(value).__name__} as buffer {name!r}")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):  # only called when ordinary lookup fails
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name) -> bool:
        """Removes name from the registries (and the instance dict); True if it was there."""
        found = False
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                found = True
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)
        return found

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter {name!r} must be a Parameter or None")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """State that is not trained; saved in state_dict() unless persistent=False."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        self._forget(name)
        self._modules[name] = module

    # ---- traversal ---------------------------------------------------------------------

    def named_modules(self, prefix: str = "", memo=None):
        """(name, module) for self and every descendant, depth first, each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named_members(self, registry: str, prefix: str, recurse: bool):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, member in getattr(module, registry).items():
                if member is None or id(member) in seen:
                    continue
                seen.add(id(member))
                yield (f"{module_prefix}.{name}" if module_prefix else name), member

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, Parameter) pairs; a parameter shared by two modules comes once."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    def apply(self, fn) -> Module:
        """Calls fn on every child (recursively) and then on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and devices -------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Training mode (Dropout drops, BatchNorm uses batch statistics); returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def to(self, *args, device=None, dtype=None) -> Module:
        """Moves every parameter and buffer (and gradient) to a device ('cpu', 'cuda',
        'cuda:N') and/or casts the floating ones to a dtype, in place: the Parameter objects stay
        the same, so an optimizer made before keeps working (its state follows the parameters
        at its next step). Returns self. Asking for a GPU where CUDA cannot be used raises
        RuntimeError saying why, before anything moves."""
        device, dtype = _to_args(args, device, dtype)
        if device is not None and device != _device.CPU:
            _device.require_cuda(device)

        def convert(array):
            if dtype is not None and array.dtype.kind == "f":
                array = array.astype(dtype, copy=False)
            return array if device is None else _device.move(array, device)

        for module in self.modules():
            for registry in (module._parameters, module._buffers):
                for t in registry.values():
                    if t is not None:
                        t.data = convert(t.data)
                        if t.grad is not None:
                            t.grad.data = convert(t.grad.data)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """Moves the module to the current GPU, or to GPU `device` (an index or 'cuda:N')."""
        return self.to("cuda" if device is None else _device.parse(device))

    # ---- state dict --------------------------------------------------------------------

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict:
        """Parameters and persistent buffers by dotted name, in PyTorch's order (each module's
        own parameters, then its buffers, then its children). The values share memory with the
        module; they are detached unless keep_vars."""
        out = {}
        for module_prefix, module in self.named_modules(prefix.rstrip(".")):
            head = f"{module_prefix}." if module_prefix else ""
            for name, t in module._parameters.items():
                if t is not None:
                    out[head + name] = t if keep_vars else t.detach()
            for name, t in module._buffers.items():
                if t is not None and name not in module._non_persistent:
                    out[head + name] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copies arrays (or Tensors, or anything NumPy can convert) into the parameters and
        buffers of the same names, in place, casting to their dtype. A shape mismatch is an
        error; with strict, so is a missing or unexpected key. Returns (missing_keys,
        unexpected_keys)."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if isinstance(value, Tensor):
                array = value.data
            else:
                array = value if _device.is_cupy(value) else np.asarray(value)
            if tuple(array.shape) != target.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} "
                    f"from checkpoint, the shape in current model is {target.shape}."
                )
            elif array.dtype.kind not in "biuf" and array.dtype != target.dtype:
                # real numbers cast as PyTorch's copy_ does; anything else would fail half-way
                # through the copy (or drop an imaginary part)
                errors.append(
                    f"dtype mismatch for {key}: copying a param of dtype {array.dtype} from "
                    f"checkpoint, the dtype in current model is {target.dtype}."
                )
            values[key] = array
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(errors)
            )
        for key, array in values.items():  # onto each parameter's device, whatever the source
            target = own[key]
            target.data[...] = _device.move(array, _device.device_of(target.data))
        return IncompatibleKeys(missing, unexpected)

    # ---- printing ----------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its hyperparameters)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for child_name, child in self._modules.items():
            text = repr(child).replace("\n", "\n  ")
            lines.append(f"({child_name}): {text}")
        name = type(self).__name__
        if not lines:
            return f"{name}()"
        if len(lines) == 1 and not self._modules:
            return f"{name}({lines[0]})"
        return name + "(\n  " + "\n  ".join(lines) + "\n)"
