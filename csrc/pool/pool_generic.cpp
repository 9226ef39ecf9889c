// f32_pool_generic: the pooling kernels of pool_simd.h on a one-lane "vector" of plain C++
// floats, for the baseline ISA (any CPU). The reference path the SIMD ones are tested against.
#include <cstdint>

#include "pool/pool.h"
#include "pool/pool_simd.h"
#include "common/simd_scalar.h"

namespace {

// The one-lane vector type plus the pooling operations (as pool/vec_avx2.h extends Avx2).
struct PoolScalar : Scalar {
  using Mask = bool;
  using IReg = int32_t;
  static Mask take(Reg v, Reg best) { return v > best || __builtin_isnan(v); }
  static Reg select(Mask m, Reg a, Reg b) { return m ? a : b; }
  static IReg iset1(int32_t i) { return i; }
  static IReg iselect(Mask m, IReg a, IReg b) { return m ? a : b; }
  static void store_index(int64_t* p, IReg i, int32_t base, int32_t) { *p = int64_t{i} + base; }
  static Reg load_even(const float* p) { return p[0]; }
  static Reg load_odd(const float* p) { return p[1]; }
  static void add_pairs(float* p, Reg e, Reg o) {
    p[0] += e;
    p[1] += o;
  }
  static Reg zero_below(Reg v, int k) { return k > 0 ? 0.0f : v; }
};

}  // namespace

namespace ember::pool {

const Kernels f32_pool_generic{"f32_pool_generic",
                               &max_pool_rows<PoolScalar>,
                               &avg_pool_rows<PoolScalar>,
                               &avg_pool_backward_planes<PoolScalar>,
                               &adaptive_avg_pool_rows<PoolScalar>,
                               &adaptive_avg_pool_backward_planes<PoolScalar>};

}  // namespace ember::pool
