// The AVX-512 vector type for the SIMD templates (gemm/ukernel_simd.h, common/simd_math.h).
// Include only from files compiled with -mavx512f/bw/dq/vl: everything here is in an anonymous
// namespace so that no AVX-512 instruction can leak into another ISA's code through the linker.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace {

struct Avx512 {
  using Reg = __m512;
  static constexpr int width = 16;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float x) { return _mm512_set1_ps(x); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static Reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm512_min_ps(a, b); }
  static Reg sqrt(Reg a) { return _mm512_sqrt_ps(a); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }   // a * b + c
  static Reg fnma(Reg a, Reg b, Reg c) { return _mm512_fnmadd_ps(a, b, c); } // c - a * b
  static Reg round(Reg a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // a * 2^n for integral n in [-126, 127] held as floats
  static Reg ldexp(Reg a, Reg n) { return _mm512_scalef_ps(a, n); }
  // lanes where a is NaN keep a, the others take b
  static Reg keep_nan(Reg a, Reg b) { return _mm512_mask_mov_ps(b, _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a); }
  static Reg abs(Reg a) { return _mm512_abs_ps(a); }
  // |mag| with the sign of sign
  static Reg copysign(Reg mag, Reg sign) {
    const Reg s = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(s, mag), _mm512_and_ps(s, sign));
  }
  // lanes where x < t take a, the others (and NaN) take b
  static Reg select_lt(Reg x, Reg t, Reg a, Reg b) { return _mm512_mask_mov_ps(b, _mm512_cmp_ps_mask(x, t, _CMP_LT_OQ), a); }
  static float reduce_add(Reg a) { return _mm512_reduce_add_ps(a); }
  static float reduce_max(Reg a) { return _mm512_reduce_max_ps(a); }
};

}  // namespace
