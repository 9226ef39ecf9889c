// The AVX-512 vector type with the pooling operations of pool/pool_simd.h. Include only from
// files compiled with -mavx512f/bw/dq/vl: like common/simd_avx512.h, everything is in an
// anonymous namespace.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common/simd_avx512.h"

namespace {

struct PoolAvx512 : Avx512 {
  using Mask = __mmask16;
  using IReg = __m512i;
  // lanes where v > best or v is NaN: once a NaN is taken no number replaces it
  static Mask take(Reg v, Reg best) {
    return static_cast<Mask>(_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                             _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
  }
  static Reg select(Mask m, Reg a, Reg b) { return _mm512_mask_blend_ps(m, b, a); }
  static IReg iset1(int32_t i) { return _mm512_set1_epi32(i); }
  static IReg iselect(Mask m, IReg a, IReg b) { return _mm512_mask_blend_epi32(m, b, a); }
  // p[l] = i[l] + base + l * step, widened to int64
  static void store_index(int64_t* p, IReg i, int32_t base, int32_t step) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i v =
        _mm512_add_epi32(i, _mm512_add_epi32(_mm512_set1_epi32(base),
                                             _mm512_mullo_epi32(lane, _mm512_set1_epi32(step))));
    _mm512_storeu_si512(p, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
    _mm512_storeu_si512(p + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
  }
  // lane l = p[2l]
  static Reg load_even(const float* p) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(load(p), even, load(p + 16));
  }
  // lane l = p[2l + 1]
  static Reg load_odd(const float* p) {
    const __m512i odd =
        _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_permutex2var_ps(load(p), odd, load(p + 16));
  }
  // p[2l] += e[l], p[2l + 1] += o[l] (index 16 + l picks o[l])
  static void add_pairs(float* p, Reg e, Reg o) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    store(p, add(load(p), _mm512_permutex2var_ps(e, lo, o)));
    store(p + 16, add(load(p + 16), _mm512_permutex2var_ps(e, hi, o)));
  }
  static Reg zero_below(Reg v, int k) {
    return _mm512_maskz_mov_ps(static_cast<__mmask16>(0xFFFFu << k), v);
  }
};

}  // namespace
