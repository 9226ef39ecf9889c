// The host side of an attention call: checks a call's arrays (shapes, element sizes, strides,
// overlaps) and turns them into the kernels' ForwardArgs / BackwardArgs. Plain C++ (no CUDA, no
// Python), shared by bindings.cpp and the CPU emulator's test shim (cuda/emu/attention_emu.cpp),
// so the tests exercise the very checks and layouts the extension uses. Every error is a
// std::invalid_argument (ValueError in Python) that names the argument.
#pragma once
#include <cstdint>
#include <vector>

#include "attention/attention.h"

namespace ember::cuda::attention {

// An array as the kernels see it: data pointer, element size, shape, strides in elements.
struct ArrayView {
  void* data = nullptr;
  int64_t itemsize = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
};

enum class DType : int { f32, bf16 };

// q (batch..., L, E), k (batch..., S, E), v (batch..., S, Ev) and attn_mask (batch..., L, S)
// share their leading dimensions (at most kMaxBatchDims, callers merge them); the last dimension
// of q, k and v is contiguous. mask: nullptr, or uint8 (mask_is_bool) / float32 of any strides.
// out (batch..., L, Ev) of dtype and lse (batch..., L) float32 are C-contiguous and overlap no
// input. dropout_p in [0, 1) with its seed.
ForwardArgs forward_args(DType dtype, const ArrayView& q, const ArrayView& k, const ArrayView& v,
                         const ArrayView* mask, bool mask_is_bool, const ArrayView& out,
                         const ArrayView& lse, double scale, bool causal, double dropout_p,
                         uint64_t seed);

// The backward: dout and out (batch..., L, Ev) with a contiguous last dimension, of dtype like q,
// k, v; lse (batch..., L) float32 C-contiguous; outputs C-contiguous, overlapping no input and
// no other output: delta (batch..., L) and dq (q's shape) float32, dk and dv (k's and v's
// shapes) of dtype. deterministic needs float32.
BackwardArgs backward_args(DType dtype, const ArrayView& dout, const ArrayView& q,
                           const ArrayView& k, const ArrayView& v, const ArrayView& out,
                           const ArrayView& lse, const ArrayView* mask, bool mask_is_bool,
                           const ArrayView& delta, const ArrayView& dq, const ArrayView& dk,
                           const ArrayView& dv, double scale, bool causal, bool deterministic);

}  // namespace ember::cuda::attention
