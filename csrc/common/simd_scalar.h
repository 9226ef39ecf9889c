// The vector-type interface of common/simd_avx2.h with one float lane, for the generic (any CPU)
// instantiations of the SIMD templates: the same algorithm and arithmetic as the SIMD paths.
// Anonymous namespace, like the other vector types.
#pragma once
#include <cstdint>

namespace {

struct Scalar {
  using Reg = float;
  static constexpr int width = 1;
  static Reg zero() { return 0.0f; }
  static Reg set1(float x) { return x; }
  static Reg load(const float* p) { return *p; }
  static Reg broadcast(const float* p) { return *p; }
  static void store(float* p, Reg v) { *p = v; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg sub(Reg a, Reg b) { return a - b; }
  static Reg mul(Reg a, Reg b) { return a * b; }
  static Reg div(Reg a, Reg b) { return a / b; }
  static Reg max(Reg a, Reg b) { return a > b ? a : b; }  // b when either is NaN, as maxps
  static Reg min(Reg a, Reg b) { return a < b ? a : b; }  // b when either is NaN, as minps
  static Reg fma(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg fnma(Reg a, Reg b, Reg c) { return c - a * b; }
  static Reg round(Reg a) { return __builtin_nearbyintf(a); }
  static Reg ldexp(Reg a, Reg n) { return __builtin_ldexpf(a, static_cast<int>(n)); }
  static Reg keep_nan(Reg a, Reg b) { return a != a ? a : b; }
  static float reduce_add(Reg a) { return a; }
  static float reduce_max(Reg a) { return a; }
};

}  // namespace
