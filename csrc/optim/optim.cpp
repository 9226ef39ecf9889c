// The group drivers: cut every tensor into chunks of at most kChunk elements and run the active
// ISA's kernel on each, in parallel over chunks when the group holds at least kParallelMin.
#include <algorithm>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/threads.h"
#include "optim/optim.h"

namespace ember::optim {
namespace {

constexpr int64_t kChunk = 1 << 14;         // elements per task (a multiple of every width)
constexpr int64_t kParallelMin = 1 << 16;   // fewer elements in a group: one thread

struct Chunk {
  int64_t tensor, begin, end;
};

template <class T, class Kernel, class S>
void run(const S& s, const std::vector<T>& tensors, Kernel kernel) {
  std::vector<Chunk> chunks;
  int64_t total = 0;
  for (int64_t k = 0; k < static_cast<int64_t>(tensors.size()); ++k) {
    const int64_t n = tensors[k].n;
    total += n;
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({k, b, std::min(n, b + kChunk)});
  }
  const int64_t count = static_cast<int64_t>(chunks.size());
  const int threads = total >= kParallelMin ? cpu::num_threads() : 1;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
  for (int64_t c = 0; c < count; ++c)
    kernel(s, tensors[chunks[c].tensor], chunks[c].begin, chunks[c].end);
}

}  // namespace

void sgd_step(const SgdScalars& s, const std::vector<SgdTensor>& tensors) {
  run(s, tensors, cpu::kernels().optim->sgd);
}

void adam_step(const AdamScalars& s, const std::vector<AdamTensor>& tensors) {
  run(s, tensors, cpu::kernels().optim->adam);
}

}  // namespace ember::optim
