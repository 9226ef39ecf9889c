// The number of OpenMP threads ember's kernels use. It starts at omp_get_max_threads() (which
// follows OMP_NUM_THREADS) and is one process-wide setting, so kernels called from any Python
// thread agree on it.
//
// In a child forked from a process whose OpenMP threads have run, libgomp would wait forever for
// threads that were not copied: there ember's kernels run on one thread (as PyTorch's DataLoader
// workers do), whatever set_num_threads says.
#pragma once

namespace ember::cpu {

// Reads the default and registers the fork handler; called once at import.
void init_threads();
int num_threads();
void set_num_threads(int n);

}  // namespace ember::cpu
