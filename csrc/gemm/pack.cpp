#include "gemm/pack.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace ember::gemm {
namespace {

// The panel widths are template arguments so the copies of whole panels vectorise.
template <int MR>
void pack_a_panels(int64_t mc, int64_t kc, ConstMatrix a, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += MR * kc) {
    const int64_t rows = std::min<int64_t>(MR, mc - i0);
    const float* src = a.data + i0 * a.rs;
    if (rows == MR && a.cs == 1) {  // row-major A: MR rows advance together along k
      const float* row[MR];
      for (int i = 0; i < MR; ++i) row[i] = src + i * a.rs;
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = row[i][p];
    } else if (rows == MR && a.rs == 1) {  // column-major A: each panel column is contiguous
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = src[p * a.cs + i];
    } else {  // any strides, or the last rows: zero-pad past mc
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) dst[p * MR + i] = i < rows ? src[i * a.rs + p * a.cs] : 0.0f;
    }
  }
}

template <int NR>
void pack_b_panels(int64_t kc, int64_t nc, ConstMatrix b, float* dst) {
  const int64_t full = nc / NR * NR;
  if (b.cs == 1) {
    // Row-major B: walk each row once, left to right, dealing its NR-wide pieces to the panels.
    // Reading panel by panel instead strides over rows and defeats the hardware prefetcher
    // (4 GB/s instead of memory speed on a 4096-wide B).
    for (int64_t p = 0; p < kc; ++p) {
      const float* row = b.data + p * b.rs;
      for (int64_t j0 = 0; j0 < full; j0 += NR) {
        float* out = dst + j0 * kc + p * NR;
        for (int j = 0; j < NR; ++j) out[j] = row[j0 + j];
      }
    }
  } else if (b.rs == 1) {  // column-major B: NR columns advance together along k
    for (int64_t j0 = 0; j0 < full; j0 += NR) {
      const float* col[NR];
      for (int j = 0; j < NR; ++j) col[j] = b.data + (j0 + j) * b.cs;
      float* out = dst + j0 * kc;
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) out[p * NR + j] = col[j][p];
    }
  } else {  // any strides
    for (int64_t j0 = 0; j0 < full; j0 += NR) {
      float* out = dst + j0 * kc;
      for (int64_t p = 0; p < kc; ++p)
        for (int j = 0; j < NR; ++j) out[p * NR + j] = b.data[p * b.rs + (j0 + j) * b.cs];
    }
  }
  if (full < nc) {  // the last columns, zero-padded to a whole panel
    const int64_t cols = nc - full;
    float* out = dst + full * kc;
    for (int64_t p = 0; p < kc; ++p)
      for (int j = 0; j < NR; ++j) out[p * NR + j] = j < cols ? b.data[p * b.rs + (full + j) * b.cs] : 0.0f;
  }
}

}  // namespace

void pack_a(int64_t mc, int64_t kc, ConstMatrix a, int mr, float* dst) {
  switch (mr) {
    case 4: return pack_a_panels<4>(mc, kc, a, dst);
    case 6: return pack_a_panels<6>(mc, kc, a, dst);
    case 14: return pack_a_panels<14>(mc, kc, a, dst);
    default: throw std::logic_error("pack_a: no packing routine for mr = " + std::to_string(mr));
  }
}

void pack_b(int64_t kc, int64_t nc, ConstMatrix b, int nr, float* dst) {
  switch (nr) {
    case 8: return pack_b_panels<8>(kc, nc, b, dst);
    case 16: return pack_b_panels<16>(kc, nc, b, dst);
    case 32: return pack_b_panels<32>(kc, nc, b, dst);
    default: throw std::logic_error("pack_b: no packing routine for nr = " + std::to_string(nr));
  }
}

}  // namespace ember::gemm
