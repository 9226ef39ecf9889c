// ember._cuda bindings of the pooling family. ember.ops.pool validates and allocates the outputs
// (C-contiguous CuPy arrays); these wrappers check again everything a kernel's memory accesses
// depend on (ranks, shapes, strides, element sizes, devices, parameter ranges), then launch on
// the caller's stream without the GIL.
#include "bindings.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <climits>
#include <string>
#include <utility>
#include <vector>

#include "common/device_array.h"
#include "pool/pool.h"

namespace py = pybind11;

namespace ember::cuda {
namespace {

using Pair = std::pair<int64_t, int64_t>;

std::string pair_string(Pair v) {
  return "(" + std::to_string(v.first) + ", " + std::to_string(v.second) + ")";
}

void check_param(const std::string& fn, const char* name, Pair v, int64_t min) {
  if (v.first < min || v.second < min || v.first > INT32_MAX || v.second > INT32_MAX)
    throw py::value_error(fn + ": " + name + " must be in [" + std::to_string(min) +
                          ", 2**31 - 1], got " + pair_string(v));
}

// A 4-D float32 input as the kernels read it (any strides).
pool::Planes planes(const DeviceArray& x) {
  return {x.ptr<const float>(), x.shape[0],   x.shape[1],  x.strides[0],
          x.strides[1],         x.strides[2], x.strides[3]};
}

DeviceArray image(py::handle obj, const char* name) {
  DeviceArray x = device_array(obj, name, sizeof(float));
  check_ndim(x, name, 4);
  return x;
}

// A C-contiguous output of the given shape, on the input's device, apart from the input.
DeviceArray output(py::handle obj, const char* name, int64_t itemsize,
                   const std::vector<int64_t>& shape, const DeviceArray& in, const char* in_name) {
  DeviceArray out = device_array(obj, name, itemsize);
  check_shape(out, name, shape);
  check_c_contiguous(out, name);
  check_same_device(out, name, in, in_name);
  check_no_overlap(out, name, in, in_name);
  return out;
}

// The Window of max/avg pooling (N, C, H, W) planes into (P, Q), parameters checked as the CPU
// binding does (the kernels divide by strides and dilations and clip every window).
pool::Window window(const std::string& fn, int64_t H, int64_t W, int64_t P, int64_t Q, Pair k,
                    Pair s, Pair pad, Pair d) {
  check_param(fn, "kernel_size", k, 1);
  check_param(fn, "stride", s, 1);
  check_param(fn, "padding", pad, 0);
  check_param(fn, "dilation", d, 1);
  if (H < 1 || W < 1)
    throw py::value_error(fn + ": the input plane must not be empty, got " + pair_string({H, W}));
  return {H,        W,         P,          Q,       k.first,  k.second, s.first,
          s.second, pad.first, pad.second, d.first, d.second, true,     0};
}

void max_pool2d(py::handle x_obj, py::handle y_obj, py::handle idx_obj, Pair k, Pair s, Pair pad,
                Pair d, uintptr_t stream) {
  const std::string fn = "max_pool2d";
  const DeviceArray x = image(x_obj, "x");
  const DeviceArray y_probe = device_array(y_obj, "y", sizeof(float));
  check_ndim(y_probe, "y", 4);
  const int64_t N = x.shape[0], C = x.shape[1], P = y_probe.shape[2], Q = y_probe.shape[3];
  const DeviceArray y = output(y_obj, "y", sizeof(float), {N, C, P, Q}, x, "x");
  const DeviceArray idx = output(idx_obj, "indices", sizeof(int64_t), {N, C, P, Q}, x, "x");
  check_no_overlap(idx, "indices", y, "y");
  const pool::Window g = window(fn, x.shape[2], x.shape[3], P, Q, k, s, pad, d);
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  pool::max_pool2d(g, planes(x), y.ptr<float>(), idx.ptr<int64_t>(), stream_from(stream));
}

void max_pool2d_backward(py::handle dy_obj, py::handle idx_obj, py::handle dx_obj,
                         py::handle bad_obj, uintptr_t stream) {
  const std::string fn = "max_pool2d_backward";
  const DeviceArray dy = image(dy_obj, "dy");
  const DeviceArray idx = device_array(idx_obj, "indices", sizeof(int64_t));
  check_shape(idx, "indices", dy.shape);
  check_same_device(idx, "indices", dy, "dy");
  const DeviceArray dx_probe = device_array(dx_obj, "dx", sizeof(float));
  check_ndim(dx_probe, "dx", 4);
  const int64_t H = dx_probe.shape[2], W = dx_probe.shape[3];
  const DeviceArray dx =
      output(dx_obj, "dx", sizeof(float), {dy.shape[0], dy.shape[1], H, W}, dy, "dy");
  check_no_overlap(dx, "dx", idx, "indices");
  const DeviceArray bad = output(bad_obj, "bad", sizeof(int32_t), {1}, dy, "dy");
  check_no_overlap(bad, "bad", dx, "dx");
  check_no_overlap(bad, "bad", idx, "indices");
  if (H < 1 || W < 1)
    throw py::value_error(fn + ": the input plane must not be empty, got " + pair_string({H, W}));
  const pool::Window g{H, W, dy.shape[2], dy.shape[3], 1, 1, 1, 1, 0, 0, 1, 1, true, 0};
  const pool::Indices at{idx.ptr<const int64_t>(), idx.strides[0], idx.strides[1], idx.strides[2],
                         idx.strides[3]};
  const DeviceGuard device(dy.device);
  py::gil_scoped_release release;
  pool::max_pool2d_backward(g, planes(dy), at, dx.ptr<float>(), bad.ptr<int>(),
                            stream_from(stream));
}

void check_divisor(const std::string& fn, int64_t divisor) {
  if (divisor < INT32_MIN || divisor > INT32_MAX)
    throw py::value_error(fn + ": divisor_override must be within int32, got " +
                          std::to_string(divisor));
}

void avg_pool2d(py::handle x_obj, py::handle y_obj, Pair k, Pair s, Pair pad,
                bool count_include_pad, int64_t divisor, uintptr_t stream) {
  const std::string fn = "avg_pool2d";
  const DeviceArray x = image(x_obj, "x");
  const DeviceArray y_probe = device_array(y_obj, "y", sizeof(float));
  check_ndim(y_probe, "y", 4);
  const int64_t P = y_probe.shape[2], Q = y_probe.shape[3];
  const DeviceArray y = output(y_obj, "y", sizeof(float), {x.shape[0], x.shape[1], P, Q}, x, "x");
  check_divisor(fn, divisor);
  pool::Window g = window(fn, x.shape[2], x.shape[3], P, Q, k, s, pad, {1, 1});
  g.count_include_pad = count_include_pad;
  g.divisor = divisor;
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  pool::avg_pool2d(g, planes(x), y.ptr<float>(), stream_from(stream));
}

void avg_pool2d_backward(py::handle dy_obj, py::handle dx_obj, Pair k, Pair s, Pair pad,
                         bool count_include_pad, int64_t divisor, uintptr_t stream) {
  const std::string fn = "avg_pool2d_backward";
  const DeviceArray dy = image(dy_obj, "dy");
  const DeviceArray dx_probe = device_array(dx_obj, "dx", sizeof(float));
  check_ndim(dx_probe, "dx", 4);
  const int64_t H = dx_probe.shape[2], W = dx_probe.shape[3];
  const DeviceArray dx =
      output(dx_obj, "dx", sizeof(float), {dy.shape[0], dy.shape[1], H, W}, dy, "dy");
  check_divisor(fn, divisor);
  pool::Window g = window(fn, H, W, dy.shape[2], dy.shape[3], k, s, pad, {1, 1});
  g.count_include_pad = count_include_pad;
  g.divisor = divisor;
  const DeviceGuard device(dy.device);
  py::gil_scoped_release release;
  pool::avg_pool2d_backward(g, planes(dy), dx.ptr<float>(), stream_from(stream));
}

void adaptive_avg_pool2d(py::handle x_obj, py::handle y_obj, uintptr_t stream) {
  const std::string fn = "adaptive_avg_pool2d";
  const DeviceArray x = image(x_obj, "x");
  const DeviceArray y_probe = device_array(y_obj, "y", sizeof(float));
  check_ndim(y_probe, "y", 4);
  const int64_t P = y_probe.shape[2], Q = y_probe.shape[3];
  const DeviceArray y = output(y_obj, "y", sizeof(float), {x.shape[0], x.shape[1], P, Q}, x, "x");
  if (x.shape[2] < 1 || x.shape[3] < 1)
    throw py::value_error(fn + ": the input plane must not be empty, got " +
                          pair_string({x.shape[2], x.shape[3]}));
  const pool::Window g{x.shape[2], x.shape[3], P, Q, 1, 1, 1, 1, 0, 0, 1, 1, true, 0};
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  pool::adaptive_avg_pool2d(g, planes(x), y.ptr<float>(), stream_from(stream));
}

void adaptive_avg_pool2d_backward(py::handle dy_obj, py::handle dx_obj, uintptr_t stream) {
  const std::string fn = "adaptive_avg_pool2d_backward";
  const DeviceArray dy = image(dy_obj, "dy");
  const DeviceArray dx_probe = device_array(dx_obj, "dx", sizeof(float));
  check_ndim(dx_probe, "dx", 4);
  const int64_t H = dx_probe.shape[2], W = dx_probe.shape[3];
  const DeviceArray dx =
      output(dx_obj, "dx", sizeof(float), {dy.shape[0], dy.shape[1], H, W}, dy, "dy");
  if (H < 1 || W < 1)
    throw py::value_error(fn + ": the input plane must not be empty, got " + pair_string({H, W}));
  const pool::Window g{H, W, dy.shape[2], dy.shape[3], 1, 1, 1, 1, 0, 0, 1, 1, true, 0};
  const DeviceGuard device(dy.device);
  py::gil_scoped_release release;
  pool::adaptive_avg_pool2d_backward(g, planes(dy), dx.ptr<float>(), stream_from(stream));
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("y"), py::arg("indices"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("stream"),
        "y, indices (N, C, P, Q) = max pooling of x (N, C, H, W); indices flat over each plane");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dy"), py::arg("indices"),
        py::arg("dx"), py::arg("bad"), py::arg("stream"),
        "dx (zeroed, N, C, H, W) += dy at indices; bad[0] = 1 if an index is out of range");
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("y"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("count_include_pad"), py::arg("divisor"),
        py::arg("stream"), "y (N, C, P, Q) = average pooling of x; divisor 0 = no override");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dy"), py::arg("dx"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("count_include_pad"),
        py::arg("divisor"), py::arg("stream"), "dx (N, C, H, W) = gradient of avg_pool2d w.r.t. x");
  m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d, py::arg("x"), py::arg("y"), py::arg("stream"),
        "y (N, C, P, Q) = adaptive average pooling of x (N, C, H, W)");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, py::arg("dy"), py::arg("dx"),
        py::arg("stream"), "dx (N, C, H, W) = gradient of adaptive_avg_pool2d");
}

}  // namespace ember::cuda
