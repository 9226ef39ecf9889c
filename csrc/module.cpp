// ember._C: pybind11 bindings of the CPU kernels. Python (ember.ops) validates first; these
// wrappers check again so that no call can reach a kernel with inconsistent arguments.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/dispatch.h"
#include "cpu/features.h"
#include "cpu/threads.h"
#include "gemm/gemm.h"

namespace py = pybind11;
using namespace ember;

namespace {

std::string shape_str(const py::array& x) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < x.ndim(); ++d) s += (d ? ", " : "") + std::to_string(x.shape(d));
  return s + (x.ndim() == 1 ? ",)" : ")");
}

// Checks that `x` is a float32 array whose strides are whole elements; returns its strides in elements.
std::vector<int64_t> float32_strides(const py::array& x, const char* name) {
  if (!x.dtype().equal(py::dtype::of<float>()))
    throw py::type_error(std::string(name) + " must be float32, got " + std::string(py::str(x.dtype())));
  if (reinterpret_cast<uintptr_t>(x.data()) % alignof(float) != 0)
    throw py::value_error(std::string(name) + " is not aligned to float32");
  std::vector<int64_t> strides(x.ndim());
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    if (x.strides(d) % static_cast<py::ssize_t>(sizeof(float)) != 0)
      throw py::value_error(std::string(name) + " has a stride that is not a whole number of float32 elements");
    strides[d] = x.strides(d) / static_cast<py::ssize_t>(sizeof(float));
  }
  return strides;
}

// The byte range [lo, hi] an array's elements span (empty arrays span nothing).
bool byte_range(const py::array& x, uintptr_t& lo, uintptr_t& hi) {
  if (x.size() == 0) return false;
  lo = hi = reinterpret_cast<uintptr_t>(x.data());
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    const py::ssize_t reach = (x.shape(d) - 1) * x.strides(d);
    (reach < 0 ? lo : hi) += reach;
  }
  hi += x.itemsize() - 1;
  return true;
}

bool overlap(const py::array& x, const py::array& y) {
  uintptr_t xl, xh, yl, yh;
  if (!byte_range(x, xl, xh) || !byte_range(y, yl, yh)) return false;
  return xl <= yh && yl <= xh;
}

// Element offsets of every index of the leading (batch) dimensions of `x`, in C order.
std::vector<int64_t> batch_offsets(const py::array& x, const std::vector<int64_t>& strides, int batch_dims) {
  std::vector<int64_t> offsets{0};
  for (int d = 0; d < batch_dims; ++d) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * x.shape(d));
    for (int64_t base : offsets)
      for (py::ssize_t i = 0; i < x.shape(d); ++i) next.push_back(base + i * strides[d]);
    offsets.swap(next);
  }
  return offsets;
}

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

py::dict cpu_info() {
  const cpu::Features& f = cpu::features();
  py::dict features;
  features["sse2"] = f.sse2;
  features["avx"] = f.avx;
  features["avx2"] = f.avx2;
  features["fma"] = f.fma;
  features["avx512f"] = f.avx512f;
  features["avx512bw"] = f.avx512bw;
  features["avx512dq"] = f.avx512dq;
  features["avx512vl"] = f.avx512vl;
  py::list supported;
  for (cpu::Isa isa : cpu::supported_isas()) supported.append(cpu::isa_name(isa));
  const cpu::KernelTable& t = cpu::kernels();
  py::dict kernels;
  kernels["gemm"] = t.gemm->name;
  py::dict info;
  info["vendor"] = f.vendor;
  info["brand"] = f.brand;
  info["features"] = features;
  info["supported_isas"] = supported;
  info["isa"] = cpu::isa_name(t.isa);
  info["kernels"] = kernels;
  info["num_threads"] = cpu::num_threads();
  return info;
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
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ember's CPU kernels (private: use ember.ops)";
  m.attr("__version__") = EMBER_VERSION;
  cpu::init_dispatch();

  m.def("cpu_info", &cpu_info, "CPU features, the chosen ISA path and its kernels");
  m.def("gemm_blocking", &gemm_blocking, "The active GEMM micro-kernel's tile and cache blocking");
  m.def("num_threads", &cpu::num_threads);
  m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"));
  m.def(
      "_select_isa", [](const std::string& name) { cpu::select_isa(cpu::parse_isa(name)); }, py::arg("name"),
      "Switch the kernel table (tests only; not thread-safe against running kernels)");
  m.def("gemm", &gemm_arrays, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0f, py::arg("beta") = 0.0f,
        "out = alpha * op(a) @ op(b) + beta * out, batched over equal leading dimensions");
}
