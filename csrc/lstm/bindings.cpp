// ember._C bindings of the LSTM family. ember.ops.lstm validates first; these wrappers check again
// (dtype, ranks, shapes, strides) so that no call reaches the kernels with inconsistent arguments.
#include "bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "common/pyarray.h"
#include "lstm/lstm.h"

namespace py = pybind11;

namespace ember {
namespace {

using lstm::Order;

// A float32 array's element strides after checking its rank and shape (-1 matches any extent).
std::vector<int64_t> checked(const py::array& x, const char* name, std::vector<int64_t> shape) {
  auto strides = float32_strides(x, name);
  bool ok = x.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t d = 0; ok && d < shape.size(); ++d) ok = shape[d] < 0 || x.shape(d) == shape[d];
  if (!ok) {
    std::string want = "(";
    for (size_t d = 0; d < shape.size(); ++d)
      want += (d ? ", " : "") + (shape[d] < 0 ? std::string("*") : std::to_string(shape[d]));
    throw py::value_error(std::string("lstm: ") + name + " must have shape " + want +
                          (shape.size() == 1 ? ",)" : ")") + ", got " + shape_str(x));
  }
  return strides;
}

// A C-contiguous float32 array of the given shape, checked as above.
const float* contiguous(const py::array& x, const char* name, std::vector<int64_t> shape) {
  checked(x, name, shape);
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string("lstm: ") + name + " must be C-contiguous");
  return static_cast<const float*>(x.data());
}

template <class... Dims>
py::array_t<float> new_array(Dims... dims) {
  return py::array_t<float>(std::vector<py::ssize_t>{static_cast<py::ssize_t>(dims)...});
}

float* data(py::array_t<float>& x) { return x.mutable_data(); }

// (B, H) contiguous from an optional (B, H) array of any strides; zeros for None.
py::array_t<float> materialize(const py::object& src, const char* name, int64_t B, int64_t H) {
  auto out = new_array(B, H);
  float* dst = data(out);
  if (src.is_none()) {
    for (int64_t i = 0; i < B * H; ++i) dst[i] = 0.0f;
    return out;
  }
  const py::array a = src.cast<py::array>();
  const auto s = checked(a, name, {B, H});
  const float* p = static_cast<const float*>(a.data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < H; ++j) dst[b * H + j] = p[b * s[0] + j * s[1]];
  return out;
}

// x (T, B, I) as the (T*B, I) matrix of its rows in time-major or batch-major order.
gemm::ConstMatrix fold(const py::array& x, Order& order) {
  const auto s = float32_strides(x, "x");
  const int64_t T = x.shape(0), B = x.shape(1);
  const float* p = static_cast<const float*>(x.data());
  order = Order::time_major;
  if (T <= 1 || B <= 1) return {p, B <= 1 && T > 1 ? s[0] : s[1], s[2]};
  if (s[0] == B * s[1]) return {p, s[1], s[2]};
  order = Order::batch_major;
  if (s[1] == T * s[0]) return {p, s[0], s[2]};
  throw py::value_error("lstm: x " + shape_str(x) +
                        " must be viewable as (T*B, I) rows in time- or batch-major order");
}

// The weights' shapes given H: w_ih (4H, I), w_hh (4H, H).
void check_weights(const py::array& w_ih, const py::array& w_hh, int64_t I, int64_t H) {
  checked(w_ih, "w_ih", {4 * H, I});
  checked(w_hh, "w_hh", {4 * H, H});
}

// The gates of every step, (T*B, 4H), must be addressable: x may be a view of far fewer
// elements (a broadcast, or I = 0) and H comes from w_hh alone.
void check_gates(const py::array& x, const py::array& w_hh) {
  checked_size({x.shape(0), x.shape(1), 4, w_hh.shape(1)},
               "lstm: the gates (T*B, 4H) of x " + shape_str(x) + " and w_hh " + shape_str(w_hh));
}

gemm::ConstMatrix matrix(const py::array& a) {
  const auto s = float32_strides(a, "matrix");
  return {static_cast<const float*>(a.data()), s[0], s[1]};
}

// (y, h_n, c_n, saved or None); x (T, B, I) in any foldable layout; y comes back as (T, B, H),
// a view of a contiguous (B, T, H) array when batch_first.
py::tuple lstm_forward(const py::array& x, const py::object& h0, const py::object& c0,
                       const py::array& w_ih, const py::array& w_hh, const py::object& b_ih,
                       const py::object& b_hh, bool batch_first, bool save) {
  checked(x, "x", {-1, -1, -1});
  checked(w_hh, "w_hh", {-1, -1});
  const int64_t T = x.shape(0), B = x.shape(1), I = x.shape(2), H = w_hh.shape(1);
  check_gates(x, w_hh);
  check_weights(w_ih, w_hh, I, H);
  lstm::LayerForward a{};
  a.T = T;
  a.B = B;
  a.I = I;
  a.H = H;
  a.x = fold(x, a.order);
  a.w_ih = matrix(w_ih);
  a.w_hh = matrix(w_hh);
  std::vector<float> bias;
  const std::pair<const py::object*, const char*> biases[] = {{&b_ih, "b_ih"}, {&b_hh, "b_hh"}};
  for (const auto& [b, name] : biases) {
    if (b->is_none()) continue;
    const py::array arr = b->cast<py::array>();
    const auto s = checked(arr, name, {4 * H});
    if (bias.empty()) bias.assign(4 * H, 0.0f);
    const float* p = static_cast<const float*>(arr.data());
    for (int64_t j = 0; j < 4 * H; ++j) bias[j] += p[j * s[0]];
  }
  a.bias = bias.empty() ? nullptr : bias.data();
  py::array h0_arr;
  if (!h0.is_none()) {
    h0_arr = h0.cast<py::array>();
    const auto s = checked(h0_arr, "h0", {B, H});
    a.h0 = {static_cast<const float*>(h0_arr.data()), s[0], s[1]};
  }
  auto c0m = materialize(c0, "c0", B, H);
  a.c0 = c0m.data();

  auto y = batch_first ? new_array(B, T, H) : new_array(T, B, H);
  a.y = batch_first ? lstm::Seq{data(y), H, T * H} : lstm::Seq{data(y), B * H, H};
  auto h_n = new_array(B, H), c_n = new_array(B, H), gates = new_array(T * B, 4 * H);
  a.h_n = data(h_n);
  a.c_n = data(c_n);
  a.gates = data(gates);
  py::object saved = py::none();
  if (save) {
    auto c_all = new_array(T * B, H), tanh_c = new_array(T * B, H), h_prev = new_array(T * B, H);
    a.c_all = data(c_all);
    a.tanh_c = data(tanh_c);
    a.h_prev = data(h_prev);
    saved = py::make_tuple(c0m, gates, c_all, tanh_c, h_prev);
  }
  {
    py::gil_scoped_release release;
    lstm::layer_forward(a);
  }
  py::object y_tbh = batch_first ? y.attr("swapaxes")(0, 1) : py::object(y);
  return py::make_tuple(y_tbh, h_n, c_n, saved);
}

// (dx (T, B, I), dh0, dc0, dw_ih, dw_hh, db or None) from dy (T, B, H), dh_n/dc_n (B, H) or None
// and what lstm_forward saved.
py::tuple lstm_backward(const py::array& dy, const py::object& dh_n, const py::object& dc_n,
                        const py::array& x, const py::array& w_ih, const py::array& w_hh,
                        bool has_bias, const py::array& c0, const py::array& gates,
                        const py::array& c_all, const py::array& tanh_c, const py::array& h_prev) {
  checked(x, "x", {-1, -1, -1});
  checked(w_hh, "w_hh", {-1, -1});
  const int64_t T = x.shape(0), B = x.shape(1), I = x.shape(2), H = w_hh.shape(1);
  check_gates(x, w_hh);
  check_weights(w_ih, w_hh, I, H);
  lstm::LayerBackward a{};
  a.T = T;
  a.B = B;
  a.I = I;
  a.H = H;
  a.x = fold(x, a.order);
  a.w_ih = matrix(w_ih);
  a.w_hh = matrix(w_hh);
  a.c0 = contiguous(c0, "c0", {B, H});
  a.gates = contiguous(gates, "gates", {T * B, 4 * H});
  a.c_all = contiguous(c_all, "c_all", {T * B, H});
  a.tanh_c = contiguous(tanh_c, "tanh_c", {T * B, H});
  a.h_prev = contiguous(h_prev, "h_prev", {T * B, H});
  auto s = checked(dy, "dy", {T, B, H});
  py::array dy_arr = dy;
  if (s[2] != 1 && H > 1) {  // the cell reads rows of dy as vectors
    dy_arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(dy);
    s = float32_strides(dy_arr, "dy");
  }
  a.dy = {const_cast<float*>(static_cast<const float*>(dy_arr.data())), s[0], s[1]};
  auto dh = materialize(dh_n, "dh_n", B, H), dc = materialize(dc_n, "dc_n", B, H);
  a.dh = data(dh);
  a.dc = data(dc);
  auto dx = a.order == Order::time_major ? new_array(T, B, I) : new_array(B, T, I);
  a.dx = data(dx);
  auto dw_ih = new_array(4 * H, I), dw_hh = new_array(4 * H, H);
  a.dw_ih = data(dw_ih);
  a.dw_hh = data(dw_hh);
  py::object db = py::none();
  if (has_bias) {
    auto db_arr = new_array(4 * H);
    a.db = data(db_arr);
    db = db_arr;
  }
  {
    py::gil_scoped_release release;
    lstm::layer_backward(a);
  }
  py::object dx_tbi = a.order == Order::time_major ? py::object(dx) : dx.attr("swapaxes")(0, 1);
  return py::make_tuple(dx_tbi, dh, dc, dw_ih, dw_hh, db);
}

}  // namespace

void bind_lstm(py::module_& m) {
  m.def("lstm_forward", &lstm_forward, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"),
        py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("batch_first"), py::arg("save"),
        "One LSTM layer: (y (T, B, H), h_n, c_n, saved or None) for x (T, B, I)");
  m.def("lstm_backward", &lstm_backward, py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"),
        py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("has_bias"), py::arg("c0"),
        py::arg("gates"), py::arg("c_all"), py::arg("tanh_c"), py::arg("h_prev"),
        "Backward of lstm_forward: (dx (T, B, I), dh0, dc0, dw_ih, dw_hh, db or None)");
}

}  // namespace ember
