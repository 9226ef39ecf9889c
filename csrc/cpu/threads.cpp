#include "cpu/threads.h"

#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <stdexcept>
#include <string>

namespace ember::cpu {
namespace {

std::atomic<bool> g_forked_child{false};

std::atomic<int>& setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}

}  // namespace

void init_threads() {
  setting();
  static const int registered = pthread_atfork(nullptr, nullptr, [] { g_forked_child.store(true); });
  if (registered != 0) throw std::runtime_error("pthread_atfork failed");
}

int num_threads() {
  const int n = setting().load(std::memory_order_relaxed);
  return g_forked_child.load(std::memory_order_relaxed) ? 1 : n;
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  setting().store(n, std::memory_order_relaxed);
}

}  // namespace ember::cpu
