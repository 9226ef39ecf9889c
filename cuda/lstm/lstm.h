// One LSTM layer on float32 device memory, the CUDA counterpart of csrc/lstm, PyTorch's gate
// order (i, f, g, o): gates = x @ w_ih^T + b_ih + h @ w_hh^T + b_hh,
// c' = sigmoid(f) * c + sigmoid(i) * tanh(g), h' = sigmoid(o) * tanh(c').
// The input projection of all T steps is one sgemm; each step is then one recurrent sgemm
// (beta = 1 into that step's gates) and the fused cell kernel. The backward runs the fused cell
// backward and the dh recurrence (an sgemm) per step in reverse, then the weight gradients as one
// sgemm each over all T*B rows, and the bias gradient as a column reduction.
// Host functions enqueue on `stream` and throw on a failed launch; they never allocate device
// memory. With `graph` set, a layer of more than one step is enqueued as a CUDA graph, captured
// on its first call and replayed by later calls with the same arguments (common/graph.h): at small
// batch the per-step launches, not the GPU, bound the loop.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ember::cuda::lstm {

// A strided matrix: element (i, j) at data[i*rs + j*cs] (strides in elements).
struct Matrix {
  const float* data;
  int64_t rs, cs;
};

// A sequence of T (B, n) matrices with contiguous rows: row b of step t at data + t*step + b*row.
struct Seq {
  float* data;
  int64_t step, row;
  float* at(int64_t t, int64_t b) const { return data + t * step + b * row; }
};

// The T*B rows of x and of the layer's buffers (gates, saved states, their gradients) are in x's
// order: t*B + b (time-major) or b*T + t (batch-major), so that the input projection and the
// weight gradients are single sgemms over all steps. The Seq view of such a (T*B, n) buffer:
Seq seq_of(float* data, bool batch_major, int64_t T, int64_t B, int64_t n);

// Forward of one layer: x (T*B, I) rows in order, w_ih (4H, I), w_hh (4H, H), h0 and c0 (B, H).
struct LayerForward {
  int64_t T, B, I, H;
  bool batch_major;
  Matrix x;
  Matrix w_ih;
  Matrix w_hh;
  const float* bias;  // (4H) contiguous, b_ih + b_hh, or null
  Matrix h0;          // (B, H); data null: zeros
  const float* c0;    // (B, H) contiguous
  float* gates;       // (T*B, 4H) contiguous in order: the gates' activations
  Seq y;              // (T, B, H): h_1 .. h_T
  float* h_n;         // (B, H) contiguous: h_T
  float* c_n;         // (B, H) contiguous: c_T
  // Kept for the backward when not null (all three or none), each (T*B, H) contiguous in order:
  // c_t, tanh(c_t), h_{t-1}.
  float* c_all;
  float* tanh_c;
  float* h_prev;
  bool tf32;
  bool graph;
};
void layer_forward(const LayerForward& a, cudaStream_t stream);

// Backward of one layer from what layer_forward kept.
struct LayerBackward {
  int64_t T, B, I, H;
  bool batch_major;
  Matrix x;
  Matrix w_ih;
  Matrix w_hh;
  const float* c0;  // (B, H) contiguous
  const float* gates;
  const float* c_all;
  const float* tanh_c;
  const float* h_prev;
  // dL/dh_t from above, element (t, b, j) at dy[t*dy_t + b*dy_b + j*dy_j]; or null (zeros)
  const float* dy;
  int64_t dy_t, dy_b, dy_j;
  float* dh;      // (B, H) contiguous: dL/dh_T in, dL/dh0 out
  float* dc;      // (B, H) contiguous: dL/dc_T in, dL/dc0 out
  float* dgates;  // (T*B, 4H) contiguous in order: workspace, dL/d(pre-activations)
  float* dx;      // (T*B, I) contiguous in order
  float* dw_ih;   // (4H, I) contiguous
  float* dw_hh;   // (4H, H) contiguous
  float* db;      // (4H) or null
  bool tf32;
  bool graph;
};
void layer_backward(const LayerBackward& a, cudaStream_t stream);

}  // namespace ember::cuda::lstm
