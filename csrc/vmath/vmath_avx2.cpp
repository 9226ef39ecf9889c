// f32_vmath_avx2: exp / sigmoid / tanh, 8 lanes. Compiled with -mavx2 -mfma only.
#include "common/simd_avx2.h"
#include "vmath/vmath.h"
#include "vmath/vmath_simd.h"

namespace ember::vmath {

const VMath f32_vmath_avx2{"f32_vmath_avx2", &apply<Avx2, exp_v<Avx2>>, &apply<Avx2, sigmoid_v<Avx2>>,
                           &apply<Avx2, tanh_v<Avx2>>};

}  // namespace ember::vmath
