// C entry point of the pooling kernels (cuda/pool/pool.cu) under the CPU emulator (emu.h), for
// tests/test_cuda_pool_emulated.py: the arrays are copied into fenced buffers, the launcher of
// pool.cu runs with the Window the bindings would build, and the outputs are copied back.
#include <cstdio>
#include <stdexcept>

#include "emu/array.h"
#include "pool/pool.h"

namespace pool = ember::cuda::pool;

namespace {

pool::Planes planes(const emu::FencedCopy& x, const EmuArray& a) {
  return {x.data<float>(), a.shape[0], a.shape[1], x.stride(0), x.stride(1), x.stride(2),
          x.stride(3)};
}

}  // namespace

extern "C" {

enum PoolOp { kMax, kMaxBackward, kAvg, kAvgBackward, kAdaptive, kAdaptiveBackward };

// op's launcher on `in` (x or dy, (N, C, rows, cols)) into `out` (y or dx, contiguous); `aux` is
// the int64 indices (max pooling: written forward, read backward) and `bad` the int32 flag of the
// max backward. window: H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw. 0 on success, else the
// message in error.
int emu_pool(int op, const int64_t* window, int count_include_pad, int64_t divisor,
             const EmuArray* in, const EmuArray* out, const EmuArray* aux, const EmuArray* bad,
             int order, uint32_t schedule_seed, char* error, int64_t error_len) {
  try {
    emu::options().order = static_cast<emu::Order>(order);
    emu::options().seed = schedule_seed;
    const int64_t* w = window;
    const pool::Window g{w[0], w[1], w[2], w[3],  w[4],  w[5],
                         w[6], w[7], w[8], w[9], w[10], w[11],
                         count_include_pad != 0, divisor};
    const emu::FencedCopy x(*in), y(*out);
    switch (op) {
      case kMax: {
        const emu::FencedCopy idx(*aux);
        pool::max_pool2d(g, planes(x, *in), y.data<float>(), idx.data<int64_t>(), nullptr);
        idx.copy_back();
        break;
      }
      case kMaxBackward: {
        const emu::FencedCopy idx(*aux), flag(*bad);
        const pool::Indices at{idx.data<int64_t>(), idx.stride(0), idx.stride(1), idx.stride(2),
                               idx.stride(3)};
        pool::max_pool2d_backward(g, planes(x, *in), at, y.data<float>(), flag.data<int>(),
                                  nullptr);
        flag.copy_back();
        break;
      }
      case kAvg:
        pool::avg_pool2d(g, planes(x, *in), y.data<float>(), nullptr);
        break;
      case kAvgBackward:
        pool::avg_pool2d_backward(g, planes(x, *in), y.data<float>(), nullptr);
        break;
      case kAdaptive:
        pool::adaptive_avg_pool2d(g, planes(x, *in), y.data<float>(), nullptr);
        break;
      case kAdaptiveBackward:
        pool::adaptive_avg_pool2d_backward(g, planes(x, *in), y.data<float>(), nullptr);
        break;
      default:
        throw std::invalid_argument("emu_pool: unknown op");
    }
    y.copy_back();
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 2;
  }
}

}  // extern "C"
