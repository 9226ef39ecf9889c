// f32_sdpa_4x4_generic: the attention kernels of attention_simd.h on a one-lane "vector" of plain
// floats, for any CPU: the same algorithm and arithmetic as the SIMD paths.
#include <cstdint>

#include "attention/attention.h"
#include "attention/attention_simd.h"
#include "common/simd_scalar.h"

namespace {

constexpr int kMR = 4;
constexpr int kNV = 4;
struct Blocks {
  static constexpr int64_t fwd_rows = 64;
  static constexpr int64_t fwd_keys = 32;
  static constexpr int64_t fwd_group = 4;
  static constexpr int64_t bwd_rows = 32;
  static constexpr int64_t bwd_keys = 32;
};
using Kernel = Sdpa<Scalar, kMR, kNV, Blocks>;

}  // namespace

namespace ember::attention {

const Kernels f32_sdpa_generic{"f32_sdpa_4x4_generic",
                               kMR,
                               Blocks::fwd_rows,
                               Blocks::fwd_keys,
                               Blocks::bwd_rows,
                               Blocks::bwd_keys,
                               Kernel::NR,
                               &Kernel::forward_scratch,
                               &Kernel::backward_scratch,
                               &Kernel::forward_block,
                               &Kernel::backward_chunk};

}  // namespace ember::attention
