"""ember.nn.functional: the computations of ember.nn's layers and losses as functions, under
PyTorch's names and argument conventions.

Most are compositions of Tensor operations; the few that are not (GELU, the normalisation
shared by LayerNorm and BatchNorm, embedding lookup, and the two losses whose stable forms
have kinks) are `Function`s defined here with their backward pass.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ember import _device, _random, functions, ops
from ember.autograd import Function, array_module
from ember.nn import _checks
from ember.tensor import Tensor, _unwrap

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "kl_div",
    "layer_norm",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "tanh",
]


class _SDPA(Function):
    def forward(self, q, k, v, attn_mask=None, *, dropout_p, is_causal, scale):
        if dropout_p > 0.0:
            self.needs_input_grad = ()  # the kernel's backward has no dropout: refuse below
            return ops.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)
        out, lse = ops.scaled_dot_product_attention(
            q, k, v, attn_mask, 0.0, is_causal, scale, return_lse=True
        )
        self.save_for_backward(q, k, v, attn_mask, out, lse)
        self.is_causal, self.scale = is_causal, scale
        return out

    def backward(self, grad):
        if not self.needs_input_grad:
            raise RuntimeError("scaled_dot_product_attention: no backward with dropout_p > 0")
        q, k, v, attn_mask, out, lse = self.saved
        dq, dk, dv = ops.scaled_dot_product_attention_backward(
            grad, q, k, v, out, lse, attn_mask, self.is_causal, self.scale
        )
        return dq, dk, dv, None


def scaled_dot_product_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None
):
    """As torch.nn.functional.scaled_dot_product_attention, on ember's fused kernel (forward and
    backward; the L x S scores are never stored). Gradients need dropout_p == 0."""
    if isinstance(attn_mask, Tensor) and attn_mask.requires_grad:
        raise NotImplementedError("scaled_dot_product_attention: no gradient for attn_mask")
    return _SDPA.apply(
        query,
        key,
        value,
        _unwrap(attn_mask) if attn_mask is not None else None,
        dropout_p=dropout_p,
        is_causal=is_causal,
        scale=scale,
    )


def _check_same_device(*values) -> None:
    """RuntimeError naming two devices unless the tensors and arrays among values (None and
    numbers skipped) are on one device. Functions check their own arguments
    (autograd.Function.apply); this is for the arrays a function uses outside of them."""
    arrays = [_unwrap(v) for v in values]
    _device.check_same(a for a in arrays if isinstance(a, np.ndarray) or _device.is_cupy(a))


# ---- layers ------------------------------------------------------------------------------


# ---- convolution and pooling (ember's C++ kernels, forward and backward) --------------------


class _Conv2d(Function):
    def forward(self, x, w, b=None, *, stride, padding, dilation, groups):
        self.save_for_backward(x, w)
        self.args = (stride, padding, dilation, groups)
        return ops.conv2d(x, w, b, stride, padding, dilation, groups)

    def backward(self, grad):
        x, w = self.saved
        need = tuple(self.needs_input_grad) + (False,) * (3 - len(self.needs_input_grad))
        return ops.conv2d_backward(grad, x, w, *self.args, need=need)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """As torch.nn.functional.conv2d: input (N, C, H, W) or (C, H, W), weight (K, C/groups, R, S);
    padding also 'same' or 'valid'. Forward and backward on ember's im2col + GEMM kernels."""
    _checks.tensor("conv2d", "input", input, like=weight)
    return _Conv2d.apply(
        input, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
    )


class _MaxPool2d(Function):
    def forward(self, x, *, kernel_size, stride, padding, dilation, ceil_mode):
        y, self.indices = ops.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
        self.x_shape = x.shape
        return y, self.indices

    def backward(self, grad, _indices_grad):
        return ops.max_pool2d_backward(grad, self.indices, self.x_shape)


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """As torch.nn.functional.max_pool2d (indices int64, flat over each input plane)."""
    _checks.tensor("max_pool2d", "input", input)
    y, indices = _MaxPool2d.apply(
        input,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
    )
    return (y, indices.detach()) if return_indices else y


class _AvgPool2d(Function):
    def forward(self, x, **window):
        self.window, self.x_shape = window, x.shape
        return ops.avg_pool2d(x, **window)

    def backward(self, grad):
        return ops.avg_pool2d_backward(grad, self.x_shape, **self.window)


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """As torch.nn.functional.avg_pool2d."""
    _checks.tensor("avg_pool2d", "input", input)
    return _AvgPool2d.apply(
        input,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )


class _AdaptiveAvgPool2d(Function):
    def forward(self, x, *, output_size):
        self.x_shape = x.shape
        return ops.adaptive_avg_pool2d(x, output_size)

    def backward(self, grad):
        return ops.adaptive_avg_pool2d_backward(grad, self.x_shape)


def adaptive_avg_pool2d(input, output_size):
    """As torch.nn.functional.adaptive_avg_pool2d (output_size an int, a pair, None keeps)."""
    _checks.tensor("adaptive_avg_pool2d", "input", input)
    return _AdaptiveAvgPool2d.apply(input, output_size=output_size)


def linear(input, weight, bias=None):
    """input @ weight.T + bias: input (..., in), weight (out, in), bias (out,); on ember's GEMM."""
    _checks.tensor("linear", "input", input, like=weight)
    if input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input {tuple(input.shape)} must end in weight {tuple(weight.shape)}'s "
            f"{weight.shape[-1]} features"
        )
    return functions.Linear.apply(input, weight, bias)


def relu(input):
    return input.relu()


# ---- norms and similarities -------------------------------------------------------------------


def _vector_norm(x, p: float, dim: int, eps: float):
    """max(||x||_p, eps) along dim, kept as a size-1 dimension. The clamp acts on the sum of
    powers (against eps ** p), so a zero vector gets a zero gradient instead of 0 * inf."""
    if p == 2:
        return (x * x).sum(dim, keepdim=True).clamp(min=eps * eps).sqrt()
    return (abs(x) ** p).sum(dim, keepdim=True).clamp(min=eps**p) ** (1.0 / p)


def _dim_of(fn: str, dim: int, ndim: int) -> int:
    """dim as a non-negative axis (functions.normalize_dims), its error naming fn and dim."""
    try:
        (axis,) = functions.normalize_dims(dim, ndim)
    except IndexError as e:
        raise IndexError(
            f"{fn}: dim {dim} is out of range for a {ndim}-dimensional input: {e}"
        ) from None
    return axis


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    """input / max(||input||_p, eps) along dim, as PyTorch's."""
    _checks.tensor("normalize", "input", input)
    if not isinstance(input, Tensor):
        input = Tensor(input)
    if p <= 0:
        raise ValueError(f"normalize: p must be positive, got {p}")
    dim = _dim_of("normalize", dim, input.ndim)
    return input / _vector_norm(input, p, dim, eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """x1 . x2 / (max(||x1||, eps) * max(||x2||, eps)) along dim of their broadcast shape, which
    the result drops, as PyTorch's (each input is divided by its norm before the dot product)."""
    _checks.tensor("cosine_similarity", "x1", x1)
    _checks.tensor("cosine_similarity", "x2", x2)
    x1, x2 = (x if isinstance(x, Tensor) else Tensor(x) for x in (x1, x2))
    if x1.dtype != x2.dtype:
        raise TypeError(f"cosine_similarity: x1 is {x1.dtype} but x2 is {x2.dtype}")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(
            f"cosine_similarity: x1 {tuple(x1.shape)} and x2 {tuple(x2.shape)} do not broadcast"
        ) from None
    x1, x2 = (x if x.shape == shape else x.expand(shape) for x in (x1, x2))
    dim = _dim_of("cosine_similarity", dim, len(shape))
    return ((x1 / _vector_norm(x1, 2, dim, eps)) * (x2 / _vector_norm(x2, 2, dim, eps))).sum(dim)


def tanh(input):
    return input.tanh()


def sigmoid(input):
    return input.sigmoid()


# erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), z >= 0, with P the polynomial below
# (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7 for every z >= 0)
_ERFC_COEFFICIENTS = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)  # fmt: skip


def _normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt(2)) / 2, elementwise: exact (math.erfc) in float64, the fit above
    otherwise (small relative error in both tails, below float32's resolution)."""
    xp = array_module(x)
    z = abs(x) * (1 / math.sqrt(2))
    if x.dtype == np.float64 and xp is np:
        tail = np.asarray(np.frompyfunc(math.erfc, 1, 1)(z), dtype=np.float64)
    else:
        t = 1 / (1 + 0.5 * z)
        poly = 0
        for coefficient in reversed(_ERFC_COEFFICIENTS):
            poly = poly * t + coefficient
        tail = t * xp.exp(poly - z * z)
    return xp.where(x < 0, 0.5 * tail, 1 - 0.5 * tail)  # erfc(-z) = 2 - erfc(z)


class _GELU(Function):
    """x * Phi(x) (Phi the standard normal CDF) or, with approximate='tanh',
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def forward(self, x, *, approximate):
        xp = array_module(x)
        self.save_for_backward(x)
        self.approximate = approximate
        if approximate == "tanh":
            return 0.5 * x * (1 + xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        return x * _normal_cdf(x)

    def backward(self, grad):
        (x,) = self.saved
        xp = array_module(x)
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = xp.tanh(k * (x + 0.044715 * x**3))
            return grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x))
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return grad * (_normal_cdf(x) + x * pdf)


def gelu(input, approximate: str = "none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return _GELU.apply(input, approximate=approximate)


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
        "dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None):
    dim = _softmax_dim("softmax", input.ndim) if dim is None else dim
    return functions.Softmax.apply(input, dim=dim)


def log_softmax(input, dim=None):
    dim = _softmax_dim("log_softmax", input.ndim) if dim is None else dim
    return functions.LogSoftmax.apply(input, dim=dim)


def dropout(input, p: float = 0.5, training: bool = True):
    """Zeroes each element with probability p (ember's generator) and scales the rest by
    1 / (1 - p); the identity when not training.

    The mask is drawn on the host by ember's generator for tensors on every device, and copied
    to the GPU (one byte per element) for GPU tensors: ember.manual_seed(n) then gives the same
    masks, and the same training run, on the CPU and on a GPU. The price is a host-side draw and
    a host-to-device copy per call, which for large activations costs more than drawing on the
    GPU would."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = _random.generator().random(input.shape, dtype=np.float32) >= p
    keep = _device.move(keep, _device.device_of(input.data))
    return input * (keep.astype(input.dtype) * (1.0 / (1.0 - p)))


class _Embedding(Function):
    """weight[indices]; the rows' gradients are summed (a scatter-add), and the padding row, if
    any, gets none."""

    def forward(self, weight, *, indices, padding_idx):
        self.weight_meta = (weight.shape, weight.dtype)
        self.indices, self.padding_idx = indices, padding_idx
        return weight[indices]

    def backward(self, grad):
        dw = array_module(grad).zeros(*self.weight_meta)
        functions.scatter_add(dw, self.indices, grad)
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return dw


def embedding(input, weight, padding_idx=None):
    """Rows of weight (num_embeddings, dim) picked by the integer tensor input."""
    _checks.tensor("embedding", "input", input, floating=False)
    indices = _unwrap(input)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {indices.dtype}")
    rows = weight.shape[0]
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= rows):
        bad = int(indices.min()) if int(indices.min()) < 0 else int(indices.max())
        raise IndexError(f"embedding: index {bad} out of range [0, {rows}) of the weight's rows")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _Embedding.apply(weight, indices=indices, padding_idx=padding_idx)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    labels = _unwrap(tensor)
    num_classes = int(labels.max()) + 1 if num_classes == -1 else num_classes
    xp = array_module(labels)
    return Tensor((labels[..., None] == xp.arange(num_classes)).astype(np.int64))


# ---- normalisation -----------------------------------------------------------------------


class _Normalize(Function):
    """(x - mean) * rstd, rstd = 1 / sqrt(var + eps), with mean and var (keepdims, over `axes`)
    either the statistics of x itself (the gradient then flows through them too) or fixed."""

    def forward(self, x, *, mean, var, eps, axes, batch_stats):
        xp = array_module(x)
        rstd = 1 / xp.sqrt(var + eps)
        out = (x - mean) * rstd
        self.save_for_backward(out, rstd)
        self.axes, self.batch_stats = axes, batch_stats
        return out

    def backward(self, grad):
        out, rstd = self.saved
        if not self.batch_stats:
            return grad * rstd
        mean_grad = grad.mean(axis=self.axes, keepdims=True)
        mean_grad_out = (grad * out).mean(axis=self.axes, keepdims=True)
        return rstd * (grad - mean_grad - out * mean_grad_out)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalises over the trailing dimensions `normalized_shape`, then scales and shifts
    elementwise."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if input.shape[input.ndim - len(shape) :] != shape:
        raise RuntimeError(
            f"layer_norm: normalized_shape {shape} does not match the last dimensions of input "
            f"{input.shape}"
        )
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    x = input.data
    out = _Normalize.apply(
        input,
        mean=x.mean(axis=axes, keepdims=True),
        var=x.var(axis=axes, keepdims=True),
        eps=eps,
        axes=axes,
        batch_stats=True,
    )
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
):
    """Normalises each channel (dimension 1) over the batch and any spatial dimensions: with
    the batch's statistics when training (and then, given running_mean/var, blends them in:
    running = (1 - momentum) * running + momentum * batch, the variance unbiased), with the
    running statistics otherwise."""
    _check_same_device(input, running_mean, running_var, weight, bias)
    axes = (0,) + tuple(range(2, input.ndim))
    channel_shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
    x = input.data
    if training:
        count = x.size // input.shape[1]
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.shape}"
            )
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        if running_mean is not None:
            running_mean.data *= 1 - momentum
            running_mean.data += momentum * mean.reshape(-1)
        if running_var is not None:
            running_var.data *= 1 - momentum
            running_var.data += (momentum * count / (count - 1)) * var.reshape(-1)
    else:
        mean = running_mean.data.reshape(channel_shape)
        var = running_var.data.reshape(channel_shape)
    out = _Normalize.apply(input, mean=mean, var=var, eps=eps, axes=axes, batch_stats=training)
    if weight is not None:
        out = out * weight.reshape(channel_shape)
    if bias is not None:
        out = out + bias.reshape(channel_shape)
    return out


# ---- losses ------------------------------------------------------------------------------


def _reduce(loss, reduction: str):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def mse_loss(input, target, reduction: str = "mean"):
    if not isinstance(target, Tensor):
        target = Tensor(target)
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=2,
        )
    diff = input - target
    return _reduce(diff * diff, reduction)


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """-input[n, target[n]] (log-probabilities input (N, C, ...) or (C,), class indices target
    (N, ...) or ()), weighted by weight[target[n]]; 'mean' divides by the total weight of the
    targets that are not ignore_index."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    _checks.tensor("nll_loss", "input", input)
    _checks.tensor("nll_loss", "target", target, floating=False)
    if input.ndim == 0:
        raise ValueError("nll_loss: input must have a class dimension, got a 0-D tensor")
    labels = _unwrap(target)
    _check_same_device(input, labels, weight)
    unbatched = input.ndim == 1
    if unbatched:
        input, labels = input.unsqueeze(0), labels[None]
    if labels.dtype.kind not in "iu":
        raise TypeError(f"expected class indices of an integer dtype, got {labels.dtype}")
    if labels.shape != (input.shape[0],) + input.shape[2:]:
        raise ValueError(
            f"expected target of shape {(input.shape[0],) + input.shape[2:]}, got {labels.shape}"
        )
    xp = array_module(labels)
    num_classes = input.shape[1]
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= num_classes))
    if bad.any():
        raise IndexError(f"Target {int(labels[bad][0])} is out of bounds ({num_classes} classes)")
    safe = xp.where(valid, labels, 0)
    picked = input.gather(1, safe[:, None]).squeeze(1)
    weights = valid.astype(input.dtype)
    if weight is not None:
        weights = weights * _unwrap(weight)[safe]
    loss = -picked * weights
    if reduction == "none":
        return loss.squeeze(0) if unbatched else loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / weights.sum()


def cross_entropy(
    input,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
):
    """log_softmax over the classes (dimension 1, or 0 for unbatched input) and then the
    negative log-likelihood of class indices, or of class probabilities when target has the
    input's shape. With label_smoothing e, the target mixes (1 - e) of itself with e spread
    uniformly over the classes, as PyTorch."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    _checks.tensor("cross_entropy", "input", input)
    _checks.tensor("cross_entropy", "target", target, floating=False)
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have a class dimension, got a 0-D tensor")
    class_dim = 0 if input.ndim == 1 else 1
    num_classes = input.shape[class_dim]
    logp = functions.LogSoftmax.apply(input, dim=class_dim)
    class_shape = (num_classes,) + (1,) * (input.ndim - class_dim - 1)
    w = None if weight is None else _unwrap(weight).reshape(class_shape)
    labels = _unwrap(target)

    if labels.dtype.kind == "f":  # class probabilities
        if labels.shape != tuple(input.shape):
            raise ValueError(
                f"cross_entropy: class probabilities target {labels.shape} must have input's "
                f"shape {tuple(input.shape)}"
            )
        probs = target if isinstance(target, Tensor) else Tensor(labels)
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / num_classes
        terms = logp * probs if w is None else logp * probs * w
        return _reduce(-terms.sum(class_dim), reduction)

    nll = nll_loss(logp, labels, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    valid = labels != ignore_index
    smooth = -(logp if w is None else logp * w).sum(class_dim) * valid.astype(input.dtype)
    if reduction == "mean":
        if weight is None:  # a count in the input's dtype: an int64 array would promote
            total = valid.sum().astype(input.dtype)
        else:
            total = _unwrap(weight)[labels[valid]].sum()
        smooth = smooth.sum() / total
    elif reduction == "sum":
        smooth = smooth.sum()
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / num_classes)


class _BCEWithLogits(Function):
    """Elementwise -[p y log s(x) + (1 - y) log(1 - s(x))] with s the sigmoid and p the
    pos_weight (1 if None), in the stable form (1 - y) x + (1 + (p - 1) y) softplus(-x)."""

    def forward(self, x, y, *, pos_weight):
        xp = array_module(x)
        softplus_neg = xp.log1p(xp.exp(-abs(x))) + xp.maximum(-x, 0)  # log(1 + exp(-x))
        scale = 1 if pos_weight is None else 1 + (pos_weight - 1) * y
        self.save_for_backward(x, y, softplus_neg)
        self.pos_weight = pos_weight
        return (1 - y) * x + scale * softplus_neg

    def backward(self, grad):
        x, y, softplus_neg = self.saved
        pw = self.pos_weight
        dx = dy = None
        if self.needs_input_grad[0]:
            scale = 1 if pw is None else 1 + (pw - 1) * y
            sigmoid_neg = 1 / (1 + array_module(x).exp(x))
            dx = grad * ((1 - y) - scale * sigmoid_neg)
        if self.needs_input_grad[1]:
            dy = grad * (-x if pw is None else -x + (pw - 1) * softplus_neg)
        return dx, dy


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction: str = "mean", pos_weight=None
):
    if input.shape != tuple(np.shape(_unwrap(target))):
        raise ValueError(
            f"Target size ({tuple(np.shape(_unwrap(target)))}) must be the same as input size "
            f"({input.shape})"
        )
    loss = _BCEWithLogits.apply(input, target, pos_weight=_unwrap(pos_weight))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


class _KLDiv(Function):
    """Elementwise target * (log target - input), input and (with log_target) target given as
    log-probabilities."""

    def forward(self, x, t, *, log_target):
        xp = array_module(x)
        self.save_for_backward(x, t)
        self.log_target = log_target
        if log_target:
            return xp.exp(t) * (t - x)
        return xp.where(t > 0, t * xp.log(t), 0) - t * x

    def backward(self, grad):
        x, t = self.saved
        xp = array_module(x)
        p = xp.exp(t) if self.log_target else t
        dx = -grad * p if self.needs_input_grad[0] else None
        dt = None
        if self.needs_input_grad[1]:
            dt = grad * p * (t - x + 1) if self.log_target else grad * (xp.log(t) + 1 - x)
        return dx, dt


def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """KL(target || exp(input)) pointwise; 'batchmean' divides the sum by the batch size (the
    KL divergence per example), 'mean' by the number of elements (with PyTorch's warning)."""
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            UserWarning,
            stacklevel=2,
        )
    loss = _KLDiv.apply(input, target, log_target=log_target)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)
