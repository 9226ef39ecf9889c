// f32_optim_avx512: the fused SGD and Adam updates, 16 floats per vector. Compiled with
// -mavx512f/bw/dq/vl and -ffp-contract=off (no FMA, to round as PyTorch and NumPy do).
#include "common/simd_avx512.h"
#include "optim/optim.h"
#include "optim/optim_simd.h"

namespace ember::optim {

const Kernels f32_optim_avx512{"f32_optim_avx512", &sgd_chunk<Avx512>, &adam_chunk<Avx512>};

}  // namespace ember::optim
