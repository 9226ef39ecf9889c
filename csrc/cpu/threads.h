// The number of OpenMP threads ember's kernels use. It starts at omp_get_max_threads() (which
// follows OMP_NUM_THREADS) and is one process-wide setting, so kernels called from any Python
// thread agree on it.
#pragma once

namespace ember::cpu {

int num_threads();
void set_num_threads(int n);

}  // namespace ember::cpu
