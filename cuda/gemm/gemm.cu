// SGEMM on the GPU: a 64 x 64 block tile staged through shared memory in steps of 16 along k,
// 256 threads each accumulating a 4 x 4 register tile. Any strides; edge tiles load zeros and
// store only in-range elements.
#include "common/check.h"
#include "gemm/gemm.h"

#include <stdexcept>
#include <string>

namespace ember::cuda {
namespace {

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kThreadsM = 16;  // threads along a tile's rows; each owns rows ty, ty + 16, ...
constexpr int kThreadsN = 16;
constexpr int kThreads = kThreadsM * kThreadsN;
constexpr int kRowsPerThread = kTileM / kThreadsM;
constexpr int kColsPerThread = kTileN / kThreadsN;
constexpr int64_t kMaxGridY = 65535;
constexpr int64_t kMaxGridZ = 65535;

__global__ void __launch_bounds__(kThreads) sgemm_tiled_kernel(GemmArgs g) {
  __shared__ float a_tile[kTileK][kTileM];
  __shared__ float b_tile[kTileK][kTileN];
  const int tx = threadIdx.x % kThreadsN;
  const int ty = threadIdx.x / kThreadsN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;

  for (int64_t batch = blockIdx.z; batch < g.batch; batch += gridDim.z) {
    const float* a = g.a + batch * g.a_batch;
    const float* b = g.b + batch * g.b_batch;
    float* c = g.c + batch * g.c_batch;
    float acc[kRowsPerThread][kColsPerThread] = {};

    for (int64_t p0 = 0; p0 < g.k; p0 += kTileK) {
      for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
        const int i = e % kTileM, p = e / kTileM;
        const int64_t gi = row0 + i, gp = p0 + p;
        a_tile[p][i] = (gi < g.m && gp < g.k) ? a[gi * g.a_row + gp * g.a_col] : 0.0f;
      }
      for (int e = threadIdx.x; e < kTileN * kTileK; e += kThreads) {
        const int j = e % kTileN, p = e / kTileN;
        const int64_t gj = col0 + j, gp = p0 + p;
        b_tile[p][j] = (gj < g.n && gp < g.k) ? b[gp * g.b_row + gj * g.b_col] : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int p = 0; p < kTileK; ++p) {
        float a_reg[kRowsPerThread], b_reg[kColsPerThread];
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) a_reg[r] = a_tile[p][ty + r * kThreadsM];
#pragma unroll
        for (int s = 0; s < kColsPerThread; ++s) b_reg[s] = b_tile[p][tx + s * kThreadsN];
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r)
#pragma unroll
          for (int s = 0; s < kColsPerThread; ++s) acc[r][s] = fmaf(a_reg[r], b_reg[s], acc[r][s]);
      }
      __syncthreads();
    }

#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int64_t i = row0 + ty + r * kThreadsM;
#pragma unroll
      for (int s = 0; s < kColsPerThread; ++s) {
        const int64_t j = col0 + tx + s * kThreadsN;
        if (i < g.m && j < g.n) {
          float* out = c + i * g.c_row + j * g.c_col;
          *out = g.beta == 0.0f ? g.alpha * acc[r][s] : fmaf(g.alpha, acc[r][s], g.beta * *out);
        }
      }
    }
  }
}

}  // namespace

void sgemm(const GemmArgs& args, cudaStream_t stream) {
  if (args.m == 0 || args.n == 0 || args.batch == 0) return;
  if ((args.m + kTileM - 1) / kTileM > kMaxGridY)
    throw std::invalid_argument("sgemm: m = " + std::to_string(args.m) + " rows exceed the grid");
  const dim3 grid(static_cast<unsigned>((args.n + kTileN - 1) / kTileN),
                  static_cast<unsigned>((args.m + kTileM - 1) / kTileM),
                  static_cast<unsigned>(args.batch < kMaxGridZ ? args.batch : kMaxGridZ));
  sgemm_tiled_kernel<<<grid, kThreads, 0, stream>>>(args);
  EMBER_CUDA_LAUNCH_CHECK("sgemm_tiled_kernel");
}

}  // namespace ember::cuda
