// Run-time ISA dispatch: the kernels for the best ISA the CPU supports are chosen once, at
// import; EMBER_CPU_ISA=generic|avx2|avx512 forces a path (an error if the CPU lacks it).
#pragma once
#include <string>
#include <vector>

#include "attention/attention.h"
#include "gemm/ukernel.h"
#include "lstm/lstm.h"
#include "optim/optim.h"
#include "vmath/vmath.h"
#include "pool/pool.h"

namespace ember::cpu {

enum class Isa { generic, avx2, avx512 };

// One entry per kernel family; later families add their members here.
struct KernelTable {
  Isa isa;
  const gemm::UKernel* gemm;
  const vmath::VMath* vmath;
  const pool::Kernels* pool;
  const attention::Kernels* attention;
  const lstm::CellKernels* lstm;
  const optim::Kernels* optim;
};

const char* isa_name(Isa isa);
Isa parse_isa(const std::string& name);  // throws std::invalid_argument
bool isa_supported(Isa isa);
std::vector<Isa> supported_isas();

// The table in use. init_dispatch() reads EMBER_CPU_ISA and must run before any kernel.
const KernelTable& kernels();
void init_dispatch();
void select_isa(Isa isa);  // throws std::invalid_argument if the CPU lacks it

}  // namespace ember::cpu
