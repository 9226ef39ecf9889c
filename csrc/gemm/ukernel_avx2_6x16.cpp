// f32_gemm_6x16_avx2: a 6 x 16 register tile = 12 ymm accumulators + 2 B vectors + 1 broadcast.
// Compiled with -mavx2 -mfma only.
#include "common/simd_avx2.h"
#include "gemm/ukernel.h"
#include "gemm/ukernel_simd.h"

namespace {

constexpr int kMR = 6;
constexpr int kNV = 2;
constexpr int64_t kMC = 144;
constexpr int64_t kKC = 384;
constexpr int64_t kNC = 4080;
static_assert(kMC % kMR == 0 && kNC % (kNV * Avx2::width) == 0, "blocks hold whole micro-panels");

}  // namespace

namespace ember::gemm {

static_assert(kMR <= kMaxMR && kNV * Avx2::width <= kMaxNR, "tile exceeds the edge scratch tile");

const UKernel f32_gemm_6x16_avx2{"f32_gemm_6x16_avx2", kMR, kNV * Avx2::width,
                                 kMC, kKC, kNC, &ukernel<Avx2, kMR, kNV>, nullptr};

}  // namespace ember::gemm
