// Depthwise convolution (groups == C) by direct loops over the kernel offsets: output channel k
// of image n is a weighted sum of R*S shifted copies of input channel c = k / (K/C). As a GEMM
// each group would be a matrix-vector product; here every inner loop runs along a row (q) and
// the contiguous ones vectorise.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "conv/conv.h"
#include "conv/index.h"
#include "cpu/threads.h"

namespace ember::conv {
namespace {

// dst[i] += a * src[i * step] for i < n.
void axpy(int64_t n, float a, const float* src, int64_t step, float* dst) {
  if (step == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i * step];
  }
}

// dst[i * dst_step] += a * src[i * src_step] for i < n.
void axpy_scatter(int64_t n, float a, const float* src, int64_t src_step, float* dst,
                  int64_t dst_step) {
  if (src_step == 1 && dst_step == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * dst_step] += a * src[i * src_step];
  }
}

// sum over i < n of a[i * a_step] * b[i * b_step], in float with four running sums.
float dot(int64_t n, const float* a, int64_t a_step, const float* b, int64_t b_step) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) acc[j] += a[(i + j) * a_step] * b[(i + j) * b_step];
  for (; i < n; ++i) acc[0] += a[i * a_step] * b[i * b_step];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// For each kernel column s, the output columns whose input column is inside the image.
std::vector<Range> inside_columns(const Geometry& g) {
  std::vector<Range> inside(g.s);
  for (int64_t s = 0; s < g.s; ++s)
    inside[s] = valid_outputs(s * g.dil_w - g.pad_w, g.stride_w, g.w, g.q);
  return inside;
}

}  // namespace

bool is_depthwise(const Geometry& g) { return g.groups > 1 && g.groups == g.c; }

// y[n, k, p, q] = b[k] + sum_{r,s} w[k, 0, r, s] * x[n, k / M, p*sh - ph + r*dh, q*sw - pw + s*dw]
// with M = K / C; threads over the N*K output planes.
void depthwise_forward(const Geometry& g, Tensor4 x, Tensor4 w, const float* b, int64_t b_stride,
                       float* y) {
  const int64_t mult = g.k / g.c, step = g.stride_w * x.s3;
  const std::vector<Range> inside = inside_columns(g);
#pragma omp parallel for num_threads(cpu::num_threads()) schedule(static)
  for (int64_t nk = 0; nk < g.n * g.k; ++nk) {
    const int64_t n = nk / g.k, k = nk % g.k;
    const float* xc = x.data + n * x.s0 + k / mult * x.s1;
    float* plane = y + nk * g.p * g.q;
    std::fill(plane, plane + g.p * g.q, b ? b[k * b_stride] : 0.0f);
    for (int64_t p = 0; p < g.p; ++p) {
      float* row = plane + p * g.q;
      for (int64_t r = 0; r < g.r; ++r) {
        const int64_t ih = p * g.stride_h - g.pad_h + r * g.dil_h;
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t s = 0; s < g.s; ++s) {
          const int64_t off_w = s * g.dil_w - g.pad_w;
          const Range in = inside[s];
          if (in.lo == in.hi) continue;
          axpy(in.hi - in.lo, w.data[k * w.s0 + r * w.s2 + s * w.s3],
               xc + ih * x.s2 + (in.lo * g.stride_w + off_w) * x.s3, step, row + in.lo);
        }
      }
    }
  }
}

// dx by the transpose of the forward loops (threads over the N*C input planes, each summing its M
// output channels); dw and db by dot products over all images (threads over K).
void depthwise_backward(const Geometry& g, Tensor4 dy, Tensor4 x, Tensor4 w, float* dx, float* dw,
                        float* db) {
  const int64_t mult = g.k / g.c, taps = g.r * g.s;
  const int threads = cpu::num_threads();
  const std::vector<Range> inside = inside_columns(g);
  if (dx) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t nc = 0; nc < g.n * g.c; ++nc) {
      const int64_t n = nc / g.c, c = nc % g.c;
      float* plane = dx + nc * g.h * g.w;
      std::fill(plane, plane + g.h * g.w, 0.0f);
      for (int64_t k = c * mult; k < (c + 1) * mult; ++k)
        for (int64_t p = 0; p < g.p; ++p) {
          const float* dy_row = dy.data + n * dy.s0 + k * dy.s1 + p * dy.s2;
          for (int64_t r = 0; r < g.r; ++r) {
            const int64_t ih = p * g.stride_h - g.pad_h + r * g.dil_h;
            if (ih < 0 || ih >= g.h) continue;
            for (int64_t s = 0; s < g.s; ++s) {
              const int64_t off_w = s * g.dil_w - g.pad_w;
              const Range in = inside[s];
              if (in.lo == in.hi) continue;
              axpy_scatter(in.hi - in.lo, w.data[k * w.s0 + r * w.s2 + s * w.s3],
                           dy_row + in.lo * dy.s3, dy.s3,
                           plane + ih * g.w + in.lo * g.stride_w + off_w, g.stride_w);
            }
          }
        }
    }
  }
  if (!dw && !db) return;
  // Row dot products in float, summed over rows and images in double.
  std::vector<double> dw_sum(dw ? g.k * taps : 0), db_sum(db ? g.k : 0);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < g.k; ++k) {
    const int64_t c = k / mult;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t p = 0; p < g.p; ++p) {
        const float* dy_row = dy.data + n * dy.s0 + k * dy.s1 + p * dy.s2;
        if (db) {
          double sum = 0.0;
          for (int64_t q = 0; q < g.q; ++q) sum += dy_row[q * dy.s3];
          db_sum[k] += sum;
        }
        if (!dw) continue;
        for (int64_t r = 0; r < g.r; ++r) {
          const int64_t ih = p * g.stride_h - g.pad_h + r * g.dil_h;
          if (ih < 0 || ih >= g.h) continue;
          const float* x_row = x.data + n * x.s0 + c * x.s1 + ih * x.s2;
          for (int64_t s = 0; s < g.s; ++s) {
            const int64_t off_w = s * g.dil_w - g.pad_w;
            const Range in = inside[s];
            if (in.lo == in.hi) continue;
            dw_sum[k * taps + r * g.s + s] +=
                dot(in.hi - in.lo, dy_row + in.lo * dy.s3, dy.s3,
                    x_row + (in.lo * g.stride_w + off_w) * x.s3, g.stride_w * x.s3);
          }
        }
      }
  }
  if (dw) std::transform(dw_sum.begin(), dw_sum.end(), dw, [](double v) { return float(v); });
  if (db) std::transform(db_sum.begin(), db_sum.end(), db, [](double v) { return float(v); });
}

}  // namespace ember::conv
