#include "common/pyarray.h"

namespace py = pybind11;

namespace ember {
namespace {

// The byte range [lo, hi] an array's elements span; false for an empty array.
bool byte_range(const py::array& x, uintptr_t& lo, uintptr_t& hi) {
  if (x.size() == 0) return false;
  lo = hi = reinterpret_cast<uintptr_t>(x.data());
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    const py::ssize_t reach = (x.shape(d) - 1) * x.strides(d);
    (reach < 0 ? lo : hi) += reach;
  }
  hi += x.itemsize() - 1;
  return true;
}

}  // namespace

std::string shape_str(const py::array& x) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < x.ndim(); ++d) s += (d ? ", " : "") + std::to_string(x.shape(d));
  return s + (x.ndim() == 1 ? ",)" : ")");
}

std::vector<int64_t> float32_strides(const py::array& x, const char* name) {
  if (!x.dtype().equal(py::dtype::of<float>()))
    throw py::type_error(std::string(name) + " must be float32, got " + std::string(py::str(x.dtype())));
  if (reinterpret_cast<uintptr_t>(x.data()) % alignof(float) != 0)
    throw py::value_error(std::string(name) + " is not aligned to float32");
  std::vector<int64_t> strides(x.ndim());
  for (py::ssize_t d = 0; d < x.ndim(); ++d) {
    if (x.strides(d) % static_cast<py::ssize_t>(sizeof(float)) != 0)
      throw py::value_error(std::string(name) + " has a stride that is not a whole number of float32 elements");
    strides[d] = x.strides(d) / static_cast<py::ssize_t>(sizeof(float));
  }
  return strides;
}

bool overlap(const py::array& x, const py::array& y) {
  uintptr_t xl, xh, yl, yh;
  if (!byte_range(x, xl, xh) || !byte_range(y, yl, yh)) return false;
  return xl <= yh && yl <= xh;
}

int64_t checked_size(const std::vector<int64_t>& sizes, const std::string& what,
                     int64_t itemsize) {
  int64_t product = 1;
  std::string dims;
  bool overflow = false;
  for (int64_t n : sizes) {
    overflow = overflow || n < 0 || __builtin_mul_overflow(product, n, &product);
    dims += (dims.empty() ? "" : " x ") + std::to_string(n);
  }
  int64_t bytes;
  if (overflow || __builtin_mul_overflow(product, itemsize, &bytes))
    throw py::value_error(what + " is too large: " + dims + " elements of " +
                          std::to_string(itemsize) + " bytes pass 2**63 bytes");
  return product;
}

std::vector<int64_t> batch_offsets(const py::array& x, const std::vector<int64_t>& strides, int batch_dims) {
  std::vector<int64_t> offsets{0};
  for (int d = 0; d < batch_dims; ++d) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * x.shape(d));
    for (int64_t base : offsets)
      for (py::ssize_t i = 0; i < x.shape(d); ++i) next.push_back(base + i * strides[d]);
    offsets.swap(next);
  }
  return offsets;
}

}  // namespace ember
