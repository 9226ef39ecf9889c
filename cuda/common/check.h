// Every CUDA call's status is checked; a failure throws with the call's name and CUDA's message.
// A kernel launch is checked right after it with EMBER_CUDA_LAUNCH_CHECK("kernel_name"), which
// reports a bad launch configuration (or an earlier asynchronous fault) under the kernel's name.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ember::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(status) + ": " +
                             cudaGetErrorString(status));
}

}  // namespace ember::cuda

#define EMBER_CUDA_CHECK(call) ::ember::cuda::check((call), #call)
#define EMBER_CUDA_LAUNCH_CHECK(kernel_name) \
  ::ember::cuda::check(cudaGetLastError(), "launching " kernel_name)
