// f32_pool_avx512: the pooling kernels of pool_simd.h on 16-lane AVX-512 vectors. Rows with fewer
// than 16 vector columns (a 26 x 26 plane pooled 2 x 2 has 13) run on 8-lane AVX2 vectors rather
// than on the scalar loops. Compiled with -mavx512f/bw/dq/vl only.

// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm*_undefined_*() operands
// (GCC bug 105593); the warning says nothing about this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "pool/pool.h"
#include "pool/pool_simd.h"
#include "pool/vec_avx2.h"
#include "pool/vec_avx512.h"

namespace {

using ember::pool::ConstPlanes;

// True if the vector loops fill at least one 16-lane vector per output row.
bool wide(const Window& g) {
  const Span s = vector_span(g, PoolAvx512::width);
  return s.hi > s.lo;
}

// Adaptive windows: true if a window row holds at least one 16-lane vector.
bool wide_adaptive(const Window& g) { return g.Q > 0 && g.W / g.Q >= PoolAvx512::width; }

void max_pool_rows_avx512(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, float* y,
                          int64_t* idx) {
  (wide(g) ? max_pool_rows<PoolAvx512> : max_pool_rows<PoolAvx2>)(g, x, r0, r1, y, idx);
}

void avg_pool_rows_avx512(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, float* y) {
  (wide(g) ? avg_pool_rows<PoolAvx512> : avg_pool_rows<PoolAvx2>)(g, x, r0, r1, y);
}

void avg_pool_backward_planes_avx512(const Window& g, const ConstPlanes& dy, int64_t i0, int64_t i1,
                                     float* dx) {
  (wide(g) ? avg_pool_backward_planes<PoolAvx512> : avg_pool_backward_planes<PoolAvx2>)(g, dy, i0,
                                                                                        i1, dx);
}

void adaptive_avg_pool_rows_avx512(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1,
                                   float* y) {
  (wide_adaptive(g) ? adaptive_avg_pool_rows<PoolAvx512>
                    : adaptive_avg_pool_rows<PoolAvx2>)(g, x, r0, r1, y);
}

void adaptive_avg_pool_backward_planes_avx512(const Window& g, const ConstPlanes& dy, int64_t i0,
                                              int64_t i1, float* dx) {
  (wide_adaptive(g) ? adaptive_avg_pool_backward_planes<PoolAvx512>
                    : adaptive_avg_pool_backward_planes<PoolAvx2>)(g, dy, i0, i1, dx);
}

}  // namespace

namespace ember::pool {

const Kernels f32_pool_avx512{"f32_pool_avx512",
                              &max_pool_rows_avx512,
                              &avg_pool_rows_avx512,
                              &avg_pool_backward_planes_avx512,
                              &adaptive_avg_pool_rows_avx512,
                              &adaptive_avg_pool_backward_planes_avx512};

}  // namespace ember::pool
