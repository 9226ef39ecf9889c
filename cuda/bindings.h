// One registration function per CUDA kernel family, called from module.cpp.
#pragma once
#include <pybind11/pybind11.h>

namespace ember::cuda {

void bind_conv(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_optim(pybind11::module_& m);
void bind_lstm(pybind11::module_& m);
void bind_pool(pybind11::module_& m);
void bind_attention(pybind11::module_& m);

}  // namespace ember::cuda
