#include "cpu/threads.h"

#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace ember::cpu {
namespace {

std::atomic<int>& setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}

}  // namespace

int num_threads() { return setting().load(std::memory_order_relaxed); }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  setting().store(n, std::memory_order_relaxed);
}

}  // namespace ember::cpu
