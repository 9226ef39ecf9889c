// ember._cuda bindings of the convolution family. ember.ops.conv validates the arguments and
// allocates outputs and workspaces with CuPy; these wrappers check again everything that could
// send a kernel out of bounds (ranks, shapes, contiguity of what the kernels index as contiguous,
// the workspace's size, devices, overlaps), release the GIL and launch on the caller's stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <vector>

#include "bindings.h"
#include "common/device_array.h"
#include "conv/conv.h"

namespace py = pybind11;

namespace ember::cuda {
namespace {

using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;
using Shape4 = std::array<int64_t, 4>;

std::string pair_string(Pair v) {
  return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")";
}

conv::Tensor4 tensor4(const DeviceArray& a) {
  return {a.ptr<const float>(), a.strides[0], a.strides[1], a.strides[2], a.strides[3]};
}

Shape4 shape4(const DeviceArray& a) { return {a.shape[0], a.shape[1], a.shape[2], a.shape[3]}; }

// The geometry of a convolution of x_shape (N, C, H, W) with a (K, ., R, S) kernel; padding is
// (top, bottom, left, right). ValueError for anything a kernel cannot take.
conv::Geometry geometry(const char* fn, const Shape4& x_shape, int64_t k, Pair kernel, Pair stride,
                        Quad padding, Pair dilation, int64_t groups) {
  const std::string f(fn);
  for (int64_t v : x_shape)
    if (v < 0) throw py::value_error(f + ": negative size in the input shape");
  if (kernel[0] <= 0 || kernel[1] <= 0)
    throw py::value_error(f + ": kernel size must be positive, got " + pair_string(kernel));
  if (stride[0] <= 0 || stride[1] <= 0)
    throw py::value_error(f + ": stride must be positive, got " + pair_string(stride));
  if (dilation[0] <= 0 || dilation[1] <= 0)
    throw py::value_error(f + ": dilation must be positive, got " + pair_string(dilation));
  for (int64_t v : padding)
    if (v < 0) throw py::value_error(f + ": padding must be non-negative");
  if (groups <= 0) throw py::value_error(f + ": groups must be positive");
  conv::Geometry g{};
  g.n = x_shape[0], g.c = x_shape[1], g.h = x_shape[2], g.w = x_shape[3];
  g.k = k, g.r = kernel[0], g.s = kernel[1];
  g.stride_h = stride[0], g.stride_w = stride[1];
  g.pad_h = padding[0], g.pad_w = padding[2];
  g.dil_h = dilation[0], g.dil_w = dilation[1];
  g.groups = groups;
  g.p = conv::output_size(g.h, padding[0], padding[1], g.r, g.stride_h, g.dil_h);
  g.q = conv::output_size(g.w, padding[2], padding[3], g.s, g.stride_w, g.dil_w);
  if (g.p <= 0 || g.q <= 0)
    throw py::value_error(f + ": the kernel " + pair_string(kernel) + " with dilation " +
                          pair_string(dilation) + " is larger than the padded input (" +
                          std::to_string(g.h + padding[0] + padding[1]) + ", " +
                          std::to_string(g.w + padding[2] + padding[3]) + ")");
  conv::check_limits(g);
  return g;
}

// The geometry of conv2d(x, w) after checking x, w and groups against each other.
conv::Geometry conv_geometry(const char* fn, const DeviceArray& x, const DeviceArray& w,
                             Pair stride, Quad padding, Pair dilation, int64_t groups) {
  check_ndim(x, "x", 4);
  check_ndim(w, "w", 4);
  check_c_contiguous(w, "w");
  check_same_device(w, "w", x, "x");
  if (groups <= 0 || x.shape[1] != w.shape[1] * groups || w.shape[0] % groups != 0)
    throw py::value_error(std::string(fn) + ": x " + shape_string(x.shape) + " and w " +
                          shape_string(w.shape) + " do not match with groups=" +
                          std::to_string(groups) +
                          " (need C == w.shape[1] * groups and K % groups == 0)");
  return geometry(fn, shape4(x), w.shape[0], {w.shape[2], w.shape[3]}, stride, padding, dilation,
                  groups);
}

using Named = std::vector<std::pair<const DeviceArray*, const char*>>;

// A C-contiguous output of exactly `shape`, on the inputs' device and apart from each of them.
void check_output(const DeviceArray& out, const char* name, const std::vector<int64_t>& shape,
                  const Named& inputs) {
  check_shape(out, name, shape);
  check_c_contiguous(out, name);
  for (const auto& [in, in_name] : inputs) {
    check_same_device(out, name, *in, in_name);
    check_no_overlap(out, name, *in, in_name);
  }
}

// The workspace's float count after checking it (None: 0), or ValueError when it holds less than
// one image's `per_image` floats.
int64_t workspace_size(const char* fn, const py::object& obj, DeviceArray& ws, int64_t per_image,
                       int64_t images, const DeviceArray& x) {
  if (per_image == 0 || images == 0) return 0;
  if (obj.is_none())
    throw py::value_error(std::string(fn) + ": this call needs a workspace of at least " +
                          std::to_string(per_image) + " floats");
  ws = device_array(obj, "workspace", sizeof(float));
  check_ndim(ws, "workspace", 1);
  check_c_contiguous(ws, "workspace");
  check_same_device(ws, "workspace", x, "x");
  if (ws.size() < per_image)
    throw py::value_error(std::string(fn) + ": the workspace holds " + std::to_string(ws.size()) +
                          " floats, less than one image's " + std::to_string(per_image));
  return ws.size();
}

conv::Algorithm algorithm(const std::string& name, const conv::Geometry& g, conv::Tensor4 x,
                          bool tf32) {
  if (name == "auto") return conv::choose_forward(g, x, tf32);
  if (name == "im2col") return conv::Algorithm::im2col_gemm;
  if (name == "implicit") return conv::Algorithm::implicit_gemm;
  throw py::value_error("conv2d: algorithm must be 'auto', 'im2col' or 'implicit', got '" + name +
                        "'");
}

// cols (N, C*R*S, P*Q) = im2col(x (N, C, H, W)), symmetric padding (top/bottom, left/right).
void im2col(py::handle x_obj, py::handle cols_obj, Pair kernel, Pair stride, Pair padding,
            Pair dilation, uintptr_t stream) {
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  const DeviceArray cols = device_array(cols_obj, "cols", sizeof(float));
  check_ndim(x, "x", 4);
  const conv::Geometry g = geometry("im2col", shape4(x), 0, kernel, stride,
                                    {padding[0], padding[0], padding[1], padding[1]}, dilation, 1);
  const int64_t rows = g.c * g.taps(), pq = g.pixels();
  check_output(cols, "cols", {g.n, rows, pq}, {{&x, "x"}});
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  conv::im2col(g, tensor4(x), g.n, cols.ptr<float>(), rows * pq, pq, stream_from(stream));
}

// x (N, C, H, W) = col2im(cols (N, C*R*S, P*Q), any strides), overlapping windows summed.
void col2im(py::handle cols_obj, py::handle x_obj, Pair kernel, Pair stride, Pair padding,
            Pair dilation, uintptr_t stream) {
  const DeviceArray cols = device_array(cols_obj, "cols", sizeof(float));
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  check_ndim(x, "x", 4);
  check_ndim(cols, "cols", 3);
  const conv::Geometry g = geometry("col2im", shape4(x), 0, kernel, stride,
                                    {padding[0], padding[0], padding[1], padding[1]}, dilation, 1);
  check_shape(cols, "cols", {g.n, g.c * g.taps(), g.pixels()});
  check_output(x, "x", {g.n, g.c, g.h, g.w}, {{&cols, "cols"}});
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  conv::col2im(g, cols.ptr<const float>(), cols.strides[0], cols.strides[1], cols.strides[2], g.n,
               x.ptr<float>(), stream_from(stream));
}

// Floats of workspace per image that conv2d needs for these arguments (0: none).
int64_t conv2d_workspace(py::handle x_obj, py::handle w_obj, Pair stride, Quad padding,
                         Pair dilation, int64_t groups, const std::string& algo, bool tf32) {
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  const DeviceArray w = device_array(w_obj, "w", sizeof(float));
  const conv::Geometry g = conv_geometry("conv2d", x, w, stride, padding, dilation, groups);
  return conv::forward_workspace_per_image(g, tensor4(x), algorithm(algo, g, tensor4(x), tf32));
}

// y (N, K, P, Q) = conv2d(x, w) + b; padding is (top, bottom, left, right).
void conv2d(py::handle x_obj, py::handle w_obj, const py::object& b_obj, py::handle y_obj,
            const py::object& ws_obj, Pair stride, Quad padding, Pair dilation, int64_t groups,
            const std::string& algo, bool tf32, uintptr_t stream) {
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  const DeviceArray w = device_array(w_obj, "w", sizeof(float));
  const DeviceArray y = device_array(y_obj, "y", sizeof(float));
  const conv::Geometry g = conv_geometry("conv2d", x, w, stride, padding, dilation, groups);
  Named inputs = {{&x, "x"}, {&w, "w"}};
  DeviceArray b;
  const float* bias = nullptr;
  int64_t b_stride = 0;
  if (!b_obj.is_none()) {
    b = device_array(b_obj, "b", sizeof(float));
    check_shape(b, "b", {g.k});
    check_same_device(b, "b", x, "x");
    bias = b.ptr<const float>();
    b_stride = b.strides[0];
    inputs.push_back({&b, "b"});
  }
  check_output(y, "y", {g.n, g.k, g.p, g.q}, inputs);
  const conv::Algorithm chosen = algorithm(algo, g, tensor4(x), tf32);
  DeviceArray ws;
  const int64_t ws_size =
      workspace_size("conv2d", ws_obj, ws, conv::forward_workspace_per_image(g, tensor4(x), chosen),
                     g.n, x);
  if (ws_size > 0) {
    check_no_overlap(y, "y", ws, "workspace");
    for (const auto& [in, in_name] : inputs) check_no_overlap(ws, "workspace", *in, in_name);
  }
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  conv::conv2d_forward(g, tensor4(x), w.ptr<const float>(), bias, b_stride, y.ptr<float>(), chosen,
                       ws_size > 0 ? ws.ptr<float>() : nullptr, ws_size, tf32,
                       stream_from(stream));
}

// Floats of workspace per image that conv2d_backward needs for `need` (0: none).
int64_t conv2d_backward_workspace(py::handle x_obj, py::handle w_obj, Pair stride, Quad padding,
                                  Pair dilation, int64_t groups, std::array<bool, 3> need) {
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  const DeviceArray w = device_array(w_obj, "w", sizeof(float));
  const conv::Geometry g =
      conv_geometry("conv2d_backward", x, w, stride, padding, dilation, groups);
  return conv::backward_workspace_per_image(g, need[0], need[1]);
}

// dx, dw, db (each None when not wanted) of conv2d from dy (N, K, P, Q) contiguous.
void conv2d_backward(py::handle dy_obj, py::handle x_obj, py::handle w_obj,
                     const py::object& dx_obj, const py::object& dw_obj, const py::object& db_obj,
                     const py::object& ws_obj, Pair stride, Quad padding, Pair dilation,
                     int64_t groups, bool tf32, uintptr_t stream) {
  const char* fn = "conv2d_backward";
  const DeviceArray dy = device_array(dy_obj, "dy", sizeof(float));
  const DeviceArray x = device_array(x_obj, "x", sizeof(float));
  const DeviceArray w = device_array(w_obj, "w", sizeof(float));
  const conv::Geometry g = conv_geometry(fn, x, w, stride, padding, dilation, groups);
  check_shape(dy, "dy", {g.n, g.k, g.p, g.q});
  check_c_contiguous(dy, "dy");
  check_same_device(dy, "dy", x, "x");
  const Named inputs = {{&dy, "dy"}, {&x, "x"}, {&w, "w"}};
  DeviceArray dx, dw, db, ws;
  Named outputs;
  if (!dx_obj.is_none()) {
    dx = device_array(dx_obj, "dx", sizeof(float));
    check_output(dx, "dx", {g.n, g.c, g.h, g.w}, inputs);
    outputs.push_back({&dx, "dx"});
  }
  if (!dw_obj.is_none()) {
    dw = device_array(dw_obj, "dw", sizeof(float));
    check_output(dw, "dw", {g.k, g.cg(), g.r, g.s}, inputs);
    outputs.push_back({&dw, "dw"});
  }
  if (!db_obj.is_none()) {
    db = device_array(db_obj, "db", sizeof(float));
    check_output(db, "db", {g.k}, inputs);
    outputs.push_back({&db, "db"});
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    for (size_t j = i + 1; j < outputs.size(); ++j)
      check_no_overlap(*outputs[i].first, outputs[i].second, *outputs[j].first, outputs[j].second);
  const int64_t per_image =
      conv::backward_workspace_per_image(g, !dx_obj.is_none(), !dw_obj.is_none());
  const int64_t ws_size = workspace_size(fn, ws_obj, ws, per_image, g.n, x);
  if (ws_size > 0) {
    for (const auto& [in, in_name] : inputs) check_no_overlap(ws, "workspace", *in, in_name);
    for (const auto& [out, out_name] : outputs) check_no_overlap(*out, out_name, ws, "workspace");
  }
  const DeviceGuard device(x.device);
  py::gil_scoped_release release;
  conv::conv2d_backward(g, dy.ptr<const float>(), tensor4(x), w.ptr<const float>(),
                        dx_obj.is_none() ? nullptr : dx.ptr<float>(),
                        dw_obj.is_none() ? nullptr : dw.ptr<float>(),
                        db_obj.is_none() ? nullptr : db.ptr<float>(),
                        ws_size > 0 ? ws.ptr<float>() : nullptr, ws_size, tf32,
                        stream_from(stream));
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("im2col", &im2col, py::arg("x"), py::arg("cols"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("stream"),
        "cols (N, C*R*S, P*Q) = the sliding windows of x (N, C, H, W), as torch's unfold");
  m.def("col2im", &col2im, py::arg("cols"), py::arg("x"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("stream"),
        "x (N, C, H, W) = cols (N, C*R*S, P*Q) folded back, overlaps summed, as torch's fold");
  m.def("conv2d_workspace", &conv2d_workspace, py::arg("x"), py::arg("w"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("algorithm"),
        py::arg("tf32"), "floats of workspace per image conv2d needs (0: none)");
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"),
        py::arg("workspace"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("algorithm"), py::arg("tf32"), py::arg("stream"),
        "y (N, K, P, Q) = conv2d(x, w) + b; padding is (top, bottom, left, right)");
  m.def("conv2d_backward_workspace", &conv2d_backward_workspace, py::arg("x"), py::arg("w"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("need"), "floats of workspace per image conv2d_backward needs (0: none)");
  m.def("conv2d_backward", &conv2d_backward, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("dx"), py::arg("dw"), py::arg("db"), py::arg("workspace"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("tf32"),
        py::arg("stream"), "dx, dw, db (those not None) of conv2d from dy");
}

}  // namespace ember::cuda
