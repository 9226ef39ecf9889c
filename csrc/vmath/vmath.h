// Elementwise exp / sigmoid / tanh over float32 arrays, one implementation per ISA
// (common/simd_math.h for the SIMD ones). y may be x.
#pragma once
#include <cstdint>

namespace ember::vmath {

using ArrayFn = void (*)(const float* x, float* y, int64_t n);

struct VMath {
  const char* name;
  ArrayFn exp;
  ArrayFn sigmoid;
  ArrayFn tanh;
};

extern const VMath f32_vmath_generic;
#if defined(EMBER_X86)
extern const VMath f32_vmath_avx2;
extern const VMath f32_vmath_avx512;
#endif

}  // namespace ember::vmath
