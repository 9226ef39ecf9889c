// Internal to cuda/gemm: the GEMM as the kernels see it, and their launchers. gemm.cu turns a
// GemmArgs into a Problem (strides of size-1 dimensions normalised, the layout of each operand
// read off its strides) and picks a kernel and tile; the kernels live one family per file:
//   sgemm_simt.cu     fp32 FMA on CUDA cores, register-prefetched double-buffered tiles
//   sgemm_tf32.cu     TF32 tensor cores (mma.sync m16n8k8), cp.async multi-stage pipeline
//   sgemm_strided.cu  any strides, scalar loads: the fallback when an operand has no unit stride
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "gemm/gemm.h"

namespace ember::cuda::gemm_detail {

// The dimension of an operand along which its elements are adjacent in memory, and along which a
// block's loads of it run: kK, the reduction dimension (A not transposed, B transposed), or kMN,
// the other one (A's rows m when A is transposed, B's columns n when B is not).
enum class Major { kK, kMN };

// One input operand as an (mn x k) matrix: element (r, p) of batch b is
// ptr[b * s_batch + r * s_mn + p * s_k]. For A, mn is m; for B, mn is n (op(B) transposed).
struct Operand {
  const float* ptr;
  int64_t s_mn, s_k, s_batch;
  Major major;
  // 16-byte loads of 4 elements along `major` are allowed: unit stride along it, a 16-byte
  // aligned pointer, and the other two strides multiples of 4 elements.
  bool vec;
};

struct Problem {
  int64_t m, n, k, batch;
  Operand a, b;  // a: mn = m; b: mn = n
  float* c;      // C(i, j) of batch b at c[b * c_batch + i * c_row + j * c_col]
  int64_t c_row, c_col, c_batch;
  bool c_vec4, c_vec2;  // rows of C take aligned float4 / float2 stores (c_col == 1)
  float alpha, beta;
};

// Tiles of the SIMT kernel (block tile BM x BN, k step BK). gemm.cu picks the largest whose grid
// covers the GPU.
enum class SimtTile { k128x128x16, k128x64x8, k64x64x8, k32x32x16 };
void launch_sgemm_simt(const Problem& p, SimtTile tile, cudaStream_t stream);

// Tiles of the TF32 tensor-core kernel.
enum class Tf32Tile { k128x128x16, k64x64x16 };
void launch_sgemm_tf32(const Problem& p, Tf32Tile tile, cudaStream_t stream);

// Any strides (exact fp32): the operands' layouts are not consulted.
void launch_sgemm_strided(const Problem& p, cudaStream_t stream);

// Grid limits shared by the launchers: output tiles run along grid.x, batches along grid.z (a
// block loops over batches blockIdx.z, blockIdx.z + gridDim.z, ... when there are more).
constexpr int64_t kMaxGridX = 2147483647;
constexpr int64_t kMaxGridZ = 65535;

}  // namespace ember::cuda::gemm_detail
