// Checks shared by the bindings of every kernel family: they turn a NumPy array into raw
// pointers and element strides, or throw the Python exception that says what is wrong.
#pragma once
#include <pybind11/numpy.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ember {

// "(2, 3)": an array's shape as Python prints it.
std::string shape_str(const pybind11::array& x);

// Checks that `x` is a native float32 array whose strides are whole elements (TypeError /
// ValueError naming `name` otherwise); returns its strides in elements.
std::vector<int64_t> float32_strides(const pybind11::array& x, const char* name);

// True if the bytes spanned by x and y intersect (empty arrays span nothing).
bool overlap(const pybind11::array& x, const pybind11::array& y);

// The product of non-negative sizes, after checking that as many elements of `itemsize` bytes
// fit in 2**63 bytes (else a ValueError "<what> is too large"): no buffer of that size can
// exist, and a product that wrapped around would make a kernel index past the end of a smaller
// one.
int64_t checked_size(const std::vector<int64_t>& sizes, const std::string& what,
                     int64_t itemsize = sizeof(float));

// A new C-contiguous array of `shape`, its size checked first: pybind11 computes the strides
// without looking for overflow.
template <class T>
pybind11::array_t<T> new_array(const std::vector<int64_t>& shape, const std::string& what) {
  checked_size(shape, what, sizeof(T));
  return pybind11::array_t<T>(shape);
}

// Element offsets of every index of the first `batch_dims` dimensions of `x`, in C order.
std::vector<int64_t> batch_offsets(const pybind11::array& x, const std::vector<int64_t>& strides,
                                   int batch_dims);

}  // namespace ember
