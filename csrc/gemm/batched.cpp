// A batch of independent SGEMMs (matmul over leading dimensions).
#include <omp.h>

#include <exception>

#include "cpu/dispatch.h"
#include "cpu/threads.h"
#include "gemm/gemm.h"

namespace ember::gemm {

void sgemm_batched(int64_t batch, const int64_t* a_offsets, const int64_t* b_offsets,
                   const int64_t* c_offsets, int64_t m, int64_t n, int64_t k, float alpha,
                   ConstMatrix a, ConstMatrix b, float beta, Matrix c) {
  const UKernel& uk = *cpu::kernels().gemm;
  const int threads = cpu::num_threads();
  auto product = [&](int64_t t, int product_threads) {
    sgemm_with(uk, product_threads, m, n, k, alpha, {a.data + a_offsets[t], a.rs, a.cs},
               {b.data + b_offsets[t], b.rs, b.cs}, beta, {c.data + c_offsets[t], c.rs, c.cs});
  };
  // Threads over the batch when it divides evenly or is long enough that the remainder is
  // noise; otherwise each product uses every thread in turn.
  if (threads == 1 || batch < 2 || (batch % threads != 0 && batch < 4 * threads)) {
    for (int64_t t = 0; t < batch; ++t) product(t, threads);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t t = 0; t < batch; ++t) {
    try {
      product(t, 1);
    } catch (...) {
#pragma omp critical(ember_gemm_batched_error)
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace ember::gemm
