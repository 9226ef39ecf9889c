// f32_pool_avx2: the pooling kernels of pool_simd.h on 8-lane AVX2 vectors. Compiled with
// -mavx2 -mfma only.
#include "pool/pool.h"
#include "pool/pool_simd.h"
#include "pool/vec_avx2.h"

namespace ember::pool {

const Kernels f32_pool_avx2{"f32_pool_avx2",
                            &max_pool_rows<PoolAvx2>,
                            &avg_pool_rows<PoolAvx2>,
                            &avg_pool_backward_planes<PoolAvx2>,
                            &adaptive_avg_pool_rows<PoolAvx2>,
                            &adaptive_avg_pool_backward_planes<PoolAvx2>};

}  // namespace ember::pool
