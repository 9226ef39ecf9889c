// The pooling drivers: split the output rows (forward) or planes (backward) into one block per
// thread and run the active ISA's kernels on each block.
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "cpu/dispatch.h"
#include "cpu/threads.h"
#include "pool/pool.h"

namespace ember::pool {
namespace {

// Calls touching fewer elements run on one thread: waking the team costs more than it saves.
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

int threads_for(int64_t elements) {
  return elements < kMinParallelElements ? 1 : cpu::num_threads();
}

// Runs f(begin, end) on one contiguous block of [0, n) per thread.
template <class F>
void blocks(int64_t n, int threads, F f) {
  if (n <= 0) return;
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) f(begin, end);
  }
}

}  // namespace

// The forward passes split the output rows: the rows of a plane are independent, so a few large
// planes still spread over the threads.
void max_pool2d(const Window& g, ConstPlanes x, float* y, int64_t* idx) {
  const Kernels& k = *cpu::kernels().pool;
  blocks(x.N * x.C * g.P, threads_for(x.N * x.C * g.H * g.W),
         [&](int64_t r0, int64_t r1) { k.max_pool_rows(g, x, r0, r1, y, idx); });
}

void avg_pool2d(const Window& g, ConstPlanes x, float* y) {
  const Kernels& k = *cpu::kernels().pool;
  blocks(x.N * x.C * g.P, threads_for(x.N * x.C * g.H * g.W),
         [&](int64_t r0, int64_t r1) { k.avg_pool_rows(g, x, r0, r1, y); });
}

void adaptive_avg_pool2d(const Window& g, ConstPlanes x, float* y) {
  const Kernels& k = *cpu::kernels().pool;
  blocks(x.N * x.C * g.P, threads_for(x.N * x.C * g.H * g.W),
         [&](int64_t r0, int64_t r1) { k.adaptive_avg_pool_rows(g, x, r0, r1, y); });
}

// The backward passes split the planes: the windows of neighbouring output rows may overlap.
void avg_pool2d_backward(const Window& g, ConstPlanes dy, float* dx) {
  const Kernels& k = *cpu::kernels().pool;
  blocks(dy.N * dy.C, threads_for(dy.N * dy.C * g.H * g.W),
         [&](int64_t i0, int64_t i1) { k.avg_pool_backward_planes(g, dy, i0, i1, dx); });
}

void adaptive_avg_pool2d_backward(const Window& g, ConstPlanes dy, float* dx) {
  const Kernels& k = *cpu::kernels().pool;
  blocks(dy.N * dy.C, threads_for(dy.N * dy.C * g.H * g.W),
         [&](int64_t i0, int64_t i1) { k.adaptive_avg_pool_backward_planes(g, dy, i0, i1, dx); });
}

// Scalar on every ISA: a scatter whose targets may repeat does not vectorise (and AVX2 has no
// scatter). Each plane's dx is zeroed just before it is scattered into, while it is in cache.
bool max_pool2d_backward(const Window& g, ConstPlanes dy, const int64_t* idx, float* dx) {
  const int64_t planes = dy.N * dy.C, hw = g.H * g.W, pq = g.P * g.Q;
  int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) num_threads(threads_for(planes* hw))
  for (int64_t i = 0; i < planes; ++i) {
    float* d = dx + i * hw;
    std::memset(d, 0, sizeof(float) * static_cast<size_t>(hw));
    const float* grad = dy.data + (i / dy.C) * dy.sn + (i % dy.C) * dy.sc;
    const int64_t* at = idx + i * pq;
    for (int64_t p = 0; p < g.P; ++p, grad += dy.rs, at += g.Q) {
      for (int64_t q = 0; q < g.Q; ++q) {
        const auto j = static_cast<uint64_t>(at[q]);
        if (j < static_cast<uint64_t>(hw))
          d[j] += grad[q];
        else
          bad = 1;
      }
    }
  }
  return bad == 0;
}

}  // namespace ember::pool
