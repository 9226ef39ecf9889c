// The array loops of vmath.h over a vector type V. The tail (n % width elements) goes through a
// padded vector too, so every element gets the same arithmetic.
#pragma once
#include <cstdint>

#include "common/simd_math.h"

namespace {

template <class V, typename V::Reg (*F)(typename V::Reg)>
void apply(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) V::store(y + i, F(V::load(x + i)));
  if (i < n) {
    float tail[V::width] = {};
    for (int64_t j = i; j < n; ++j) tail[j - i] = x[j];
    V::store(tail, F(V::load(tail)));
    for (int64_t j = i; j < n; ++j) y[j] = tail[j - i];
  }
}

}  // namespace
