// Fused optimizer steps: one call updates every parameter of a parameter group in place, with
// PyTorch's single-tensor formulas in the same order of float32 operations (no FMA contraction),
// so that float32 trajectories match torch.optim and ember's NumPy path. Each tensor is a flat,
// contiguous run of n floats; the per-ISA kernels (optim_*.cpp) update elements [begin, end) of
// one tensor and the drivers (optim.cpp) spread a group's tensors over threads.
#pragma once
#include <cstdint>
#include <vector>

namespace ember::optim {

// SGD, with g the gradient:
//   g = g + weight_decay * p                      (weight_decay != 0)
//   buf = g (init_buf) or momentum * buf + (1 - dampening) * g     (momentum != 0)
//   g = g + momentum * buf (nesterov) or buf      (momentum != 0)
//   p = p - lr * g
// maximize negates g first. The scalars are the float32 roundings of PyTorch's Python floats.
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
//   p = p * decay                                  (AdamW, decay = 1 - lr * weight_decay)
//   g = g + weight_decay * p                       (Adam, weight_decay != 0)
//   m = m + (1 - beta1) * (g - m)
//   v = beta2 * v + (1 - beta2) * g * g            (amsgrad: v_max = max(v_max, v), used below)
//   p = p - step_size * (m / (sqrt(v) / bias_correction2_sqrt + eps))
// step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t) come from Python.
struct AdamScalars {
  float one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay, step_size,
      bias_correction2_sqrt;
  bool decoupled, maximize;
};

struct AdamTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  float* max_exp_avg_sq;  // null unless amsgrad
  int64_t n;
};

struct Kernels {
  const char* name;
  void (*sgd)(const SgdScalars&, const SgdTensor&, int64_t begin, int64_t end);
  void (*adam)(const AdamScalars&, const AdamTensor&, int64_t begin, int64_t end);
};

extern const Kernels f32_optim_generic;
#if defined(EMBER_X86)
extern const Kernels f32_optim_avx2;
extern const Kernels f32_optim_avx512;
#endif

// One step over all tensors of a group with the active ISA's kernels; tensors larger than a
// chunk are split, and the chunks run on ember's OpenMP threads when the group is large.
void sgd_step(const SgdScalars& s, const std::vector<SgdTensor>& tensors);
void adam_step(const AdamScalars& s, const std::vector<AdamTensor>& tensors);

}  // namespace ember::optim
