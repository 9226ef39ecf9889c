// f32_optim_avx2: the fused SGD and Adam updates, 8 floats per vector. Compiled with -mavx2 -mfma
// and -ffp-contract=off (no FMA, to round as PyTorch and NumPy do).
#include "common/simd_avx2.h"
#include "optim/optim.h"
#include "optim/optim_simd.h"

namespace ember::optim {

const Kernels f32_optim_avx2{"f32_optim_avx2", &sgd_chunk<Avx2>, &adam_chunk<Avx2>};

}  // namespace ember::optim
