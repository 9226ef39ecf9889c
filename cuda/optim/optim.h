// Fused optimizer steps on the GPU: one call updates every parameter of a parameter group in
// place, with the formulas of the CPU steps (csrc/optim/optim.h) in the same order of float32
// operations, each rounded on its own (no FMA contraction), so that a GPU step gives the same
// bits as the CPU one. Each tensor is a flat, contiguous run of n floats in device memory; the
// tensors of a group are updated by multi-tensor launches (optim.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace ember::cuda::optim {

// SGD, with g the gradient:
//   g = -g                                        (maximize)
//   g = g + weight_decay * p                      (weight_decay != 0)
//   buf = g (init_buf) or buf * momentum + (1 - dampening) * g     (momentum != 0)
//   g = g + momentum * buf (nesterov) or buf      (momentum != 0)
//   p = p - lr * g
// The scalars are the float32 roundings of the Python floats, as on the CPU.
struct SgdScalars {
  float lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, maximize;
};

struct SgdTensor {
  float* param;
  const float* grad;
  float* momentum_buffer;  // null when momentum == 0
  bool init_buf;           // the buffer's first step: buf = g
  int64_t n;
};

// Adam / AdamW at step t, with g the gradient:
//   g = -g                                         (maximize)
//   p = p * decay                                  (AdamW, decay = 1 - lr * weight_decay)
//   g = g + weight_decay * p                       (Adam, weight_decay != 0)
//   m = m + (1 - beta1) * (g - m)
//   v = v * beta2 + (1 - beta2) * g * g            (amsgrad: v_max = max(v_max, v), used below)
//   p = p - step_size * (m / (sqrt(v) / bias_correction2_sqrt + eps))
// step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t) come from Python.
struct AdamScalars {
  float one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay, step_size,
      bias_correction2_sqrt;
  bool decoupled, amsgrad, maximize;
};

struct AdamTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  float* max_exp_avg_sq;  // null unless amsgrad
  int64_t n;
};

// Enqueue one step over all tensors on `stream`; throw (naming the kernel) if a launch fails.
// Tensors must not overlap each other (blocks update them concurrently).
void sgd_step(const SgdScalars& s, const std::vector<SgdTensor>& tensors, cudaStream_t stream);
void adam_step(const AdamScalars& s, const std::vector<AdamTensor>& tensors, cudaStream_t stream);

}  // namespace ember::cuda::optim
