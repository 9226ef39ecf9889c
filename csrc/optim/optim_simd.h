// The fused SGD and Adam updates (optim.h) as templates over a SIMD vector type V (common/
// simd_avx2.h, simd_avx512.h): V::width elements at a time, then a scalar tail with the same
// operations in the same order. Everything is in an anonymous namespace (one copy per ISA file).
#pragma once
#include <cmath>
#include <cstdint>

#include "optim/optim.h"

namespace {

using ember::optim::AdamScalars;
using ember::optim::AdamTensor;
using ember::optim::SgdScalars;
using ember::optim::SgdTensor;

// NaN if either is NaN (as NumPy's and PyTorch's maximum), else the larger.
inline float max_nan(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }

inline void sgd_scalar(const SgdScalars& s, const SgdTensor& t, int64_t i) {
  float g = s.maximize ? -t.grad[i] : t.grad[i];
  float& p = t.param[i];
  if (s.weight_decay != 0.0f) g = g + s.weight_decay * p;
  if (s.momentum != 0.0f) {
    float& buf = t.momentum_buffer[i];
    buf = t.init_buf ? g : buf * s.momentum + s.one_minus_dampening * g;
    g = s.nesterov ? g + s.momentum * buf : buf;
  }
  p = p - s.lr * g;
}

inline void adam_scalar(const AdamScalars& s, const AdamTensor& t, int64_t i) {
  float g = s.maximize ? -t.grad[i] : t.grad[i];
  float& p = t.param[i];
  if (s.decoupled) p = p * s.decay;
  else if (s.weight_decay != 0.0f) g = g + s.weight_decay * p;
  float& m = t.exp_avg[i];
  float& v = t.exp_avg_sq[i];
  m = m + s.one_minus_beta1 * (g - m);
  v = v * s.beta2 + s.one_minus_beta2 * g * g;
  float vv = v;
  if (t.max_exp_avg_sq) vv = t.max_exp_avg_sq[i] = max_nan(t.max_exp_avg_sq[i], v);
  const float denom = std::sqrt(vv) / s.bias_correction2_sqrt + s.eps;
  p = p - s.step_size * (m / denom);
}

template <class V>
void sgd_chunk(const SgdScalars& s, const SgdTensor& t, int64_t begin, int64_t end) {
  using R = typename V::Reg;
  const R lr = V::set1(s.lr), mom = V::set1(s.momentum), damp = V::set1(s.one_minus_dampening),
          wd = V::set1(s.weight_decay), sign = V::set1(s.maximize ? -1.0f : 1.0f);
  int64_t i = begin;
  for (; i + V::width <= end; i += V::width) {
    // -g is exact, so multiplying by -1 matches negating
    R g = V::mul(V::load(t.grad + i), sign);
    R p = V::load(t.param + i);
    if (s.weight_decay != 0.0f) g = V::add(g, V::mul(wd, p));
    if (s.momentum != 0.0f) {
      float* bp = t.momentum_buffer + i;
      const R buf = t.init_buf ? g : V::add(V::mul(V::load(bp), mom), V::mul(damp, g));
      V::store(bp, buf);
      g = s.nesterov ? V::add(g, V::mul(mom, buf)) : buf;
    }
    V::store(t.param + i, V::sub(p, V::mul(lr, g)));
  }
  for (; i < end; ++i) sgd_scalar(s, t, i);
}

template <class V>
void adam_chunk(const AdamScalars& s, const AdamTensor& t, int64_t begin, int64_t end) {
  using R = typename V::Reg;
  const R b1 = V::set1(s.one_minus_beta1), beta2 = V::set1(s.beta2),
          b2 = V::set1(s.one_minus_beta2), eps = V::set1(s.eps), wd = V::set1(s.weight_decay),
          decay = V::set1(s.decay), step = V::set1(s.step_size),
          bc2 = V::set1(s.bias_correction2_sqrt), sign = V::set1(s.maximize ? -1.0f : 1.0f);
  int64_t i = begin;
  for (; i + V::width <= end; i += V::width) {
    R g = V::mul(V::load(t.grad + i), sign);
    R p = V::load(t.param + i);
    if (s.decoupled) p = V::mul(p, decay);
    else if (s.weight_decay != 0.0f) g = V::add(g, V::mul(wd, p));
    const R m = V::add(V::load(t.exp_avg + i), V::mul(b1, V::sub(g, V::load(t.exp_avg + i))));
    R v = V::add(V::mul(V::load(t.exp_avg_sq + i), beta2), V::mul(V::mul(b2, g), g));
    V::store(t.exp_avg + i, m);
    V::store(t.exp_avg_sq + i, v);
    if (t.max_exp_avg_sq) {
      const R vmax = V::load(t.max_exp_avg_sq + i);
      // max returns its second operand when either is NaN; keep_nan keeps a NaN vmax
      v = V::keep_nan(vmax, V::max(vmax, v));
      V::store(t.max_exp_avg_sq + i, v);
    }
    const R denom = V::add(V::div(V::sqrt(v), bc2), eps);
    V::store(t.param + i, V::sub(p, V::mul(step, V::div(m, denom))));
  }
  for (; i < end; ++i) adam_scalar(s, t, i);
}

}  // namespace
