// f32_optim_generic: the fused SGD and Adam updates one element at a time, for any CPU.
#include "optim/optim.h"
#include "optim/optim_simd.h"

namespace ember::optim {
namespace {

void sgd(const SgdScalars& s, const SgdTensor& t, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) sgd_scalar(s, t, i);
}

void adam(const AdamScalars& s, const AdamTensor& t, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) adam_scalar(s, t, i);
}

}  // namespace

const Kernels f32_optim_generic{"f32_optim_generic", &sgd, &adam};

}  // namespace ember::optim
