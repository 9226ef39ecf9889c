// The GEMM micro-kernel interface shared by every ISA.
#pragma once
#include <cstdint>

namespace ember::gemm {

// c[0:MR, 0:NR] = alpha * a @ b + beta * c for one full register tile.
//   a(i, p) = a[i * rs_a + p * cs_a]  (a packed micro-panel has rs_a = 1, cs_a = MR)
//   b(p, j) = b[p * rs_b + j]         (a packed micro-panel has rs_b = NR)
//   c(i, j) = c[i * rs_c + j]
// With beta == 0, c is only written (NaN in it does not propagate).
using UKernelFn = void (*)(int64_t k, const float* a, int64_t rs_a, int64_t cs_a, const float* b,
                           int64_t rs_b, float* c, int64_t rs_c, float alpha, float beta);

// A micro-kernel and the cache blocking measured best around it.
struct UKernel {
  const char* name;
  int mr;      // rows of the register tile
  int nr;      // columns of the register tile
  int64_t mc;  // rows of A per packed block (multiple of mr): the A block stays in L2
  int64_t kc;  // depth per packed panel: one A and one B micro-panel stay in L1
  int64_t nc;  // columns of B per packed panel (multiple of nr): the B panel stays in L3
  UKernelFn fn;
  // A smaller register tile for the products whose edges this one would mostly pad (a 10-wide
  // Linear output, a convolution over 4x4 positions), or null.
  const UKernel* narrow;
};

// Largest register tile of any ISA: sizes the scratch tile used for edges.
constexpr int kMaxMR = 14;
constexpr int kMaxNR = 32;

extern const UKernel f32_gemm_4x8_generic;
#if defined(EMBER_X86)
extern const UKernel f32_gemm_6x16_avx2;
extern const UKernel f32_gemm_14x32_avx512;
#endif

}  // namespace ember::gemm
