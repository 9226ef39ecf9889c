// SGEMM on the tensor cores in TF32: C = alpha * op(A) @ op(B) + beta * C, batched, with the
// products of TF32-rounded inputs (cvt.rna: 10-bit mantissa, round to nearest, ties away) summed
// in fp32. Used when the caller allows TF32 (ember.set_float32_matmul_precision('high')).
//
// A block of WARPS_M x WARPS_N warps computes a BM x BN tile of C, BK steps of k at a time,
// through a STAGES-deep ring of shared-memory stages filled with cp.async: while the block
// multiplies stage s, the copies of the next STAGES - 1 k steps are in flight. Each warp owns a
// (BM / WARPS_M) x (BN / WARPS_N) warp tile, a grid of mma.sync.m16n8k8 tiles.
//
// Fragments of mma.m16n8k8.row.col.f32.tf32.tf32.f32 (PTX ISA, "Matrix Fragments for
// mma.m16n8k8"), with g = lane / 4 (groupID) and t = lane % 4 (threadID_in_group):
//   A (16 x 8, row):  a0 = A[g][t]   a1 = A[g + 8][t]   a2 = A[g][t + 4]   a3 = A[g + 8][t + 4]
//   B (8 x 8, col):   b0 = B[t][g]   b1 = B[t + 4][g]
//   C (16 x 8, fp32): c0 = C[g][2t]  c1 = C[g][2t + 1]  c2 = C[g + 8][2t]  c3 = C[g + 8][2t + 1]
// Fragments are read from shared memory one 32-bit word per register. A warp's read of one
// register touches rows g in 0..7 and k offsets t in 0..3 of the stage. A kK-major stage is
// [rows][BK + 4] (k contiguous): word g * pitch + t, with pitch = 4 x odd, lands in bank
// 4 * (g * odd mod 8) + t, all 32 distinct. A kMN-major stage is [BK][rows + 8]: word
// t * pitch + g, with pitch = 8 x odd, lands in bank 8 * (t * odd mod 4) + g, all distinct.
// So every fragment load is conflict-free without ldmatrix or swizzling.
//
// Global -> shared copies are 16-byte cp.async.cg along each operand's unit-stride dimension,
// with the source size cut to the elements inside the matrix (cp.async zero-fills the rest of
// the 16 bytes); operands without 16-byte alignment take 4-byte cp.async.ca per element.
#include <atomic>

#include "common/check.h"
#include "gemm/kernels.h"
#include "gemm/tile.cuh"

namespace ember::cuda::gemm_detail {
namespace {

template <int BM_, int BN_, int BK_, int WARPS_M_, int WARPS_N_, int STAGES_>
struct Tf32Config {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_,
                       STAGES = STAGES_;
  static constexpr int kWarpM = BM / WARPS_M, kWarpN = BN / WARPS_N;  // the warp tile
  static constexpr int kMmaM = kWarpM / 16, kMmaN = kWarpN / 8;       // m16n8k8 tiles in it
  static constexpr int kThreads = 32 * WARPS_M * WARPS_N;
  static_assert(kWarpM % 16 == 0 && kWarpN % 8 == 0, "warp tiles are whole m16n8 tiles");
  static_assert(BK % 8 == 0, "k steps are whole k8 mma steps");
  static_assert(STAGES >= 2, "cp.async ring of at least two stages");
};

// One operand's stage in shared memory, element (r, p) for r < ROWS, p < BK (see the file
// comment for why these pitches make fragment loads conflict-free).
template <int ROWS, int BK, Major MAJOR>
struct StageLayout {
  static constexpr bool kK = MAJOR == Major::kK;
  static constexpr int kPitch = kK ? BK + 4 : ROWS + 8;
  static constexpr int kFloats = (kK ? ROWS : BK) * kPitch;
  static_assert(kK ? kPitch % 4 == 0 && (kPitch / 4) % 2 == 1
                   : kPitch % 8 == 0 && (kPitch / 8) % 2 == 1,
                "conflict-free fragment loads need pitch = 4 x odd (kK) or 8 x odd (kMN)");
  __device__ static int at(int r, int p) { return kK ? r * kPitch + p : p * kPitch + r; }
};

// ---- PTX wrappers ---------------------------------------------------------------------------

#ifdef EMBER_CUDA_EMULATION
// cp_async_16, cp_async_4, cp_async_commit, cp_async_wait, to_tf32 and mma_tf32 come from the
// CPU emulator (cuda/emu/emu.h), for the tests that run this file without a GPU.
#else

__device__ inline unsigned shared_address(const float* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, of which the first src_bytes (0, 4, 8, 12 or 16) are read and the
// rest zero-filled. dst and src 16-byte aligned.
__device__ inline void cp_async_16(float* dst, const float* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)),
               "l"(src), "r"(src_bytes)
               : "memory");
}

// 4 bytes global -> shared, zero-filled when src_bytes is 0.
__device__ inline void cp_async_4(float* dst, const float* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(shared_address(dst)),
               "l"(src), "r"(src_bytes)
               : "memory");
}

__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ inline unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// d += a @ b on one m16n8k8 tile (fragments as in the file comment)
__device__ inline void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#endif  // EMBER_CUDA_EMULATION

// ---- global -> shared -----------------------------------------------------------------------

// Issues the copies of one operand's k steps, op(X)(r0 + r, p0 + p) for r < ROWS, p < BK, into
// a stage, one k step after the other. A k step is ROWS * BK / 4 chunks of 4 elements adjacent
// along MAJOR, in lines (rows of X for kK, k values for kMN) of kChunksPerLine chunks; thread t
// copies the chunks at offset `at` along lines line0, line0 + kLineStep, ..., so one running
// element offset locates them all.
template <int ROWS, int BK, int THREADS, Major MAJOR>
struct StageCopier {
  using L = StageLayout<ROWS, BK, MAJOR>;
  static constexpr int kChunksPerLine = L::kK ? BK / 4 : ROWS / 4;
  static constexpr int kPerThread = ROWS * BK / 4 / THREADS;
  static constexpr int kLineStep = THREADS / kChunksPerLine;
  static_assert(ROWS * BK / 4 % THREADS == 0, "every thread copies the same number of chunks");
  static_assert(THREADS % kChunksPerLine == 0, "a thread's chunks share their offset `at`");

  int line0, at;
  int64_t offset;   // element offset of this thread's first chunk in the next k step
  int64_t mn_left;  // elements of the mn dimension from this thread's first chunk on

  __device__ StageCopier(const Operand& op, int64_t extent_mn, int64_t r0)
      : line0(threadIdx.x / kChunksPerLine), at(threadIdx.x % kChunksPerLine * 4) {
    const int64_t r = r0 + (L::kK ? line0 : at), p = L::kK ? at : line0;
    offset = r * op.s_mn + p * op.s_k;
    mn_left = extent_mn - r;
  }

  // Copies the k step that starts k_left > 0 elements before the end of k into `stage`, and
  // moves on to the next one.
  __device__ void copy(float* stage, const float* x, const Operand& op, int64_t k_left) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int line = i * kLineStep;  // relative to line0
      int64_t o, step;
      int valid;
      float* dst;
      if (L::kK) {
        o = offset + line * op.s_mn, step = op.s_k;
        valid = mn_left > line ? valid_of_4(k_left, at) : 0;
        dst = stage + L::at(line0 + line, at);
      } else {
        o = offset + line * op.s_k, step = op.s_mn;
        valid = k_left > line0 + line ? valid_of_4(mn_left, 0) : 0;
        dst = stage + L::at(at, line0 + line);
      }
      if (op.vec) {
        // a chunk with no element inside reads nothing; x itself is a valid address to name
        cp_async_16(dst, valid > 0 ? x + o : x, 4 * valid);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j)
          cp_async_4(dst + j, j < valid ? x + o + j * step : x, j < valid ? 4 : 0);
      }
    }
    offset += BK * op.s_k;
  }
};

// ---- kernel ---------------------------------------------------------------------------------

// C tile (tile_m, tile_n) of every batch in TF32; see the file comment. Grid: x = tiles_m *
// tiles_n (tile_coords order), z = batches (looped beyond gridDim.z). Dynamic shared memory:
// STAGES * (A stage + B stage).
template <class T, Major MA, Major MB>
__global__ void __launch_bounds__(T::kThreads)
    sgemm_tf32_kernel(Problem pr, int64_t tiles_m, int64_t tiles_n) {
  extern __shared__ __align__(16) float smem[];
  using LA = StageLayout<T::BM, T::BK, MA>;
  using LB = StageLayout<T::BN, T::BK, MB>;
  constexpr int kStageFloats = LA::kFloats + LB::kFloats;

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int wm0 = (warp % T::WARPS_M) * T::kWarpM, wn0 = (warp / T::WARPS_M) * T::kWarpN;
  int64_t tile_m, tile_n;
  tile_coords(blockIdx.x, tiles_m, tiles_n, tile_m, tile_n);
  const int64_t row0 = tile_m * T::BM, col0 = tile_n * T::BN;
  const int64_t k_steps = (pr.k + T::BK - 1) / T::BK;

  for (int64_t batch = blockIdx.z; batch < pr.batch; batch += gridDim.z) {
    const float* a = pr.a.ptr + batch * pr.a.s_batch;
    const float* b = pr.b.ptr + batch * pr.b.s_batch;
    float* c = pr.c + batch * pr.c_batch;
    StageCopier<T::BM, T::BK, T::kThreads, MA> copy_a(pr.a, pr.m, row0);
    StageCopier<T::BN, T::BK, T::kThreads, MB> copy_b(pr.b, pr.n, col0);
    // k step ks into stage ks % STAGES; k steps are copied in order
    auto load = [&](int64_t ks) {
      float* stage = smem + static_cast<int>(ks % T::STAGES) * kStageFloats;
      copy_a.copy(stage, a, pr.a, pr.k - ks * T::BK);
      copy_b.copy(stage + LA::kFloats, b, pr.b, pr.k - ks * T::BK);
    };
    float acc[T::kMmaM][T::kMmaN][4] = {};

    __syncthreads();  // every warp is done reading the previous batch's stages
    // prologue: k steps 0 .. STAGES - 2 in flight, one commit group each (empty past the end,
    // so that group i always holds k step i)
    for (int s = 0; s < T::STAGES - 1; ++s) {
      if (s < k_steps) load(s);
      cp_async_commit();
    }
    for (int64_t ks = 0; ks < k_steps; ++ks) {
      // STAGES - 1 + ks groups are committed: at most STAGES - 2 pending means group ks (this
      // k step) has landed for this thread; the barrier makes it so for all of them, and also
      // guarantees every warp has finished k step ks - 1, whose stage is refilled next
      cp_async_wait<T::STAGES - 2>();
      __syncthreads();
      if (ks + T::STAGES - 1 < k_steps) load(ks + T::STAGES - 1);
      cp_async_commit();

      const float* sa = smem + static_cast<int>(ks % T::STAGES) * kStageFloats;
      const float* sb = sa + LA::kFloats;
#pragma unroll
      for (int kk = 0; kk < T::BK; kk += 8) {
        // B fragments of the whole warp tile, then one row of A fragments at a time: fewer
        // fragment registers live at once
        unsigned bf[T::kMmaN][2];
#pragma unroll
        for (int j = 0; j < T::kMmaN; ++j) {
          const int n = wn0 + j * 8 + g;
          bf[j][0] = to_tf32(sb[LB::at(n, kk + t)]);
          bf[j][1] = to_tf32(sb[LB::at(n, kk + t + 4)]);
        }
#pragma unroll
        for (int i = 0; i < T::kMmaM; ++i) {
          const int r = wm0 + i * 16 + g;
          const unsigned af[4] = {
              to_tf32(sa[LA::at(r, kk + t)]), to_tf32(sa[LA::at(r + 8, kk + t)]),
              to_tf32(sa[LA::at(r, kk + t + 4)]), to_tf32(sa[LA::at(r + 8, kk + t + 4)])};
#pragma unroll
          for (int j = 0; j < T::kMmaN; ++j) mma_tf32(acc[i][j], af, bf[j]);
        }
      }
    }

    // epilogue: the accumulator pairs (c0, c1) and (c2, c3) are adjacent columns of one row
#pragma unroll
    for (int i = 0; i < T::kMmaM; ++i) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = row0 + wm0 + i * 16 + g + 8 * h;
        if (row >= pr.m) continue;
        float* c_row = c + row * pr.c_row;
#pragma unroll
        for (int j = 0; j < T::kMmaN; ++j) {
          const int64_t col = col0 + wn0 + j * 8 + 2 * t;
          const float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];
          if (pr.c_vec2 && col + 2 <= pr.n) {
            float2* out = reinterpret_cast<float2*>(c_row + col);
            float2 r = make_float2(pr.alpha * v0, pr.alpha * v1);
            if (pr.beta != 0.0f) {
              const float2 old = *out;
              r = make_float2(fmaf(pr.alpha, v0, pr.beta * old.x),
                              fmaf(pr.alpha, v1, pr.beta * old.y));
            }
            *out = r;
          } else {
            if (col < pr.n) {
              float* out = c_row + col * pr.c_col;
              *out = pr.beta == 0.0f ? pr.alpha * v0 : fmaf(pr.alpha, v0, pr.beta * *out);
            }
            if (col + 1 < pr.n) {
              float* out = c_row + (col + 1) * pr.c_col;
              *out = pr.beta == 0.0f ? pr.alpha * v1 : fmaf(pr.alpha, v1, pr.beta * *out);
            }
          }
        }
      }
    }
  }
}

// ---- launchers --------------------------------------------------------------------------------

constexpr int kDefaultSharedLimit = 48 * 1024;  // dynamic shared memory without opting in

template <class T, Major MA, Major MB>
void launch(const Problem& p, cudaStream_t stream, const char* name) {
  constexpr int kSharedBytes =
      T::STAGES *
      (StageLayout<T::BM, T::BK, MA>::kFloats + StageLayout<T::BN, T::BK, MB>::kFloats) *
      static_cast<int>(sizeof(float));
  auto* kernel = &sgemm_tf32_kernel<T, MA, MB>;
  if (kSharedBytes > kDefaultSharedLimit) {
    // the opt-in is per device: once for each device this instantiation runs on
    static std::atomic<uint64_t> opted_in{0};
    int device = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
    if (!(opted_in.load() & bit)) {
      EMBER_CUDA_CHECK(
          cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBytes));
      opted_in.fetch_or(bit);
    }
  }
  const int64_t tiles_m = (p.m + T::BM - 1) / T::BM, tiles_n = (p.n + T::BN - 1) / T::BN;
  const dim3 grid(static_cast<unsigned>(tiles_m * tiles_n), 1,
                  static_cast<unsigned>(p.batch < kMaxGridZ ? p.batch : kMaxGridZ));
  kernel<<<grid, T::kThreads, kSharedBytes, stream>>>(p, tiles_m, tiles_n);
  check(cudaGetLastError(), name);
}

template <class T>
void launch_layouts(const Problem& p, cudaStream_t stream, const char* name) {
  const bool a_k = p.a.major == Major::kK, b_k = p.b.major == Major::kK;
  if (a_k && b_k) launch<T, Major::kK, Major::kK>(p, stream, name);
  if (a_k && !b_k) launch<T, Major::kK, Major::kMN>(p, stream, name);
  if (!a_k && b_k) launch<T, Major::kMN, Major::kK>(p, stream, name);
  if (!a_k && !b_k) launch<T, Major::kMN, Major::kMN>(p, stream, name);
}

}  // namespace

void launch_sgemm_tf32(const Problem& p, Tf32Tile tile, cudaStream_t stream) {
  switch (tile) {
    case Tf32Tile::k128x128x16:  // 4 warps of 64 x 64, 4 stages: 68 to 80 KiB
      launch_layouts<Tf32Config<128, 128, 16, 2, 2, 4>>(p, stream,
                                                        "launching sgemm_tf32_kernel 128x128x16");
      break;
    case Tf32Tile::k64x64x16:  // 4 warps of 32 x 32, 4 stages: 36 to 40 KiB
      launch_layouts<Tf32Config<64, 64, 16, 2, 2, 4>>(p, stream,
                                                      "launching sgemm_tf32_kernel 64x64x16");
      break;
  }
}

}  // namespace ember::cuda::gemm_detail
