// SGEMM, BLIS-style: C = alpha * A @ B + beta * C on strided float32 matrices.
#pragma once
#include <cstdint>

#include "gemm/ukernel.h"

namespace ember::gemm {

// A strided view of a float32 matrix: element (i, j) at data[i * rs + j * cs]. Strides are in
// elements and may be zero or negative (NumPy views).
struct ConstMatrix {
  const float* data;
  int64_t rs;
  int64_t cs;
};
struct Matrix {
  float* data;
  int64_t rs;
  int64_t cs;
};

// C (m, n) = alpha * A (m, k) @ B (k, n) + beta * C, with the kernels chosen at import and
// ember's thread count. With beta == 0, C is only written. C must not overlap A or B.
void sgemm(int64_t m, int64_t n, int64_t k, float alpha, ConstMatrix a, ConstMatrix b, float beta,
           Matrix c);

// The same with a given micro-kernel (or its narrow sibling, for a product its tile would mostly
// pad) and at most `threads` OpenMP threads.
void sgemm_with(const UKernel& uk, int threads, int64_t m, int64_t n, int64_t k, float alpha,
                ConstMatrix a, ConstMatrix b, float beta, Matrix c);

// `batch` independent products: product t reads a.data + a_offsets[t], b.data + b_offsets[t]
// and writes c.data + c_offsets[t] (offsets in elements). Distinct t must write disjoint C.
void sgemm_batched(int64_t batch, const int64_t* a_offsets, const int64_t* b_offsets,
                   const int64_t* c_offsets, int64_t m, int64_t n, int64_t k, float alpha,
                   ConstMatrix a, ConstMatrix b, float beta, Matrix c);

// B packed once for many products with different A (a recurrent weight, say): pack_b_once
// writes B (k, n) in the micro-panels of micro-kernel `uk` to dst (packed_b_size floats), and
// sgemm_packed_b computes C (m, n) = alpha * A (m, k) @ B + beta * C from them, with the same
// uk, k and n, on the calling thread. C must not overlap A.
int64_t packed_b_size(const UKernel& uk, int64_t k, int64_t n);
void pack_b_once(const UKernel& uk, int64_t k, int64_t n, ConstMatrix b, float* dst);
void sgemm_packed_b(const UKernel& uk, int64_t m, int64_t n, int64_t k, float alpha, ConstMatrix a,
                    const float* b_packed, float beta, Matrix c);

}  // namespace ember::gemm
