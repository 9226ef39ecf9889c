// f32_sdpa_6x16_avx2: the attention kernels on 6 x 16 register tiles (12 ymm accumulators).
// Compiled with -mavx2 -mfma only.
#include "attention/attention.h"
#include "attention/attention_simd.h"
#include "common/simd_avx2.h"

namespace {

constexpr int kMR = 6;
constexpr int kNV = 2;
struct Blocks {
  static constexpr int64_t fwd_rows = 258;
  static constexpr int64_t fwd_keys = 256;
  static constexpr int64_t fwd_group = 4;
  static constexpr int64_t bwd_rows = 96;
  static constexpr int64_t bwd_keys = 128;
};
using Kernel = Sdpa<Avx2, kMR, kNV, Blocks>;

}  // namespace

namespace ember::attention {

const Kernels f32_sdpa_avx2{"f32_sdpa_6x16_avx2",
                          kMR,
                          Blocks::fwd_rows,
                          Blocks::bwd_rows,
                          Blocks::bwd_keys,
                          Kernel::NR,
                          &Kernel::forward_scratch,
                          &Kernel::backward_scratch,
                          &Kernel::forward_block,
                          &Kernel::backward_chunk};

}  // namespace ember::attention
