#include "common/device_array.h"

#include <pybind11/stl.h>  // shape and strides arrive as tuples: cast to std::vector

#include <stdexcept>

#include "common/check.h"

namespace py = pybind11;

namespace ember::cuda {

int64_t DeviceArray::size() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool DeviceArray::c_contiguous() const {
  if (size() == 0) return true;  // nothing to index (NumPy gives empty arrays zero strides)
  int64_t expected = 1;
  for (int64_t i = ndim() - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

bool DeviceArray::has_repeated_elements() const {
  if (size() <= 1) return false;
  for (int64_t i = 0; i < ndim(); ++i)
    if (shape[i] > 1 && strides[i] == 0) return true;
  return false;
}

void DeviceArray::byte_extent(uintptr_t& lo, uintptr_t& hi) const {
  lo = hi = reinterpret_cast<uintptr_t>(data);
  if (size() == 0) return;
  int64_t low = 0, high = 0;
  for (int64_t i = 0; i < ndim(); ++i) {
    const int64_t reach = (shape[i] - 1) * strides[i];
    (reach < 0 ? low : high) += reach;
  }
  lo += low * itemsize;
  hi += (high + 1) * itemsize;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

DeviceArray device_array(py::handle array, const char* name, int64_t itemsize) {
  DeviceArray x;
  const std::string n(name);
  if (!py::hasattr(array, "data") || !py::hasattr(array, "device"))
    throw py::type_error(n + " must be a CuPy array");
  x.itemsize = array.attr("dtype").attr("itemsize").cast<int64_t>();
  if (x.itemsize != itemsize)
    throw py::type_error(n + " has " + std::to_string(x.itemsize) + "-byte elements, expected " +
                         std::to_string(itemsize));
  x.data = reinterpret_cast<void*>(array.attr("data").attr("ptr").cast<uintptr_t>());
  x.device = array.attr("device").attr("id").cast<int>();
  x.shape = array.attr("shape").cast<std::vector<int64_t>>();
  for (int64_t byte_stride : array.attr("strides").cast<std::vector<int64_t>>()) {
    if (byte_stride % itemsize != 0)
      throw py::value_error(n + " has a stride that is not a whole number of elements");
    x.strides.push_back(byte_stride / itemsize);
  }
  if (x.size() > 0 && x.data == nullptr) throw py::value_error(n + " has a null data pointer");
  return x;
}

void check_ndim(const DeviceArray& x, const char* name, int64_t ndim) {
  if (x.ndim() != ndim)
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) +
                          "-D, got shape " + shape_string(x.shape));
}

void check_shape(const DeviceArray& x, const char* name, const std::vector<int64_t>& shape) {
  if (x.shape != shape)
    throw py::value_error(std::string(name) + " must have shape " + shape_string(shape) +
                          ", got " + shape_string(x.shape));
}

void check_c_contiguous(const DeviceArray& x, const char* name) {
  if (!x.c_contiguous()) throw py::value_error(std::string(name) + " must be C-contiguous");
}

void check_same_device(const DeviceArray& x, const char* name, const DeviceArray& y,
                       const char* other) {
  if (x.device != y.device)
    throw py::value_error(std::string(name) + " is on device " + std::to_string(x.device) +
                          " but " + other + " is on device " + std::to_string(y.device));
}

void check_no_overlap(const DeviceArray& out, const char* out_name, const DeviceArray& in,
                      const char* in_name) {
  uintptr_t out_lo, out_hi, in_lo, in_hi;
  out.byte_extent(out_lo, out_hi);
  in.byte_extent(in_lo, in_hi);
  if (out_lo < in_hi && in_lo < out_hi)
    throw py::value_error(std::string(out_name) + " must not overlap " + in_name);
}

DeviceGuard::DeviceGuard(int device) {
  EMBER_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) EMBER_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
}

}  // namespace ember::cuda
