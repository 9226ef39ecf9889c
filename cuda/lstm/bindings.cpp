// ember._cuda bindings of the LSTM family. ember.ops.lstm validates the arguments and allocates
// every output and buffer with CuPy; these wrappers check again everything that could send a
// kernel out of bounds (ranks, shapes, the contiguity of what the kernels index as contiguous, the
// row order of x, devices, overlaps), release the GIL and launch on the caller's stream.
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "common/device_array.h"
#include "lstm/lstm.h"

namespace py = pybind11;

namespace ember::cuda {
namespace {

using Named = std::vector<std::pair<const DeviceArray*, const char*>>;

DeviceArray array(py::handle obj, const char* name, const std::vector<int64_t>& shape) {
  DeviceArray a = device_array(obj, name, sizeof(float));
  check_shape(a, name, shape);
  return a;
}

DeviceArray contiguous(py::handle obj, const char* name, const std::vector<int64_t>& shape) {
  DeviceArray a = array(obj, name, shape);
  check_c_contiguous(a, name);
  return a;
}

lstm::Matrix matrix(const DeviceArray& a) {
  return {a.ptr<const float>(), a.strides[0], a.strides[1]};
}

// x (T, B, I) as the (T*B, I) matrix of its rows in time-major (t*B + b) or batch-major (b*T + t)
// order: one row stride must step through them all.
lstm::Matrix fold(const DeviceArray& x, bool batch_major) {
  const int64_t T = x.shape[0], B = x.shape[1], st = x.strides[0], sb = x.strides[1];
  int64_t rs;
  bool ok;
  if (batch_major) {
    rs = T > 1 ? st : sb;
    ok = (T <= 1 || st == rs) && (B <= 1 || sb == T * rs);
  } else {
    rs = B > 1 ? sb : st;
    ok = (B <= 1 || sb == rs) && (T <= 1 || st == B * rs);
  }
  if (!ok)
    throw py::value_error("lstm: x " + shape_string(x.shape) + " with strides " +
                          shape_string(x.strides) + " is not (T*B, I) rows in " +
                          (batch_major ? "batch" : "time") + "-major order");
  return {x.ptr<const float>(), rs, x.strides[2]};
}

// Every array on the first one's device; the outputs apart from each other and from the inputs.
void check_devices_and_overlaps(const Named& inputs, const Named& outputs) {
  const auto& [first, first_name] = inputs.front();
  for (const Named* list : {&inputs, &outputs})
    for (const auto& [a, name] : *list) check_same_device(*a, name, *first, first_name);
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const auto& [in, in_name] : inputs)
      check_no_overlap(*outputs[i].first, outputs[i].second, *in, in_name);
    for (size_t j = i + 1; j < outputs.size(); ++j)
      check_no_overlap(*outputs[i].first, outputs[i].second, *outputs[j].first, outputs[j].second);
  }
}

// One layer forward: writes y, h_n, c_n, gates and (when given, all three) c_all, tanh_c, h_prev.
void lstm_forward(py::handle x_obj, const py::object& h0_obj, py::handle c0_obj,
                  py::handle w_ih_obj, py::handle w_hh_obj, const py::object& bias_obj,
                  py::handle y_obj, py::handle h_n_obj, py::handle c_n_obj, py::handle gates_obj,
                  const py::object& c_all_obj, const py::object& tanh_c_obj,
                  const py::object& h_prev_obj, bool batch_major, bool batch_first, bool tf32,
                  bool graph, uintptr_t stream) {
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  check_ndim(x, "x", 3);
  const DeviceArray w_hh = device_array(w_hh_obj, "w_hh", sizeof(float));
  check_ndim(w_hh, "w_hh", 2);
  const int64_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = w_hh.shape[1];
  check_shape(w_hh, "w_hh", {4 * H, H});
  const DeviceArray w_ih = array(w_ih_obj, "w_ih", {4 * H, I});
  const DeviceArray c0 = contiguous(c0_obj, "c0", {B, H});
  Named inputs = {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {&c0, "c0"}};
  DeviceArray bias, h0;
  if (!bias_obj.is_none()) {
    bias = contiguous(bias_obj, "bias", {4 * H});
    inputs.push_back({&bias, "bias"});
  }
  if (!h0_obj.is_none()) {
    h0 = array(h0_obj, "h0", {B, H});
    inputs.push_back({&h0, "h0"});
  }
  const DeviceArray y = contiguous(
      y_obj, "y", batch_first ? std::vector<int64_t>{B, T, H} : std::vector<int64_t>{T, B, H});
  const DeviceArray h_n = contiguous(h_n_obj, "h_n", {B, H});
  const DeviceArray c_n = contiguous(c_n_obj, "c_n", {B, H});
  const DeviceArray gates = contiguous(gates_obj, "gates", {T * B, 4 * H});
  Named outputs = {{&y, "y"}, {&h_n, "h_n"}, {&c_n, "c_n"}, {&gates, "gates"}};
  const bool save = !c_all_obj.is_none();
  if (tanh_c_obj.is_none() != !save || h_prev_obj.is_none() != !save)
    throw py::value_error("lstm: c_all, tanh_c and h_prev must be given together");
  DeviceArray c_all, tanh_c, h_prev;
  if (save) {
    c_all = contiguous(c_all_obj, "c_all", {T * B, H});
    tanh_c = contiguous(tanh_c_obj, "tanh_c", {T * B, H});
    h_prev = contiguous(h_prev_obj, "h_prev", {T * B, H});
    outputs.insert(outputs.end(), {{&c_all, "c_all"}, {&tanh_c, "tanh_c"}, {&h_prev, "h_prev"}});
  }
  check_devices_and_overlaps(inputs, outputs);

  lstm::LayerForward a{};
  a.T = T, a.B = B, a.I = I, a.H = H;
  a.batch_major = batch_major;
  a.x = fold(x, batch_major);
  a.w_ih = matrix(w_ih);
  a.w_hh = matrix(w_hh);
  a.bias = bias_obj.is_none() ? nullptr : bias.ptr<const float>();
  a.h0 = h0_obj.is_none() ? lstm::Matrix{nullptr, 0, 0} : matrix(h0);
  a.c0 = c0.ptr<const float>();
  a.gates = gates.ptr<float>();
  a.y = batch_first ? lstm::Seq{y.ptr<float>(), H, T * H} : lstm::Seq{y.ptr<float>(), B * H, H};
  a.h_n = h_n.ptr<float>();
  a.c_n = c_n.ptr<float>();
  if (save) {
    a.c_all = c_all.ptr<float>();
    a.tanh_c = tanh_c.ptr<float>();
    a.h_prev = h_prev.ptr<float>();
  }
  a.tf32 = tf32;
  a.graph = graph;
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  lstm::layer_forward(a, stream_from(stream));
}

// One layer backward from what lstm_forward kept: writes dx, dw_ih, dw_hh, db (if given) and the
// dgates workspace; dh and dc hold dL/dh_n and dL/dc_n on entry and dL/dh0, dL/dc0 on return.
void lstm_backward(const py::object& dy_obj, py::handle dh_obj, py::handle dc_obj,
                   py::handle x_obj, py::handle w_ih_obj, py::handle w_hh_obj, py::handle c0_obj,
                   py::handle gates_obj, py::handle c_all_obj, py::handle tanh_c_obj,
                   py::handle h_prev_obj, py::handle dgates_obj, py::handle dx_obj,
                   py::handle dw_ih_obj, py::handle dw_hh_obj, const py::object& db_obj,
                   bool batch_major, bool tf32, bool graph, uintptr_t stream) {
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  check_ndim(x, "x", 3);
  const DeviceArray w_hh = device_array(w_hh_obj, "w_hh", sizeof(float));
  check_ndim(w_hh, "w_hh", 2);
  const int64_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = w_hh.shape[1];
  check_shape(w_hh, "w_hh", {4 * H, H});
  const DeviceArray w_ih = array(w_ih_obj, "w_ih", {4 * H, I});
  const DeviceArray c0 = contiguous(c0_obj, "c0", {B, H});
  const DeviceArray gates = contiguous(gates_obj, "gates", {T * B, 4 * H});
  const DeviceArray c_all = contiguous(c_all_obj, "c_all", {T * B, H});
  const DeviceArray tanh_c = contiguous(tanh_c_obj, "tanh_c", {T * B, H});
  const DeviceArray h_prev = contiguous(h_prev_obj, "h_prev", {T * B, H});
  Named inputs = {{&x, "x"},         {&w_ih, "w_ih"},     {&w_hh, "w_hh"},    {&c0, "c0"},
                  {&gates, "gates"}, {&c_all, "c_all"}, {&tanh_c, "tanh_c"}, {&h_prev, "h_prev"}};
  DeviceArray dy;
  if (!dy_obj.is_none()) {
    dy = array(dy_obj, "dy", {T, B, H});
    inputs.push_back({&dy, "dy"});
  }
  const DeviceArray dh = contiguous(dh_obj, "dh", {B, H});
  const DeviceArray dc = contiguous(dc_obj, "dc", {B, H});
  const DeviceArray dgates = contiguous(dgates_obj, "dgates", {T * B, 4 * H});
  const DeviceArray dx = contiguous(
      dx_obj, "dx", batch_major ? std::vector<int64_t>{B, T, I} : std::vector<int64_t>{T, B, I});
  const DeviceArray dw_ih = contiguous(dw_ih_obj, "dw_ih", {4 * H, I});
  const DeviceArray dw_hh = contiguous(dw_hh_obj, "dw_hh", {4 * H, H});
  Named outputs = {{&dh, "dh"}, {&dc, "dc"},       {&dgates, "dgates"},
                   {&dx, "dx"}, {&dw_ih, "dw_ih"}, {&dw_hh, "dw_hh"}};
  DeviceArray db;
  if (!db_obj.is_none()) {
    db = contiguous(db_obj, "db", {4 * H});
    outputs.push_back({&db, "db"});
  }
  check_devices_and_overlaps(inputs, outputs);

  lstm::LayerBackward a{};
  a.T = T, a.B = B, a.I = I, a.H = H;
  a.batch_major = batch_major;
  a.x = fold(x, batch_major);
  a.w_ih = matrix(w_ih);
  a.w_hh = matrix(w_hh);
  a.c0 = c0.ptr<const float>();
  a.gates = gates.ptr<const float>();
  a.c_all = c_all.ptr<const float>();
  a.tanh_c = tanh_c.ptr<const float>();
  a.h_prev = h_prev.ptr<const float>();
  if (!dy_obj.is_none()) {
    a.dy = dy.ptr<const float>();
    a.dy_t = dy.strides[0], a.dy_b = dy.strides[1], a.dy_j = dy.strides[2];
  }
  a.dh = dh.ptr<float>();
  a.dc = dc.ptr<float>();
  a.dgates = dgates.ptr<float>();
  a.dx = dx.ptr<float>();
  a.dw_ih = dw_ih.ptr<float>();
  a.dw_hh = dw_hh.ptr<float>();
  a.db = db_obj.is_none() ? nullptr : db.ptr<float>();
  a.tf32 = tf32;
  a.graph = graph;
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  lstm::layer_backward(a, stream_from(stream));
}

}  // namespace

void bind_lstm(py::module_& m) {
  m.def("lstm_forward", &lstm_forward, py::arg("x"), py::arg("h0"), py::arg("c0"),
        py::arg("w_ih"), py::arg("w_hh"), py::arg("bias"), py::arg("y"), py::arg("h_n"),
        py::arg("c_n"), py::arg("gates"), py::arg("c_all"), py::arg("tanh_c"), py::arg("h_prev"),
        py::arg("batch_major"), py::arg("batch_first"), py::arg("tf32"), py::arg("graph"),
        py::arg("stream"),
        "One LSTM layer over x (T, B, I) into the given y, h_n, c_n and saved buffers (graph: "
        "replayed as a cached CUDA graph when T > 1)");
  m.def("lstm_backward", &lstm_backward, py::arg("dy"), py::arg("dh"), py::arg("dc"),
        py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("c0"), py::arg("gates"),
        py::arg("c_all"), py::arg("tanh_c"), py::arg("h_prev"), py::arg("dgates"), py::arg("dx"),
        py::arg("dw_ih"), py::arg("dw_hh"), py::arg("db"), py::arg("batch_major"), py::arg("tf32"),
        py::arg("graph"), py::arg("stream"),
        "Backward of lstm_forward into the given gradients (graph: as for lstm_forward)");
}

}  // namespace ember::cuda
