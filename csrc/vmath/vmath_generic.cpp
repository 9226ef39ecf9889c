// f32_vmath_generic: exp / sigmoid / tanh with libm, for any CPU.
#include <cmath>

#include "vmath/vmath.h"

namespace ember::vmath {
namespace {

void exp_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void sigmoid_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
}

void tanh_array(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

}  // namespace

const VMath f32_vmath_generic{"f32_vmath_generic", &exp_array, &sigmoid_array, &tanh_array};

}  // namespace ember::vmath
