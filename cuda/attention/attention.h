// CUDA fused scaled-dot-product attention, FlashAttention-2's algorithm on device memory:
//   out = softmax(scale * q @ k^T + mask) @ v,  q (batch, L, E), k (batch, S, E), v (batch, S, Ev)
// Each block owns a tile of query rows and streams the key/value tiles through shared memory
// with an online softmax, so the L x S scores never exist in memory; the log-sum-exp of each
// score row is saved for the backward, which recomputes the weights tile by tile.
//   forward_f32.cu   float32 on exact fp32 FMA (no TF32)
//   forward_bf16.cu  bf16 on tensor cores (mma.sync m16n8k16), fp32 accumulation and softmax
//   backward_f32.cu  float32 gradients: D = rowsum(dout * out), then dK/dV per key tile, dQ with
//                    atomics or in a separate pass over query tiles
//   backward_bf16.cu bf16 gradients on tensor cores, dQ with atomics into a float32 accumulator
// Semantics are the CPU kernels' (csrc/attention/attention.h): causal is top-left aligned, a
// boolean mask keeps the keys where it is nonzero, a float mask is added to the scaled scores, a
// row whose keys are all masked out gives NaN and lse = -inf, and dropout keeps exactly the
// weights the CPU kernel keeps.
#pragma once
#include <cstdint>

#ifdef EMBER_CUDA_EMULATION
#include "emu/emu.h"
#else
#include <cuda_runtime.h>
#endif

namespace ember::cuda::attention {

constexpr int kMaxBatchDims = 4;
constexpr int kMaxHeadDim = 128;

// The leading (batch) dimensions every operand shares, outermost first. A batch item's flat
// index b runs over their product in C order; outputs are laid out by b.
struct Batch {
  int ndim = 0;
  int64_t size[kMaxBatchDims] = {};
};

// A (batch..., rows, cols) operand whose columns are adjacent: element (b, r, c) is at
// data + offset(b) + r * row + c (in elements), offset(b) = sum over d of index_d(b) * batch[d].
struct Rows {
  const void* data = nullptr;
  int64_t batch[kMaxBatchDims] = {};
  int64_t row = 0;
  bool aligned = false;  // every row starts on a 16-byte boundary: tiles load 16 bytes at a time
};

enum class MaskKind : int { none, boolean, additive };

// attn_mask as (batch..., L, S) with any strides: uint8 for boolean (nonzero: the key takes
// part), float32 for additive (added to the scaled scores).
struct Mask {
  MaskKind kind = MaskKind::none;
  const void* data = nullptr;
  int64_t batch[kMaxBatchDims] = {};
  int64_t row = 0, col = 0;
};

// The CPU kernel's dropout: weight (b, i, j) is kept when the top 24 bits of
// splitmix64(seed + (counter + 1) * 0x9E3779B97F4A7C15), counter = (b * L + i) * S + j, are
// >= threshold, and kept weights are scaled by keep_scale. threshold 0: no dropout.
struct Dropout {
  uint32_t threshold = 0;
  float keep_scale = 1.0f;
  uint64_t seed = 0;
};

struct Problem {
  Batch dims;
  int64_t batch = 0;  // the product of dims
  int64_t L = 0, S = 0;
  int E = 0, Ev = 0;  // 1 .. kMaxHeadDim
  float scale = 1.0f;
  bool causal = false;
  Mask mask;
};

// out: (batch, L, Ev) C-contiguous, float32 (forward_f32) or bf16 (forward_bf16);
// lse: (batch, L) float32, the natural-log log-sum-exp of each scaled, masked score row.
struct ForwardArgs {
  Problem p;
  Rows q, k, v;
  Dropout dropout;
  void* out = nullptr;
  float* lse = nullptr;
};

// Gradients of a forward without dropout. dq is float32 (batch, L, E), C-contiguous: the
// gradient itself for float32 inputs, its float32 accumulator for bf16 ones (the caller rounds
// it). dk (batch, S, E) and dv (batch, S, Ev) are C-contiguous, of the inputs' dtype; delta is a
// (batch, L) float32 workspace. dq is summed over key tiles with atomics, or (float32 only) with
// deterministic in a pass of its own over query tiles: bitwise reproducible, for the price of
// computing the scores once more.
struct BackwardArgs {
  Problem p;
  Rows dout, q, k, v, out;
  const float* lse = nullptr;
  float* delta = nullptr;
  float* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
  bool deterministic = false;
};

// The head-dimension tile of a problem: max(E, Ev) rounded up to 32, 64, 96 or 128 (columns past
// E or Ev are zeros in shared memory). 0 when max(E, Ev) > kMaxHeadDim.
inline int head_dim_tile(int E, int Ev) {
  const int d = E > Ev ? E : Ev;
  if (d <= 0 || d > kMaxHeadDim) return 0;
  return d <= 32 ? 32 : d <= 64 ? 64 : d <= 96 ? 96 : 128;
}

// Bytes of dynamic shared memory per block of each kernel for a head-dimension tile.
size_t forward_f32_shared_bytes(int head_dim_tile);
size_t forward_bf16_shared_bytes(int head_dim_tile);
size_t backward_f32_shared_bytes(int head_dim_tile);
size_t backward_bf16_shared_bytes(int head_dim_tile);

// Enqueue on `stream`; throw (naming the kernel) if a launch fails or the device lacks the
// shared memory. Problems with batch, L or S of 0 are the callers' (nothing to launch).
void forward_f32(const ForwardArgs& a, cudaStream_t stream);
void forward_bf16(const ForwardArgs& a, cudaStream_t stream);
void backward_f32(const BackwardArgs& a, cudaStream_t stream);
void backward_bf16(const BackwardArgs& a, cudaStream_t stream);  // not deterministic

}  // namespace ember::cuda::attention
