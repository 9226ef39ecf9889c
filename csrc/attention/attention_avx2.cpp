// f32_sdpa_6x16_avx2: the attention kernels on 6 x 16 register tiles (12 ymm accumulators).
// Compiled with -mavx2 -mfma only.
#include "attention/attention.h"
#include "attention/attention_simd.h"
#include "common/simd_avx2.h"

namespace {

// Measured at (B, H, L, D) = (1, 8, 512, 64) on one thread of a shared 2-core Zen 3, as speed
// relative to PyTorch's SDPA in the same process (noise about +-5%): 250-odd rows per forward
// item beat 48-96 (1.16x vs 1.0x: every item re-packs each key block it visits); fwd_keys
// 64..256, fwd_group 1..8, bwd_rows 48..192 and bwd_keys 64..256 were within the noise
// (forward + backward 1.2-1.35x). These register tiles beat running the two products through
// ember::gemm::sgemm_with on the same blocks (1.10x vs 0.96x), which packs P again and
// rescales the output in a separate pass.
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
                            Blocks::fwd_keys,
                            Blocks::bwd_rows,
                            Blocks::bwd_keys,
                            Kernel::NR,
                            &Kernel::forward_scratch,
                            &Kernel::backward_scratch,
                            &Kernel::forward_block,
                            &Kernel::backward_chunk};

}  // namespace ember::attention
