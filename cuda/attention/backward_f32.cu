// Fused attention backward in float32 (exact FMA), FlashAttention-2's algorithm: dq, dk, dv from
// dout, q, k, v, out and the forward's lse (attention.h). The weights are recomputed tile by
// tile as P = exp(scale q.k + mask - lse); with D = rowsum(dout * out) and
// dS = P * (dout v^T - D) * scale:  dV = P^T dout,  dK = dS^T q,  dQ = dS k.
//   sdpa_delta_kernel            D, one warp per query row (delta.cuh).
//   sdpa_backward_kv_f32_kernel  one block of 256 threads per (batch item, 64 keys): K and V stay
//                                in shared memory while tiles of 64 query rows stream through.
//                                Thread (tx, ty) of the 16 x 16 grid computes the scores and dP
//                                of keys 4 ty + r and queries tx + 16 c, and accumulates dV and
//                                dK for keys 4 ty + r, column pairs 2 tx + 32 h, in registers;
//                                P and then dS go through shared memory as [query][key]. Unless
//                                deterministic, it also adds each tile's dS K into dq with
//                                atomics (queries 4 ty + r, column pairs 2 tx + 32 h).
//   sdpa_backward_q_f32_kernel   deterministic: one block per (batch item, 64 query rows) streams
//                                the key tiles, recomputes S, dP and dS, and sums dQ = dS K in
//                                registers: no atomics, so dq is bitwise reproducible, for the
//                                price of computing the scores and dP twice.
// FlashAttention-2 adds dQ with atomics (five tile products per tile pair instead of seven); the
// separate pass is what a caller asks for with deterministic.
#include "attention/common.cuh"
#include "attention/delta.cuh"

namespace ember::cuda::attention {
namespace {

constexpr int kBlockM = 64;    // query rows per tile
constexpr int kBlockN = 64;    // keys per tile
constexpr int kThreads = 256;  // a 16 x 16 grid
constexpr int kPer = 4;        // a thread's rows (4 ty + r) and columns (tx + 16 c) of a tile
static_assert(kBlockM == 16 * kPer && kBlockN == 16 * kPer, "the thread grid covers a tile");

// Shared memory, in floats, of both tile kernels for head-dimension tile DP: K and V tiles, Q and
// dO tiles, the P / dS tile [query][key], and lse (log2 units) and D of the query tile.
template <int DP>
struct Layout {
  static_assert(DP % 32 == 0, "whole float2 column pairs per thread");
  static constexpr int kLd = DP + 4;        // as forward_f32.cu: float4 rows, 4 banks apart
  static constexpr int kLdP = kBlockN + 4;  // float4 rows
  static constexpr int kPairs = DP / 32;
  static constexpr size_t kK = 0;
  static constexpr size_t kV = kK + kBlockN * kLd;
  static constexpr size_t kQ = kV + kBlockN * kLd;
  static constexpr size_t kdO = kQ + kBlockM * kLd;
  static constexpr size_t kPdS = kdO + kBlockM * kLd;
  static constexpr size_t kLse = kPdS + kBlockM * kLdP;
  static constexpr size_t kD = kLse + kBlockM;
  static constexpr size_t kBytes = (kD + kBlockM) * sizeof(float);
};

__device__ __forceinline__ float lane_of(const float4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// acc[r][c] += sum over d < DP of a[(4 ty + r) * LD + d] * b[(tx + 16 c) * LD + d]: the 4 x 4
// products of this thread's rows of a with its rows of b.
template <int DP, int LD>
__device__ __forceinline__ void rows_dot_rows(const float* a, const float* b, int tx, int ty,
                                              float (&acc)[kPer][kPer]) {
#pragma unroll 4
  for (int d = 0; d < DP; d += 4) {
    float4 av[kPer], bv[kPer];
#pragma unroll
    for (int r = 0; r < kPer; ++r)
      av[r] = *reinterpret_cast<const float4*>(a + (kPer * ty + r) * LD + d);
#pragma unroll
    for (int c = 0; c < kPer; ++c)
      bv[c] = *reinterpret_cast<const float4*>(b + (tx + 16 * c) * LD + d);
#pragma unroll
    for (int r = 0; r < kPer; ++r)
#pragma unroll
      for (int c = 0; c < kPer; ++c) {
        acc[r][c] = fmaf(av[r].x, bv[c].x, acc[r][c]);
        acc[r][c] = fmaf(av[r].y, bv[c].y, acc[r][c]);
        acc[r][c] = fmaf(av[r].z, bv[c].z, acc[r][c]);
        acc[r][c] = fmaf(av[r].w, bv[c].w, acc[r][c]);
      }
  }
}

// acc[r][2h + e] += sum over n < N of w[n * LDW + 4 ty + r] * x[n * LD + 2 tx + 32 h + e]: a
// tile product whose left factor is stored transposed (w [n][row]), e.g. dV += P^T dO.
template <int N, int LDW, int LD, int PAIRS>
__device__ __forceinline__ void transposed_product(const float* w, const float* x, int tx, int ty,
                                                   float (&acc)[kPer][2 * PAIRS]) {
#pragma unroll 4
  for (int n = 0; n < N; ++n) {
    const float4 wv = *reinterpret_cast<const float4*>(w + n * LDW + kPer * ty);
    float2 xv[PAIRS];
#pragma unroll
    for (int h = 0; h < PAIRS; ++h)
      xv[h] = *reinterpret_cast<const float2*>(x + n * LD + 2 * tx + 32 * h);
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const float wr = lane_of(wv, r);
#pragma unroll
      for (int h = 0; h < PAIRS; ++h) {
        acc[r][2 * h] = fmaf(wr, xv[h].x, acc[r][2 * h]);
        acc[r][2 * h + 1] = fmaf(wr, xv[h].y, acc[r][2 * h + 1]);
      }
    }
  }
}

// acc[r][2h + e] += sum over n < N of w[(4 ty + r) * LDW + n] * x[n * LD + 2 tx + 32 h + e]: a
// tile product whose left factor is stored as is (w [row][n]), e.g. dQ += dS K.
template <int N, int LDW, int LD, int PAIRS>
__device__ __forceinline__ void product(const float* w, const float* x, int tx, int ty,
                                        float (&acc)[kPer][2 * PAIRS]) {
#pragma unroll 2
  for (int n = 0; n < N; n += 4) {
    float4 wv[kPer];
#pragma unroll
    for (int r = 0; r < kPer; ++r)
      wv[r] = *reinterpret_cast<const float4*>(w + (kPer * ty + r) * LDW + n);
#pragma unroll
    for (int nn = 0; nn < 4; ++nn) {
      float2 xv[PAIRS];
#pragma unroll
      for (int h = 0; h < PAIRS; ++h)
        xv[h] = *reinterpret_cast<const float2*>(x + (n + nn) * LD + 2 * tx + 32 * h);
#pragma unroll
      for (int r = 0; r < kPer; ++r) {
        const float wr = lane_of(wv[r], nn);
#pragma unroll
        for (int h = 0; h < PAIRS; ++h) {
          acc[r][2 * h] = fmaf(wr, xv[h].x, acc[r][2 * h]);
          acc[r][2 * h + 1] = fmaf(wr, xv[h].y, acc[r][2 * h + 1]);
        }
      }
    }
  }
}

// The lse (log2 units; +inf past the last row, which makes its weights 0) and D of the query
// tile at i0 into shared memory (visible after the caller's next __syncthreads).
__device__ __forceinline__ void load_row_stats(const BackwardArgs& a, int64_t b, int64_t i0,
                                               float* s_lse, float* s_d) {
  for (int r = threadIdx.x; r < kBlockM; r += kThreads) {
    const int64_t i = i0 + r;
    s_lse[r] = i < a.p.L ? a.lse[b * a.p.L + i] * kLog2e : kInf;
    s_d[r] = i < a.p.L ? a.delta[b * a.p.L + i] : 0.0f;
  }
}

// rows[(4 ty + r) * stride + 2 tx + 32 h + e] = acc[r][2h + e] for rows < n and columns < cols.
template <int PAIRS>
__device__ __forceinline__ void store_rows(float* rows, int64_t stride, int64_t n, int cols,
                                           int tx, int ty, const float (&acc)[kPer][2 * PAIRS]) {
#pragma unroll
  for (int r = 0; r < kPer; ++r) {
    if (kPer * ty + r >= n) continue;
    float* row = rows + (kPer * ty + r) * stride;
#pragma unroll
    for (int h = 0; h < PAIRS; ++h) {
      const int col = 2 * tx + 32 * h;
      if (col < cols) row[col] = acc[r][2 * h];
      if (col + 1 < cols) row[col + 1] = acc[r][2 * h + 1];
    }
  }
}

template <int DP>
__global__ void __launch_bounds__(kThreads) sdpa_backward_kv_f32_kernel(const BackwardArgs a) {
  using Lay = Layout<DP>;
  constexpr int LD = Lay::kLd, LDP = Lay::kLdP, PAIRS = Lay::kPairs;
  EMBER_DYNAMIC_SHARED_BYTES(smem);
  float* sK = reinterpret_cast<float*>(smem) + Lay::kK;
  float* sV = reinterpret_cast<float*>(smem) + Lay::kV;
  float* sQ = reinterpret_cast<float*>(smem) + Lay::kQ;
  float* sdO = reinterpret_cast<float*>(smem) + Lay::kdO;
  float* sPdS = reinterpret_cast<float*>(smem) + Lay::kPdS;
  float* sLse = reinterpret_cast<float*>(smem) + Lay::kLse;
  float* sD = reinterpret_cast<float*>(smem) + Lay::kD;

  const Problem& p = a.p;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t k_tiles = ceil_div(p.S, kBlockN);
  const int64_t b = blockIdx.x / k_tiles;
  const int64_t k0 = blockIdx.x % k_tiles * kBlockN;  // causal: the first tiles see most queries
  const float* q = rows_of<float>(a.q, p.dims, b);
  const float* dout = rows_of<float>(a.dout, p.dims, b);
  const ItemMask mask(p.mask, p.dims, b);
  const float scale_log2 = p.scale * kLog2e;

  load_tile<float, kBlockN, DP, LD, kThreads>(sK, rows_of<float>(a.k, p.dims, b) + k0 * a.k.row,
                                              a.k.row, p.S - k0, p.E, a.k.aligned);
  load_tile<float, kBlockN, DP, LD, kThreads>(sV, rows_of<float>(a.v, p.dims, b) + k0 * a.v.row,
                                              a.v.row, p.S - k0, p.Ev, a.v.aligned);
  cp_async_commit();

  float dk[kPer][2 * PAIRS] = {}, dv[kPer][2 * PAIRS] = {};
  // causal: the query tiles before k0 see none of these keys
  for (int64_t i0 = p.causal ? k0 / kBlockM * kBlockM : 0; i0 < p.L; i0 += kBlockM) {
    __syncthreads();  // every thread is done with the previous tile's Q, dO, P / dS, lse and D
    load_tile<float, kBlockM, DP, LD, kThreads>(sQ, q + i0 * a.q.row, a.q.row, p.L - i0, p.E,
                                                a.q.aligned);
    load_tile<float, kBlockM, DP, LD, kThreads>(sdO, dout + i0 * a.dout.row, a.dout.row, p.L - i0,
                                                p.Ev, a.dout.aligned);
    cp_async_commit();
    load_row_stats(a, b, i0, sLse, sD);
    cp_async_wait<0>();
    __syncthreads();  // the query tile (and K, V) are in shared memory

    // keys 4 ty + r against queries tx + 16 c: S^T into s, dP^T into ds, then P^T and dS^T
    float s[kPer][kPer] = {}, ds[kPer][kPer] = {};
    rows_dot_rows<DP, LD>(sK, sQ, tx, ty, s);
    rows_dot_rows<DP, LD>(sV, sdO, tx, ty, ds);
    const bool unmasked = tile_unmasked(p, i0, k0, kBlockN);
#pragma unroll
    for (int c = 0; c < kPer; ++c) {
      const int ii = tx + 16 * c;
      const RowMask row = row_mask(p, mask, i0 + ii, k0, kBlockN);
#pragma unroll
      for (int r = 0; r < kPer; ++r) {
        const float x = s[r][c] * scale_log2;
        s[r][c] = exp2f((unmasked ? x : row(kPer * ty + r, x)) - sLse[ii]);
        ds[r][c] = s[r][c] * (ds[r][c] - sD[ii]) * p.scale;
      }
    }

#pragma unroll
    for (int c = 0; c < kPer; ++c)
      *reinterpret_cast<float4*>(sPdS + (tx + 16 * c) * LDP + kPer * ty) =
          float4{s[0][c], s[1][c], s[2][c], s[3][c]};
    __syncthreads();  // P is complete
    transposed_product<kBlockM, LDP, LD, PAIRS>(sPdS, sdO, tx, ty, dv);
    __syncthreads();  // every thread is done with P
#pragma unroll
    for (int c = 0; c < kPer; ++c)
      *reinterpret_cast<float4*>(sPdS + (tx + 16 * c) * LDP + kPer * ty) =
          float4{ds[0][c], ds[1][c], ds[2][c], ds[3][c]};
    __syncthreads();  // dS is complete
    transposed_product<kBlockM, LDP, LD, PAIRS>(sPdS, sQ, tx, ty, dk);

    if (!a.deterministic) {
      float dq[kPer][2 * PAIRS] = {};
      product<kBlockN, LDP, LD, PAIRS>(sPdS, sK, tx, ty, dq);
#pragma unroll
      for (int r = 0; r < kPer; ++r) {
        const int64_t i = i0 + kPer * ty + r;
        if (i >= p.L) continue;
        float* row = a.dq + (b * p.L + i) * p.E;
#pragma unroll
        for (int h = 0; h < PAIRS; ++h) {
          const int col = 2 * tx + 32 * h;
          if (col < p.E) atomicAdd(row + col, dq[r][2 * h]);
          if (col + 1 < p.E) atomicAdd(row + col + 1, dq[r][2 * h + 1]);
        }
      }
    }
  }
  cp_async_wait<0>();  // K and V were never waited for when no query tile sees these keys

  store_rows<PAIRS>(static_cast<float*>(a.dk) + (b * p.S + k0) * p.E, p.E, p.S - k0, p.E, tx, ty,
                    dk);
  store_rows<PAIRS>(static_cast<float*>(a.dv) + (b * p.S + k0) * p.Ev, p.Ev, p.S - k0, p.Ev, tx,
                    ty, dv);
}

template <int DP>
__global__ void __launch_bounds__(kThreads) sdpa_backward_q_f32_kernel(const BackwardArgs a) {
  using Lay = Layout<DP>;
  constexpr int LD = Lay::kLd, LDP = Lay::kLdP, PAIRS = Lay::kPairs;
  EMBER_DYNAMIC_SHARED_BYTES(smem);
  float* sK = reinterpret_cast<float*>(smem) + Lay::kK;
  float* sV = reinterpret_cast<float*>(smem) + Lay::kV;
  float* sQ = reinterpret_cast<float*>(smem) + Lay::kQ;
  float* sdO = reinterpret_cast<float*>(smem) + Lay::kdO;
  float* sdS = reinterpret_cast<float*>(smem) + Lay::kPdS;
  float* sLse = reinterpret_cast<float*>(smem) + Lay::kLse;
  float* sD = reinterpret_cast<float*>(smem) + Lay::kD;

  const Problem& p = a.p;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t q_tiles = ceil_div(p.L, kBlockM);
  const int64_t b = blockIdx.x / q_tiles;
  const int64_t i0 = (q_tiles - 1 - blockIdx.x % q_tiles) * kBlockM;  // longest causal first
  const float* k = rows_of<float>(a.k, p.dims, b);
  const float* v = rows_of<float>(a.v, p.dims, b);
  const ItemMask mask(p.mask, p.dims, b);
  const float scale_log2 = p.scale * kLog2e;
  const int64_t key_end = p.causal && i0 + kBlockM < p.S ? i0 + kBlockM : p.S;

  load_tile<float, kBlockM, DP, LD, kThreads>(sQ, rows_of<float>(a.q, p.dims, b) + i0 * a.q.row,
                                              a.q.row, p.L - i0, p.E, a.q.aligned);
  load_tile<float, kBlockM, DP, LD, kThreads>(
      sdO, rows_of<float>(a.dout, p.dims, b) + i0 * a.dout.row, a.dout.row, p.L - i0, p.Ev,
      a.dout.aligned);
  cp_async_commit();
  load_row_stats(a, b, i0, sLse, sD);

  float dq[kPer][2 * PAIRS] = {};
  for (int64_t k0 = 0; k0 < key_end; k0 += kBlockN) {
    __syncthreads();  // every thread is done with the previous K, V and dS
    load_tile<float, kBlockN, DP, LD, kThreads>(sK, k + k0 * a.k.row, a.k.row, p.S - k0, p.E,
                                                a.k.aligned);
    load_tile<float, kBlockN, DP, LD, kThreads>(sV, v + k0 * a.v.row, a.v.row, p.S - k0, p.Ev,
                                                a.v.aligned);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();  // K, V (and the query tile) are in shared memory

    // queries 4 ty + r against keys tx + 16 c: S into s, dP into ds, then dS
    float s[kPer][kPer] = {}, ds[kPer][kPer] = {};
    rows_dot_rows<DP, LD>(sQ, sK, tx, ty, s);
    rows_dot_rows<DP, LD>(sdO, sV, tx, ty, ds);
    const bool unmasked = tile_unmasked(p, i0, k0, kBlockN);
#pragma unroll
    for (int r = 0; r < kPer; ++r) {
      const int ii = kPer * ty + r;
      const RowMask row = row_mask(p, mask, i0 + ii, k0, kBlockN);
#pragma unroll
      for (int c = 0; c < kPer; ++c) {
        const float x = s[r][c] * scale_log2;
        const float w = exp2f((unmasked ? x : row(tx + 16 * c, x)) - sLse[ii]);
        sdS[ii * LDP + tx + 16 * c] = w * (ds[r][c] - sD[ii]) * p.scale;
      }
    }
    __syncthreads();  // dS is complete
    product<kBlockN, LDP, LD, PAIRS>(sdS, sK, tx, ty, dq);
  }
  cp_async_wait<0>();

  store_rows<PAIRS>(a.dq + (b * p.L + i0) * p.E, p.E, p.L - i0, p.E, tx, ty, dq);
}

}  // namespace

size_t backward_f32_shared_bytes(int head_dim_tile) {
  return with_head_dim_tile(head_dim_tile, head_dim_tile,
                            [](auto dp) { return Layout<decltype(dp)::value>::kBytes; });
}

void backward_f32(const BackwardArgs& a, cudaStream_t stream) {
  const Problem& p = a.p;
  launch_delta<float>(a, stream);
  with_head_dim_tile(p.E, p.Ev, [&](auto dp) {
    constexpr int DP = decltype(dp)::value;
    constexpr size_t bytes = Layout<DP>::kBytes;
    if (!a.deterministic)
      zero_async(a.dq, static_cast<size_t>(p.batch * p.L * p.E) * sizeof(float), stream);
    launch("sdpa_backward_kv_f32_kernel", sdpa_backward_kv_f32_kernel<DP>,
           p.batch * ceil_div(p.S, kBlockN), kThreads, bytes, stream, a);
    if (a.deterministic)
      launch("sdpa_backward_q_f32_kernel", sdpa_backward_q_f32_kernel<DP>,
             p.batch * ceil_div(p.L, kBlockM), kThreads, bytes, stream, a);
  });
}

}  // namespace ember::cuda::attention
