// Each kernel family binds its functions into ember._C from its own bindings.cpp.
#pragma once
#include <pybind11/pybind11.h>

namespace ember {

void bind_gemm(pybind11::module_& m);
void bind_vmath(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_pool(pybind11::module_& m);
void bind_attention(pybind11::module_& m);
void bind_lstm(pybind11::module_& m);
void bind_optim(pybind11::module_& m);

}  // namespace ember
