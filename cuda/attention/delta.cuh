// The backward's first pass, shared by backward_f32.cu and backward_bf16.cu:
// D = rowsum(dout * out), float32 (batch, L), one warp per query row.
#pragma once
#include "attention/common.cuh"

namespace ember::cuda::attention {

constexpr int kDeltaWarps = 8;  // query rows per block

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(uint16_t bf16) { return bf16_to_float(bf16); }

// T: float, or uint16_t holding bf16.
template <class T>
__global__ void __launch_bounds__(32 * kDeltaWarps) sdpa_delta_kernel(const BackwardArgs a) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kDeltaWarps + threadIdx.x / 32;
  if (row >= a.p.batch * a.p.L) return;  // whole warps
  const int lane = threadIdx.x % 32;
  const int64_t b = row / a.p.L, i = row % a.p.L;
  const T* g = rows_of<T>(a.dout, a.p.dims, b) + i * a.dout.row;
  const T* o = rows_of<T>(a.out, a.p.dims, b) + i * a.out.row;
  float sum = 0.0f;
  for (int c = lane; c < a.p.Ev; c += 32) sum = fmaf(to_float(g[c]), to_float(o[c]), sum);
#pragma unroll
  for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, off);
  if (lane == 0) a.delta[row] = sum;
}

template <class T>
void launch_delta(const BackwardArgs& a, cudaStream_t stream) {
  launch("sdpa_delta_kernel", sdpa_delta_kernel<T>, ceil_div(a.p.batch * a.p.L, kDeltaWarps),
         32 * kDeltaWarps, 0, stream, a);
}

}  // namespace ember::cuda::attention
