// 2-D pooling kernels (see pool.h): one thread per output element for the forward passes and
// the max-pooling scatter, one thread per input element for the average-pooling gradients
// (gathered from the windows that cover it), consecutive threads along W so that a warp's reads
// and writes are contiguous runs. Window arithmetic follows csrc/pool/pool_simd.h step by step:
// the forward passes of max and average pooling give the CPU kernels' results bit for bit; sums
// the CPU vectorises in another order (adaptive windows, overlapping gradients) may differ in
// the last bits.
#include <cmath>

#include "common/check.h"
#include "pool/pool.h"

namespace ember::cuda::pool {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t{1} << 20;  // larger problems loop (grid stride)
// Element counts below this index with 32-bit math: linear index + grid stride stay < 2^31.
constexpr int64_t kInt32Elements = int64_t{1} << 30;

__device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// a / b for a >= 0, b > 0, in 32-bit arithmetic when both fit (a 64-bit division is a long
// instruction sequence; this branch is uniform in practice)
__device__ inline int64_t div_nonneg(int64_t a, int64_t b) {
  if (a <= INT32_MAX && b <= INT32_MAX)
    return static_cast<int64_t>(static_cast<uint32_t>(a) / static_cast<uint32_t>(b));
  return a / b;
}

// This thread's first element and the grid stride.
template <class Index>
__device__ inline Index first_element() {
  return static_cast<Index>(blockIdx.x) * static_cast<Index>(blockDim.x) +
         static_cast<Index>(threadIdx.x);
}
template <class Index>
__device__ inline Index grid_stride() {
  return static_cast<Index>(gridDim.x) * static_cast<Index>(blockDim.x);
}

// Linear element e of an (N, C, R, S) array with S fastest: plane = n * C + c, row r, column s.
template <class Index>
struct Coord {
  Index n, c, plane, r, s;
  __device__ Coord(Index e, Index C, Index R, Index S) {
    const Index t = e / S;
    s = e - t * S;
    plane = t / R;
    r = t - plane * R;
    n = plane / C;
    c = plane - n * C;
  }
};

// The (rows, cols) plane (n, c) of x.
template <class Index>
__device__ inline const float* plane_of(const Planes& x, const Coord<Index>& o) {
  return x.data + o.n * x.sn + o.c * x.sc;
}

// ---- max pooling ------------------------------------------------------------------------------

// First tap of a dilated window along one axis that is inside the plane: start moved out of the
// leading padding in steps of d.
__device__ inline int64_t first_inside(int64_t start, int64_t d) {
  return start < 0 ? start + div_nonneg(-start + d - 1, d) * d : start;
}

// y, idx (N, C, P, Q) contiguous = max pooling of x; PyTorch's loop: a tap replaces the running
// maximum if it is larger or NaN.
template <class Index>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_kernel(Window g, Planes x, float* __restrict__ y, int64_t* __restrict__ idx,
                      Index total) {
  for (Index e = first_element<Index>(); e < total; e += grid_stride<Index>()) {
    const Coord<Index> o(e, static_cast<Index>(x.C), static_cast<Index>(g.P),
                         static_cast<Index>(g.Q));
    const float* xp = plane_of(x, o);
    const int64_t h_start = o.r * g.sh - g.ph, w_start = o.s * g.sw - g.pw;
    const int64_t h0 = first_inside(h_start, g.dh), w0 = first_inside(w_start, g.dw);
    const int64_t h1 = min64(h_start + (g.kh - 1) * g.dh + 1, g.H);
    const int64_t w1 = min64(w_start + (g.kw - 1) * g.dw + 1, g.W);
    float best = -INFINITY;
    int64_t arg = h0 * g.W + w0;
    for (int64_t h = h0; h < h1; h += g.dh) {
      const float* row = xp + h * x.sr;
      for (int64_t w = w0; w < w1; w += g.dw) {
        const float v = row[w * x.scol];
        if (v > best || isnan(v)) {
          best = v;
          arg = h * g.W + w;
        }
      }
    }
    y[e] = best;
    idx[e] = arg;
  }
}

// dx (N, C, H, W) contiguous += dy at idx, one thread per dy element.
template <class Index>
__global__ void __launch_bounds__(kThreads)
    max_pool2d_backward_kernel(Window g, Planes dy, Indices at, float* __restrict__ dx,
                               int* __restrict__ bad, Index total) {
  const int64_t hw = g.H * g.W;
  for (Index e = first_element<Index>(); e < total; e += grid_stride<Index>()) {
    const Coord<Index> o(e, static_cast<Index>(dy.C), static_cast<Index>(g.P),
                         static_cast<Index>(g.Q));
    const int64_t j = at.data[o.n * at.sn + o.c * at.sc + o.r * at.sr + o.s * at.scol];
    if (static_cast<uint64_t>(j) < static_cast<uint64_t>(hw))
      atomicAdd(dx + o.plane * hw + j, plane_of(dy, o)[o.r * dy.sr + o.s * dy.scol]);
    else
      *bad = 1;
  }
}

// ---- average pooling --------------------------------------------------------------------------

// The window of output p along one axis as PyTorch clips it: [lo, hi) inside the plane, and
// `pad` positions counted with padding (clipped at the far padded border in ceil mode).
struct AvgRange {
  int64_t lo, hi, pad;
};

__device__ inline AvgRange avg_range(int64_t p, int64_t stride, int64_t pad, int64_t k,
                                     int64_t size) {
  const int64_t start = p * stride - pad;
  const int64_t end = min64(start + k, size + pad);
  return {max64(start, 0), min64(end, size), end - start};
}

__device__ inline float avg_divisor(const Window& g, int64_t with_pad, int64_t inside) {
  return static_cast<float>(g.divisor != 0 ? g.divisor : g.count_include_pad ? with_pad : inside);
}

// y (N, C, P, Q) contiguous = window sums (row by row, left to right) over the divisor; 0 for a
// window with no input element.
template <class Index>
__global__ void __launch_bounds__(kThreads)
    avg_pool2d_kernel(Window g, Planes x, float* __restrict__ y, Index total) {
  for (Index e = first_element<Index>(); e < total; e += grid_stride<Index>()) {
    const Coord<Index> o(e, static_cast<Index>(x.C), static_cast<Index>(g.P),
                         static_cast<Index>(g.Q));
    const AvgRange r = avg_range(o.r, g.sh, g.ph, g.kh, g.H);
    const AvgRange c = avg_range(o.s, g.sw, g.pw, g.kw, g.W);
    if (r.lo >= r.hi || c.lo >= c.hi) {
      y[e] = 0.0f;
      continue;
    }
    const float* xp = plane_of(x, o);
    float sum = 0.0f;
    for (int64_t h = r.lo; h < r.hi; ++h)
      for (int64_t w = c.lo; w < c.hi; ++w) sum += xp[h * x.sr + w * x.scol];
    y[e] = sum / avg_divisor(g, r.pad * c.pad, (r.hi - r.lo) * (c.hi - c.lo));
  }
}

// Outputs [lo, hi] along one axis whose windows (start = o * stride - pad, k long) cover input
// position i: start <= i < start + k. Empty when lo > hi.
__device__ inline void covering(int64_t i, int64_t stride, int64_t pad, int64_t k, int64_t out,
                                int64_t& lo, int64_t& hi) {
  const int64_t d = i + pad - k;  // o * stride > d
  lo = d < 0 ? 0 : div_nonneg(d, stride) + 1;
  hi = min64(div_nonneg(i + pad, stride), out - 1);
}

// dx (N, C, H, W) contiguous: each input element gathers dy / divisor of the windows covering it.
template <class Index>
__global__ void __launch_bounds__(kThreads)
    avg_pool2d_backward_kernel(Window g, Planes dy, float* __restrict__ dx, Index total) {
  for (Index e = first_element<Index>(); e < total; e += grid_stride<Index>()) {
    const Coord<Index> o(e, static_cast<Index>(dy.C), static_cast<Index>(g.H),
                         static_cast<Index>(g.W));
    const float* dp = plane_of(dy, o);
    int64_t p_lo, p_hi, q_lo, q_hi;
    covering(o.r, g.sh, g.ph, g.kh, g.P, p_lo, p_hi);
    covering(o.s, g.sw, g.pw, g.kw, g.Q, q_lo, q_hi);
    float sum = 0.0f;
    for (int64_t p = p_lo; p <= p_hi; ++p) {
      const AvgRange r = avg_range(p, g.sh, g.ph, g.kh, g.H);
      for (int64_t q = q_lo; q <= q_hi; ++q) {
        const AvgRange c = avg_range(q, g.sw, g.pw, g.kw, g.W);
        sum += dp[p * dy.sr + q * dy.scol] /
               avg_divisor(g, r.pad * c.pad, (r.hi - r.lo) * (c.hi - c.lo));
      }
    }
    dx[e] = sum;
  }
}

// ---- adaptive average pooling -----------------------------------------------------------------

// Output i of n over an input of `size`: [floor(i * size / n), ceil((i + 1) * size / n)),
// computed as PyTorch does, without overflow.
__device__ inline int64_t adaptive_start(int64_t i, int64_t n, int64_t size) {
  const int64_t whole = div_nonneg(i, n);
  return whole * size + div_nonneg((i - whole * n) * size, n);
}
__device__ inline int64_t adaptive_end(int64_t i, int64_t n, int64_t size) {
  return 1 + div_nonneg((i + 1) * size - 1, n);
}

// y (N, C, P, Q) contiguous = window means.
template <class Index>
__global__ void __launch_bounds__(kThreads)
    adaptive_avg_pool2d_kernel(Window g, Planes x, float* __restrict__ y, Index total) {
  for (Index e = first_element<Index>(); e < total; e += grid_stride<Index>()) {
    const Coord<Index> o(e, static_cast<Index>(x.C), static_cast<Index>(g.P),
                         static_cast<Index>(g.Q));
    const int64_t h0 = adaptive_start(o.r, g.P, g.H), h1 = adaptive_end(o.r, g.P, g.H);
    const int64_t w0 = adaptive_start(o.s, g.Q, g.W), w1 = adaptive_end(o.s, g.Q, g.W);
    const float* xp = plane_of(x, o);
    float sum = 0.0f;
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) sum += xp[h * x.sr + w * x.scol];
    y[e] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
  }
}

// Outputs [lo, hi] of n whose adaptive windows over `size` inputs cover input i:
// floor(i n / size) <= o <= ceil((i + 1) n / size) - 1.
__device__ inline void adaptive_covering(int64_t i, int64_t n, int64_t size, int64_t& lo,
                                         int64_t& hi) {
  lo = div_nonneg(i * n, size);
  hi = min64(div_nonneg((i + 1) * n + size - 1, size) - 1, n - 1);
}

// dx (N, C, H, W) contiguous: each input element gathers dy / window size of the windows
// covering it (the exact test start <= i < end guards the range arithmetic).
template <class Index>
__global__ void __launch_bounds__(kThreads)
    adaptive_avg_pool2d_backward_kernel(Window g, Planes dy, float* __restrict__ dx, Index total) {
  for (Index e = first_element<Index>(); e < total; e += grid_stride<Index>()) {
    const Coord<Index> o(e, static_cast<Index>(dy.C), static_cast<Index>(g.H),
                         static_cast<Index>(g.W));
    const float* dp = plane_of(dy, o);
    int64_t p_lo, p_hi, q_lo, q_hi;
    adaptive_covering(o.r, g.P, g.H, p_lo, p_hi);
    adaptive_covering(o.s, g.Q, g.W, q_lo, q_hi);
    float sum = 0.0f;
    for (int64_t p = p_lo; p <= p_hi; ++p) {
      const int64_t h0 = adaptive_start(p, g.P, g.H), h1 = adaptive_end(p, g.P, g.H);
      if (o.r < h0 || o.r >= h1) continue;
      for (int64_t q = q_lo; q <= q_hi; ++q) {
        const int64_t w0 = adaptive_start(q, g.Q, g.W), w1 = adaptive_end(q, g.Q, g.W);
        if (o.s < w0 || o.s >= w1) continue;
        sum += dp[p * dy.sr + q * dy.scol] / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
    dx[e] = sum;
  }
}

// ---- launchers --------------------------------------------------------------------------------

// Blocks of kThreads covering `total` elements (larger problems loop with the grid stride).
unsigned grid_for(int64_t total) {
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

}  // namespace

void max_pool2d(const Window& g, const Planes& x, float* y, int64_t* idx, cudaStream_t stream) {
  const int64_t total = x.N * x.C * g.P * g.Q;
  if (total == 0) return;
  if (total < kInt32Elements)
    max_pool2d_kernel<int32_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, x, y, idx, static_cast<int32_t>(total));
  else
    max_pool2d_kernel<int64_t><<<grid_for(total), kThreads, 0, stream>>>(g, x, y, idx, total);
  EMBER_CUDA_LAUNCH_CHECK("max_pool2d_kernel");
}

void max_pool2d_backward(const Window& g, const Planes& dy, const Indices& idx, float* dx, int* bad,
                         cudaStream_t stream) {
  const int64_t total = dy.N * dy.C * g.P * g.Q;
  if (total == 0) return;
  if (total < kInt32Elements)
    max_pool2d_backward_kernel<int32_t><<<grid_for(total), kThreads, 0, stream>>>(
        g, dy, idx, dx, bad, static_cast<int32_t>(total));
  else
    max_pool2d_backward_kernel<int64_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, dy, idx, dx, bad, total);
  EMBER_CUDA_LAUNCH_CHECK("max_pool2d_backward_kernel");
}

void avg_pool2d(const Window& g, const Planes& x, float* y, cudaStream_t stream) {
  const int64_t total = x.N * x.C * g.P * g.Q;
  if (total == 0) return;
  if (total < kInt32Elements)
    avg_pool2d_kernel<int32_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, x, y, static_cast<int32_t>(total));
  else
    avg_pool2d_kernel<int64_t><<<grid_for(total), kThreads, 0, stream>>>(g, x, y, total);
  EMBER_CUDA_LAUNCH_CHECK("avg_pool2d_kernel");
}

void avg_pool2d_backward(const Window& g, const Planes& dy, float* dx, cudaStream_t stream) {
  const int64_t total = dy.N * dy.C * g.H * g.W;
  if (total == 0) return;
  if (total < kInt32Elements)
    avg_pool2d_backward_kernel<int32_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, dy, dx, static_cast<int32_t>(total));
  else
    avg_pool2d_backward_kernel<int64_t><<<grid_for(total), kThreads, 0, stream>>>(g, dy, dx, total);
  EMBER_CUDA_LAUNCH_CHECK("avg_pool2d_backward_kernel");
}

void adaptive_avg_pool2d(const Window& g, const Planes& x, float* y, cudaStream_t stream) {
  const int64_t total = x.N * x.C * g.P * g.Q;
  if (total == 0) return;
  if (total < kInt32Elements)
    adaptive_avg_pool2d_kernel<int32_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, x, y, static_cast<int32_t>(total));
  else
    adaptive_avg_pool2d_kernel<int64_t><<<grid_for(total), kThreads, 0, stream>>>(g, x, y, total);
  EMBER_CUDA_LAUNCH_CHECK("adaptive_avg_pool2d_kernel");
}

void adaptive_avg_pool2d_backward(const Window& g, const Planes& dy, float* dx,
                                  cudaStream_t stream) {
  const int64_t total = dy.N * dy.C * g.H * g.W;
  if (total == 0) return;
  if (total < kInt32Elements)
    adaptive_avg_pool2d_backward_kernel<int32_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, dy, dx, static_cast<int32_t>(total));
  else
    adaptive_avg_pool2d_backward_kernel<int64_t>
        <<<grid_for(total), kThreads, 0, stream>>>(g, dy, dx, total);
  EMBER_CUDA_LAUNCH_CHECK("adaptive_avg_pool2d_backward_kernel");
}

}  // namespace ember::cuda::pool
