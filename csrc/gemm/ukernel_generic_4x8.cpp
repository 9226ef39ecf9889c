// f32_gemm_4x8_generic: the portable reference micro-kernel, plain C++ for the baseline ISA
// (any CPU). Same contract as the SIMD kernels (ukernel.h).
#include <cmath>

#include "gemm/ukernel.h"

namespace {

constexpr int kMR = 4;
constexpr int kNR = 8;
constexpr int64_t kMC = 128;
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 2048;
static_assert(kMC % kMR == 0 && kNC % kNR == 0, "blocks hold whole micro-panels");

void ukernel_4x8(int64_t k, const float* a, int64_t rs_a, int64_t cs_a, const float* b,
                 int64_t rs_b, float* c, int64_t rs_c, float alpha, float beta) {
  float acc[kMR][kNR] = {};
  for (int64_t p = 0; p < k; ++p) {
    for (int i = 0; i < kMR; ++i) {
      float ai = a[i * rs_a];
      for (int j = 0; j < kNR; ++j) acc[i][j] += ai * b[j];
    }
    a += cs_a;
    b += rs_b;
  }
  // the SIMD kernels' epilogue: acc * alpha, or fma(acc, alpha, c * beta)
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < kNR; ++j)
      c[i * rs_c + j] = beta == 0.0f ? acc[i][j] * alpha : std::fma(acc[i][j], alpha, c[i * rs_c + j] * beta);
}

}  // namespace

namespace ember::gemm {

const UKernel f32_gemm_4x8_generic{"f32_gemm_4x8_generic", kMR, kNR,
                                   kMC, kKC, kNC, &ukernel_4x8, nullptr};

}  // namespace ember::gemm
