// ember._C bindings of the convolution family. ember.ops.conv validates and normalises the
// arguments (padding 'same' becomes explicit per-side padding); these wrappers check again so
// that no call can reach a kernel with inconsistent arguments, allocate the outputs, and release
// the GIL around the kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <string>
#include <utility>

#include "bindings.h"
#include "common/pyarray.h"
#include "conv/conv.h"

namespace py = pybind11;

namespace ember {
namespace {

using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;

std::string pair_str(Pair v) { return "(" + std::to_string(v[0]) + ", " + std::to_string(v[1]) + ")"; }

// a (rank <= 4) as a Tensor4; the strides of missing trailing dimensions are 0 (col2im's 3-D
// cols leaves s3 unused).
conv::Tensor4 tensor4(const py::array& a, const char* name) {
  auto s = float32_strides(a, name);
  s.resize(4, 0);
  return {static_cast<const float*>(a.data()), s[0], s[1], s[2], s[3]};
}

void require_rank(const char* fn, const char* name, const py::array& a, int ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_str(a));
}

// The geometry of a convolution of x_shape (N, C, H, W) with a (K, ., R, S) kernel; padding is
// (top, bottom, left, right). ValueError for anything a kernel cannot take.
conv::Geometry geometry(const char* fn, const std::array<int64_t, 4>& x_shape, int64_t k,
                        Pair kernel, Pair stride, Quad padding, Pair dilation, int64_t groups) {
  const std::string f(fn);
  for (int64_t v : x_shape)
    if (v < 0) throw py::value_error(f + ": negative size in the input shape");
  if (kernel[0] <= 0 || kernel[1] <= 0)
    throw py::value_error(f + ": kernel size must be positive, got " + pair_str(kernel));
  if (stride[0] <= 0 || stride[1] <= 0)
    throw py::value_error(f + ": stride must be positive, got " + pair_str(stride));
  if (dilation[0] <= 0 || dilation[1] <= 0)
    throw py::value_error(f + ": dilation must be positive, got " + pair_str(dilation));
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
    throw py::value_error(f + ": the kernel " + pair_str(kernel) + " with dilation " +
                          pair_str(dilation) + " is larger than the padded input (" +
                          std::to_string(g.h + padding[0] + padding[1]) + ", " +
                          std::to_string(g.w + padding[2] + padding[3]) + ")");
  // the kernels index an image's column matrix (C*R*S, P*Q) and the output (N, K, P, Q)
  checked_size({g.c, g.r, g.s, g.p, g.q},
               f + ": the column matrix of an image (C*R*S, P*Q) for the kernel " +
                   pair_str(kernel));
  checked_size({g.n, g.k, g.p, g.q}, f + ": the output (N, K, P, Q)");
  return g;
}

std::array<int64_t, 4> shape4(const py::array& a) { return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)}; }

// cols (N, C*R*S, P*Q) = im2col(x (N, C, H, W)), symmetric padding.
py::array im2col(const py::array& x, Pair kernel, Pair stride, Pair padding, Pair dilation) {
  require_rank("im2col", "x", x, 4);
  const conv::Tensor4 xt = tensor4(x, "x");
  const conv::Geometry g = geometry("im2col", shape4(x), 0, kernel, stride,
                                    {padding[0], padding[0], padding[1], padding[1]}, dilation, 1);
  auto cols = new_array<float>({g.n, g.c * g.r * g.s, g.p * g.q}, "im2col: cols");
  float* out = cols.mutable_data();
  {
    py::gil_scoped_release release;
    conv::im2col_batch(g, xt, out);
  }
  return std::move(cols);
}

// x (N, C, H, W) = col2im(cols (N, C*R*S, P*Q)), overlapping windows summed.
py::array col2im(const py::array& cols, std::array<int64_t, 4> x_shape, Pair kernel, Pair stride,
                 Pair padding, Pair dilation) {
  require_rank("col2im", "cols", cols, 3);
  const conv::Tensor4 ct = tensor4(cols, "cols");
  const conv::Geometry g = geometry("col2im", x_shape, 0, kernel, stride,
                                    {padding[0], padding[0], padding[1], padding[1]}, dilation, 1);
  if (cols.shape(0) != g.n || cols.shape(1) != g.c * g.r * g.s || cols.shape(2) != g.p * g.q)
    throw py::value_error("col2im: cols must have shape (" + std::to_string(g.n) + ", " +
                          std::to_string(g.c * g.r * g.s) + ", " + std::to_string(g.p * g.q) +
                          ") for this x_shape, kernel and padding, got " + shape_str(cols));
  auto x = new_array<float>({g.n, g.c, g.h, g.w}, "col2im: the image of x_shape");
  float* out = x.mutable_data();
  {
    py::gil_scoped_release release;
    conv::col2im_batch(g, {ct.data, ct.s0, ct.s1, ct.s2, 0}, out);
  }
  return std::move(x);
}

// The geometry of conv2d(x, w) after checking x, w and groups against each other.
conv::Geometry conv_geometry(const char* fn, const py::array& x, const py::array& w, Pair stride,
                             Quad padding, Pair dilation, int64_t groups) {
  require_rank(fn, "x", x, 4);
  require_rank(fn, "w", w, 4);
  if (groups <= 0 || x.shape(1) % groups != 0 || x.shape(1) / groups != w.shape(1) ||
      w.shape(0) % groups != 0)
    throw py::value_error(std::string(fn) + ": x " + shape_str(x) + " and w " + shape_str(w) +
                          " do not match with groups=" + std::to_string(groups) +
                          " (need C == w.shape[1] * groups and K % groups == 0)");
  return geometry(fn, shape4(x), w.shape(0), {w.shape(2), w.shape(3)}, stride, padding, dilation,
                  groups);
}

py::array conv2d(const py::array& x, const py::array& w, const std::optional<py::array>& b,
                 Pair stride, Quad padding, Pair dilation, int64_t groups) {
  const conv::Geometry g = conv_geometry("conv2d", x, w, stride, padding, dilation, groups);
  const conv::Tensor4 xt = tensor4(x, "x"), wt = tensor4(w, "w");
  const float* bias = nullptr;
  int64_t b_stride = 0;
  if (b) {
    const auto sb = float32_strides(*b, "b");
    if (b->ndim() != 1 || b->shape(0) != g.k)
      throw py::value_error("conv2d: b must have shape (" + std::to_string(g.k) + ",), got " +
                            shape_str(*b));
    bias = static_cast<const float*>(b->data());
    b_stride = sb[0];
  }
  py::array_t<float> y({g.n, g.k, g.p, g.q});
  float* out = y.mutable_data();
  {
    py::gil_scoped_release release;
    conv::conv2d_forward(g, xt, wt, bias, b_stride, out);
  }
  return std::move(y);
}

py::tuple conv2d_backward(const py::array& dy, const py::array& x, const py::array& w, Pair stride,
                          Quad padding, Pair dilation, int64_t groups, std::array<bool, 3> need) {
  const conv::Geometry g = conv_geometry("conv2d_backward", x, w, stride, padding, dilation, groups);
  require_rank("conv2d_backward", "dy", dy, 4);
  if (dy.shape(0) != g.n || dy.shape(1) != g.k || dy.shape(2) != g.p || dy.shape(3) != g.q)
    throw py::value_error("conv2d_backward: dy must have the output's shape (" +
                          std::to_string(g.n) + ", " + std::to_string(g.k) + ", " +
                          std::to_string(g.p) + ", " + std::to_string(g.q) + "), got " +
                          shape_str(dy));
  const conv::Tensor4 dyt = tensor4(dy, "dy"), xt = tensor4(x, "x"), wt = tensor4(w, "w");
  py::object dx = py::none(), dw = py::none(), db = py::none();
  float *dx_out = nullptr, *dw_out = nullptr, *db_out = nullptr;
  if (need[0]) {
    py::array_t<float> a({g.n, g.c, g.h, g.w});
    dx_out = a.mutable_data();
    dx = a;
  }
  if (need[1]) {
    py::array_t<float> a({g.k, g.c / g.groups, g.r, g.s});
    dw_out = a.mutable_data();
    dw = a;
  }
  if (need[2]) {
    py::array_t<float> a({g.k});
    db_out = a.mutable_data();
    db = a;
  }
  {
    py::gil_scoped_release release;
    conv::conv2d_backward(g, dyt, xt, wt, dx_out, dw_out, db_out);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("im2col", &im2col, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"),
        "cols (N, C*R*S, P*Q) of x (N, C, H, W), as torch.nn.functional.unfold");
  m.def("col2im", &col2im, py::arg("cols"), py::arg("x_shape"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        "x (N, C, H, W) from cols (N, C*R*S, P*Q), summing overlaps, as torch.nn.functional.fold");
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "y (N, K, P, Q) = conv2d(x, w) + b; padding is (top, bottom, left, right)");
  m.def("conv2d_backward", &conv2d_backward, py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("need"), "(dx, dw, db) of conv2d from dy, None where need is False");
}

}  // namespace ember
