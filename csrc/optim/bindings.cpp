// ember._C bindings of the fused optimizer steps. ember.optim picks the fused path only for
// float32 NumPy parameter groups; these wrappers check every array again (float32, C-contiguous,
// writeable where updated, sizes equal to the parameter's, no state aliasing its parameter).
#include "bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common/pyarray.h"
#include "optim/optim.h"

namespace py = pybind11;

namespace ember {
namespace {

// The data of list[k] after checking it is a float32 C-contiguous array of n elements (n < 0:
// any), writeable when `writeable`.
float* checked(const py::list& list, size_t k, const char* name, int64_t n, bool writeable) {
  const std::string what = std::string(name) + "[" + std::to_string(k) + "]";
  if (!py::isinstance<py::array>(list[k]))
    throw py::type_error(what + " must be a NumPy array, got " +
                         std::string(py::str(py::type::of(list[k]).attr("__name__"))));
  const py::array a = list[k].cast<py::array>();
  float32_strides(a, what.c_str());
  if (!(a.flags() & py::array::c_style)) throw py::value_error(what + " must be C-contiguous");
  if (writeable && !a.writeable()) throw py::value_error(what + " must be writeable");
  if (n >= 0 && a.size() != n)
    throw py::value_error(what + " has " + std::to_string(a.size()) + " elements, its parameter " +
                          std::to_string(n));
  return static_cast<float*>(const_cast<void*>(a.data()));
}

void check_length(const py::list& list, const char* name, size_t n) {
  if (list.size() != n)
    throw py::value_error(std::string(name) + " must have one array per parameter (" +
                          std::to_string(n) + "), got " + std::to_string(list.size()));
}

void check_apart(const py::list& a, const py::list& b, size_t k, const char* name) {
  if (overlap(a[k].cast<py::array>(), b[k].cast<py::array>()))
    throw py::value_error(std::string(name) + "[" + std::to_string(k) +
                          "] overlaps its parameter");
}

void sgd_step(const py::list& params, const py::list& grads, const py::list& momentum_buffers,
              const std::vector<bool>& init_buffers, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize) {
  const size_t count = params.size();
  check_length(grads, "grads", count);
  if (momentum != 0.0) {
    check_length(momentum_buffers, "momentum_buffers", count);
    if (init_buffers.size() != count)
      throw py::value_error("init_buffers must have one flag per parameter");
  }
  std::vector<optim::SgdTensor> tensors(count);
  for (size_t k = 0; k < count; ++k) {
    optim::SgdTensor& t = tensors[k];
    t.param = checked(params, k, "params", -1, true);
    t.n = params[k].cast<py::array>().size();
    t.grad = checked(grads, k, "grads", t.n, false);
    t.momentum_buffer = nullptr;
    t.init_buf = false;
    if (momentum != 0.0) {
      t.momentum_buffer = checked(momentum_buffers, k, "momentum_buffers", t.n, true);
      check_apart(momentum_buffers, params, k, "momentum_buffers");
      t.init_buf = init_buffers[k];
    }
  }
  const optim::SgdScalars s{static_cast<float>(lr),
                            static_cast<float>(momentum),
                            static_cast<float>(1.0 - dampening),
                            static_cast<float>(weight_decay),
                            nesterov,
                            maximize};
  py::gil_scoped_release release;
  optim::sgd_step(s, tensors);
}

void adam_step(const py::list& params, const py::list& grads, const py::list& exp_avgs,
               const py::list& exp_avg_sqs, const py::list& max_exp_avg_sqs, double lr,
               double beta1, double beta2, double eps, double weight_decay, double step_size,
               double bias_correction2_sqrt, bool decoupled, bool maximize) {
  const size_t count = params.size();
  const bool amsgrad = !max_exp_avg_sqs.empty();
  check_length(grads, "grads", count);
  check_length(exp_avgs, "exp_avgs", count);
  check_length(exp_avg_sqs, "exp_avg_sqs", count);
  if (amsgrad) check_length(max_exp_avg_sqs, "max_exp_avg_sqs", count);
  std::vector<optim::AdamTensor> tensors(count);
  for (size_t k = 0; k < count; ++k) {
    optim::AdamTensor& t = tensors[k];
    t.param = checked(params, k, "params", -1, true);
    t.n = params[k].cast<py::array>().size();
    t.grad = checked(grads, k, "grads", t.n, false);
    t.exp_avg = checked(exp_avgs, k, "exp_avgs", t.n, true);
    t.exp_avg_sq = checked(exp_avg_sqs, k, "exp_avg_sqs", t.n, true);
    t.max_exp_avg_sq = amsgrad ? checked(max_exp_avg_sqs, k, "max_exp_avg_sqs", t.n, true) : nullptr;
    check_apart(exp_avgs, params, k, "exp_avgs");
    check_apart(exp_avg_sqs, params, k, "exp_avg_sqs");
    check_apart(exp_avg_sqs, exp_avgs, k, "exp_avg_sqs");
    if (amsgrad) check_apart(max_exp_avg_sqs, params, k, "max_exp_avg_sqs");
  }
  const optim::AdamScalars s{static_cast<float>(1.0 - beta1),
                             static_cast<float>(beta2),
                             static_cast<float>(1.0 - beta2),
                             static_cast<float>(eps),
                             static_cast<float>(weight_decay),
                             static_cast<float>(1.0 - lr * weight_decay),
                             static_cast<float>(step_size),
                             static_cast<float>(bias_correction2_sqrt),
                             decoupled,
                             maximize};
  py::gil_scoped_release release;
  optim::adam_step(s, tensors);
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"),
        py::arg("init_buffers"), py::kw_only(), py::arg("lr"), py::arg("momentum"),
        py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"),
        py::arg("maximize") = false,
        "One SGD step over a parameter group, in place (float32, C-contiguous arrays; "
        "momentum_buffers ignored when momentum == 0, init_buffers[k]: buffer k starts as the "
        "gradient)");
  m.def("adam_step", &adam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"), py::kw_only(), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("step_size"), py::arg("bias_correction2_sqrt"), py::arg("decoupled"),
        py::arg("maximize") = false,
        "One Adam/AdamW step over a parameter group, in place (float32, C-contiguous arrays; "
        "max_exp_avg_sqs empty unless amsgrad)");
}

}  // namespace ember
