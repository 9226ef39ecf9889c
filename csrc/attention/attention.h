// Fused scaled-dot-product attention, FlashAttention's algorithm on the CPU:
//   out = softmax(scale * q @ k^T + mask) @ v,  q (batch, L, E), k (batch, S, E), v (batch, S, Ev),
// tiled over query and key blocks with an online softmax, so the L x S scores never exist in
// memory; the backward recomputes the score tiles from the saved log-sum-exp rows.
//
// attention.cpp is the portable driver (work split, OpenMP, scratch); the per-ISA files
// (attention_{generic,avx2,avx512}.cpp over attention_simd.h) do one query block (forward) or
// one chunk of key blocks (backward) of one batch item.
#pragma once
#include <cstdint>

namespace ember::attention {

// A strided float32 operand over a flattened batch: element (b, i, j) at
// data[offsets[b] + i * rs + j * cs] (strides in elements, any sign, 0 for broadcast).
struct View {
  const float* data;
  const int64_t* offsets;
  int64_t rs;
  int64_t cs;
};

enum class MaskKind { none, boolean, additive };

// attn_mask broadcast to (batch, L, S), addressed as View: uint8 for boolean (nonzero: the key
// takes part), float32 for additive (added to the scaled scores).
struct Mask {
  MaskKind kind;
  const void* data;
  const int64_t* offsets;
  int64_t rs;
  int64_t cs;
};

struct Problem {
  int64_t batch;  // all leading dimensions flattened (B * H)
  int64_t L;      // queries
  int64_t S;      // keys
  int64_t E;      // q/k head dim
  int64_t Ev;     // v head dim
  float scale;
  bool causal;  // query i sees keys j <= i (top-left aligned, as PyTorch)
  Mask mask;
};

// Dropout on the attention weights: element (b, i, j) is kept when the top 24 bits of
// splitmix64(seed + (counter + 1) * 0x9E3779B97F4A7C15), counter = (b * L + i) * S + j, are
// >= threshold (= ceil(p * 2^24)); kept weights are multiplied by keep_scale (= 1 / (1 - p)).
// threshold 0 turns dropout off. ember.ref.attention draws the same bits.
struct Dropout {
  uint32_t threshold;
  float keep_scale;
  uint64_t seed;
};

struct ForwardArgs {
  Problem p;
  View q, k, v;
  Dropout dropout;
  float* out;  // (batch, L, Ev), C-contiguous
  float* lse;  // (batch, L): natural-log log-sum-exp of each scaled, masked score row
};

struct BackwardArgs {
  Problem p;
  View dout, q, k, v;
  const float* lse;    // (batch, L) from the forward
  const float* delta;  // (batch, L): D = rowsum(dout * out), filled by the driver
  float* dk;           // (batch, S, E), C-contiguous
  float* dv;           // (batch, S, Ev), C-contiguous
};

// One ISA's kernels and the blocking they were written for.
struct Kernels {
  const char* name;
  int64_t row_panel;     // forward work items hold a multiple of this many query rows ...
  int64_t forward_rows;  // ... and at most this many (a multiple of row_panel)
  int64_t forward_keys;  // forward: keys per key block
  int64_t backward_q;    // backward: queries per query block
  int64_t backward_k;    // backward: keys per key block
  int64_t dq_ld;         // backward: the dq accumulator's row stride is round_up(E, dq_ld)
  int64_t (*forward_scratch)(const Problem& p);   // floats of per-thread scratch
  int64_t (*backward_scratch)(const Problem& p);  // floats of per-thread scratch
  // out and lse of rows q0 .. q0 + rows of batch item b (rows <= forward_rows).
  void (*forward_block)(const ForwardArgs& a, int64_t b, int64_t q0, int64_t rows, float* scratch);
  // dk and dv of key blocks chunk, chunk + nchunks, ... of batch item b, and their share of
  // dS @ K (unscaled) added into dq_acc: (round_up(L, backward_q), round_up(E, dq_ld))
  // row-major.
  void (*backward_chunk)(const BackwardArgs& a, int64_t b, int64_t chunk, int64_t nchunks,
                         float* dq_acc, float* scratch);
};

extern const Kernels f32_sdpa_generic;
#if defined(EMBER_X86)
extern const Kernels f32_sdpa_avx2;
extern const Kernels f32_sdpa_avx512;
#endif

// The drivers: threads over batch x query blocks (forward) and batch x key-block chunks
// (backward), with the kernels chosen at import. A row whose keys are all masked out gives
// NaN output and lse = -inf; S == 0 gives zeros and lse = -inf (as PyTorch).
void forward(const ForwardArgs& a);
// dq (batch, L, E) C-contiguous; `out` is the forward's output. Deterministic for a given
// thread count (dq partial sums are added in a fixed order).
void backward(const BackwardArgs& a, View out, float* dq);

}  // namespace ember::attention
