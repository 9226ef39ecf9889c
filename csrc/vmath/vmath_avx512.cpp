// f32_vmath_avx512: exp / sigmoid / tanh, 16 lanes. Compiled with -mavx512f/bw/dq/vl only.
#include "common/simd_avx512.h"
#include "vmath/vmath.h"
#include "vmath/vmath_simd.h"

namespace ember::vmath {

const VMath f32_vmath_avx512{"f32_vmath_avx512", &apply<Avx512, exp_v<Avx512>>,
                             &apply<Avx512, sigmoid_v<Avx512>>, &apply<Avx512, tanh_v<Avx512>>};

}  // namespace ember::vmath
