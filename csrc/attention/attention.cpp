// The attention drivers: split the work over OpenMP threads, give each thread its scratch, and
// run the active ISA's block kernels (attention_simd.h). Portable code, baseline ISA.
#include "attention/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/threads.h"

namespace ember::attention {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A 64-byte aligned float buffer of `threads` slices of `per_thread` floats each.
class ThreadScratch {
 public:
  ThreadScratch(int threads, int64_t per_thread) : stride_((per_thread + 15) / 16 * 16) {
    const size_t bytes =
        static_cast<size_t>(std::max<int64_t>(1, threads * stride_)) * sizeof(float);
    data_ = static_cast<float*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!data_) throw std::bad_alloc();
  }
  ~ThreadScratch() { std::free(data_); }
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;
  float* slice(int t) const { return data_ + t * stride_; }

 private:
  int64_t stride_;
  float* data_ = nullptr;
};

}  // namespace

void forward(const ForwardArgs& a) {
  const Problem& p = a.p;
  if (p.batch == 0 || p.L == 0) return;
  if (p.S == 0) {  // softmax over no keys: PyTorch gives zeros
    std::fill(a.out, a.out + p.batch * p.L * p.Ev, 0.0f);
    std::fill(a.lse, a.lse + p.batch * p.L, -std::numeric_limits<float>::infinity());
    return;
  }
  const Kernels& kern = *cpu::kernels().attention;
  const int nthreads = cpu::num_threads();
  // One item per (batch, query block). Each item packs every key block it visits, so blocks
  // are as tall as the scratch allows, split evenly, and only cut further when there would be
  // fewer items than threads.
  const int64_t panels = ceil_div(p.L, kern.row_panel);
  const int64_t want = std::max(ceil_div(p.L, kern.forward_rows), ceil_div(nthreads, p.batch));
  const int64_t rows = ceil_div(panels, std::min(panels, want)) * kern.row_panel;
  const int64_t blocks = ceil_div(p.L, rows);
  const int64_t items = p.batch * blocks;
  const int threads = static_cast<int>(std::min<int64_t>(nthreads, items));
  const ThreadScratch scratch(threads, kern.forward_scratch(p));
  // Causal blocks grow with their index: the last ones of each batch item go first so that the
  // dynamic schedule ends evenly.
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t b = t / blocks;
    const int64_t qb = p.causal ? blocks - 1 - t % blocks : t % blocks;
    const int64_t q0 = qb * rows;
    kern.forward_block(a, b, q0, std::min(rows, p.L - q0), scratch.slice(omp_get_thread_num()));
  }
}

void backward(const BackwardArgs& args, View out, float* dq) {
  const Problem& p = args.p;
  if (p.batch == 0) return;
  if (p.L == 0 || p.S == 0) {
    std::fill(dq, dq + p.batch * p.L * p.E, 0.0f);
    std::fill(args.dk, args.dk + p.batch * p.S * p.E, 0.0f);
    std::fill(args.dv, args.dv + p.batch * p.S * p.Ev, 0.0f);
    return;
  }
  const Kernels& kern = *cpu::kernels().attention;
  const int nthreads = cpu::num_threads();

  // D = rowsum(dout * out), one value per query row
  std::vector<float> delta(static_cast<size_t>(p.batch * p.L));
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t r = 0; r < p.batch * p.L; ++r) {
    const int64_t b = r / p.L, i = r % p.L;
    const float* g = args.dout.data + args.dout.offsets[b] + i * args.dout.rs;
    const float* o = out.data + out.offsets[b] + i * out.rs;
    float sum = 0.0f;
    for (int64_t e = 0; e < p.Ev; ++e) sum += g[e * args.dout.cs] * o[e * out.cs];
    delta[r] = sum;
  }
  BackwardArgs a = args;
  a.delta = delta.data();

  // One item per (batch, chunk of key blocks). With fewer batch items than threads the key
  // blocks of one item are split into chunks, each adding into a dq accumulator of its own;
  // the accumulators are summed in chunk order afterwards, so the result does not depend on
  // which thread ran what.
  const int64_t key_blocks = ceil_div(p.S, kern.backward_k);
  const int64_t chunks =
      p.batch >= nthreads ? 1 : std::min<int64_t>(key_blocks, ceil_div(nthreads, p.batch));
  const int64_t items = p.batch * chunks;
  const int threads = static_cast<int>(std::min<int64_t>(nthreads, items));
  const int64_t ld = ceil_div(p.E, kern.dq_ld) * kern.dq_ld;
  const int64_t acc_floats = ceil_div(p.L, kern.backward_q) * kern.backward_q * ld;
  const ThreadScratch scratch(threads, kern.backward_scratch(p));
  // chunks == 1: one accumulator per thread, written out at once; else one per item
  const ThreadScratch acc(chunks == 1 ? threads : static_cast<int>(items), acc_floats);
  const float scale = p.scale;

#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t t = 0; t < items; ++t) {
    const int64_t b = t / chunks, c = t % chunks;
    float* dq_acc = acc.slice(chunks == 1 ? omp_get_thread_num() : static_cast<int>(t));
    std::memset(dq_acc, 0, static_cast<size_t>(acc_floats) * sizeof(float));
    kern.backward_chunk(a, b, c, chunks, dq_acc, scratch.slice(omp_get_thread_num()));
    if (chunks == 1)
      for (int64_t i = 0; i < p.L; ++i)
        for (int64_t e = 0; e < p.E; ++e) dq[(b * p.L + i) * p.E + e] = scale * dq_acc[i * ld + e];
  }
  if (chunks == 1) return;
#pragma omp parallel for num_threads(nthreads) schedule(static)
  for (int64_t r = 0; r < p.batch * p.L; ++r) {
    const int64_t b = r / p.L, i = r % p.L;
    for (int64_t e = 0; e < p.E; ++e) {
      float sum = 0.0f;
      for (int64_t c = 0; c < chunks; ++c)
        sum += acc.slice(static_cast<int>(b * chunks + c))[i * ld + e];
      dq[r * p.E + e] = scale * sum;
    }
  }
}

}  // namespace ember::attention
