// The GEMM every CUDA family calls: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] on float32
// device memory, any element strides (a transpose is a swap of the row and column strides).
//   op(A)[b](i, p) = a[b * a_batch + i * a_row + p * a_col]   (m x k)
//   op(B)[b](p, j) = b[b * b_batch + p * b_row + j * b_col]   (k x n)
//   C[b](i, j)     = c[b * c_batch + i * c_row + j * c_col]   (m x n)
// Batch strides of A and B may be 0 (broadcast); C's elements must be distinct and must not overlap
// A or B. beta == 0 means C is not read. tf32 allows TF32 tensor-core products with fp32
// accumulation (torch.backends.cuda.matmul.allow_tf32); otherwise results are exact fp32 FMA sums.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace ember::cuda {

struct GemmArgs {
  int64_t m = 0, n = 0, k = 0, batch = 1;
  const float* a = nullptr;
  int64_t a_row = 0, a_col = 0, a_batch = 0;
  const float* b = nullptr;
  int64_t b_row = 0, b_col = 0, b_batch = 0;
  float* c = nullptr;
  int64_t c_row = 0, c_col = 0, c_batch = 0;
  float alpha = 1.0f, beta = 0.0f;
  bool tf32 = false;
};

// Enqueues the product on `stream`; throws (naming the kernel) if the launch fails.
void sgemm(const GemmArgs& args, cudaStream_t stream);

// The kernel, tile and operand layouts sgemm picks for these arguments on the current device,
// e.g. "sgemm_simt_kernel 128x128x16 A k, B mn" (benchmarks and tests record it).
std::string sgemm_kernel_name(const GemmArgs& args);

}  // namespace ember::cuda
