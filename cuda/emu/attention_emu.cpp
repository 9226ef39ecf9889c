// C entry points of the attention kernels under the CPU emulator (emu.h), for
// tests/test_cuda_attention_emulated.py: built with g++ together with args.cpp and the kernels'
// .cu files (unchanged), all with EMBER_CUDA_EMULATION. A call goes through args.cpp like the
// extension's, on copies of the arrays in fenced buffers (reading or writing outside an array's
// buffer faults), and the outputs are copied back.
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "attention/args.h"
#include "emu/emu.h"

using ember::cuda::attention::ArrayView;

extern "C" {

// A NumPy array: the buffer it views, where element 0 is in it, shape and byte strides.
struct EmuArray {
  void* base;
  int64_t base_bytes;
  int64_t offset;
  int64_t itemsize;
  int64_t ndim;
  int64_t shape[8];
  int64_t strides[8];
};

}  // extern "C"

namespace {

// The fenced copies of the buffers one call touches, one per distinct buffer (so that arrays
// sharing a buffer still share it).
class Buffers {
 public:
  ArrayView view(const EmuArray& a) {
    auto it = copies_.find(a.base);
    if (it == copies_.end()) {
      auto copy = std::make_unique<emu::FencedBuffer>(static_cast<size_t>(a.base_bytes));
      std::memcpy(copy->data(), a.base, static_cast<size_t>(a.base_bytes));
      it = copies_.emplace(a.base, Entry{std::move(copy), a.base_bytes}).first;
    }
    ArrayView v;
    v.data = it->second.copy->data() + a.offset;
    v.itemsize = a.itemsize;
    for (int64_t d = 0; d < a.ndim; ++d) {
      if (a.strides[d] % a.itemsize != 0) throw std::invalid_argument("stride not in elements");
      v.shape.push_back(a.shape[d]);
      v.strides.push_back(a.strides[d] / a.itemsize);
    }
    return v;
  }

  void copy_back(const EmuArray& a) {
    const Entry& e = copies_.at(a.base);
    std::memcpy(a.base, e.copy->data(), static_cast<size_t>(e.bytes));
  }

 private:
  struct Entry {
    std::unique_ptr<emu::FencedBuffer> copy;
    int64_t bytes;
  };
  std::map<void*, Entry> copies_;
};

void set_schedule(int order, uint32_t seed) {
  emu::options().order = static_cast<emu::Order>(order);
  emu::options().seed = seed;
}

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

}  // namespace

extern "C" {

int emu_forward(int bf16, const EmuArray* q, const EmuArray* k, const EmuArray* v,
                const EmuArray* mask, int mask_is_bool, const EmuArray* out, const EmuArray* lse,
                double scale, int causal, double dropout_p, uint64_t seed, int order,
                uint32_t schedule_seed, char* error, int64_t error_len) {
  namespace at = ember::cuda::attention;
  return guarded(error, error_len, [&] {
    set_schedule(order, schedule_seed);
    Buffers buffers;
    const ArrayView vq = buffers.view(*q), vk = buffers.view(*k), vv = buffers.view(*v);
    const ArrayView vo = buffers.view(*out), vl = buffers.view(*lse);
    ArrayView vm;
    if (mask) vm = buffers.view(*mask);
    const at::ForwardArgs a =
        at::forward_args(bf16 ? at::DType::bf16 : at::DType::f32, vq, vk, vv,
                         mask ? &vm : nullptr, mask_is_bool != 0, vo, vl, scale, causal != 0,
                         dropout_p, seed);
    if (a.p.batch > 0 && a.p.L > 0 && a.p.S > 0) {
      if (bf16)
        at::forward_bf16(a, nullptr);
      else
        at::forward_f32(a, nullptr);
    }
    buffers.copy_back(*out);
    buffers.copy_back(*lse);
  });
}

int emu_backward(int bf16, const EmuArray* dout, const EmuArray* q, const EmuArray* k,
                 const EmuArray* v, const EmuArray* out, const EmuArray* lse, const EmuArray* mask,
                 int mask_is_bool, const EmuArray* delta, const EmuArray* dq, const EmuArray* dk,
                 const EmuArray* dv, double scale, int causal, int deterministic, int order,
                 uint32_t schedule_seed, char* error, int64_t error_len) {
  namespace at = ember::cuda::attention;
  return guarded(error, error_len, [&] {
    set_schedule(order, schedule_seed);
    Buffers buffers;
    const ArrayView vg = buffers.view(*dout), vq = buffers.view(*q), vk = buffers.view(*k);
    const ArrayView vv = buffers.view(*v), vo = buffers.view(*out), vl = buffers.view(*lse);
    const ArrayView vd = buffers.view(*delta), vdq = buffers.view(*dq);
    const ArrayView vdk = buffers.view(*dk), vdv = buffers.view(*dv);
    ArrayView vm;
    if (mask) vm = buffers.view(*mask);
    const at::BackwardArgs a =
        at::backward_args(bf16 ? at::DType::bf16 : at::DType::f32, vg, vq, vk, vv, vo, vl,
                          mask ? &vm : nullptr, mask_is_bool != 0, vd, vdq, vdk, vdv, scale,
                          causal != 0, deterministic != 0);
    if (a.p.batch > 0 && a.p.L > 0 && a.p.S > 0) {
      if (bf16)
        at::backward_bf16(a, nullptr);
      else
        at::backward_f32(a, nullptr);
    }
    for (const EmuArray* x : {delta, dq, dk, dv}) buffers.copy_back(*x);
  });
}

}  // extern "C"
