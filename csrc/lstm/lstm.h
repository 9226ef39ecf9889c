// LSTM, PyTorch's gate order (i, f, g, o): gates = x @ w_ih^T + b_ih + h @ w_hh^T + b_hh,
// c' = sigmoid(f) * c + sigmoid(i) * tanh(g), h' = sigmoid(o) * tanh(c').
// The fused cell (one implementation per ISA, cell_*.cpp) and the layer's time loops (layer.cpp).
#pragma once
#include <cstdint>

#include "gemm/gemm.h"

namespace ember::lstm {

// ---- the fused cell -------------------------------------------------------------------------
// Both kernels work on a block of m batch rows x n hidden units. Row r of a matrix starts at
// ptr + r * ld_ptr and its columns are contiguous. A row of gates holds the four gates of the
// block's units at gates + k * gate_stride (k = i, f, g, o), gate_stride being H.

// gates (pre-activations without bias) -> activations, in place; c_next = f * c + i * g,
// h_next = o * tanh(c_next), and tanh(c_next) when tanh_c is not null. c_next may be c.
struct CellForward {
  int64_t m, n, gate_stride;
  float* gates;
  int64_t ld_gates;
  const float* bias;  // b_ih + b_hh laid out as a row of gates, or null
  const float* c;
  int64_t ld_c;
  float* c_next;
  int64_t ld_c_next;
  float* h_next;
  int64_t ld_h_next;
  float* tanh_c;  // may be null
  int64_t ld_tanh_c;
};

// From dL/dh_next = dh + dh2 and dL/dc_next = dc, and the saved activations, c and tanh(c_next):
// dgates = dL/d(pre-activations) and dc = dL/dc (in place).
struct CellBackward {
  int64_t m, n, gate_stride;
  const float* dh;
  int64_t ld_dh;
  const float* dh2;
  int64_t ld_dh2;
  float* dc;
  int64_t ld_dc;
  const float* gates;  // activations
  int64_t ld_gates;
  const float* c;  // the cell state the step started from
  int64_t ld_c;
  const float* tanh_c;
  int64_t ld_tanh_c;
  float* dgates;
  int64_t ld_dgates;
};

struct CellKernels {
  const char* name;
  void (*forward)(const CellForward&);
  void (*backward)(const CellBackward&);
};

extern const CellKernels f32_lstm_cell_generic;
#if defined(EMBER_X86)
extern const CellKernels f32_lstm_cell_avx2;
extern const CellKernels f32_lstm_cell_avx512;
#endif

// ---- the layer ------------------------------------------------------------------------------
// A sequence of T (B, n) matrices with contiguous rows: row b of step t at data + t*step + b*row.
struct Seq {
  float* data;
  int64_t step;
  int64_t row;
  float* at(int64_t t, int64_t b) const { return data + t * step + b * row; }
};

// The order of the T * B rows of x and of the layer's own buffers (gates, saved states, their
// gradients): t * B + b (time_major) or b * T + t (batch_major), whichever x is stored in, so that
// the input projection and the weight gradients are single GEMMs over all steps.
enum class Order { time_major, batch_major };

// The Seq view of a (T * B, n) buffer with contiguous rows in `order`.
Seq seq_of(float* data, Order order, int64_t T, int64_t B, int64_t n);

// Forward of one layer: x (T*B, I) in `order`, w_ih (4H, I), w_hh (4H, H), h0 and c0 (B, H).
struct LayerForward {
  int64_t T, B, I, H;
  Order order;
  gemm::ConstMatrix x;
  gemm::ConstMatrix w_ih;
  gemm::ConstMatrix w_hh;
  const float* bias;     // (4H) b_ih + b_hh, or null
  gemm::ConstMatrix h0;  // (B, H); data null: zeros
  const float* c0;       // (B, H) contiguous
  float* gates;          // (T*B, 4H) in `order`: the gates' activations
  Seq y;                 // (T, B, H): h_1 .. h_T
  float* h_n;            // (B, H) contiguous: h_T
  float* c_n;            // (B, H) contiguous: c_T
  // Kept for the backward when not null, each (T*B, H) in `order`: c_t, tanh(c_t), h_{t-1}.
  float* c_all;
  float* tanh_c;
  float* h_prev;
};
void layer_forward(const LayerForward& a);

// Backward of one layer from what layer_forward kept.
struct LayerBackward {
  int64_t T, B, I, H;
  Order order;
  gemm::ConstMatrix x;
  gemm::ConstMatrix w_ih;
  gemm::ConstMatrix w_hh;
  const float* c0;  // (B, H) contiguous
  const float* gates;
  const float* c_all;
  const float* tanh_c;
  const float* h_prev;
  Seq dy;        // (T, B, H) dL/dh_t from above (read only)
  float* dh;     // (B, H) contiguous: dL/dh_T in, dL/dh0 out
  float* dc;     // (B, H) contiguous: dL/dc_T in, dL/dc0 out
  float* dx;     // (T*B, I) in `order`
  float* dw_ih;  // (4H, I)
  float* dw_hh;  // (4H, H)
  float* db;     // (4H) or null
};
void layer_backward(const LayerBackward& a);

}  // namespace ember::lstm
