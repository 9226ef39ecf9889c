// SGEMM for any strides, exact fp32: a 64 x 64 block tile staged through shared memory 16 steps of
// k at a time, 256 threads each accumulating a 4 x 4 register tile. Every element is loaded on its
// own (no layout is assumed), so this is the fallback for operands that have no unit-stride
// dimension; edge tiles load zeros and store only in-range elements.
#include "common/check.h"
#include "gemm/kernels.h"
#include "gemm/tile.cuh"

namespace ember::cuda::gemm_detail {
namespace {

constexpr int kTileM = 64;
constexpr int kTileN = 64;
constexpr int kTileK = 16;
constexpr int kThreadsM = 16;  // threads along a tile's rows; each owns rows ty, ty + 16, ...
constexpr int kThreadsN = 16;
constexpr int kThreads = kThreadsM * kThreadsN;
constexpr int kRowsPerThread = kTileM / kThreadsM;
constexpr int kColsPerThread = kTileN / kThreadsN;

// C tile (tile_m, tile_n) of every batch; grid x = tiles_m * tiles_n, z = batches (looped).
__global__ void __launch_bounds__(kThreads)
    sgemm_strided_kernel(Problem pr, int64_t tiles_m, int64_t tiles_n) {
  __shared__ float a_tile[kTileK][kTileM];
  __shared__ float b_tile[kTileK][kTileN];
  const int tx = threadIdx.x % kThreadsN;
  const int ty = threadIdx.x / kThreadsN;
  int64_t tile_m, tile_n;
  tile_coords(blockIdx.x, tiles_m, tiles_n, tile_m, tile_n);
  const int64_t row0 = tile_m * kTileM, col0 = tile_n * kTileN;

  for (int64_t batch = blockIdx.z; batch < pr.batch; batch += gridDim.z) {
    const float* a = pr.a.ptr + batch * pr.a.s_batch;
    const float* b = pr.b.ptr + batch * pr.b.s_batch;
    float* c = pr.c + batch * pr.c_batch;
    float acc[kRowsPerThread][kColsPerThread] = {};

    for (int64_t p0 = 0; p0 < pr.k; p0 += kTileK) {
      for (int e = threadIdx.x; e < kTileM * kTileK; e += kThreads) {
        const int i = e % kTileM, p = e / kTileM;
        const int64_t gi = row0 + i, gp = p0 + p;
        a_tile[p][i] = (gi < pr.m && gp < pr.k) ? a[gi * pr.a.s_mn + gp * pr.a.s_k] : 0.0f;
      }
      for (int e = threadIdx.x; e < kTileN * kTileK; e += kThreads) {
        const int j = e % kTileN, p = e / kTileN;
        const int64_t gj = col0 + j, gp = p0 + p;
        b_tile[p][j] = (gj < pr.n && gp < pr.k) ? b[gj * pr.b.s_mn + gp * pr.b.s_k] : 0.0f;
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
        if (i < pr.m && j < pr.n) {
          float* out = c + i * pr.c_row + j * pr.c_col;
          *out = pr.beta == 0.0f ? pr.alpha * acc[r][s] : fmaf(pr.alpha, acc[r][s], pr.beta * *out);
        }
      }
    }
  }
}

}  // namespace

void launch_sgemm_strided(const Problem& p, cudaStream_t stream) {
  const int64_t tiles_m = (p.m + kTileM - 1) / kTileM, tiles_n = (p.n + kTileN - 1) / kTileN;
  const dim3 grid(static_cast<unsigned>(tiles_m * tiles_n), 1,
                  static_cast<unsigned>(p.batch < kMaxGridZ ? p.batch : kMaxGridZ));
  sgemm_strided_kernel<<<grid, kThreads, 0, stream>>>(p, tiles_m, tiles_n);
  EMBER_CUDA_LAUNCH_CHECK("sgemm_strided_kernel");
}

}  // namespace ember::cuda::gemm_detail
