// col2im: the adjoint of im2col, scattering a column matrix back onto its image and summing the
// windows that overlap. Portable C++ (memory-bound).
#include <omp.h>

#include <algorithm>

#include "conv/conv.h"
#include "conv/index.h"
#include "cpu/threads.h"

namespace ember::conv {

// dx[c, p*sh - ph + r*dh, q*sw - pw + s*dw] += cols((c*R + r)*S + s, l - l0): dx (C, H, W)
// contiguous, cols(i, j) = cols[i*rs + j*cs].
void col2im(const Geometry& g, const float* cols, int64_t rs, int64_t cs, int64_t c0, int64_t c1,
            int64_t l0, int64_t l1, float* dx) {
  if (l0 >= l1) return;
  const RowSpan rows = rows_of(l0, l1, g.q);
  // Kernel offsets outermost, as in im2col; each element of dx sums its windows in one fixed
  // order all the same.
  for (int64_t r = 0; r < g.r; ++r)
    for (int64_t s = 0; s < g.s; ++s) {
      const int64_t off_w = s * g.dil_w - g.pad_w;
      const Range inside = valid_outputs(off_w, g.stride_w, g.w, g.q);
      for (int64_t c = c0; c < c1; ++c) {
        float* plane = dx + c * g.h * g.w;
        const float* row = cols + ((c * g.r + r) * g.s + s) * rs;
        for (int64_t p = rows.first; p <= rows.last; ++p) {
          const int64_t ih = p * g.stride_h - g.pad_h + r * g.dil_h;
          if (ih < 0 || ih >= g.h) continue;
          int64_t qa, qb;
          columns_of(p, l0, l1, g.q, rows, qa, qb);
          const int64_t lo = std::clamp(inside.lo, qa, qb), hi = std::clamp(inside.hi, lo, qb);
          if (lo == hi) continue;
          const float* src = row + (p * g.q + lo - l0) * cs;
          float* dst = plane + ih * g.w + lo * g.stride_w + off_w;
          if (g.stride_w == 1 && cs == 1) {
            for (int64_t i = 0; i < hi - lo; ++i) dst[i] += src[i];
          } else {
            for (int64_t i = 0; i < hi - lo; ++i) dst[i * g.stride_w] += src[i * cs];
          }
        }
      }
    }
}

// Threads over images x channels: each (n, c) owns one plane of x, zeroes it and sums into it.
void col2im_batch(const Geometry& g, Tensor4 cols, float* x) {
  const int64_t plane = g.h * g.w, positions = g.p * g.q;
#pragma omp parallel for num_threads(cpu::num_threads()) schedule(static)
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const int64_t n = nc / g.c, c = nc % g.c;
    float* image = x + n * g.c * plane;
    std::fill(image + c * plane, image + (c + 1) * plane, 0.0f);
    col2im(g, cols.data + n * cols.s0, cols.s1, cols.s2, c, c + 1, 0, positions, image);
  }
}

}  // namespace ember::conv
