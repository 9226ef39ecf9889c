// Packing: copies blocks of A and B into the contiguous micro-panel layouts the micro-kernels
// stream through, zero-padding the last partial panel so edge tiles never read out of bounds.
#pragma once
#include <cstdint>

#include "gemm/gemm.h"

namespace ember::gemm {

// A (mc, kc) -> ceil(mc / mr) micro-panels of mr rows: dst[q * mr * kc + p * mr + i] = A(q*mr + i, p).
void pack_a(int64_t mc, int64_t kc, ConstMatrix a, int mr, float* dst);

// B (kc, nc) -> ceil(nc / nr) micro-panels of nr columns: dst[q * nr * kc + p * nr + j] = B(p, q*nr + j).
void pack_b(int64_t kc, int64_t nc, ConstMatrix b, int nr, float* dst);

}  // namespace ember::gemm
