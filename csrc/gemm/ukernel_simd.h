// The register-tile micro-kernel, written once over a SIMD vector type V and instantiated by each
// ISA's file (ukernel_avx2_6x16.cpp, ukernel_avx512_14x32.cpp) with that ISA's flags.
//
// Everything here is in an anonymous namespace on purpose: each ISA file gets its own private
// copy, so the linker can never merge an AVX-512 instantiation into the AVX2 path (or the
// reverse). Do not include standard-library templates here for the same reason.
#pragma once
#include <cstdint>

namespace {

// A compile-time stride, so that the packed layout's offsets become immediates.
template <int64_t N>
struct Fixed {
  constexpr operator int64_t() const { return N; }
};

// acc = a @ b over k, then c = alpha * acc + beta * c. See UKernelFn in ukernel.h.
// The tile is MR rows x NV vectors of V::width floats.
template <class V, int MR, int NV, class RowStride, class ColStride>
inline __attribute__((always_inline)) void ukernel_tile(int64_t k, const float* a, RowStride rs_a,
                                                        ColStride cs_a, const float* b, int64_t rs_b,
                                                        float* c, int64_t rs_c, float alpha,
                                                        float beta) {
  using Reg = typename V::Reg;
  // Start fetching the C tile now; it is needed only after the k loop.
#pragma GCC unroll 64
  for (int i = 0; i < MR; ++i) {
    __builtin_prefetch(c + i * rs_c, 1);
    __builtin_prefetch(c + i * rs_c + NV * V::width - 1, 1);
  }
  Reg acc[MR][NV];
#pragma GCC unroll 64
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();

#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    Reg bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * V::width);
#pragma GCC unroll 64
    for (int i = 0; i < MR; ++i) {
      Reg av = V::broadcast(a + i * static_cast<int64_t>(rs_a));
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
    }
    a += static_cast<int64_t>(cs_a);
    b += rs_b;
  }

  Reg valpha = V::set1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 64
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) V::store(c + i * rs_c + j * V::width, V::mul(acc[i][j], valpha));
  } else {
    Reg vbeta = V::set1(beta);
#pragma GCC unroll 64
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) {
        float* cij = c + i * rs_c + j * V::width;
        V::store(cij, V::fma(acc[i][j], valpha, V::mul(V::load(cij), vbeta)));
      }
  }
}

// The UKernelFn entry point: packed A (rs_a = 1, cs_a = MR) gets the fixed-stride loop.
template <class V, int MR, int NV>
void ukernel(int64_t k, const float* a, int64_t rs_a, int64_t cs_a, const float* b, int64_t rs_b,
             float* c, int64_t rs_c, float alpha, float beta) {
  if (rs_a == 1 && cs_a == MR)
    ukernel_tile<V, MR, NV>(k, a, Fixed<1>{}, Fixed<MR>{}, b, rs_b, c, rs_c, alpha, beta);
  else
    ukernel_tile<V, MR, NV>(k, a, rs_a, cs_a, b, rs_b, c, rs_c, alpha, beta);
}

}  // namespace
