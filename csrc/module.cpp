// ember._C: the CPU kernels. Each family binds its functions from <family>/bindings.cpp; Python
// (ember.ops) validates first and those wrappers check again, so that no call can reach a kernel
// with inconsistent arguments.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "cpu/dispatch.h"
#include "cpu/features.h"
#include "cpu/threads.h"
#include "bindings.h"

namespace py = pybind11;
using namespace ember;

namespace {

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
  kernels["vmath"] = t.vmath->name;
  kernels["pool"] = t.pool->name;
  kernels["attention"] = t.attention->name;
  kernels["lstm"] = t.lstm->name;
  kernels["optim"] = t.optim->name;
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

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ember's CPU kernels (private: use ember.ops)";
  m.attr("__version__") = EMBER_VERSION;
  cpu::init_dispatch();
  cpu::init_threads();

  m.def("cpu_info", &cpu_info, "CPU features, the chosen ISA path and its kernels");
  m.def("num_threads", &cpu::num_threads);
  m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"));
  m.def(
      "_select_isa", [](const std::string& name) { cpu::select_isa(cpu::parse_isa(name)); }, py::arg("name"),
      "Switch the kernel table (tests only; not thread-safe against running kernels)");
  bind_gemm(m);
  bind_vmath(m);
  bind_conv(m);
  bind_pool(m);
  bind_attention(m);
  bind_lstm(m);
  bind_optim(m);
}
