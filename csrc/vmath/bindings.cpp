// ember._C bindings of the elementwise math family.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.h"
#include "common/pyarray.h"
#include "cpu/dispatch.h"
#include "vmath/vmath.h"

namespace py = pybind11;

namespace ember {
namespace {

// out = f(x) elementwise for f in exp, sigmoid, tanh; x and out C-contiguous float32, same shape.
py::array vmath_arrays(const std::string& fn, const py::array& x, py::array out) {
  float32_strides(x, "x");
  float32_strides(out, "out");
  if (!(x.flags() & py::array::c_style) || !(out.flags() & py::array::c_style))
    throw py::value_error("vmath: x and out must be C-contiguous");
  if (x.size() != out.size())
    throw py::value_error("vmath: x " + shape_str(x) + " and out " + shape_str(out) + " differ in size");
  if (!out.writeable()) throw py::value_error("vmath: out is read-only");
  const vmath::VMath& vm = *cpu::kernels().vmath;
  const vmath::ArrayFn f = fn == "exp" ? vm.exp : fn == "sigmoid" ? vm.sigmoid : fn == "tanh" ? vm.tanh : nullptr;
  if (!f) throw py::value_error("vmath: fn must be 'exp', 'sigmoid' or 'tanh', got '" + fn + "'");
  const float* src = static_cast<const float*>(x.data());
  float* dst = static_cast<float*>(out.mutable_data());
  const int64_t n = x.size();
  {
    py::gil_scoped_release release;
    f(src, dst, n);
  }
  return out;
}

}  // namespace

void bind_vmath(py::module_& m) {
  m.def("vmath", &vmath_arrays, py::arg("fn"), py::arg("x"), py::arg("out"),
        "out = fn(x) elementwise with the active ISA's exp/sigmoid/tanh (out may be x)");
}

}  // namespace ember
