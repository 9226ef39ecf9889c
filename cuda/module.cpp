// ember._cuda: pybind11 bindings of the CUDA kernels (private: use ember.ops).
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "device.h"

namespace py = pybind11;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "ember's CUDA kernels (private: use ember.ops)";
  m.def("device_count", &ember::cuda::device_count, "Visible CUDA devices (0 without a driver)");
  m.def("runtime_version", &ember::cuda::runtime_version, "CUDA runtime version built in, e.g. 13000");
  m.def("driver_version", &ember::cuda::driver_version, "CUDA driver version, 0 without a driver");
  m.def(
      "device_info",
      [](int device) {
        const ember::cuda::DeviceInfo info = ember::cuda::device_info(device);
        py::dict d;
        d["name"] = info.name;
        d["compute_capability"] = py::make_tuple(info.major, info.minor);
        d["multiprocessors"] = info.multiprocessors;
        d["total_memory"] = info.total_memory;
        return d;
      },
      py::arg("device") = 0);
  ember::cuda::bind_conv(m);
  ember::cuda::bind_gemm(m);
  ember::cuda::bind_optim(m);
  ember::cuda::bind_lstm(m);
  ember::cuda::bind_pool(m);
  ember::cuda::bind_attention(m);
}
