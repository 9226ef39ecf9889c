// ember._C bindings of the GEMM family.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "bindings.h"
#include "common/pyarray.h"
#include "cpu/dispatch.h"
#include "gemm/gemm.h"

namespace py = pybind11;

namespace ember {
namespace {

// out[...] = alpha * op(a[...]) @ op(b[...]) + beta * out[...] over equal leading dimensions.
py::array gemm_arrays(const py::array& a, const py::array& b, py::array out, bool trans_a, bool trans_b,
               float alpha, float beta) {
  auto sa = float32_strides(a, "a");
  auto sb = float32_strides(b, "b");
  auto sc = float32_strides(out, "out");
  const int nd = static_cast<int>(a.ndim());
  if (nd < 2 || b.ndim() != nd || out.ndim() != nd)
    throw py::value_error("gemm: a, b and out must have the same rank >= 2, got a " + shape_str(a) +
                          ", b " + shape_str(b) + ", out " + shape_str(out));
  for (int d = 0; d < nd - 2; ++d)
    if (a.shape(d) != out.shape(d) || b.shape(d) != out.shape(d))
      throw py::value_error("gemm: batch dimensions differ: a " + shape_str(a) + ", b " + shape_str(b) +
                            ", out " + shape_str(out));
  const int r = nd - 2, c = nd - 1;
  const int64_t m = trans_a ? a.shape(c) : a.shape(r);
  const int64_t k = trans_a ? a.shape(r) : a.shape(c);
  const int64_t kb = trans_b ? b.shape(c) : b.shape(r);
  const int64_t n = trans_b ? b.shape(r) : b.shape(c);
  if (k != kb || out.shape(r) != m || out.shape(c) != n)
    throw py::value_error("gemm: shapes do not match: op(a) is (" + std::to_string(m) + ", " +
                          std::to_string(k) + "), op(b) is (" + std::to_string(kb) + ", " +
                          std::to_string(n) + "), out is " + shape_str(out));
  if (!out.writeable()) throw py::value_error("gemm: out is read-only");
  for (int d = 0; d < nd; ++d)
    if (out.size() > 1 && out.shape(d) > 1 && sc[d] == 0) throw py::value_error("gemm: out has overlapping elements (a zero stride)");
  if (overlap(out, a) || overlap(out, b)) throw py::value_error("gemm: out must not overlap a or b");

  gemm::ConstMatrix ma{static_cast<const float*>(a.data()), sa[r], sa[c]};
  gemm::ConstMatrix mb{static_cast<const float*>(b.data()), sb[r], sb[c]};
  gemm::Matrix mc{static_cast<float*>(out.mutable_data()), sc[r], sc[c]};
  if (trans_a) std::swap(ma.rs, ma.cs);
  if (trans_b) std::swap(mb.rs, mb.cs);

  if (out.size() == 0) return out;  // however many batch items: nothing to write
  if (nd == 2) {
    py::gil_scoped_release release;
    gemm::sgemm(m, n, k, alpha, ma, mb, beta, mc);
    return out;
  }
  const auto oa = batch_offsets(a, sa, r), ob = batch_offsets(b, sb, r), oc = batch_offsets(out, sc, r);
  {
    py::gil_scoped_release release;
    gemm::sgemm_batched(static_cast<int64_t>(oc.size()), oa.data(), ob.data(), oc.data(), m, n, k,
                        alpha, ma, mb, beta, mc);
  }
  return out;
}

py::dict gemm_blocking() {
  const gemm::UKernel& uk = *cpu::kernels().gemm;
  py::dict d;
  d["name"] = uk.name;
  d["mr"] = uk.mr;
  d["nr"] = uk.nr;
  d["mc"] = uk.mc;
  d["kc"] = uk.kc;
  d["nc"] = uk.nc;
  d["narrow"] = uk.narrow ? py::object(py::str(uk.narrow->name)) : py::object(py::none());
  return d;
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm_blocking", &gemm_blocking, "The active GEMM micro-kernel's tile and cache blocking");
  m.def("gemm", &gemm_arrays, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f,
        "out = alpha * op(a) @ op(b) + beta * out, batched over equal leading dimensions");
}

}  // namespace ember
