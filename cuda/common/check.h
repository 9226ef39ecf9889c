// Every CUDA call's status is checked; a failure throws with the call's name and CUDA's message.
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
