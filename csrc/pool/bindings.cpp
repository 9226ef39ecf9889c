// ember._C bindings of the pooling family. ember.ops validates first; these wrappers check again
// (shapes, parameters, dtypes, strides) so that no call reaches a kernel with inconsistent
// arguments, then release the GIL around the kernel.
#include "bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/pyarray.h"
#include "pool/pool.h"

namespace py = pybind11;

namespace ember {
namespace {

using Pair = std::pair<int64_t, int64_t>;

std::string pair_str(Pair v) {
  return "(" + std::to_string(v.first) + ", " + std::to_string(v.second) + ")";
}

std::string dims_str(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t d = 0; d < s.size(); ++d) out += (d ? ", " : "") + std::to_string(s[d]);
  return out + ")";
}

// PyTorch's pooled size: floor((in + 2 pad - d (k - 1) - 1 [+ s - 1 in ceil mode]) / s) + 1, and
// in ceil mode one less if the last window would start past the input and the left padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (span >= 0 ? span / s : -((-span + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

void check_param(const std::string& fn, const char* name, Pair v, int64_t min) {
  if (v.first < min || v.second < min || v.first > INT32_MAX || v.second > INT32_MAX)
    throw py::value_error(fn + ": " + name + " must be in [" + std::to_string(min) +
                          ", 2**31 - 1], got " + pair_str(v));
}

// The Window of max/avg pooling an (H, W) plane, validated as PyTorch does.
pool::Window window(const std::string& fn, int64_t H, int64_t W, Pair k, Pair s, Pair pad, Pair d,
                    bool ceil_mode) {
  check_param(fn, "kernel_size", k, 1);
  check_param(fn, "stride", s, 1);
  check_param(fn, "padding", pad, 0);
  check_param(fn, "dilation", d, 1);
  if (pad.first > k.first / 2 || pad.second > k.second / 2)
    throw py::value_error(fn + ": padding must be at most half of kernel_size, got padding " +
                          pair_str(pad) + " and kernel_size " + pair_str(k));
  const int64_t P = pooled_size(H, k.first, s.first, pad.first, d.first, ceil_mode);
  const int64_t Q = pooled_size(W, k.second, s.second, pad.second, d.second, ceil_mode);
  if (P < 1 || Q < 1)
    throw py::value_error(fn + ": the output would be empty: input plane (" + std::to_string(H) +
                          ", " + std::to_string(W) + ") is smaller than the dilated kernel " +
                          pair_str(k) + " with padding " + pair_str(pad));
  return {H,        W,         P,          Q,       k.first,  k.second, s.first,
          s.second, pad.first, pad.second, d.first, d.second, true,     0};
}

// The planes of a 4-D float32 array whose columns are contiguous (ember.ops copies otherwise).
pool::ConstPlanes planes_of(const std::string& fn, const py::array& x, const char* name) {
  const auto st = float32_strides(x, name);
  if (x.ndim() != 4)
    throw py::value_error(fn + ": " + name + " must be 4-D, got shape " + shape_str(x));
  if (x.size() > 0 && x.shape(3) > 1 && st[3] != 1)
    throw py::value_error(fn + ": " + name + " must have contiguous rows (column stride 1)");
  return {static_cast<const float*>(x.data()), x.shape(0), x.shape(1), st[0], st[1], st[2]};
}

// max_pool2d / avg_pool2d take images with C, H, W > 0 (N may be 0), as PyTorch.
void check_image(const std::string& fn, const py::array& x) {
  if (x.shape(1) == 0 || x.shape(2) == 0 || x.shape(3) == 0)
    throw py::value_error(fn + ": x must have C, H, W > 0, got shape " + shape_str(x));
}

std::vector<int64_t> image_shape(const std::string& fn, const std::vector<int64_t>& s) {
  if (s.size() != 4)
    throw py::value_error(fn + ": x_shape must have 4 entries, got " + dims_str(s));
  for (int64_t v : s)
    if (v < 0) throw py::value_error(fn + ": x_shape must not be negative, got " + dims_str(s));
  return s;
}

// dy must be (N, C, P, Q) for x_shape (N, C, H, W).
void check_grad(const std::string& fn, const py::array& dy, const std::vector<int64_t>& xs,
                int64_t P, int64_t Q) {
  const std::vector<int64_t> want{xs[0], xs[1], P, Q};
  for (int d = 0; d < 4; ++d)
    if (dy.shape(d) != want[d])
      throw py::value_error(fn + ": dy must have shape " + dims_str(want) + ", got " +
                            shape_str(dy));
}

py::array_t<float> empty_f32(const std::string& fn, const std::vector<int64_t>& shape) {
  return new_array<float>(shape, fn + ": the output " + dims_str(shape));
}

py::tuple max_pool2d(const py::array& x, Pair k, Pair s, Pair pad, Pair d, bool ceil_mode) {
  const std::string fn = "max_pool2d";
  const pool::ConstPlanes xp = planes_of(fn, x, "x");
  check_image(fn, x);
  const pool::Window g = window(fn, x.shape(2), x.shape(3), k, s, pad, d, ceil_mode);
  auto y = empty_f32(fn, {xp.N, xp.C, g.P, g.Q});
  auto idx = new_array<int64_t>({xp.N, xp.C, g.P, g.Q}, fn + ": the indices");
  float* yp = y.mutable_data();
  int64_t* ip = idx.mutable_data();
  {
    py::gil_scoped_release release;
    pool::max_pool2d(g, xp, yp, ip);
  }
  return py::make_tuple(y, idx);
}

py::array max_pool2d_backward(const py::array& dy, const py::array& indices,
                              const std::vector<int64_t>& x_shape) {
  const std::string fn = "max_pool2d_backward";
  const pool::ConstPlanes dp = planes_of(fn, dy, "dy");
  const auto xs = image_shape(fn, x_shape);
  check_grad(fn, dy, xs, dy.shape(2), dy.shape(3));
  if (!indices.dtype().equal(py::dtype::of<int64_t>()) || !(indices.flags() & py::array::c_style))
    throw py::type_error(fn + ": indices must be a C-contiguous int64 array");
  if (reinterpret_cast<uintptr_t>(indices.data()) % alignof(int64_t) != 0)
    throw py::value_error(fn + ": indices is not aligned to int64");
  if (indices.ndim() != 4 || !std::equal(dy.shape(), dy.shape() + 4, indices.shape()))
    throw py::value_error(fn + ": indices must have dy's shape " + shape_str(dy) + ", got " +
                          shape_str(indices));
  pool::Window g{xs[2], xs[3], dy.shape(2), dy.shape(3), 1, 1, 1, 1, 0, 0, 1, 1, true, 0};
  auto dx = empty_f32(fn, xs);
  float* dxp = dx.mutable_data();
  const auto* ip = static_cast<const int64_t*>(indices.data());
  bool ok;
  {
    py::gil_scoped_release release;
    ok = pool::max_pool2d_backward(g, dp, ip, dxp);
  }
  if (!ok)
    throw py::value_error(fn + ": indices must lie in [0, H * W) = [0, " +
                          std::to_string(xs[2] * xs[3]) + ") for x_shape " + dims_str(xs));
  return dx;
}

pool::Window avg_window(const std::string& fn, int64_t H, int64_t W, Pair k, Pair s, Pair pad,
                        bool ceil_mode, bool count_include_pad, int64_t divisor) {
  pool::Window g = window(fn, H, W, k, s, pad, {1, 1}, ceil_mode);
  g.count_include_pad = count_include_pad;
  g.divisor = divisor;
  return g;
}

py::array avg_pool2d(const py::array& x, Pair k, Pair s, Pair pad, bool ceil_mode,
                     bool count_include_pad, int64_t divisor) {
  const std::string fn = "avg_pool2d";
  const pool::ConstPlanes xp = planes_of(fn, x, "x");
  check_image(fn, x);
  const pool::Window g =
      avg_window(fn, x.shape(2), x.shape(3), k, s, pad, ceil_mode, count_include_pad, divisor);
  auto y = empty_f32(fn, {xp.N, xp.C, g.P, g.Q});
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    pool::avg_pool2d(g, xp, yp);
  }
  return y;
}

py::array avg_pool2d_backward(const py::array& dy, const std::vector<int64_t>& x_shape, Pair k,
                              Pair s, Pair pad, bool ceil_mode, bool count_include_pad,
                              int64_t divisor) {
  const std::string fn = "avg_pool2d_backward";
  const pool::ConstPlanes dp = planes_of(fn, dy, "dy");
  const auto xs = image_shape(fn, x_shape);
  if (xs[1] == 0 || xs[2] == 0 || xs[3] == 0)
    throw py::value_error(fn + ": x_shape must have C, H, W > 0, got " + dims_str(xs));
  const pool::Window g =
      avg_window(fn, xs[2], xs[3], k, s, pad, ceil_mode, count_include_pad, divisor);
  check_grad(fn, dy, xs, g.P, g.Q);
  auto dx = empty_f32(fn, xs);
  float* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    pool::avg_pool2d_backward(g, dp, dxp);
  }
  return dx;
}

pool::Window adaptive_window(const std::string& fn, int64_t H, int64_t W, int64_t P, int64_t Q) {
  if (H == 0 || W == 0)
    throw py::value_error(fn + ": the input plane must not be empty, got (" + std::to_string(H) +
                          ", " + std::to_string(W) + ")");
  if (P < 0 || Q < 0)
    throw py::value_error(fn + ": output_size must not be negative, got " + pair_str({P, Q}));
  return {H, W, P, Q, 1, 1, 1, 1, 0, 0, 1, 1, true, 0};
}

py::array adaptive_avg_pool2d(const py::array& x, Pair output_size) {
  const std::string fn = "adaptive_avg_pool2d";
  const pool::ConstPlanes xp = planes_of(fn, x, "x");
  const pool::Window g =
      adaptive_window(fn, x.shape(2), x.shape(3), output_size.first, output_size.second);
  auto y = empty_f32(fn, {xp.N, xp.C, g.P, g.Q});
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    pool::adaptive_avg_pool2d(g, xp, yp);
  }
  return y;
}

py::array adaptive_avg_pool2d_backward(const py::array& dy, const std::vector<int64_t>& x_shape) {
  const std::string fn = "adaptive_avg_pool2d_backward";
  const pool::ConstPlanes dp = planes_of(fn, dy, "dy");
  const auto xs = image_shape(fn, x_shape);
  const pool::Window g = adaptive_window(fn, xs[2], xs[3], dy.shape(2), dy.shape(3));
  check_grad(fn, dy, xs, g.P, g.Q);
  auto dx = empty_f32(fn, xs);
  float* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    pool::adaptive_avg_pool2d_backward(g, dp, dxp);
  }
  return dx;
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "(y, indices) = max pooling of x (N, C, H, W); indices int64, flat over each input plane");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dy"), py::arg("indices"),
        py::arg("x_shape"), "dx (x_shape) = dy summed at indices");
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"), py::arg("divisor"),
        "average pooling of x (N, C, H, W); divisor 0 = no divisor_override");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("x_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor"), "gradient of avg_pool2d w.r.t. x");
  m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d, py::arg("x"), py::arg("output_size"),
        "adaptive average pooling of x (N, C, H, W) to output_size (P, Q)");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, py::arg("dy"),
        py::arg("x_shape"), "gradient of adaptive_avg_pool2d w.r.t. x");
}

}  // namespace ember
