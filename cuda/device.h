// What the CUDA runtime sees: plain C++ types, so the bindings need no CUDA headers.
#pragma once
#include <cstdint>
#include <string>

namespace ember::cuda {

struct DeviceInfo {
  std::string name;
  int major;
  int minor;
  int multiprocessors;
  int64_t total_memory;
};

int device_count();  // 0 when there is no driver or no device
DeviceInfo device_info(int device);
int runtime_version();
int driver_version();  // 0 when there is no driver

}  // namespace ember::cuda
