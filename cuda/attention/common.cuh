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

// The mask of one batch item: score (i, j) in log2 units (scale * log2(e) * q.k) becomes -inf
// where a boolean mask excludes key j, or gets the additive mask (times log2(e)) added.
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

  __device__ __forceinline__ float apply(int64_t i, int64_t j, float x) const {
    if (kind == MaskKind::boolean)
      return static_cast<const uint8_t*>(data)[i * row + j * col] ? x : -kInf;
    if (kind == MaskKind::additive)
      return fmaf(static_cast<const float*>(data)[i * row + j * col], kLog2e, x);
    return x;
  }
};

// The scaled score (log2 units) of query i and key j after causality, the key range and the
// mask; i >= L (a padding row of the last query tile) is never masked (nothing is read for it).
__device__ __forceinline__ float masked_score(const Problem& p, const ItemMask& mask, int64_t i,
                                              int64_t j, float x) {
  if (j >= p.S || (p.causal && j > i)) return -kInf;
  return i < p.L ? mask.apply(i, j, x) : x;
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
