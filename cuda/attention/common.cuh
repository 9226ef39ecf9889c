// What the attention kernels share: the platform (CUDA, or the CPU emulator of cuda/emu for the
// tests), the one launcher, batch offsets, masking, dropout bits and the global->shared tile
// loads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "attention/attention.h"

#ifdef EMBER_CUDA_EMULATION
#include "emu/emu.h"
#define EMBER_DYNAMIC_SHARED_BYTES(name) unsigned char* name = ::emu::shared_memory()
#else
#include "attention/ptx.cuh"
#include "common/check.h"
#define EMBER_DYNAMIC_SHARED_BYTES(name) extern __shared__ __align__(16) unsigned char name[]
#endif

namespace ember::cuda::attention {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kInf = __builtin_huge_valf();

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// kernel<<<blocks, threads, shared_bytes, stream>>>(args...). Above 48 KiB of dynamic shared
// memory the kernel opts in (and the call throws, naming the kernel, if the device has less).
template <class... Params, class... Args>
void launch(const char* name, void (*kernel)(Params...), int64_t blocks, int threads,
            size_t shared_bytes, cudaStream_t stream, const Args&... args) {
  if (blocks <= 0) return;
  if (blocks > 0x7FFFFFFF)
    throw std::invalid_argument(std::string(name) + ": " + std::to_string(blocks) +
                                " blocks exceed the grid");
#ifdef EMBER_CUDA_EMULATION
  (void)stream;
  emu::launch(static_cast<unsigned>(blocks), static_cast<unsigned>(threads), shared_bytes,
              [&] { kernel(args...); });
#else
  if (shared_bytes > 48 * 1024) {
    int device = 0, limit = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    EMBER_CUDA_CHECK(
        cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    if (shared_bytes > static_cast<size_t>(limit))
      throw std::runtime_error(std::string(name) + " needs " + std::to_string(shared_bytes) +
                               " bytes of shared memory per block; this device allows " +
                               std::to_string(limit));
    EMBER_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(shared_bytes)));
  }
  kernel<<<static_cast<unsigned>(blocks), threads, shared_bytes, stream>>>(args...);
  check(cudaGetLastError(), (std::string("launching ") + name).c_str());
#endif
}

// f(std::integral_constant<int, head_dim_tile(E, Ev)>): the one switch from run-time head dims
// to the kernels' template argument.
template <class F>
decltype(auto) with_head_dim_tile(int E, int Ev, F&& f) {
  switch (head_dim_tile(E, Ev)) {
    case 32:
      return f(std::integral_constant<int, 32>{});
    case 64:
      return f(std::integral_constant<int, 64>{});
    case 96:
      return f(std::integral_constant<int, 96>{});
    case 128:
      return f(std::integral_constant<int, 128>{});
    default:
      throw std::invalid_argument("attention: head dimensions must be 1 .. " +
                                  std::to_string(kMaxHeadDim) + ", got E = " + std::to_string(E) +
                                  ", Ev = " + std::to_string(Ev));
  }
}

inline void zero_async(void* data, size_t bytes, cudaStream_t stream) {
#ifdef EMBER_CUDA_EMULATION
  (void)stream;
  std::memset(data, 0, bytes);
#else
  EMBER_CUDA_CHECK(cudaMemsetAsync(data, 0, bytes, stream));
#endif
}

// ---- device helpers ------------------------------------------------------------------------

// The element offset of batch item b in an operand with these batch strides.
__device__ __forceinline__ int64_t batch_offset(const Batch& dims,
                                                const int64_t (&strides)[kMaxBatchDims],
                                                int64_t b) {
  int64_t offset = 0;
  for (int d = dims.ndim - 1; d >= 0; --d) {
    offset += (b % dims.size[d]) * strides[d];
    b /= dims.size[d];
  }
  return offset;
}

template <class T>
__device__ __forceinline__ const T* rows_of(const Rows& x, const Batch& dims, int64_t b) {
  return static_cast<const T*>(x.data) + batch_offset(dims, x.batch, b);
}

// The mask of one batch item (attn_mask offset to it).
struct ItemMask {
  MaskKind kind;
  const void* data;
  int64_t row, col;

  __device__ __forceinline__ ItemMask(const Mask& m, const Batch& dims, int64_t b)
      : kind(m.kind), data(m.data), row(m.row), col(m.col) {
    if (kind == MaskKind::boolean)
      data = static_cast<const uint8_t*>(m.data) + batch_offset(dims, m.batch, b);
    else if (kind == MaskKind::additive)
      data = static_cast<const float*>(m.data) + batch_offset(dims, m.batch, b);
  }
};

// The masking of query row i against the keys k0 + jl (0 <= jl < tile) of one key tile: keys
// jl >= visible (past S, or hidden by causality) get -inf, and so do those a boolean mask
// excludes; an additive mask is added (times log2(e): scores are in log2 units).
struct RowMask {
  int visible;
  MaskKind kind;
  const void* mask;  // the mask at (i, k0)
  int64_t col;

  __device__ __forceinline__ float operator()(int jl, float x) const {
    if (jl >= visible) return -kInf;
    if (kind == MaskKind::boolean)
      return static_cast<const uint8_t*>(mask)[jl * col] ? x : -kInf;
    if (kind == MaskKind::additive)
      return fmaf(static_cast<const float*>(mask)[jl * col], kLog2e, x);
    return x;
  }
};

// Row i >= L (padding of the last query tile) reads no mask.
__device__ __forceinline__ RowMask row_mask(const Problem& p, const ItemMask& m, int64_t i,
                                            int64_t k0, int tile) {
  int64_t n = p.S - k0;
  if (p.causal && i - k0 + 1 < n) n = i - k0 + 1;
  RowMask r;
  r.visible = n < 0 ? 0 : n > tile ? tile : static_cast<int>(n);
  r.kind = i < p.L ? m.kind : MaskKind::none;
  r.mask = nullptr;
  r.col = m.col;
  if (r.kind == MaskKind::boolean)
    r.mask = static_cast<const uint8_t*>(m.data) + i * m.row + k0 * m.col;
  else if (r.kind == MaskKind::additive)
    r.mask = static_cast<const float*>(m.data) + i * m.row + k0 * m.col;
  return r;
}

// True when the scores of the rows from `first` on against keys k0 .. k0 + tile need no masking:
// all the keys exist, causality hides none of them from the first row (nor so from later ones)
// and there is no mask. Most tiles are such; they skip the per-score checks.
__device__ __forceinline__ bool tile_unmasked(const Problem& p, int64_t first, int64_t k0,
                                              int tile) {
  return p.mask.kind == MaskKind::none && k0 + tile <= p.S && (!p.causal || k0 + tile - 1 <= first);
}

// Dropout's keep decision for weight `counter` (= (b * L + i) * S + j): splitmix64, as
// csrc/attention/attention_simd.h.
__device__ __forceinline__ bool dropout_keep(const Dropout& d, uint64_t counter) {
  uint64_t z = d.seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 40) >= d.threshold;
}

// Rows 0 .. ROWS of a tile whose first row is `src` (rows < ROWS of them exist, cols columns
// each, row stride `stride`) into shared memory dst[ROWS][LD], zero past the last row and column
// up to COLS. Aligned sources go 16 bytes at a time through cp.async (the caller commits and
// waits); others element by element (visible after the caller's next __syncthreads).
template <class T, int ROWS, int COLS, int LD, int THREADS>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int64_t stride, int64_t rows,
                                          int cols, bool aligned) {
  constexpr int kPerChunk = 16 / static_cast<int>(sizeof(T));
  constexpr int kChunks = COLS / kPerChunk;
  static_assert(COLS % kPerChunk == 0 && LD % kPerChunk == 0, "rows of whole 16-byte chunks");
  for (int e = threadIdx.x; e < ROWS * kChunks; e += THREADS) {
    const int r = e / kChunks, c = e % kChunks * kPerChunk;
    const int left = cols - c < kPerChunk ? cols - c : kPerChunk;
    const int n = r < rows && left > 0 ? left : 0;  // elements of this chunk that exist
    T* d = dst + r * LD + c;
    if (aligned) {
      cp_async_16(d, n > 0 ? src + r * stride + c : src, n * static_cast<int>(sizeof(T)));
    } else {
      for (int x = 0; x < kPerChunk; ++x) d[x] = x < n ? src[r * stride + c + x] : T(0);
    }
  }
}

}  // namespace ember::cuda::attention
