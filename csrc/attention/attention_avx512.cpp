// f32_sdpa_14x32_avx512: the attention kernels on 14 x 32 register tiles (28 zmm accumulators).
// Compiled with -mavx512f/bw/dq/vl only.
#include "attention/attention.h"
#include "attention/attention_simd.h"
#include "common/simd_avx512.h"

namespace {

// The AVX2 file's blocking scaled to this tile (not measured: no AVX-512 machine at hand).
constexpr int kMR = 14;
constexpr int kNV = 2;
struct Blocks {
  static constexpr int64_t fwd_rows = 252;
  static constexpr int64_t fwd_keys = 256;
  static constexpr int64_t fwd_group = 4;
  static constexpr int64_t bwd_rows = 112;
  static constexpr int64_t bwd_keys = 128;
};
using Kernel = Sdpa<Avx512, kMR, kNV, Blocks>;

}  // namespace

namespace ember::attention {

const Kernels f32_sdpa_avx512{"f32_sdpa_14x32_avx512",
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
