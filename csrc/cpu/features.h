// CPU feature detection, read once from CPUID (and XGETBV for OS support of the wide registers).
#pragma once
#include <string>

namespace ember::cpu {

struct Features {
  std::string vendor;
  std::string brand;
  bool sse2 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
};

const Features& features();

}  // namespace ember::cpu
