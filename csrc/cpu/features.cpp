#include "cpu/features.h"

#if defined(EMBER_X86)
#include <cpuid.h>
#include <cstdint>
#include <cstring>
#endif

namespace ember::cpu {
namespace {

#if defined(EMBER_X86)
// XCR0 says which register states the OS saves on a context switch.
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

Features detect() {
  Features f;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  char vendor[13] = {};
  __cpuid(0, eax, ebx, ecx, edx);
  std::memcpy(vendor + 0, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  f.vendor = vendor;

  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    char brand[49] = {};
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      __cpuid(0x80000002 + leaf, eax, ebx, ecx, edx);
      std::memcpy(brand + 16 * leaf + 0, &eax, 4);
      std::memcpy(brand + 16 * leaf + 4, &ebx, 4);
      std::memcpy(brand + 16 * leaf + 8, &ecx, 4);
      std::memcpy(brand + 16 * leaf + 12, &edx, 4);
    }
    f.brand = brand;
    auto first = f.brand.find_first_not_of(' ');
    f.brand = first == std::string::npos ? "" : f.brand.substr(first);
  }

  __cpuid(1, eax, ebx, ecx, edx);
  f.sse2 = edx & (1u << 26);
  bool osxsave = ecx & (1u << 27);
  bool cpu_avx = ecx & (1u << 28);
  bool cpu_fma = ecx & (1u << 12);
  uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  bool os_ymm = (xcr0 & 0x6) == 0x6;      // SSE and AVX state
  bool os_zmm = (xcr0 & 0xe6) == 0xe6;    // plus opmask and both halves of ZMM
  f.avx = cpu_avx && os_ymm;
  f.fma = cpu_fma && os_ymm;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.avx2 = (ebx & (1u << 5)) && os_ymm;
    f.avx512f = (ebx & (1u << 16)) && os_zmm;
    f.avx512dq = (ebx & (1u << 17)) && os_zmm;
    f.avx512bw = (ebx & (1u << 30)) && os_zmm;
    f.avx512vl = (ebx & (1u << 31)) && os_zmm;
  }
  return f;
}
#else
Features detect() { return Features{}; }
#endif

}  // namespace

const Features& features() {
  static const Features f = detect();
  return f;
}

}  // namespace ember::cpu
