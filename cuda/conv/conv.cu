// Convolution kernels and their launchers (conv.h). The GEMM paths keep a column matrix for a
// chunk of images in the caller's workspace and multiply with ember::cuda::sgemm; the implicit
// GEMM gathers the same matrix tile by tile into shared memory instead.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "common/check.h"
#include "conv/conv.h"
#include "gemm/gemm.h"

namespace ember::cuda::conv {
namespace {

constexpr int kThreads = 256;               // elementwise kernels and reductions
constexpr int64_t kMaxBlocks = 1 << 20;     // grid-stride loops cover larger arrays
constexpr int64_t kMaxGridX = 2147483647;   // CUDA's limits on grid dimensions
constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kMaxSpatial = int64_t{1} << 30;  // see check_limits
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

unsigned grid_for(int64_t work, int threads) {
  return static_cast<unsigned>(std::min(ceil_div(work, threads), kMaxBlocks));
}

// The spatial part of a Geometry in 32 bits (check_limits makes every value and every sum of two
// of them fit).
struct Window {
  int h, w, p, q, r, s;
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
};

Window window_of(const Geometry& g) {
  Window v;
  v.h = static_cast<int>(g.h), v.w = static_cast<int>(g.w);
  v.p = static_cast<int>(g.p), v.q = static_cast<int>(g.q);
  v.r = static_cast<int>(g.r), v.s = static_cast<int>(g.s);
  v.stride_h = static_cast<int>(g.stride_h), v.stride_w = static_cast<int>(g.stride_w);
  v.pad_h = static_cast<int>(g.pad_h), v.pad_w = static_cast<int>(g.pad_w);
  v.dil_h = static_cast<int>(g.dil_h), v.dil_w = static_cast<int>(g.dil_w);
  return v;
}

// ---- kernels: column matrices ----------------------------------------------------------------

struct Im2colArgs {
  Window v;
  int64_t images, channels, pixels;  // images of x, C, P*Q
  Tensor4 x;
  float* cols;
  int64_t ld_image, ld_row;
};

// cols(i, (c*R + r)*S + s, l) = x[i, c, p*sh - ph + r*dh, q*sw - pw + s*dw] (0 in the padding):
// one thread per (i, c, l) writes the R*S rows of its channel, so that consecutive threads write
// consecutive columns.
__global__ void im2col_kernel(const Im2colArgs a) {
  const Window& v = a.v;
  const int64_t total = a.images * a.channels * a.pixels;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += step) {
    const int64_t l = e % a.pixels, ic = e / a.pixels;
    const int64_t c = ic % a.channels, i = ic / a.channels;
    const int p = static_cast<int>(l / v.q), q = static_cast<int>(l % v.q);
    const int h0 = p * v.stride_h - v.pad_h, w0 = q * v.stride_w - v.pad_w;
    const float* xc = a.x.data + i * a.x.s0 + c * a.x.s1;
    float* out = a.cols + i * a.ld_image + c * (v.r * v.s) * a.ld_row + l;
    for (int r = 0; r < v.r; ++r) {
      const int ih = h0 + r * v.dil_h;
      const bool row_inside = ih >= 0 && ih < v.h;
      for (int s = 0; s < v.s; ++s, out += a.ld_row) {
        const int iw = w0 + s * v.dil_w;
        *out = row_inside && iw >= 0 && iw < v.w ? __ldg(xc + ih * a.x.s2 + iw * a.x.s3) : 0.0f;
      }
    }
  }
}

struct Col2imArgs {
  Window v;
  int64_t images, channels;
  const float* cols;
  int64_t ld_image, ld_row, ld_col;
  float* dx;  // (images, C, H, W) contiguous
};

// dx[i, c, ih, iw] = the sum of cols(i, (c*R + r)*S + s, p*Q + q) over the taps (r, s) and the
// outputs (p, q) with p*sh - ph + r*dh = ih and q*sw - pw + s*dw = iw: one thread per element of
// dx gathers its own sum, so nothing is written twice and no atomics are needed.
__global__ void col2im_kernel(const Col2imArgs a) {
  const Window& v = a.v;
  const int64_t total = a.images * a.channels * v.h * v.w;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += step) {
    const int iw = static_cast<int>(e % v.w);
    int64_t t = e / v.w;
    const int ih = static_cast<int>(t % v.h);
    t /= v.h;
    const int64_t c = t % a.channels, i = t / a.channels;
    const float* cc = a.cols + i * a.ld_image + c * (v.r * v.s) * a.ld_row;
    float sum = 0.0f;
    for (int r = 0; r < v.r; ++r) {
      const int hs = ih + v.pad_h - r * v.dil_h;  // p * stride_h when tap r of row p reads ih
      if (hs < 0) break;                          // and smaller still for the next taps
      if (hs % v.stride_h != 0) continue;
      const int p = hs / v.stride_h;
      if (p >= v.p) continue;
      for (int s = 0; s < v.s; ++s) {
        const int ws = iw + v.pad_w - s * v.dil_w;
        if (ws < 0) break;
        if (ws % v.stride_w != 0) continue;
        const int q = ws / v.stride_w;
        if (q >= v.q) continue;
        sum += cc[(r * v.s + s) * a.ld_row + (static_cast<int64_t>(p) * v.q + q) * a.ld_col];
      }
    }
    a.dx[e] = sum;
  }
}

// ---- kernels: planes -------------------------------------------------------------------------

struct PlanesArgs {
  int64_t images, channels, pixels;
  const float* src;
  int64_t src_image, src_channel, src_pixel;  // any strides; 0 broadcasts (a bias)
  float* dst;
  int64_t dst_image, dst_channel;  // the pixels of a plane are contiguous
};

// dst(i, k, l) = src(i, k, l) over images x channels planes of `pixels` elements: reorders dy
// between (N, K, P*Q) and (K, N*P*Q), and broadcasts a bias over y. Block rows take planes,
// threads the pixels of a plane.
__global__ void copy_planes_kernel(const PlanesArgs a) {
  const int64_t planes = a.images * a.channels;
  for (int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
    const int64_t i = plane / a.channels, k = plane % a.channels;
    const float* src = a.src + i * a.src_image + k * a.src_channel;
    float* dst = a.dst + i * a.dst_image + k * a.dst_channel;
    for (int64_t l = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; l < a.pixels;
         l += static_cast<int64_t>(gridDim.x) * blockDim.x)
      dst[l] = src[l * a.src_pixel];
  }
}

// The sum of v over the block's kBlock threads, returned to thread 0. Every thread must call it.
template <int kBlock>
__device__ float block_sum(float v) {
  static_assert(kBlock % 32 == 0 && kBlock <= 1024, "whole warps, at most 1024 threads");
  __shared__ float warp_sums[kBlock / 32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kBlock / 32 ? warp_sums[lane] : 0.0f;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  }
  return v;
}

// db[k] = the sum of dy[i, k, l] over images i and pixels l, dy (images, K, P*Q) contiguous: one
// block per channel k, its threads reading consecutive elements of the flattened (i, l) range
// (the (i, l) of each thread is stepped without dividing).
__global__ void __launch_bounds__(kThreads)
    sum_planes_kernel(const float* dy, int64_t images, int64_t channels, int64_t pixels,
                      float* db) {
  const int64_t k = blockIdx.x;
  const int64_t count = images * pixels;
  const int64_t step_i = kThreads / pixels, step_l = kThreads % pixels;
  int64_t i = threadIdx.x / pixels, l = threadIdx.x % pixels;
  float acc = 0.0f;
  for (int64_t e = threadIdx.x; e < count; e += kThreads) {
    acc += dy[(i * channels + k) * pixels + l];
    i += step_i;
    l += step_l;
    if (l >= pixels) l -= pixels, ++i;
  }
  acc = block_sum<kThreads>(acc);
  if (threadIdx.x == 0) db[k] = acc;
}

// ---- kernel: implicit GEMM forward -----------------------------------------------------------
// Per group, y = W (Kg x Cg*R*S) @ X (Cg*R*S x N*P*Q) with X the column matrix: a block owns
// kTileM output channels x kTileN output pixels and steps through Cg*R*S kTileK rows at a time,
// gathering X's rows from x (zeros in the padding) and W's columns into shared memory.
// 256 threads, each accumulating an 8 x 8 register tile: rows ty*4 + {0..3} and 64 + ty*4 +
// {0..3}, columns likewise with tx, so that its shared-memory reads are float4s that a warp
// broadcasts (A) or reads without bank conflicts (B). Two shared-memory buffers: the next tile is
// loaded into registers while the current one is multiplied, then stored into the other buffer,
// one __syncthreads per step.
constexpr int kTileM = 128;
constexpr int kTileN = 128;
constexpr int kTileK = 8;
constexpr int kImplicitThreads = 256;
constexpr int kMicro = 8;                  // each thread's register tile is kMicro x kMicro
constexpr int kHalf = kMicro / 2;          // ... as two float4s along each side
constexpr int kThreadsN = kTileN / kMicro;  // 16 threads across a tile's pixels
constexpr int kAPad = 4;                    // A's rows are kTileM + 4 apart: stores skip banks
constexpr int kARowsPerPass = kImplicitThreads / kTileK;  // A loads: kk = tid % 8, m = tid / 8
constexpr int kALoads = kTileM / kARowsPerPass;
constexpr int kBColsPerPass = kImplicitThreads / kTileK;  // B loads: kk = tid / 32, j = tid % 32
constexpr int kBLoads = kTileN / kBColsPerPass;
static_assert((kTileM / kMicro) * (kTileN / kMicro) == kImplicitThreads, "one micro-tile each");
static_assert(kTileM == 2 * kHalf * (kTileM / kMicro), "rows ty*4 + {0..3} and 64 + ty*4 + ...");
static_assert(kTileN == 2 * kHalf * kThreadsN, "columns tx*4 + {0..3} and 64 + tx*4 + ...");
static_assert(kImplicitThreads % kTileK == 0 && kTileM % kARowsPerPass == 0, "A tile loads");
static_assert(kBColsPerPass == 32 && kTileN % kBColsPerPass == 0, "a warp loads one B row");
// The top row of a pixel past N*P*Q: below any row a tap can reach (dh < 2**30, check_limits),
// so its loads fall in the "padding" and read nothing.
constexpr int kNoPixel = -(1 << 30);

struct ImplicitArgs {
  Window v;
  const float* x;
  int64_t xs_n, xs_c, xs_h, xs_w;
  const float* w;  // (K, Cg, R, S) contiguous
  const float* b;  // null: no bias
  int64_t b_stride;
  float* y;  // (N, K, P, Q) contiguous
  int64_t npq, pixels;  // N*P*Q, P*Q
  int k, kg, cg, kdim;  // K, K/groups, C/groups, Cg*R*S
  int group0;           // the group of blockIdx.z == 0 (grids hold at most 65535 groups)
  bool vector_store;    // P*Q % 4 == 0 and y 16-byte aligned: a thread's 4 pixels are one float4
};

__global__ void __launch_bounds__(kImplicitThreads, 2)
    conv2d_implicit_gemm_kernel(const ImplicitArgs a) {
  __shared__ __align__(16) float a_tile[2][kTileK][kTileM + kAPad];
  __shared__ __align__(16) float b_tile[2][kTileK][kTileN];
  const Window& v = a.v;
  const int tid = threadIdx.x;
  const int group = a.group0 + static_cast<int>(blockIdx.z);
  const int m0 = static_cast<int>(blockIdx.y) * kTileM;
  const int64_t pix0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  const float* w_group = a.w + static_cast<int64_t>(group) * a.kg * a.kdim;
  const int rs = v.r * v.s;

  // A (weights): this thread loads row m0 + a_m + i*32 of W at column k0 + a_k
  const int a_k = tid % kTileK, a_m = tid / kTileK;
  // B (columns): row k0 + b_k at pixels pix0 + b_j + i*32. Each pixel's top-left input corner
  // (pix_h, pix_w) and its offset in x at channel 0 of the group are fixed for the block: a
  // table in shared memory rather than 16 registers per thread
  const int b_k = tid / kBColsPerPass, b_j = tid % kBColsPerPass;
  __shared__ int64_t pix_off[kTileN];
  __shared__ int pix_h[kTileN], pix_w[kTileN];
  for (int j = tid; j < kTileN; j += kImplicitThreads) {
    const int64_t pixel = pix0 + j;
    pix_h[j] = pix_w[j] = kNoPixel;
    pix_off[j] = 0;
    if (pixel < a.npq) {
      const int64_t n = pixel / a.pixels, l = pixel - n * a.pixels;
      const int p = static_cast<int>(l / v.q), q = static_cast<int>(l - p * int64_t{v.q});
      pix_h[j] = p * v.stride_h - v.pad_h;
      pix_w[j] = q * v.stride_w - v.pad_w;
      pix_off[j] = n * a.xs_n + static_cast<int64_t>(group) * a.cg * a.xs_c + pix_h[j] * a.xs_h +
                   pix_w[j] * a.xs_w;
    }
  }
  __syncthreads();

  float a_next[kALoads], b_next[kBLoads];
  auto load = [&](int k0) {
    const int ka = k0 + a_k;
#pragma unroll
    for (int i = 0; i < kALoads; ++i) {
      const int m = m0 + a_m + i * kARowsPerPass;
      a_next[i] = m < a.kg && ka < a.kdim ? __ldg(w_group + static_cast<int64_t>(m) * a.kdim + ka)
                                          : 0.0f;
    }
    const int kb = k0 + b_k;
    int dh = 0, dw = 0;
    int64_t k_off = 0;
    const bool k_inside = kb < a.kdim;
    if (k_inside) {  // row kb = (c*R + r)*S + s of the column matrix
      const int c = kb / rs, t = kb - c * rs;
      const int r = t / v.s, s = t - r * v.s;
      dh = r * v.dil_h;
      dw = s * v.dil_w;
      k_off = c * a.xs_c + dh * a.xs_h + dw * a.xs_w;
    }
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) {
      const int j = b_j + i * kBColsPerPass;
      const int ih = pix_h[j] + dh, iw = pix_w[j] + dw;
      const bool inside = k_inside && static_cast<unsigned>(ih) < static_cast<unsigned>(v.h) &&
                          static_cast<unsigned>(iw) < static_cast<unsigned>(v.w);
      b_next[i] = inside ? __ldg(a.x + pix_off[j] + k_off) : 0.0f;
    }
  };
  auto store = [&](int buf) {
#pragma unroll
    for (int i = 0; i < kALoads; ++i) a_tile[buf][a_k][a_m + i * kARowsPerPass] = a_next[i];
#pragma unroll
    for (int i = 0; i < kBLoads; ++i) b_tile[buf][b_k][b_j + i * kBColsPerPass] = b_next[i];
  };

  const int tx = tid % kThreadsN, ty = tid / kThreadsN;
  float acc[kMicro][kMicro] = {};
  load(0);
  store(0);
  __syncthreads();
  const int tiles = (a.kdim + kTileK - 1) / kTileK;
  for (int t = 0; t < tiles; ++t) {
    const int cur = t & 1;
    if (t + 1 < tiles) load((t + 1) * kTileK);
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&a_tile[cur][kk][ty * kHalf]);
      const float4 a1 = *reinterpret_cast<const float4*>(&a_tile[cur][kk][kTileM / 2 + ty * kHalf]);
      const float4 b0 = *reinterpret_cast<const float4*>(&b_tile[cur][kk][tx * kHalf]);
      const float4 b1 = *reinterpret_cast<const float4*>(&b_tile[cur][kk][kTileN / 2 + tx * kHalf]);
      const float av[kMicro] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float bv[kMicro] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < kMicro; ++i)
#pragma unroll
        for (int j = 0; j < kMicro; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (t + 1 < tiles) store(cur ^ 1);
    __syncthreads();
  }

  // y[n, group*Kg + m, l] for pixel j = n*P*Q + l: each half of the thread's columns is 4
  // consecutive pixels, decomposed once and stepped across image boundaries
#pragma unroll
  for (int hn = 0; hn < 2; ++hn) {
    const int64_t j0 = pix0 + hn * (kTileN / 2) + tx * kHalf;
    if (j0 >= a.npq) continue;
    const int64_t n0 = j0 / a.pixels, l0 = j0 - n0 * a.pixels;
#pragma unroll
    for (int i = 0; i < kMicro; ++i) {
      const int m = m0 + (i / kHalf) * (kTileM / 2) + ty * kHalf + i % kHalf;
      if (m >= a.kg) continue;
      const int64_t channel = static_cast<int64_t>(group) * a.kg + m;
      const float bias = a.b ? a.b[channel * a.b_stride] : 0.0f;
      const float* row = acc[i] + hn * kHalf;
      if (a.vector_store) {  // the 4 pixels are in one image (P*Q % 4 == 0 and j0 % 4 == 0)
        const float4 out = {row[0] + bias, row[1] + bias, row[2] + bias, row[3] + bias};
        *reinterpret_cast<float4*>(a.y + (n0 * a.k + channel) * a.pixels + l0) = out;
      } else {
        int64_t n = n0, l = l0;
        for (int jj = 0; jj < kHalf && j0 + jj < a.npq; ++jj) {
          a.y[(n * a.k + channel) * a.pixels + l] = row[jj] + bias;
          if (++l == a.pixels) l = 0, ++n;
        }
      }
    }
  }
}

// ---- launchers -------------------------------------------------------------------------------

void copy_planes(const PlanesArgs& a, cudaStream_t stream) {
  if (a.images * a.channels * a.pixels == 0) return;
  const dim3 grid(grid_for(a.pixels, kThreads),
                  static_cast<unsigned>(std::min(a.images * a.channels, kMaxGridYZ)));
  copy_planes_kernel<<<grid, kThreads, 0, stream>>>(a);
  EMBER_CUDA_LAUNCH_CHECK("copy_planes_kernel");
}

void zero(float* data, int64_t count, cudaStream_t stream) {
  if (count > 0) EMBER_CUDA_CHECK(cudaMemsetAsync(data, 0, count * sizeof(float), stream));
}

// The column stride when x itself is the column matrix of a pointwise convolution (1x1, stride 1,
// no padding): each channel's (H, W) plane is one row of H*W elements a single stride apart.
// -1 when it is not.
int64_t in_place_column_stride(const Geometry& g, const Tensor4& x) {
  if (g.r != 1 || g.s != 1 || g.stride_h != 1 || g.stride_w != 1 || g.pad_h != 0 ||
      g.pad_w != 0 || g.p != g.h || g.q != g.w)
    return -1;
  if (g.w == 1) return x.s2;  // l = p
  if (g.h == 1 || x.s2 == g.w * x.s3) return x.s3;
  return -1;
}

Tensor4 from_image(Tensor4 x, int64_t i) {
  x.data += i * x.s0;
  return x;
}

void forward_implicit(const Geometry& g, Tensor4 x, const float* w, const float* b,
                      int64_t b_stride, float* y, cudaStream_t stream) {
  ImplicitArgs a{};
  a.v = window_of(g);
  a.x = x.data, a.xs_n = x.s0, a.xs_c = x.s1, a.xs_h = x.s2, a.xs_w = x.s3;
  a.w = w, a.b = b, a.b_stride = b_stride, a.y = y;
  a.pixels = g.pixels();
  a.npq = g.n * a.pixels;
  a.k = static_cast<int>(g.k), a.kg = static_cast<int>(g.kg()), a.cg = static_cast<int>(g.cg());
  a.kdim = static_cast<int>(g.cg() * g.taps());
  a.vector_store = a.pixels % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  const int64_t n_tiles = ceil_div(a.npq, kTileN), m_tiles = ceil_div(a.kg, kTileM);
  if (n_tiles > kMaxGridX || m_tiles > kMaxGridYZ)
    throw std::invalid_argument("conv2d: N*P*Q = " + std::to_string(a.npq) + " or K/groups = " +
                                std::to_string(a.kg) + " is too large for the implicit GEMM grid");
  for (int64_t g0 = 0; g0 < g.groups; g0 += kMaxGridYZ) {
    a.group0 = static_cast<int>(g0);
    const dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(m_tiles),
                    static_cast<unsigned>(std::min(g.groups - g0, kMaxGridYZ)));
    conv2d_implicit_gemm_kernel<<<grid, kImplicitThreads, 0, stream>>>(a);
    EMBER_CUDA_LAUNCH_CHECK("conv2d_implicit_gemm_kernel");
  }
}

// One chunk of images at a time: the column matrices (C*R*S, P*Q) of the chunk's images, one after
// the other in the workspace (or x itself for a pointwise convolution), then per group
// y[i] (Kg, P*Q) = W_g (Kg, Cg*R*S) @ cols[i]_g as a batched sgemm over the images (or, with more
// groups than images, over the groups).
void forward_im2col(const Geometry& g, Tensor4 x, const float* w, const float* b,
                    int64_t b_stride, float* y, float* workspace, int64_t workspace_size, bool tf32,
                    cudaStream_t stream) {
  const int64_t kg = g.kg(), cgrs = g.cg() * g.taps(), pq = g.pixels(), kpq = g.k * pq;
  const int64_t in_place = in_place_column_stride(g, x);
  const int64_t per_image = in_place >= 0 ? 0 : g.c * g.taps() * pq;
  const int64_t chunk = per_image ? std::min(g.n, workspace_size / per_image) : g.n;
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t images = std::min(chunk, g.n - n0);
    // image i's column matrix: element (row, l) at cols[i*ld_image + row*ld_row + l*ld_col]
    const float* cols = workspace;
    int64_t ld_image = per_image, ld_row = pq, ld_col = 1;
    if (in_place >= 0) {
      cols = x.data + n0 * x.s0;
      ld_image = x.s0, ld_row = x.s1, ld_col = in_place;
    } else {
      im2col(g, from_image(x, n0), images, workspace, per_image, pq, stream);
    }
    float* y_chunk = y + n0 * kpq;
    if (b) copy_planes({images, g.k, pq, b, 0, b_stride, 0, y_chunk, kpq, pq}, stream);
    if (cgrs == 0) {  // no input channels: y is the bias
      if (!b) zero(y_chunk, images * kpq, stream);
      continue;
    }
    GemmArgs m;
    m.m = kg, m.n = pq, m.k = cgrs;
    m.a_row = cgrs, m.a_col = 1;
    m.b_row = ld_row, m.b_col = ld_col;
    m.c_row = pq, m.c_col = 1;
    m.beta = b ? 1.0f : 0.0f;
    m.tf32 = tf32;
    if (g.groups <= images) {  // a launch per group, batched over the images
      m.batch = images;
      m.a_batch = 0, m.b_batch = ld_image, m.c_batch = kpq;
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        m.a = w + gi * kg * cgrs;
        m.b = cols + gi * g.cg() * g.taps() * ld_row;
        m.c = y_chunk + gi * kg * pq;
        sgemm(m, stream);
      }
    } else {  // a launch per image, batched over the groups
      m.batch = g.groups;
      m.a_batch = kg * cgrs, m.b_batch = g.cg() * g.taps() * ld_row, m.c_batch = kg * pq;
      for (int64_t i = 0; i < images; ++i) {
        m.a = w;
        m.b = cols + i * ld_image;
        m.c = y_chunk + i * kpq;
        sgemm(m, stream);
      }
    }
  }
}

}  // namespace

int64_t output_size(int64_t in, int64_t pad_before, int64_t pad_after, int64_t kernel,
                    int64_t stride, int64_t dilation) {
  const int64_t span = in + pad_before + pad_after - dilation * (kernel - 1) - 1;
  return span >= 0 ? span / stride + 1 : 0;
}

void check_limits(const Geometry& g) {
  const int64_t reach_h = (g.p - 1) * g.stride_h + (g.r - 1) * g.dil_h + 1;
  const int64_t reach_w = (g.q - 1) * g.stride_w + (g.s - 1) * g.dil_w + 1;
  for (int64_t v : {g.h, g.w, g.pad_h, g.pad_w, reach_h, reach_w})
    if (v > kMaxSpatial)
      throw std::invalid_argument(
          "conv2d: the CUDA kernels take sizes, padding and kernel reach up to 2**30 along H and "
          "W");
  for (int64_t v : {g.stride_h, g.stride_w, g.dil_h, g.dil_w, g.taps(), g.cg() * g.taps(), g.kg(),
                    g.k, g.groups})
    if (v > kMaxInt32)
      throw std::invalid_argument(
          "conv2d: the CUDA kernels take strides, dilations, K, groups and C/groups*R*S up to "
          "2**31 - 1");
}

void im2col(const Geometry& g, Tensor4 x, int64_t images, float* cols, int64_t ld_image,
            int64_t ld_row, cudaStream_t stream) {
  const int64_t work = images * g.c * g.pixels();
  if (work == 0) return;
  const Im2colArgs a{window_of(g), images, g.c, g.pixels(), x, cols, ld_image, ld_row};
  im2col_kernel<<<grid_for(work, kThreads), kThreads, 0, stream>>>(a);
  EMBER_CUDA_LAUNCH_CHECK("im2col_kernel");
}

void col2im(const Geometry& g, const float* cols, int64_t ld_image, int64_t ld_row, int64_t ld_col,
            int64_t images, float* dx, cudaStream_t stream) {
  const int64_t work = images * g.c * g.h * g.w;
  if (work == 0) return;
  const Col2imArgs a{window_of(g), images, g.c, cols, ld_image, ld_row, ld_col, dx};
  col2im_kernel<<<grid_for(work, kThreads), kThreads, 0, stream>>>(a);
  EMBER_CUDA_LAUNCH_CHECK("col2im_kernel");
}

// The forward rule. Written without a GPU to measure on, so it rests on plain arguments and lives
// in this one function, to retune from bench/bench_cuda_conv.py (both algorithms can be forced
// with EMBER_CUDA_CONV_ALGO=im2col|implicit):
//  - a pointwise convolution whose x folds into (C, H*W) rows is its own column matrix: the GEMM
//    reads x in place, nothing to gather;
//  - with TF32 allowed, sgemm may use tensor cores, which the implicit kernel (fp32 FMA) does not:
//    the column matrix's extra traffic (writing and re-reading R*S times the input) is then the
//    smaller cost;
//  - otherwise the implicit GEMM, which saves that traffic and the workspace.
Algorithm choose_forward(const Geometry& g, Tensor4 x, bool tf32) {
  if (in_place_column_stride(g, x) >= 0 || tf32) return Algorithm::im2col_gemm;
  return Algorithm::implicit_gemm;
}

int64_t forward_workspace_per_image(const Geometry& g, Tensor4 x, Algorithm algo) {
  if (algo == Algorithm::implicit_gemm || in_place_column_stride(g, x) >= 0) return 0;
  return g.c * g.taps() * g.pixels();
}

int64_t backward_workspace_per_image(const Geometry& g, bool need_dx, bool need_dw) {
  // the chunk's column matrix (C*R*S, chunk*P*Q) and dy reordered to (K, chunk*P*Q)
  return need_dx || need_dw ? (g.c * g.taps() + g.k) * g.pixels() : 0;
}

void conv2d_forward(const Geometry& g, Tensor4 x, const float* w, const float* b, int64_t b_stride,
                    float* y, Algorithm algo, float* workspace, int64_t workspace_size, bool tf32,
                    cudaStream_t stream) {
  check_limits(g);
  if (g.n * g.k * g.pixels() == 0) return;
  const int64_t per_image = forward_workspace_per_image(g, x, algo);
  if (per_image > workspace_size)
    throw std::invalid_argument("conv2d: the workspace holds " + std::to_string(workspace_size) +
                                " floats, less than one image's " + std::to_string(per_image));
  if (algo == Algorithm::implicit_gemm)
    forward_implicit(g, x, w, b, b_stride, y, stream);
  else
    forward_im2col(g, x, w, b, b_stride, y, workspace, workspace_size, tf32, stream);
}

// A chunk of images at a time, with the chunk's pixels side by side so that each product is one
// sgemm batched over the groups: dy reordered to dyt (K, chunk*P*Q) and the column matrix cols
// (C*R*S, chunk*P*Q) in the workspace, then
//   dw_g (+)= dyt_g @ cols_g^T    (beta = 1 after the first chunk: the sum over the batch)
//   cols_g = W_g^T @ dyt_g        (the columns' gradient, over the columns just used)
//   dx = col2im(cols)
// db is a reduction over dy (sum_planes_kernel).
void conv2d_backward(const Geometry& g, const float* dy, Tensor4 x, const float* w, float* dx,
                     float* dw, float* db, float* workspace, int64_t workspace_size, bool tf32,
                     cudaStream_t stream) {
  check_limits(g);
  const int64_t pq = g.pixels(), kg = g.kg(), cgrs = g.cg() * g.taps();
  if (db && g.k > 0) {
    sum_planes_kernel<<<static_cast<unsigned>(g.k), kThreads, 0, stream>>>(dy, g.n, g.k, pq, db);
    EMBER_CUDA_LAUNCH_CHECK("sum_planes_kernel");
  }
  if (dw && g.n == 0) zero(dw, g.k * cgrs, stream);
  if (g.n == 0 || (!dx && !dw)) return;
  const int64_t per_image = backward_workspace_per_image(g, dx != nullptr, dw != nullptr);
  if (per_image > workspace_size)
    throw std::invalid_argument("conv2d_backward: the workspace holds " +
                                std::to_string(workspace_size) + " floats, less than one image's " +
                                std::to_string(per_image));
  const int64_t chunk = std::min(g.n, workspace_size / per_image);
  const int64_t rows = g.c * g.taps();
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t images = std::min(chunk, g.n - n0), npq = images * pq;
    float* cols = workspace;
    float* dyt = workspace + rows * npq;
    copy_planes({images, g.k, pq, dy + n0 * g.k * pq, g.k * pq, pq, 1, dyt, pq, npq}, stream);
    GemmArgs m;
    m.batch = g.groups;
    m.tf32 = tf32;
    if (dw) {
      im2col(g, from_image(x, n0), images, cols, pq, npq, stream);
      m.m = kg, m.n = cgrs, m.k = npq;
      m.a = dyt, m.a_row = npq, m.a_col = 1, m.a_batch = kg * npq;
      m.b = cols, m.b_row = 1, m.b_col = npq, m.b_batch = cgrs * npq;
      m.c = dw, m.c_row = cgrs, m.c_col = 1, m.c_batch = kg * cgrs;
      m.beta = n0 > 0 ? 1.0f : 0.0f;
      sgemm(m, stream);
    }
    if (dx) {
      if (kg == 0) {  // no output channels: nothing flows back
        zero(cols, rows * npq, stream);
      } else {
        m.m = cgrs, m.n = npq, m.k = kg;
        m.a = w, m.a_row = 1, m.a_col = cgrs, m.a_batch = kg * cgrs;
        m.b = dyt, m.b_row = npq, m.b_col = 1, m.b_batch = kg * npq;
        m.c = cols, m.c_row = npq, m.c_col = 1, m.c_batch = cgrs * npq;
        m.beta = 0.0f;
        sgemm(m, stream);
      }
      col2im(g, cols, pq, npq, 1, images, dx + n0 * g.c * g.h * g.w, stream);
    }
  }
}

}  // namespace ember::cuda::conv
