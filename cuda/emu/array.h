// A NumPy array as the emulated kernel libraries' C entry points take it (tests/cuda_emu.py's
// EmuArray), and its copy in a fenced buffer (an access outside the array's bytes faults).
#pragma once
#include <cstdint>
#include <cstring>

#include "emu/emu.h"

extern "C" {

// The buffer the array views, where element 0 is in it, shape and byte strides.
struct EmuArray {
  void* base;
  int64_t base_bytes;
  int64_t offset;
  int64_t itemsize;
  int64_t ndim;
  int64_t shape[8];
  int64_t strides[8];
};

}  // extern "C"

namespace emu {

class FencedCopy {
 public:
  explicit FencedCopy(const EmuArray& a)
      : source_(a), buffer_(static_cast<size_t>(a.base_bytes)) {
    std::memcpy(buffer_.data(), a.base, static_cast<size_t>(a.base_bytes));
  }
  // element 0 of the copy
  template <class T>
  T* data() const {
    return reinterpret_cast<T*>(buffer_.data() + source_.offset);
  }
  int64_t stride(int d) const { return source_.strides[d] / source_.itemsize; }
  void copy_back() const {
    std::memcpy(source_.base, buffer_.data(), static_cast<size_t>(source_.base_bytes));
  }
  // the copy made again from the source array
  void restore() const {
    std::memcpy(buffer_.data(), source_.base, static_cast<size_t>(source_.base_bytes));
  }
  // every float of a float32 array's buffer negated (a decoy input)
  void negate() const {
    float* f = reinterpret_cast<float*>(buffer_.data());
    for (int64_t i = 0; i < source_.base_bytes / 4; ++i) f[i] = -f[i];
  }

 private:
  EmuArray source_;
  FencedBuffer buffer_;
};

}  // namespace emu
