// C entry points of the fused SGD and Adam steps (cuda/optim/optim.cu) under the CPU emulator
// (emu.h), for tests/test_cuda_optim_emulated.py: every array is copied into a fenced buffer,
// the scalars are the ones cuda/optim/bindings.cpp derives, and the arrays are copied back.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <vector>

#include "emu/array.h"
#include "optim/optim.h"

namespace optim = ember::cuda::optim;

namespace {

// The fenced copies of `count` arrays (none when `arrays` is null).
struct Copies {
  Copies(const EmuArray* const* arrays, int count) {
    for (int k = 0; arrays && k < count; ++k)
      copies.push_back(std::make_unique<emu::FencedCopy>(*arrays[k]));
  }
  float* at(size_t k) const { return k < copies.size() ? copies[k]->data<float>() : nullptr; }
  void copy_back() const {
    for (const auto& c : copies) c->copy_back();
  }
  std::vector<std::unique_ptr<emu::FencedCopy>> copies;
};

int64_t elements(const EmuArray& a) {
  int64_t n = 1;
  for (int64_t d = 0; d < a.ndim; ++d) n *= a.shape[d];
  return n;
}

template <class F>
int guarded(int order, uint32_t seed, char* error, int64_t error_len, F&& f) {
  try {
    emu::options().order = static_cast<emu::Order>(order);
    emu::options().seed = seed;
    f();
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 2;
  }
}

}  // namespace

extern "C" {

// scalars: lr, momentum, dampening, weight_decay; bufs null when momentum is 0.
int emu_sgd_step(const double* scalars, int nesterov, int maximize, int count,
                 const EmuArray* const* params, const EmuArray* const* grads,
                 const EmuArray* const* bufs, const uint8_t* init_buffers, int order,
                 uint32_t schedule_seed, char* error, int64_t error_len) {
  return guarded(order, schedule_seed, error, error_len, [&] {
    const Copies p(params, count), g(grads, count), b(bufs, count);
    std::vector<optim::SgdTensor> tensors(static_cast<size_t>(count));
    for (size_t k = 0; k < tensors.size(); ++k)
      tensors[k] = {p.at(k), g.at(k), b.at(k), bufs && init_buffers[k] != 0,
                    elements(*params[k])};
    const optim::SgdScalars s{static_cast<float>(scalars[0]), static_cast<float>(scalars[1]),
                              static_cast<float>(1.0 - scalars[2]),
                              static_cast<float>(scalars[3]), nesterov != 0, maximize != 0};
    optim::sgd_step(s, tensors, nullptr);
    p.copy_back();
    b.copy_back();
  });
}

// scalars: lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt; max_sqs null
// without amsgrad.
int emu_adam_step(const double* scalars, int decoupled, int maximize, int count,
                  const EmuArray* const* params, const EmuArray* const* grads,
                  const EmuArray* const* avgs, const EmuArray* const* sqs,
                  const EmuArray* const* max_sqs, int order, uint32_t schedule_seed, char* error,
                  int64_t error_len) {
  return guarded(order, schedule_seed, error, error_len, [&] {
    const Copies p(params, count), g(grads, count), m(avgs, count), v(sqs, count);
    const Copies vmax(max_sqs, count);
    std::vector<optim::AdamTensor> tensors(static_cast<size_t>(count));
    for (size_t k = 0; k < tensors.size(); ++k)
      tensors[k] = {p.at(k), g.at(k), m.at(k), v.at(k), vmax.at(k), elements(*params[k])};
    const double lr = scalars[0], beta1 = scalars[1], beta2 = scalars[2], wd = scalars[4];
    const optim::AdamScalars s{static_cast<float>(1.0 - beta1), static_cast<float>(beta2),
                               static_cast<float>(1.0 - beta2), static_cast<float>(scalars[3]),
                               static_cast<float>(wd),          static_cast<float>(1.0 - lr * wd),
                               static_cast<float>(scalars[5]),  static_cast<float>(scalars[6]),
                               decoupled != 0,                  max_sqs != nullptr,
                               maximize != 0};
    optim::adam_step(s, tensors, nullptr);
    for (const Copies* c : {&p, &m, &v, &vmax}) c->copy_back();
  });
}

}  // extern "C"
