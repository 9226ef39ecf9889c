// f32_gemm_14x32_avx512: a 14 x 32 register tile = 28 zmm accumulators + 2 B vectors + 1
// broadcast, 31 of the 32 zmm registers. Compiled with -mavx512f/bw/dq/vl only.
#include "common/simd_avx512.h"
#include "gemm/ukernel.h"
#include "gemm/ukernel_simd.h"

namespace {

constexpr int kMR = 14;
constexpr int kNV = 2;
constexpr int64_t kMC = 168;
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 4096;
static_assert(kMC % kMR == 0 && kNC % (kNV * Avx512::width) == 0, "blocks hold whole micro-panels");

}  // namespace

namespace ember::gemm {

static_assert(kMR <= kMaxMR && kNV * Avx512::width <= kMaxNR, "tile exceeds the edge scratch tile");

const UKernel f32_gemm_14x32_avx512{"f32_gemm_14x32_avx512", kMR, kNV * Avx512::width,
                                    kMC, kKC, kNC,
                                    &ukernel<Avx512, kMR, kNV>, &f32_gemm_6x16_avx2};

}  // namespace ember::gemm
