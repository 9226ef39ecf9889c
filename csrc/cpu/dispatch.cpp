#include "cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "cpu/features.h"

namespace ember::cpu {
namespace {

const KernelTable kGeneric{Isa::generic, &gemm::f32_gemm_4x8_generic, &vmath::f32_vmath_generic,
                          &pool::f32_pool_generic, &attention::f32_sdpa_generic,
                          &lstm::f32_lstm_cell_generic, &optim::f32_optim_generic};
#if defined(EMBER_X86)
const KernelTable kAvx2{Isa::avx2, &gemm::f32_gemm_6x16_avx2, &vmath::f32_vmath_avx2,
                        &pool::f32_pool_avx2, &attention::f32_sdpa_avx2, &lstm::f32_lstm_cell_avx2,
                        &optim::f32_optim_avx2};
const KernelTable kAvx512{Isa::avx512, &gemm::f32_gemm_14x32_avx512, &vmath::f32_vmath_avx512,
                          &pool::f32_pool_avx512, &attention::f32_sdpa_avx512,
                          &lstm::f32_lstm_cell_avx512, &optim::f32_optim_avx512};
#endif

const KernelTable& table_for(Isa isa) {
  switch (isa) {
#if defined(EMBER_X86)
    case Isa::avx2: return kAvx2;
    case Isa::avx512: return kAvx512;
#endif
    default: return kGeneric;
  }
}

std::atomic<const KernelTable*> g_active{&kGeneric};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    default: return "generic";
  }
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (name == isa_name(isa)) return isa;
  throw std::invalid_argument("EMBER_CPU_ISA must be one of generic, avx2, avx512; got '" + name + "'");
}

bool isa_supported(Isa isa) {
  const Features& f = features();
  switch (isa) {
#if defined(EMBER_X86)
    case Isa::avx2: return f.avx2 && f.fma;
    case Isa::avx512: return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.fma;
#endif
    case Isa::generic: return true;
    default: return false;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

const KernelTable& kernels() { return *g_active.load(std::memory_order_acquire); }

void select_isa(Isa isa) {
  if (!isa_supported(isa)) {
    std::string supported;
    for (Isa s : supported_isas()) supported += (supported.empty() ? "" : ", ") + std::string(isa_name(s));
    throw std::invalid_argument(std::string("this CPU does not support the '") + isa_name(isa) +
                                "' kernels (supported: " + supported + ")");
  }
  g_active.store(&table_for(isa), std::memory_order_release);
}

void init_dispatch() {
  const char* forced = std::getenv("EMBER_CPU_ISA");
  if (forced && *forced) {
    select_isa(parse_isa(forced));
    return;
  }
  select_isa(supported_isas().back());
}

}  // namespace ember::cpu
