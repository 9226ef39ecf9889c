// ember::cuda::sgemm: reads the operands' layouts off their strides and picks a kernel and tile
// (host code only; the kernels are in sgemm_simt.cu, sgemm_tf32.cu and sgemm_strided.cu).
//   - an operand with no unit-stride dimension: sgemm_strided_kernel (any strides);
//   - tf32 allowed: sgemm_tf32_kernel (tensor cores);
//   - otherwise sgemm_simt_kernel (exact fp32 on the CUDA cores).
// The tile is the largest whose grid gives every SM at least one block: large tiles reuse each
// loaded element more, small ones spread small and skinny products over more SMs (a 64 x 784
// output runs 50 blocks of 32 x 32 rather than 7 of 128 x 128). An output too small for even the
// smallest tile to fill the GPU (the MLP layer's 64 x 128) would need split-K, which is not done.
// The rule is a first guess, not tuned on a GPU yet.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "common/check.h"
#include "gemm/gemm.h"
#include "gemm/kernels.h"

namespace ember::cuda {
namespace gemm_detail {
namespace {

// A stride along a dimension of size 1 never moves the index: 0 makes it constrain nothing.
int64_t effective_stride(int64_t size, int64_t stride) { return size == 1 ? 0 : stride; }

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// op(X) as an (mn x k) Operand of `batch` matrices. Returns false when neither dimension has
// unit stride (the caller then takes the strided kernel).
bool make_operand(const float* ptr, int64_t mn, int64_t k, int64_t s_mn, int64_t s_k,
                  int64_t s_batch, int64_t batch, Operand& op) {
  op.ptr = ptr;
  op.s_mn = effective_stride(mn, s_mn);
  op.s_k = effective_stride(k, s_k);
  op.s_batch = effective_stride(batch, s_batch);
  // prefer the dimension with unit stride; a dimension of size 1 is adjacent trivially
  if (op.s_k == 1 || (op.s_mn != 1 && k == 1))
    op.major = Major::kK;
  else if (op.s_mn == 1 || mn == 1)
    op.major = Major::kMN;
  else
    return false;
  const bool k_major = op.major == Major::kK;
  const int64_t along = k_major ? op.s_k : op.s_mn, across = k_major ? op.s_mn : op.s_k;
  // a 16-byte load at any chunk start (a multiple of 4 along `major`) is then aligned
  op.vec = along == 1 && across % 4 == 0 && op.s_batch % 4 == 0 && aligned(ptr, 16);
  return true;
}

int multiprocessors() {
  int device = 0, count = 0;
  EMBER_CUDA_CHECK(cudaGetDevice(&device));
  EMBER_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct TileShape {
  int64_t bm, bn;
};

// Index of the first tile (largest first) whose grid has at least `sms` blocks, else the last.
template <size_t N>
size_t pick_tile(const TileShape (&tiles)[N], const Problem& p, int sms) {
  for (size_t i = 0; i < N; ++i)
    if (ceil_div(p.m, tiles[i].bm) * ceil_div(p.n, tiles[i].bn) * p.batch >= sms) return i;
  return N - 1;
}

constexpr TileShape kSimtTiles[] = {{128, 128}, {128, 64}, {64, 64}, {32, 32}};
constexpr SimtTile kSimtTileIds[] = {SimtTile::k128x128x16, SimtTile::k128x64x8, SimtTile::k64x64x8,
                                     SimtTile::k32x32x16};
constexpr const char* kSimtTileNames[] = {"sgemm_simt_kernel 128x128x16",
                                          "sgemm_simt_kernel 128x64x8", "sgemm_simt_kernel 64x64x8",
                                          "sgemm_simt_kernel 32x32x16"};
constexpr TileShape kTf32Tiles[] = {{128, 128}, {64, 64}};
constexpr Tf32Tile kTf32TileIds[] = {Tf32Tile::k128x128x16, Tf32Tile::k64x64x16};
constexpr const char* kTf32TileNames[] = {"sgemm_tf32_kernel 128x128x16",
                                          "sgemm_tf32_kernel 64x64x16"};

// What sgemm runs for these arguments.
struct Plan {
  enum Kind { kNothing, kStrided, kSimt, kTf32 } kind = kNothing;
  Problem problem{};
  size_t tile = 0;  // index into kSimtTiles / kTf32Tiles
  int64_t grid_x = 0;
};

void check_args(const GemmArgs& g) {
  if (g.m < 0 || g.n < 0 || g.k < 0 || g.batch < 0)
    throw std::invalid_argument("sgemm: negative size (m = " + std::to_string(g.m) +
                                ", n = " + std::to_string(g.n) + ", k = " + std::to_string(g.k) +
                                ", batch = " + std::to_string(g.batch) + ")");
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  if (!g.c || (g.k > 0 && (!g.a || !g.b)))
    throw std::invalid_argument("sgemm: null operand pointer");
  if (!aligned(g.a, sizeof(float)) || !aligned(g.b, sizeof(float)) || !aligned(g.c, sizeof(float)))
    throw std::invalid_argument("sgemm: operand pointers must be 4-byte aligned");
}

Plan make_plan(const GemmArgs& g) {
  check_args(g);
  Plan plan;
  if (g.m == 0 || g.n == 0 || g.batch == 0) return plan;
  Problem& p = plan.problem;
  p.m = g.m, p.n = g.n, p.k = g.k, p.batch = g.batch;
  p.alpha = g.alpha, p.beta = g.beta;
  p.c = g.c;
  p.c_row = effective_stride(g.m, g.c_row);
  p.c_col = effective_stride(g.n, g.c_col);
  p.c_batch = effective_stride(g.batch, g.c_batch);
  p.c_vec4 = p.c_col == 1 && p.c_row % 4 == 0 && p.c_batch % 4 == 0 && aligned(g.c, 16);
  p.c_vec2 = p.c_col == 1 && p.c_row % 2 == 0 && p.c_batch % 2 == 0 && aligned(g.c, 8);
  const bool a_ok = make_operand(g.a, g.m, g.k, g.a_row, g.a_col, g.a_batch, g.batch, p.a);
  const bool b_ok = make_operand(g.b, g.n, g.k, g.b_col, g.b_row, g.b_batch, g.batch, p.b);

  int64_t bm = 64, bn = 64;  // sgemm_strided_kernel's tile
  if (!a_ok || !b_ok) {
    plan.kind = Plan::kStrided;
  } else if (g.tf32) {
    plan.kind = Plan::kTf32;
    plan.tile = pick_tile(kTf32Tiles, p, multiprocessors());
    bm = kTf32Tiles[plan.tile].bm, bn = kTf32Tiles[plan.tile].bn;
  } else {
    plan.kind = Plan::kSimt;
    plan.tile = pick_tile(kSimtTiles, p, multiprocessors());
    bm = kSimtTiles[plan.tile].bm, bn = kSimtTiles[plan.tile].bn;
  }
  const int64_t tiles_m = ceil_div(g.m, bm), tiles_n = ceil_div(g.n, bn);
  if (tiles_m > kMaxGridX / tiles_n)
    throw std::invalid_argument("sgemm: " + std::to_string(g.m) + " x " + std::to_string(g.n) +
                                " output has more tiles than a grid can hold");
  plan.grid_x = tiles_m * tiles_n;
  return plan;
}

}  // namespace
}  // namespace gemm_detail

void sgemm(const GemmArgs& args, cudaStream_t stream) {
  using namespace gemm_detail;
  const Plan plan = make_plan(args);
  switch (plan.kind) {
    case Plan::kNothing:
      break;
    case Plan::kStrided:
      launch_sgemm_strided(plan.problem, stream);
      break;
    case Plan::kSimt:
      launch_sgemm_simt(plan.problem, kSimtTileIds[plan.tile], stream);
      break;
    case Plan::kTf32:
      launch_sgemm_tf32(plan.problem, kTf32TileIds[plan.tile], stream);
      break;
  }
}

std::string sgemm_kernel_name(const GemmArgs& args) {
  using namespace gemm_detail;
  const Plan plan = make_plan(args);
  auto major = [](const Operand& op) {
    return std::string(op.major == Major::kK ? "k" : "mn") + (op.vec ? "" : " scalar");
  };
  switch (plan.kind) {
    case Plan::kNothing:
      return "none";
    case Plan::kStrided:
      return "sgemm_strided_kernel 64x64x16";
    case Plan::kSimt:
      return std::string(kSimtTileNames[plan.tile]) + " A " + major(plan.problem.a) + ", B " +
             major(plan.problem.b);
    case Plan::kTf32:
      return std::string(kTf32TileNames[plan.tile]) + " A " + major(plan.problem.a) + ", B " +
             major(plan.problem.b);
  }
  return "none";
}

}  // namespace ember::cuda
