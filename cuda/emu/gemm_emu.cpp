// C entry point of ember::cuda::sgemm (cuda/gemm: the planner of gemm.cu and the SIMT, TF32 and
// strided kernels) under the CPU emulator (emu.h), for tests/test_cuda_gemm_emulated.py. The
// kernels' .cu files are compiled by g++ after tests/cuda_emu.py rewrote their launches; the
// operands are copied into fenced buffers (reading or writing outside one faults) and C is
// copied back.
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "emu/emu.h"
#include "gemm/gemm.h"

namespace {

// 0 on success; 1 for invalid arguments (ValueError), 2 for anything else, the message in error.
template <class F>
int guarded(char* error, int64_t error_len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::invalid_argument& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 2;
  }
}

// A copy of the `bytes` bytes at `base`, `shift` bytes into a fenced buffer.
struct Copy {
  Copy(const void* base, int64_t bytes, int64_t shift)
      : buffer(static_cast<size_t>(bytes + shift)), shift(shift) {
    std::memcpy(buffer.data() + shift, base, static_cast<size_t>(bytes));
  }
  // the element `offset` bytes into the copy
  float* at(int64_t offset) { return reinterpret_cast<float*>(buffer.data() + shift + offset); }
  emu::FencedBuffer buffer;
  int64_t shift;
};

}  // namespace

extern "C" {

// C = alpha op(A) op(B) + beta C over `batch` matrices; each operand is given as the byte range
// it spans (base, bytes), the byte offset of its element 0 in that range and its strides in
// elements (row, col, batch). `shift` bytes (0, 4, 8 or 12) move each fenced copy off 16-byte
// alignment, to reach the kernels' unaligned paths.
int emu_sgemm(int64_t m, int64_t n, int64_t k, int64_t batch, const void* a_base, int64_t a_bytes,
              int64_t a_offset, const int64_t* a_strides, const void* b_base, int64_t b_bytes,
              int64_t b_offset, const int64_t* b_strides, void* c_base, int64_t c_bytes,
              int64_t c_offset, const int64_t* c_strides, float alpha, float beta, int tf32,
              int multiprocessors, int order, uint32_t schedule_seed, int64_t shift,
              char* name, int64_t name_len, char* error, int64_t error_len) {
  return guarded(error, error_len, [&] {
    emu::options().order = static_cast<emu::Order>(order);
    emu::options().seed = schedule_seed;
    emu::options().multiprocessors = multiprocessors;
    Copy a(a_base, a_bytes, shift), b(b_base, b_bytes, shift), c(c_base, c_bytes, shift);
    ember::cuda::GemmArgs g;
    g.m = m, g.n = n, g.k = k, g.batch = batch;
    g.a = a.at(a_offset), g.a_row = a_strides[0], g.a_col = a_strides[1];
    g.a_batch = a_strides[2];
    g.b = b.at(b_offset), g.b_row = b_strides[0], g.b_col = b_strides[1];
    g.b_batch = b_strides[2];
    g.c = c.at(c_offset), g.c_row = c_strides[0], g.c_col = c_strides[1];
    g.c_batch = c_strides[2];
    g.alpha = alpha, g.beta = beta, g.tf32 = tf32 != 0;
    std::snprintf(name, static_cast<size_t>(name_len), "%s",
                  ember::cuda::sgemm_kernel_name(g).c_str());
    ember::cuda::sgemm(g, nullptr);
    std::memcpy(c_base, c.at(0), static_cast<size_t>(c_bytes));
  });
}

}  // extern "C"
