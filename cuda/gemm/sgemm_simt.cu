// SGEMM on the CUDA cores, exact fp32 FMA: C = alpha * op(A) @ op(B) + beta * C, batched.
//
// A block computes a BM x BN tile of C, BK steps of k at a time. Both operands are staged in
// shared memory k-major, a_s[k][m] and b_s[k][n], double-buffered: while the block multiplies
// one buffer, each thread holds the next k step's elements in registers (loaded from global
// memory before the multiply, stored to the other buffer after it), so one __syncthreads per k
// step suffices. Each thread accumulates a (4 SUB_M) x (4 SUB_N) register tile made of 4 x 4
// sub-tiles spaced BM / SUB_M rows and BN / SUB_N columns apart: its shared-memory reads are
// float4, and the 4 x 8 threads of a warp read 4 and 8 distinct float4 of a row of a_s and b_s,
// 64 and 128 contiguous bytes: one wavefront each, without bank conflicts.
//
// Global loads run along each operand's unit-stride dimension (Major): kMN-major slabs are
// float4 rows of a_s / b_s as they are; kK-major ones are transposed on the way into shared
// memory (4 scalar stores, conflict-free thanks to the 4-float row padding). Chunks that are not
// entirely inside the matrix, and operands without 16-byte alignment, are loaded element by
// element with bounds checks (zeros outside), so edge tiles never read out of bounds.
#include "common/check.h"
#include "gemm/kernels.h"
#include "gemm/tile.cuh"

namespace ember::cuda::gemm_detail {
namespace {

// Floats after each shared-memory row: rows stay 16-byte aligned, and a kK-major slab's
// transposed stores fall in distinct banks (see SlabLoader).
constexpr int kPad = 4;

// MIN_BLOCKS: resident blocks per SM that __launch_bounds__ makes room for (2 caps 256 threads at
// 128 registers each).
template <int BM_, int BN_, int BK_, int SUB_M_, int SUB_N_, int MIN_BLOCKS_>
struct SimtConfig {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, SUB_M = SUB_M_, SUB_N = SUB_N_,
                       MIN_BLOCKS = MIN_BLOCKS_;
  static constexpr int kThreadsM = BM / (4 * SUB_M);  // threads along the tile's rows
  static constexpr int kThreadsN = BN / (4 * SUB_N);
  static constexpr int kThreads = kThreadsM * kThreadsN;
  static constexpr int kWarpsN = kThreadsN / 8;  // a warp is 4 thread rows x 8 thread columns
  static_assert(BM % (4 * SUB_M) == 0 && BN % (4 * SUB_N) == 0, "4 x 4 sub-tiles tile the block");
  static_assert(kThreadsM % 4 == 0 && kThreadsN % 8 == 0, "whole warps of 4 x 8 threads");
  static_assert(BM % 32 == 0 && BN % 32 == 0, "the bank argument of kPad needs rows of 32k floats");
  static_assert(BK % 4 == 0, "kK-major slabs load 4 elements of k at a time");
};

// ---- global -> registers -> shared ------------------------------------------------------------

// x[0], x[step], x[2 step], x[3 step], the ones at j >= valid replaced by zeros (not read)
__device__ inline float4 gather4(const float* __restrict__ x, int64_t step, int valid) {
  return make_float4(valid > 0 ? __ldg(x) : 0.0f, valid > 1 ? __ldg(x + step) : 0.0f,
                     valid > 2 ? __ldg(x + 2 * step) : 0.0f,
                     valid > 3 ? __ldg(x + 3 * step) : 0.0f);
}

// One operand's slab of a k step, op(X)(r0 + r, p0 + p) for r < ROWS, p < BK, moved from global
// memory into registers (load) and then into shared memory as slab[p][r] (store). The slab is
// ROWS * BK / 4 chunks of 4 elements adjacent along MAJOR, in lines (rows of X for kK, k values
// for kMN) of kChunksPerLine chunks. Thread t owns the chunks at offset `at` along lines
// line0, line0 + kLineStep, ...: one running pointer per operand locates them all (it may point
// past the matrix where no element is read).
//   kMN: consecutive threads take consecutive chunks of a line: float4 loads and stores of
//        contiguous runs.
//   kK:  16 consecutive threads take one chunk column of 16 rows, the next 16 the next column.
//        A warp loads 32 contiguous bytes of each of 16 rows, and its transposed stores
//        slab[at + j][line] fall in banks (4 (at + j) + line) mod 32 (the pitch is 4 mod 32):
//        lines 0..15 plus 0 or 16 for the two columns, all 32 distinct.
template <int ROWS, int BK, int THREADS, Major MAJOR>
struct SlabLoader {
  static constexpr bool kK = MAJOR == Major::kK;
  static constexpr int kPitch = ROWS + kPad;
  static constexpr int kChunksPerLine = kK ? BK / 4 : ROWS / 4;
  static constexpr int kPerThread = ROWS * BK / 4 / THREADS;
  static constexpr int kLineStep = THREADS / kChunksPerLine;
  static_assert(ROWS * BK / 4 % THREADS == 0, "every thread loads the same number of chunks");
  static_assert(kK ? THREADS % (16 * kChunksPerLine) == 0 && ROWS % 16 == 0
                   : THREADS % kChunksPerLine == 0,
                "a thread's chunks share their offset `at`");
  static_assert(kPitch % 32 == 4, "the bank argument above");

  int line0, at;
  // kK: how many of this thread's chunks (in order) lie in existing rows; kMN: how many elements
  // of each chunk lie inside the mn dimension (0 to 4)
  int mn_ok;
  const float* src;  // this thread's first chunk in the next k step
  float4 v[kPerThread];

  __device__ SlabLoader(const float* x, const Operand& op, int64_t extent_mn, int64_t r0)
      : line0(kK ? threadIdx.x / (16 * kChunksPerLine) * 16 + threadIdx.x % 16
                 : threadIdx.x / kChunksPerLine),
        at(kK ? threadIdx.x / 16 % kChunksPerLine * 4 : threadIdx.x % kChunksPerLine * 4) {
    const int64_t r = r0 + (kK ? line0 : at), p = kK ? at : line0;
    src = x + (r * op.s_mn + p * op.s_k);
    const int64_t left = extent_mn - r;
    if (kK) {
      const int64_t chunks = left <= 0 ? 0 : (left + kLineStep - 1) / kLineStep;
      mn_ok = chunks < kPerThread ? static_cast<int>(chunks) : kPerThread;
    } else {
      mn_ok = valid_of_4(left, 0);
    }
  }

  // Loads the k step that starts k_left > 0 elements before the end of k, and moves on to the
  // next one.
  __device__ void load(const Operand& op, int64_t k_left) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const float* x = src + i * kLineStep * (kK ? op.s_mn : op.s_k);
      const int valid = kK ? (i < mn_ok ? valid_of_4(k_left, at) : 0)
                           : (k_left > line0 + i * kLineStep ? mn_ok : 0);
      if (op.vec && valid == 4)
        v[i] = __ldg(reinterpret_cast<const float4*>(x));
      else
        v[i] = gather4(x, kK ? op.s_k : op.s_mn, valid);
    }
    src += BK * op.s_k;
  }

  __device__ void store(float* __restrict__ slab) const {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int line = line0 + i * kLineStep;
      if (kK) {
        // 4 k values of row `line`: a column of the k-major slab
        slab[(at + 0) * kPitch + line] = v[i].x;
        slab[(at + 1) * kPitch + line] = v[i].y;
        slab[(at + 2) * kPitch + line] = v[i].z;
        slab[(at + 3) * kPitch + line] = v[i].w;
      } else {
        *reinterpret_cast<float4*>(slab + line * kPitch + at) = v[i];
      }
    }
  }
};

__device__ inline void unpack(float4 v, float* out) {
  out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
}

// ---- kernel ---------------------------------------------------------------------------------

// C tile (tile_m, tile_n) of every batch = alpha * op(A) @ op(B) + beta * C; see the file comment.
// Grid: x = tiles_m * tiles_n (in tile_coords order), z = batches (looped beyond gridDim.z).
template <class T, Major MA, Major MB>
__global__ void __launch_bounds__(T::kThreads, T::MIN_BLOCKS)
    sgemm_simt_kernel(Problem pr, int64_t tiles_m, int64_t tiles_n) {
  __shared__ __align__(16) float a_s[2][T::BK * (T::BM + kPad)];
  __shared__ __align__(16) float b_s[2][T::BK * (T::BN + kPad)];
  using LoaderA = SlabLoader<T::BM, T::BK, T::kThreads, MA>;
  using LoaderB = SlabLoader<T::BN, T::BK, T::kThreads, MB>;
  constexpr int kRowsPerThread = 4 * T::SUB_M, kColsPerThread = 4 * T::SUB_N;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int ty = (warp / T::kWarpsN) * 4 + lane / 8;  // thread row in [0, kThreadsM)
  const int tx = (warp % T::kWarpsN) * 8 + lane % 8;  // thread column in [0, kThreadsN)
  int64_t tile_m, tile_n;
  tile_coords(blockIdx.x, tiles_m, tiles_n, tile_m, tile_n);
  const int64_t row0 = tile_m * T::BM, col0 = tile_n * T::BN;

  for (int64_t batch = blockIdx.z; batch < pr.batch; batch += gridDim.z) {
    LoaderA load_a(pr.a.ptr + batch * pr.a.s_batch, pr.a, pr.m, row0);
    LoaderB load_b(pr.b.ptr + batch * pr.b.s_batch, pr.b, pr.n, col0);
    float acc[kRowsPerThread][kColsPerThread] = {};

    // every k step ends with a __syncthreads, so buffer 0 is free here, in every batch
    if (pr.k > 0) {
      load_a.load(pr.a, pr.k);
      load_b.load(pr.b, pr.k);
      load_a.store(a_s[0]);
      load_b.store(b_s[0]);
      __syncthreads();
    }
    int cur = 0;
    for (int64_t p0 = 0; p0 < pr.k; p0 += T::BK) {
      const int64_t k_next = pr.k - p0 - T::BK;  // k left after this step; uniform in the block
      if (k_next > 0) {  // the next k step, into registers: its latency hides behind the FMAs
        load_a.load(pr.a, k_next);
        load_b.load(pr.b, k_next);
      }
      const float* as = a_s[cur];
      const float* bs = b_s[cur];
#pragma unroll
      for (int p = 0; p < T::BK; ++p) {
        float af[kRowsPerThread], bf[kColsPerThread];
#pragma unroll
        for (int s = 0; s < T::SUB_M; ++s)
          unpack(*reinterpret_cast<const float4*>(as + p * (T::BM + kPad) + ty * 4 +
                                                  s * (T::BM / T::SUB_M)),
                 af + 4 * s);
#pragma unroll
        for (int s = 0; s < T::SUB_N; ++s)
          unpack(*reinterpret_cast<const float4*>(bs + p * (T::BN + kPad) + tx * 4 +
                                                  s * (T::BN / T::SUB_N)),
                 bf + 4 * s);
#pragma unroll
        for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
          for (int j = 0; j < kColsPerThread; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
      }
      // the other buffer was last read in the previous step, which every thread finished
      // before the __syncthreads that ended it
      if (k_next > 0) {
        load_a.store(a_s[cur ^ 1]);
        load_b.store(b_s[cur ^ 1]);
      }
      __syncthreads();
      cur ^= 1;
    }

    // epilogue: 4 adjacent columns at a time, float4 where C's rows allow
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
      const int64_t row = row0 + ty * 4 + (i / 4) * (T::BM / T::SUB_M) + i % 4;
      if (row >= pr.m) continue;
      float* c_row = pr.c + batch * pr.c_batch + row * pr.c_row;
#pragma unroll
      for (int s = 0; s < T::SUB_N; ++s) {
        const int64_t col = col0 + tx * 4 + s * (T::BN / T::SUB_N);
        const float* v = acc[i] + 4 * s;
        if (pr.c_vec4 && col + 4 <= pr.n) {
          float4* out = reinterpret_cast<float4*>(c_row + col);
          float4 r =
              make_float4(pr.alpha * v[0], pr.alpha * v[1], pr.alpha * v[2], pr.alpha * v[3]);
          if (pr.beta != 0.0f) {
            const float4 old = *out;
            r = make_float4(
                fmaf(pr.alpha, v[0], pr.beta * old.x), fmaf(pr.alpha, v[1], pr.beta * old.y),
                fmaf(pr.alpha, v[2], pr.beta * old.z), fmaf(pr.alpha, v[3], pr.beta * old.w));
          }
          *out = r;
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            if (col + j >= pr.n) break;
            float* out = c_row + (col + j) * pr.c_col;
            *out = pr.beta == 0.0f ? pr.alpha * v[j] : fmaf(pr.alpha, v[j], pr.beta * *out);
          }
        }
      }
    }
  }
}

// ---- launchers --------------------------------------------------------------------------------

template <class T, Major MA, Major MB>
void launch(const Problem& p, cudaStream_t stream, const char* name) {
  const int64_t tiles_m = (p.m + T::BM - 1) / T::BM, tiles_n = (p.n + T::BN - 1) / T::BN;
  const dim3 grid(static_cast<unsigned>(tiles_m * tiles_n), 1,
                  static_cast<unsigned>(p.batch < kMaxGridZ ? p.batch : kMaxGridZ));
  sgemm_simt_kernel<T, MA, MB><<<grid, T::kThreads, 0, stream>>>(p, tiles_m, tiles_n);
  check(cudaGetLastError(), name);
}

// One instantiation per pair of operand layouts.
template <class T>
void launch_layouts(const Problem& p, cudaStream_t stream, const char* name) {
  const bool a_k = p.a.major == Major::kK, b_k = p.b.major == Major::kK;
  if (a_k && b_k) launch<T, Major::kK, Major::kK>(p, stream, name);
  if (a_k && !b_k) launch<T, Major::kK, Major::kMN>(p, stream, name);
  if (!a_k && b_k) launch<T, Major::kMN, Major::kK>(p, stream, name);
  if (!a_k && !b_k) launch<T, Major::kMN, Major::kMN>(p, stream, name);
}

}  // namespace

void launch_sgemm_simt(const Problem& p, SimtTile tile, cudaStream_t stream) {
  switch (tile) {
    case SimtTile::k128x128x16:
      launch_layouts<SimtConfig<128, 128, 16, 2, 2, 2>>(p, stream,
                                                        "launching sgemm_simt_kernel 128x128x16");
      break;
    case SimtTile::k128x64x8:
      launch_layouts<SimtConfig<128, 64, 8, 2, 2, 1>>(p, stream,
                                                      "launching sgemm_simt_kernel 128x64x8");
      break;
    case SimtTile::k64x64x8:
      launch_layouts<SimtConfig<64, 64, 8, 2, 2, 1>>(p, stream,
                                                     "launching sgemm_simt_kernel 64x64x8");
      break;
    case SimtTile::k32x32x16:
      launch_layouts<SimtConfig<32, 32, 16, 1, 1, 1>>(p, stream,
                                                      "launching sgemm_simt_kernel 32x32x16");
      break;
  }
}

}  // namespace ember::cuda::gemm_detail
