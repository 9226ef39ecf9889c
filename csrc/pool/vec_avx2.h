// The AVX2 vector type with the pooling operations of pool/pool_simd.h. Include only from files
// compiled with -mavx2 -mfma: like common/simd_avx2.h, everything is in an anonymous namespace.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common/simd_avx2.h"

namespace {

struct PoolAvx2 : Avx2 {
  using Mask = __m256;
  using IReg = __m256i;
  // lanes where v > best or v is NaN: once a NaN is taken no number replaces it
  static Mask take(Reg v, Reg best) {
    return _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static Reg select(Mask m, Reg a, Reg b) { return _mm256_blendv_ps(b, a, m); }
  static IReg iset1(int32_t i) { return _mm256_set1_epi32(i); }
  static IReg iselect(Mask m, IReg a, IReg b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(b), _mm256_castsi256_ps(a), m));
  }
  // p[l] = i[l] + base + l * step, widened to int64
  static void store_index(int64_t* p, IReg i, int32_t base, int32_t step) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i v =
        _mm256_add_epi32(i, _mm256_add_epi32(_mm256_set1_epi32(base),
                                             _mm256_mullo_epi32(lane, _mm256_set1_epi32(step))));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + 4),
                        _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
  }
  // lane l = p[2l]: shuffle gives x0 x2 x8 x10 | x4 x6 x12 x14, the 64-bit permute sorts it
  static Reg load_even(const float* p) {
    const __m256 s = _mm256_shuffle_ps(load(p), load(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // lane l = p[2l + 1]
  static Reg load_odd(const float* p) {
    const __m256 s = _mm256_shuffle_ps(load(p), load(p + 8), _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // p[2l] += e[l], p[2l + 1] += o[l]: unpack gives e0 o0 e1 o1 | e4 o4 e5 o5 and the high
  // halves; the 128-bit permutes put them in order
  static void add_pairs(float* p, Reg e, Reg o) {
    const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
    store(p, add(load(p), _mm256_permute2f128_ps(lo, hi, 0x20)));
    store(p + 8, add(load(p + 8), _mm256_permute2f128_ps(lo, hi, 0x31)));
  }
  static Reg zero_below(Reg v, int k) {
    const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_ps(v, _mm256_cmp_ps(lane, _mm256_set1_ps(static_cast<float>(k)), _CMP_GE_OQ));
  }
};

}  // namespace
