// The host-side view of a CuPy array that a binding hands to a kernel: device pointer, element
// size, device id, shape and strides in elements. Parsed from the array's attributes (data.ptr,
// shape, strides, dtype.itemsize, device.id) so that any CuPy dtype, bfloat16 included, arrives
// the same way; Python has checked the dtype, the binding checks the element size again.
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ember::cuda {

struct DeviceArray {
  void* data = nullptr;
  int64_t itemsize = 0;
  int device = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements

  int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
  int64_t size() const;
  bool c_contiguous() const;
  // True if two indices address one element (a zero stride on a dimension longer than 1).
  bool has_repeated_elements() const;
  // The lowest and one-past-highest byte addresses any element occupies (an empty array: none).
  void byte_extent(uintptr_t& lo, uintptr_t& hi) const;

  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
};

// Reads a CuPy array; `name` appears in every error. Throws if the element size is not `itemsize`
// or a stride is not a whole number of elements.
DeviceArray device_array(pybind11::handle array, const char* name, int64_t itemsize);

void check_ndim(const DeviceArray& x, const char* name, int64_t ndim);
void check_shape(const DeviceArray& x, const char* name, const std::vector<int64_t>& shape);
void check_c_contiguous(const DeviceArray& x, const char* name);
void check_same_device(const DeviceArray& x, const char* name, const DeviceArray& y,
                       const char* other);
// Throws if any element of `out` shares memory with any element of `in` (address-range test).
void check_no_overlap(const DeviceArray& out, const char* out_name, const DeviceArray& in,
                      const char* in_name);
std::string shape_string(const std::vector<int64_t>& shape);

// CuPy's stream handle (cupy.cuda.get_current_stream().ptr) as the runtime's type.
inline cudaStream_t stream_from(uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

// Makes `device` current for the scope (kernels launch on the current device), restoring the
// previous one after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace ember::cuda
