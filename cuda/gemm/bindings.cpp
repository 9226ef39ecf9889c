// ember._cuda.gemm: float32 CuPy arrays, 2-D or batched 3-D, onto ember::cuda::sgemm.
#include "bindings.h"

#include <pybind11/pybind11.h>

#include <string>
#include <utility>

#include "common/device_array.h"
#include "gemm/gemm.h"

namespace py = pybind11;

namespace ember::cuda {
namespace {

// (batch, rows, cols, batch stride, row stride, col stride) of a 2-D or 3-D operand.
struct Operand {
  int64_t batch, rows, cols, batch_stride, row_stride, col_stride;
};

Operand operand(const DeviceArray& x, const char* name) {
  if (x.ndim() == 2) return {1, x.shape[0], x.shape[1], 0, x.strides[0], x.strides[1]};
  if (x.ndim() == 3)
    return {x.shape[0], x.shape[1], x.shape[2], x.strides[0], x.strides[1], x.strides[2]};
  throw py::value_error(std::string(name) + " must be 2-D or 3-D, got shape " +
                        shape_string(x.shape));
}

// The GemmArgs of out = alpha * op(a) @ op(b) + beta * out, every shape and overlap checked. A
// 3-D out is a batch; a and b are then 3-D with that batch (a batch stride of 0 broadcasts one
// matrix).
GemmArgs gemm_args(py::handle a_obj, py::handle b_obj, py::handle out_obj, bool trans_a,
                   bool trans_b, float alpha, float beta, bool tf32, int& device) {
  const DeviceArray a = device_array(a_obj, "a", sizeof(float));
  const DeviceArray b = device_array(b_obj, "b", sizeof(float));
  const DeviceArray out = device_array(out_obj, "out", sizeof(float));
  check_same_device(a, "a", out, "out");
  check_same_device(b, "b", out, "out");
  if (a.ndim() != out.ndim() || b.ndim() != out.ndim())
    throw py::value_error("gemm: a, b and out must have the same number of dimensions, got " +
                          shape_string(a.shape) + ", " + shape_string(b.shape) + ", " +
                          shape_string(out.shape));
  Operand oa = operand(a, "a"), ob = operand(b, "b");
  const Operand oc = operand(out, "out");
  if (trans_a) std::swap(oa.rows, oa.cols), std::swap(oa.row_stride, oa.col_stride);
  if (trans_b) std::swap(ob.rows, ob.cols), std::swap(ob.row_stride, ob.col_stride);
  if (oa.cols != ob.rows || oc.rows != oa.rows || oc.cols != ob.cols || oa.batch != oc.batch ||
      ob.batch != oc.batch)
    throw py::value_error("gemm: shapes do not match: op(a) " + shape_string({oa.rows, oa.cols}) +
                          ", op(b) " + shape_string({ob.rows, ob.cols}) + ", out " +
                          shape_string(out.shape));
  // every element of out is written: they must be distinct and apart from the inputs
  if (out.has_repeated_elements())
    throw py::value_error("gemm: out has repeated elements (a zero stride)");
  check_no_overlap(out, "out", a, "a");
  check_no_overlap(out, "out", b, "b");

  GemmArgs g;
  g.m = oc.rows, g.n = oc.cols, g.k = oa.cols, g.batch = oc.batch;
  g.a = a.ptr<float>(), g.a_row = oa.row_stride, g.a_col = oa.col_stride;
  g.a_batch = oa.batch_stride;
  g.b = b.ptr<float>(), g.b_row = ob.row_stride, g.b_col = ob.col_stride;
  g.b_batch = ob.batch_stride;
  g.c = out.ptr<float>(), g.c_row = oc.row_stride, g.c_col = oc.col_stride;
  g.c_batch = oc.batch_stride;
  g.alpha = alpha, g.beta = beta, g.tf32 = tf32;
  device = out.device;
  return g;
}

void gemm(py::handle a, py::handle b, py::handle out, bool trans_a, bool trans_b, float alpha,
          float beta, bool tf32, uintptr_t stream) {
  int device = 0;
  const GemmArgs g = gemm_args(a, b, out, trans_a, trans_b, alpha, beta, tf32, device);
  const DeviceGuard guard(device);
  py::gil_scoped_release release;
  sgemm(g, stream_from(stream));
}

std::string gemm_kernel(py::handle a, py::handle b, py::handle out, bool trans_a, bool trans_b,
                        bool tf32) {
  int device = 0;
  const GemmArgs g = gemm_args(a, b, out, trans_a, trans_b, 1.0f, 0.0f, tf32, device);
  const DeviceGuard guard(device);
  return sgemm_kernel_name(g);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("alpha"), py::arg("beta"), py::arg("tf32"), py::arg("stream"),
        "out = alpha * op(a) @ op(b) + beta * out on float32 CuPy arrays (2-D, or 3-D batches)");
  m.def("gemm_kernel", &gemm_kernel, py::arg("a"), py::arg("b"), py::arg("out"), py::arg("trans_a"),
        py::arg("trans_b"), py::arg("tf32"),
        "The kernel, tile and operand layouts gemm would run for these arrays (nothing is run)");
}

}  // namespace ember::cuda
