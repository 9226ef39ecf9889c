// ember._cuda bindings of the fused optimizer steps, the GPU twins of ember._C.sgd_step and
// adam_step. ember.optim picks them for float32 CuPy parameter groups on one device; these
// wrappers check every array again (4-byte elements, C-contiguous, on the parameters' device,
// sizes equal to the parameter's, and no two arrays of the call overlapping: the blocks of one
// launch update all tensors at once).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bindings.h"
#include "common/device_array.h"
#include "optim/optim.h"

namespace py = pybind11;

namespace ember::cuda {
namespace {

// The byte range of one array of the call, with its name for the error message.
struct Extent {
  uintptr_t lo, hi;
  std::string name;
};

class Arrays {
 public:
  // list[k] after checking it is a C-contiguous 4-byte-element CuPy array on `device` with n
  // elements (n < 0: any); its bytes are remembered for check_disjoint().
  DeviceArray get(const py::list& list, size_t k, const char* name, int64_t n, int device) {
    const std::string what = std::string(name) + "[" + std::to_string(k) + "]";
    const DeviceArray a = device_array(list[k], what.c_str(), sizeof(float));
    check_c_contiguous(a, what.c_str());
    if (n >= 0 && a.size() != n)
      throw py::value_error(what + " has " + std::to_string(a.size()) +
                            " elements, its parameter " + std::to_string(n));
    if (a.device != device)
      throw py::value_error(what + " is on device " + std::to_string(a.device) +
                            " but params[0] is on device " + std::to_string(device));
    uintptr_t lo, hi;
    a.byte_extent(lo, hi);
    if (lo < hi) extents_.push_back({lo, hi, what});
    return a;
  }

  // Throws if any two arrays seen by get() share a byte.
  void check_disjoint() {
    std::sort(extents_.begin(), extents_.end(),
              [](const Extent& a, const Extent& b) { return a.lo < b.lo; });
    size_t reach = 0;  // among the extents so far, the one reaching highest
    for (size_t i = 1; i < extents_.size(); ++i) {
      if (extents_[i].lo < extents_[reach].hi)
        throw py::value_error(extents_[i].name + " overlaps " + extents_[reach].name);
      if (extents_[i].hi > extents_[reach].hi) reach = i;
    }
  }

 private:
  std::vector<Extent> extents_;
};

void check_length(const py::list& list, const char* name, size_t n) {
  if (list.size() != n)
    throw py::value_error(std::string(name) + " must have one array per parameter (" +
                          std::to_string(n) + "), got " + std::to_string(list.size()));
}

void sgd_step(const py::list& params, const py::list& grads, const py::list& momentum_buffers,
              const std::vector<bool>& init_buffers, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, uintptr_t stream, bool maximize) {
  const size_t count = params.size();
  check_length(grads, "grads", count);
  if (momentum != 0.0) {
    check_length(momentum_buffers, "momentum_buffers", count);
    if (init_buffers.size() != count)
      throw py::value_error("init_buffers must have one flag per parameter");
  }
  if (count == 0) return;
  Arrays arrays;
  std::vector<optim::SgdTensor> tensors(count);
  const int device = device_array(params[0], "params[0]", sizeof(float)).device;
  for (size_t k = 0; k < count; ++k) {
    optim::SgdTensor& t = tensors[k];
    const DeviceArray p = arrays.get(params, k, "params", -1, device);
    t.param = p.ptr<float>();
    t.n = p.size();
    t.grad = arrays.get(grads, k, "grads", t.n, device).ptr<float>();
    t.momentum_buffer = nullptr;
    t.init_buf = false;
    if (momentum != 0.0) {
      t.momentum_buffer = arrays.get(momentum_buffers, k, "momentum_buffers", t.n, device)
                              .ptr<float>();
      t.init_buf = init_buffers[k];
    }
  }
  arrays.check_disjoint();
  const optim::SgdScalars s{static_cast<float>(lr),
                            static_cast<float>(momentum),
                            static_cast<float>(1.0 - dampening),
                            static_cast<float>(weight_decay),
                            nesterov,
                            maximize};
  const DeviceGuard guard(device);
  py::gil_scoped_release release;
  optim::sgd_step(s, tensors, stream_from(stream));
}

void adam_step(const py::list& params, const py::list& grads, const py::list& exp_avgs,
               const py::list& exp_avg_sqs, const py::list& max_exp_avg_sqs, double lr,
               double beta1, double beta2, double eps, double weight_decay, double step_size,
               double bias_correction2_sqrt, bool decoupled, uintptr_t stream, bool maximize) {
  const size_t count = params.size();
  const bool amsgrad = !max_exp_avg_sqs.empty();
  check_length(grads, "grads", count);
  check_length(exp_avgs, "exp_avgs", count);
  check_length(exp_avg_sqs, "exp_avg_sqs", count);
  if (amsgrad) check_length(max_exp_avg_sqs, "max_exp_avg_sqs", count);
  if (count == 0) return;
  Arrays arrays;
  std::vector<optim::AdamTensor> tensors(count);
  const int device = device_array(params[0], "params[0]", sizeof(float)).device;
  for (size_t k = 0; k < count; ++k) {
    optim::AdamTensor& t = tensors[k];
    const DeviceArray p = arrays.get(params, k, "params", -1, device);
    t.param = p.ptr<float>();
    t.n = p.size();
    t.grad = arrays.get(grads, k, "grads", t.n, device).ptr<float>();
    t.exp_avg = arrays.get(exp_avgs, k, "exp_avgs", t.n, device).ptr<float>();
    t.exp_avg_sq = arrays.get(exp_avg_sqs, k, "exp_avg_sqs", t.n, device).ptr<float>();
    t.max_exp_avg_sq =
        amsgrad ? arrays.get(max_exp_avg_sqs, k, "max_exp_avg_sqs", t.n, device).ptr<float>()
                : nullptr;
  }
  arrays.check_disjoint();
  const optim::AdamScalars s{static_cast<float>(1.0 - beta1),
                             static_cast<float>(beta2),
                             static_cast<float>(1.0 - beta2),
                             static_cast<float>(eps),
                             static_cast<float>(weight_decay),
                             static_cast<float>(1.0 - lr * weight_decay),
                             static_cast<float>(step_size),
                             static_cast<float>(bias_correction2_sqrt),
                             decoupled,
                             amsgrad,
                             maximize};
  const DeviceGuard guard(device);
  py::gil_scoped_release release;
  optim::adam_step(s, tensors, stream_from(stream));
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"),
        py::arg("init_buffers"), py::kw_only(), py::arg("lr"), py::arg("momentum"),
        py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("stream"),
        py::arg("maximize") = false,
        "One SGD step over a parameter group of float32 CuPy arrays on one device, in place, "
        "enqueued on `stream` (momentum_buffers ignored when momentum == 0, init_buffers[k]: "
        "buffer k starts as the gradient)");
  m.def("adam_step", &adam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"), py::kw_only(), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("step_size"), py::arg("bias_correction2_sqrt"), py::arg("decoupled"),
        py::arg("stream"), py::arg("maximize") = false,
        "One Adam/AdamW step over a parameter group of float32 CuPy arrays on one device, in "
        "place, enqueued on `stream` (max_exp_avg_sqs empty unless amsgrad)");
}

}  // namespace ember::cuda
