"""`MultiheadAttention`, named, shaped, initialised and masked as PyTorch's.

The projections run on ember's GEMM (F.linear). Without attention weights to return (and
without attention dropout in training) the attention itself is ember's fused kernel
(F.scaled_dot_product_attention, which never stores the L x S scores); otherwise the
weights are computed explicitly, softmax(q k^T / sqrt(head_dim) + mask), as PyTorch does.
"""

from __future__ import annotations

import math

import numpy as np

from ember.autograd import array_module
from ember.nn import _checks, init
from ember.nn import functional as F
from ember.nn.linear import Linear
from ember.nn.module import Module, Parameter
from ember.tensor import Tensor, _unwrap, cat

__all__ = ["MultiheadAttention"]


def _additive_mask(mask, name: str, dtype):
    """A mask as the float array added to the scores: a boolean one becomes -inf where True
    (that position is NOT attended to), a float one is used as is."""
    if mask is None:
        return None
    mask = _unwrap(mask)
    if mask.dtype == np.bool_:
        xp = array_module(mask)
        return xp.where(mask, -np.inf, 0.0).astype(dtype)
    if mask.dtype.kind != "f":
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return mask.astype(dtype, copy=False)


class MultiheadAttention(Module):
    """Multi-head attention, forward(query, key, value, key_padding_mask=None,
    need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False) ->
    (output, weights or None). query (L, N, E), key/value (S, N, E) ((N, L, E) with
    batch_first; unbatched (L, E)). key_padding_mask (N, S): True (or -inf) ignores that key;
    attn_mask (L, S) or (N * num_heads, L, S): True means NOT allowed, a float mask is added.
    is_causal is a hint that attn_mask is the causal mask. The weights are averaged over the
    heads (N, L, S), or per head (N, num_heads, L, S). With kdim or vdim (the key's and the
    value's features) other than embed_dim the three projections are separate parameters,
    q_proj_weight, k_proj_weight and v_proj_weight, instead of in_proj_weight, as PyTorch's.
    add_bias_kv appends a learned key and value (bias_k, bias_v) to every sequence's keys and
    values, add_zero_attn a zero one (per head) after them; the masks are extended to let every
    query attend to them."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
    ):
        super().__init__()
        _checks.size("MultiheadAttention", "embed_dim", embed_dim)
        _checks.size("MultiheadAttention", "num_heads", num_heads)
        kdim = embed_dim if kdim is None else kdim
        vdim = embed_dim if vdim is None else vdim
        _checks.size("MultiheadAttention", "kdim", kdim, minimum=1)
        _checks.size("MultiheadAttention", "vdim", vdim, minimum=1)
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.kdim, self.vdim = kdim, vdim
        self._qkv_same_embed_dim = kdim == embed_dim and vdim == embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), np.float32))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), np.float32))
            self.k_proj_weight = Parameter(np.empty((embed_dim, kdim), np.float32))
            self.v_proj_weight = Parameter(np.empty((embed_dim, vdim), np.float32))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * embed_dim, np.float32))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), np.float32))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), np.float32))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = bool(add_zero_attn)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        """q, k, v = the input projections (one GEMM when query, key and value are the same)."""
        w, b, e = self.in_proj_weight, self.in_proj_bias, self.embed_dim
        parts = [slice(0, e), slice(e, 2 * e), slice(2 * e, 3 * e)]
        if not self._qkv_same_embed_dim:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        elif query is key and key is value:
            qkv = F.linear(query, w, b)
            return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
        else:
            weights = tuple(w[p] for p in parts)
        return tuple(
            F.linear(x, wp, None if b is None else b[p])
            for x, wp, p in zip((query, key, value), weights, parts, strict=True)
        )

    def _merged_mask(self, attn_mask, key_padding_mask, batch, tgt_len, src_len, dtype):
        """attn_mask and key_padding_mask as one additive float mask broadcasting to
        (N, num_heads, L, S), or None."""
        mask = _additive_mask(attn_mask, "attn_mask", dtype)
        if mask is not None:
            if mask.ndim == 2:
                if mask.shape != (tgt_len, src_len):
                    raise RuntimeError(
                        f"The shape of the 2D attn_mask is {mask.shape}, but should be "
                        f"{(tgt_len, src_len)}."
                    )
            elif mask.ndim == 3:
                if mask.shape != (batch * self.num_heads, tgt_len, src_len):
                    raise RuntimeError(
                        f"The shape of the 3D attn_mask is {mask.shape}, but should be "
                        f"{(batch * self.num_heads, tgt_len, src_len)}."
                    )
                mask = mask.reshape(batch, self.num_heads, tgt_len, src_len)
            else:
                raise RuntimeError(f"attn_mask's dimension {mask.ndim} is not supported")
        padding = _additive_mask(key_padding_mask, "key_padding_mask", dtype)
        if padding is not None:
            if padding.shape != (batch, src_len):
                raise AssertionError(
                    f"expecting key_padding_mask shape of {(batch, src_len)}, but got "
                    f"{padding.shape}"
                )
            padding = padding.reshape(batch, 1, 1, src_len)
            mask = padding if mask is None else mask + padding
        return mask

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        for name, x in (("query", query), ("key", key), ("value", value)):
            _checks.tensor("MultiheadAttention", name, x, like=self.out_proj.weight)
            if x.ndim not in (2, 3):
                raise AssertionError(
                    f"{name} should be unbatched 2D or batched 3D tensor but received "
                    f"{x.ndim}-D {name} tensor"
                )
        # plain arrays as Tensors (an array passed twice becomes one Tensor, as for self-attention)
        tensors = {}
        query, key, value = (
            x if isinstance(x, Tensor) else tensors.setdefault(id(x), Tensor(x))
            for x in (query, key, value)
        )
        batched = query.ndim == 3
        if batched and self.batch_first:
            same_kv = key is value
            same = query is key and same_kv
            query = query.transpose(0, 1)
            key = query if same else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        elif not batched:
            same_kv = key is value
            same = query is key and same_kv
            query = query.unsqueeze(1)
            key = query if same else key.unsqueeze(1)
            value = key if same_kv else value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _unwrap(key_padding_mask)[None]
        tgt_len, batch, embed = query.shape
        src_len = key.shape[0]
        if embed != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {embed}"
            )
        if key.shape[:2] != value.shape[:2]:
            raise AssertionError(f"key shape {key.shape} does not match value shape {value.shape}")
        if key.shape[2] != self.kdim or value.shape[2] != self.vdim:
            raise AssertionError(
                f"key and value should have kdim={self.kdim} and vdim={self.vdim} features, got "
                f"{key.shape[2]} and {value.shape[2]}"
            )
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        dropout_p = self.dropout if self.training else 0.0
        fused = not need_weights and dropout_p == 0.0  # else the weights are computed explicitly
        extra_keys = (self.bias_k is not None) + self.add_zero_attn
        if is_causal and key_padding_mask is None and fused:
            attn_mask = None  # the hint alone: the fused kernel applies the causal mask
        else:
            is_causal = False
        mask = self._merged_mask(attn_mask, key_padding_mask, batch, tgt_len, src_len, query.dtype)
        if mask is not None and extra_keys:  # every query may attend to the appended keys
            xp = array_module(mask)
            mask = xp.broadcast_to(mask, mask.shape[:-1] + (src_len,))
            mask = xp.concatenate([mask, xp.zeros(mask.shape[:-1] + (extra_keys,), mask.dtype)], -1)

        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        if self.bias_k is not None:
            k = cat([k, self.bias_k.expand(1, batch, embed)])
            v = cat([v, self.bias_v.expand(1, batch, embed)])
        # (T, N, E) -> (N, heads, T, head_dim)
        keys = src_len + (self.bias_k is not None)
        q = q.reshape(tgt_len, batch, heads, head_dim).permute(1, 2, 0, 3)
        k = k.reshape(keys, batch, heads, head_dim).permute(1, 2, 0, 3)
        v = v.reshape(keys, batch, heads, head_dim).permute(1, 2, 0, 3)
        if self.add_zero_attn:
            zero = Tensor(array_module(k.data).zeros((batch, heads, 1, head_dim), k.dtype))
            k, v = cat([k, zero], dim=2), cat([v, zero], dim=2)
        weights = None
        if not fused:
            scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + Tensor(mask)
            # the weights returned are those after dropout, as PyTorch's
            weights = F.dropout(F.softmax(scores, dim=-1), dropout_p, True)
            attn = weights @ v
        else:
            attn = F.scaled_dot_product_attention(q, k, v, mask, 0.0, is_causal)
        out = attn.permute(2, 0, 1, 3).reshape(tgt_len, batch, embed)
        out = self.out_proj(out)
        if need_weights and average_attn_weights:
            weights = weights.mean(dim=1)
        if not need_weights:
            weights = None
        if not batched:
            out = out.squeeze(1)
            weights = None if weights is None else weights.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self) -> str:
        extra = "" if self._qkv_same_embed_dim else f", kdim={self.kdim}, vdim={self.vdim}"
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}{extra}"
