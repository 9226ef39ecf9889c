"""The differentiable operations behind Tensor's methods: one `Function` per operation, forward
on plain arrays, backward returning the gradient of each input.

Gradients of broadcasting operations may be returned in the broadcast shape: the autograd
engine sums them down to each input's shape (`autograd.sum_to_shape`). `xp` is the array
module of the data (NumPy, or CuPy for tensors on the GPU): every Function is written once
for both. Matrix products run on ember's GEMM (`ember.ops`) for NumPy float32/float64 and CuPy
float32 arrays, in the forward and the backward pass; other dtypes use the array library's `@`.
"""

from __future__ import annotations

import math

import numpy as np

from ember import _device, ops
from ember.autograd import Function, array_module, sum_to_shape

# ---- helpers -----------------------------------------------------------------------------


def _on_kernels(*arrays) -> bool:
    """True when ember.ops can take these arrays: all NumPy float32 or all NumPy float64, or all
    CuPy float32 (ember's CUDA kernels are float32 only)."""
    first = arrays[0]
    if isinstance(first, np.ndarray):
        return first.dtype.char in "fd" and all(
            isinstance(a, np.ndarray) and a.dtype == first.dtype for a in arrays
        )
    return (
        _device.is_cupy(first)
        and first.dtype == np.float32
        and all(_device.is_cupy(a) and a.dtype == np.float32 for a in arrays)
    )


def gemm(a, b, *, trans_a=False, trans_b=False, c=None):
    """op(a) @ op(b) (+ c, broadcast), op(x) = x.T when trans_x: ember's GEMM where it applies."""
    if _on_kernels(a, b):
        return ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b, beta=0.0 if c is None else 1.0, c=c)
    out = (a.T if trans_a else a) @ (b.T if trans_b else b)
    return out if c is None else out + c


def matmul(a, b):
    return ops.matmul(a, b) if _on_kernels(a, b) else a @ b


def scatter_add(target, index, values) -> None:
    """target[index] += values, in place, with every repeated index adding its share (as
    numpy.add.at). On a GPU, cupyx.scatter_add: atomic adds, so where indices repeat the order
    of the sums, and with it the last bits, may change from run to run."""
    if _device.is_cupy(target):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


def normalize_dims(dim, ndim: int):
    """dim (None, an int or a sequence of ints, negative counting from the end) as a tuple of
    non-negative axes, or None for all."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    axes = []
    for d in dims:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(
                f"Dimension out of range (expected to be in range of "
                f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {d})"
            )
        axes.append(int(d) % max(ndim, 1))
    return tuple(axes)


def _unreduce(grad, shape, axes, keepdim):
    """The gradient of a reduction over `axes` (None: all) broadcast back to the input shape."""
    xp = array_module(grad)
    if axes is not None and not keepdim and len(shape) > 0:
        grad = grad.reshape(tuple(1 if i in axes else n for i, n in enumerate(shape)))
    return xp.broadcast_to(grad, shape)


# ---- elementwise: binary (either argument may be a plain number) -------------------------


class Add(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        return grad, -grad if self.needs_input_grad[1] else None


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved
        return (
            grad * b if self.needs_input_grad[0] else None,
            grad * a if self.needs_input_grad[1] else None,
        )


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved
        return (
            grad / b if self.needs_input_grad[0] else None,
            -grad * a / (b * b) if self.needs_input_grad[1] else None,
        )


class Pow(Function):
    def forward(self, a, b):
        out = a**b
        self.save_for_backward(a, b, out)
        return out

    def backward(self, grad):
        a, b, out = self.saved
        da = db = None
        if self.needs_input_grad[0]:
            da = grad * b * a ** (b - 1)
        if self.needs_input_grad[1]:
            xp = array_module(grad)
            # d(a**b)/db = a**b * log(a), taken as 0 where a == 0 and b >= 0 (as PyTorch); a plain
            # number a has its logarithm taken in the gradient's dtype
            log_a = xp.log(a) if hasattr(a, "dtype") else xp.log(xp.asarray(a, grad.dtype))
            db = xp.where((a == 0) & (b >= 0), 0, grad * out * log_a)
        return da, db


class Where(Function):
    """cond ? a : b, with a boolean array cond."""

    def forward(self, a, b, *, cond):
        self.cond = cond
        return array_module(cond).where(cond, a, b)

    def backward(self, grad):
        xp = array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        return (
            xp.where(self.cond, grad, zero) if self.needs_input_grad[0] else None,
            xp.where(self.cond, zero, grad) if self.needs_input_grad[1] else None,
        )


# ---- elementwise: unary ------------------------------------------------------------------


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class Exp(Function):
    def forward(self, x):
        out = array_module(x).exp(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return grad * out


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return array_module(x).log(x)

    def backward(self, grad):
        (x,) = self.saved
        return grad / x


class Sqrt(Function):
    def forward(self, x):
        out = array_module(x).sqrt(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return grad / (2 * out)


class Abs(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return abs(x)

    def backward(self, grad):
        (x,) = self.saved
        return grad * array_module(x).sign(x)


class Tanh(Function):
    def forward(self, x):
        out = array_module(x).tanh(x)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return grad * (1 - out * out)


class Sigmoid(Function):
    def forward(self, x):
        out = 1 / (1 + array_module(x).exp(-x))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return grad * out * (1 - out)


class ReLU(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return array_module(x).maximum(x, 0)

    def backward(self, grad):
        (x,) = self.saved
        return grad * (x > 0)


class Clamp(Function):
    """x limited to [min, max] (either may be None); the gradient passes where min <= x <= max."""

    def forward(self, x, *, low=None, high=None):
        self.save_for_backward(x)
        self.bounds = (low, high)
        return array_module(x).clip(x, low, high)

    def backward(self, grad):
        (x,) = self.saved
        low, high = self.bounds
        inside = True
        if low is not None:
            inside = inside & (x >= low)
        if high is not None:
            inside = inside & (x <= high)
        return grad * inside


class Cast(Function):
    """x converted to another dtype; the gradient goes back in x's dtype."""

    def forward(self, x, *, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.dtype)


# ---- reductions --------------------------------------------------------------------------


class Sum(Function):
    def forward(self, x, *, dim=None, keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, normalize_dims(dim, x.ndim), keepdim
        return x.sum(axis=self.axes, keepdims=keepdim)

    def backward(self, grad):
        return _unreduce(grad, self.shape, self.axes, self.keepdim)


class Mean(Function):
    def forward(self, x, *, dim=None, keepdim=False):
        self.shape, self.axes, self.keepdim = x.shape, normalize_dims(dim, x.ndim), keepdim
        out = x.mean(axis=self.axes, keepdims=keepdim)
        self.count = x.size // out.size if out.size else 1
        return out

    def backward(self, grad):
        return _unreduce(grad / self.count, self.shape, self.axes, self.keepdim)


class Extreme(Function):
    """The max (or min) of all elements; the gradient is shared equally among the elements that
    attain it, as PyTorch's."""

    def forward(self, x, *, largest=True):
        out = x.max() if largest else x.min()
        self.save_for_backward(x, out)
        return out

    def backward(self, grad):
        x, out = self.saved
        attained = x == out
        return attained * (grad / attained.sum())


class Gather(Function):
    """out[i][j][k] = x[i][index[i][j][k]][k] for dim = 1 (as torch.gather): index has x's
    number of dimensions and is no larger than x in the others."""

    def forward(self, x, *, dim, index):
        xp = array_module(x)
        self.x_meta = (x.shape, x.dtype)
        (dim,) = normalize_dims(dim, x.ndim)
        # index along dim, and along every other dimension d an arange broadcast over the rest
        self.where = tuple(
            index
            if d == dim
            else xp.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1))
            for d, n in enumerate(index.shape)
        )
        return x[self.where]

    def backward(self, grad):
        dx = array_module(grad).zeros(*self.x_meta)
        scatter_add(dx, self.where, grad)
        return dx


# ---- shapes ------------------------------------------------------------------------------


class Reshape(Function):
    def forward(self, x, *, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.shape)


class Permute(Function):
    def forward(self, x, *, dims):
        self.dims = normalize_dims(dims, x.ndim)
        if sorted(self.dims) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} is not a permutation of {x.ndim} dims")
        return x.transpose(self.dims)

    def backward(self, grad):
        return grad.transpose(tuple(int(d) for d in np.argsort(self.dims)))


class Expand(Function):
    def forward(self, x, *, shape):
        self.shape = x.shape
        return array_module(x).broadcast_to(x, shape)

    def backward(self, grad):
        return sum_to_shape(grad, self.shape)


def _is_basic_index(index) -> bool:
    """True for an index of ints, slices, None and Ellipsis only (no element picked twice)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None
        or p is Ellipsis
        or isinstance(p, slice)
        or (isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_)))
        for p in parts
    )


class GetItem(Function):
    """x[index]; the gradient is scattered back, summed where the index picks an element more
    than once."""

    def forward(self, x, *, index):
        self.x_meta, self.index = (x.shape, x.dtype), index
        return x[index]

    def backward(self, grad):
        xp = array_module(grad)
        dx = xp.zeros(*self.x_meta)
        if _is_basic_index(self.index):
            dx[self.index] = grad
        else:
            scatter_add(dx, self.index, grad)
        return dx


class Cat(Function):
    def forward(self, *xs, dim=0):
        (self.dim,) = normalize_dims(dim, xs[0].ndim)
        self.sizes = [x.shape[self.dim] for x in xs]
        return array_module(xs[0]).concatenate(xs, axis=self.dim)

    def backward(self, grad):
        xp = array_module(grad)
        return tuple(xp.split(grad, [int(i) for i in np.cumsum(self.sizes)[:-1]], axis=self.dim))


class Stack(Function):
    def forward(self, *xs, dim=0):
        (self.dim,) = normalize_dims(dim, xs[0].ndim + 1)
        return array_module(xs[0]).stack(xs, axis=self.dim)

    def backward(self, grad):
        return tuple(array_module(grad).moveaxis(grad, self.dim, 0))


# ---- matrix products ---------------------------------------------------------------------


class MatMul(Function):
    """a @ b as numpy.matmul: 1-D operands promoted to matrices, leading dimensions broadcast."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return matmul(a, b)

    def backward(self, grad):
        a, b = self.saved
        # with a 1-D operand, the product is the matrix one with a unit dimension added (and
        # then removed): add it back to the operand and to the gradient
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad[..., None] if b.ndim == 1 else grad
        g = g[..., None, :] if a.ndim == 1 else g
        da = db = None
        if self.needs_input_grad[0]:
            if g.ndim == 2 and b2.ndim == 2:
                da = gemm(g, b2, trans_b=True)
            else:
                da = sum_to_shape(matmul(g, b2.swapaxes(-1, -2)), a2.shape)
            da = da.reshape(a.shape)
        if self.needs_input_grad[1]:
            if b2.ndim == 2:  # the batch folds into the rows: one GEMM
                k, n = b2.shape
                a_rows = array_module(a).broadcast_to(a2, g.shape[:-1] + (k,)).reshape(-1, k)
                db = gemm(a_rows, g.reshape(-1, n), trans_a=True)
            else:
                db = sum_to_shape(matmul(a2.swapaxes(-1, -2), g), b2.shape)
            db = db.reshape(b.shape)
        return da, db


class Linear(Function):
    """y = x @ w.T + b: x (..., in), w (out, in), b (out,) or None."""

    def forward(self, x, w, b=None):
        x_rows = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # not -1: there may be 0 features
        self.save_for_backward(x_rows, w)
        self.x_shape = x.shape
        y = gemm(x_rows, w, trans_b=True, c=b)
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, grad):
        x_rows, w = self.saved
        g = grad.reshape(-1, grad.shape[-1])
        need_x, need_w, need_b = self.needs_input_grad
        return (
            gemm(g, w).reshape(self.x_shape) if need_x else None,
            gemm(g, x_rows, trans_a=True) if need_w else None,
            g.sum(axis=0) if need_b else None,
        )


# ---- softmax -----------------------------------------------------------------------------


class Softmax(Function):
    def forward(self, x, *, dim):
        xp = array_module(x)
        self.dim = dim
        e = xp.exp(x - x.max(axis=dim, keepdims=True))
        out = e / e.sum(axis=dim, keepdims=True)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return out * (grad - (grad * out).sum(axis=self.dim, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, *, dim):
        xp = array_module(x)
        self.dim = dim
        shifted = x - x.max(axis=dim, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        xp = array_module(out)
        return grad - xp.exp(out) * grad.sum(axis=self.dim, keepdims=True)
