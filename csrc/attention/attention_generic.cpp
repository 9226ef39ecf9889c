// f32_sdpa_4x4_generic: the attention kernels of attention_simd.h on a one-lane "vector" of plain
// floats, for any CPU: the same algorithm and arithmetic as the SIMD paths.
#include <cstdint>

#include "attention/attention.h"
#include "attention/attention_simd.h"

namespace {

// The vector-type interface of common/simd_avx2.h with one float lane.
struct Scalar {
  using Reg = float;
  static constexpr int width = 1;
  static Reg zero() { return 0.0f; }
  static Reg set1(float x) { return x; }
  static Reg load(const float* p) { return *p; }
  static Reg broadcast(const float* p) { return *p; }
  static void store(float* p, Reg v) { *p = v; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg sub(Reg a, Reg b) { return a - b; }
  static Reg mul(Reg a, Reg b) { return a * b; }
  static Reg max(Reg a, Reg b) { return a > b ? a : b; }  // b when either is NaN, as maxps
  static Reg min(Reg a, Reg b) { return a < b ? a : b; }  // b when either is NaN, as minps
  static Reg fma(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg fnma(Reg a, Reg b, Reg c) { return c - a * b; }
  static Reg round(Reg a) { return __builtin_nearbyintf(a); }
  static Reg ldexp(Reg a, Reg n) { return __builtin_ldexpf(a, static_cast<int>(n)); }
  static Reg keep_nan(Reg a, Reg b) { return a != a ? a : b; }
  static float reduce_add(Reg a) { return a; }
  static float reduce_max(Reg a) { return a; }
};

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
