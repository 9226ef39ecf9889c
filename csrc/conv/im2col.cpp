// im2col: the column matrix of an image, cols (C*R*S, P*Q), one row per (channel, kernel offset).
// Portable C++: a copy bound by memory, whose contiguous case the compiler vectorises.
#include <omp.h>

#include <algorithm>

#include "conv/conv.h"
#include "conv/index.h"
#include "cpu/threads.h"

namespace ember::conv {

int64_t output_size(int64_t in, int64_t pad_before, int64_t pad_after, int64_t kernel,
                    int64_t stride, int64_t dilation) {
  const int64_t span = in + pad_before + pad_after - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// cols[(c*R + r)*S + s][l - l0] = x[c, p*sh - ph + r*dh, q*sw - pw + s*dw]: x (C, H, W) strided.
void im2col(const Geometry& g, Tensor4 x, int64_t c0, int64_t c1, int64_t l0, int64_t l1,
            float* cols, int64_t ld) {
  if (l0 >= l1) return;
  const RowSpan rows = rows_of(l0, l1, g.q);
  const int64_t step = g.stride_w * x.s3;  // input elements between neighbouring outputs
  // Kernel offsets outermost: the output columns that read inside the image depend on s only,
  // and cost two divisions to find.
  for (int64_t r = 0; r < g.r; ++r)
    for (int64_t s = 0; s < g.s; ++s) {
      const int64_t off_w = s * g.dil_w - g.pad_w;
      const Range inside = valid_outputs(off_w, g.stride_w, g.w, g.q);
      for (int64_t c = c0; c < c1; ++c) {
        float* row = cols + ((c * g.r + r) * g.s + s) * ld;
        // One output row at a time: a zero run, a copied run, a zero run.
        for (int64_t p = rows.first; p <= rows.last; ++p) {
          int64_t qa, qb;
          columns_of(p, l0, l1, g.q, rows, qa, qb);
          float* dst = row + (p * g.q + qa - l0);  // output column q goes to dst[q - qa]
          const int64_t ih = p * g.stride_h - g.pad_h + r * g.dil_h;
          if (ih < 0 || ih >= g.h) {
            std::fill(dst, dst + (qb - qa), 0.0f);
            continue;
          }
          const int64_t lo = std::clamp(inside.lo, qa, qb), hi = std::clamp(inside.hi, lo, qb);
          std::fill(dst, dst + (lo - qa), 0.0f);
          if (lo < hi) {
            const float* src = x.data + (c * x.s1 + ih * x.s2 + (lo * g.stride_w + off_w) * x.s3);
            float* out = dst + (lo - qa);
            if (step == 1) {
              std::copy(src, src + (hi - lo), out);
            } else {
              for (int64_t i = 0; i < hi - lo; ++i) out[i] = src[i * step];
            }
          }
          std::fill(dst + (hi - qa), dst + (qb - qa), 0.0f);
        }
      }
    }
}

// Threads over images x channels: each (n, c) fills its own R*S rows of image n's matrix.
void im2col_batch(const Geometry& g, Tensor4 x, float* cols) {
  const int64_t rows = g.c * g.r * g.s, positions = g.p * g.q;
#pragma omp parallel for num_threads(cpu::num_threads()) schedule(static)
  for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
    const int64_t n = nc / g.c, c = nc % g.c;
    im2col(g, {x.data + n * x.s0, 0, x.s1, x.s2, x.s3}, c, c + 1, 0, positions,
           cols + n * rows * positions, positions);
  }
}

}  // namespace ember::conv
