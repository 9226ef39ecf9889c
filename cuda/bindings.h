// One registration function per CUDA kernel family, called from module.cpp.
#pragma once
#include <pybind11/pybind11.h>

namespace ember::cuda {

void bind_gemm(pybind11::module_& m);
void bind_attention(pybind11::module_& m);

}  // namespace ember::cuda
