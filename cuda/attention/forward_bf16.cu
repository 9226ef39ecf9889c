// Fused attention forward in bf16 on tensor cores: out (batch, L, Ev) bf16 and lse (batch, L)
// float32 from bf16 q (batch, L, E), k (batch, S, E), v (batch, S, Ev); see attention.h. Products
// accumulate in fp32 (mma.sync m16n8k16), the softmax runs in fp32, and the weights are rounded
// to bf16 for the P V product (as FlashAttention-2).
//
// One block of 8 warps per (batch item, tile of 128 query rows); warp w owns the rows
// 16 w .. 16 w + 15. Tiles of 64 keys stream through shared memory, one buffer each for K and V
// (K[t + 1] loads while P V[t] runs, V[t] while Q K[t]^T runs). Fragment layouts (ptx.cuh), with
// g = lane / 4 and tq = lane % 4:
//   S = Q K^T   A = 16 query rows x 16 dims of Q (ldmatrix), B = K[t] rows as columns: K is stored
//               [key][dim], which is B^T row-major, i.e. the "col" B that ldmatrix (no .trans)
//               reads; s[nb] holds the 16 x 8 scores of keys 8 nb .. 8 nb + 7: s[nb][0..1] row g,
//               keys 8 nb + 2 tq + 0..1, s[nb][2..3] the same keys for row g + 8.
//   O += P V    A = P of keys 16 kk .. 16 kk + 15: the accumulators s[2 kk] and s[2 kk + 1] are
//               exactly its a[0], a[1] and a[2], a[3] once packed to bf16 (no data movement);
//               B = V[t] rows 16 kk .. as k, read with ldmatrix.trans from [key][dim];
//               o[dn] holds output columns 8 dn .. 8 dn + 7 like s.
// Each row lives in the 4 lanes of a quad: its max and sum are 2 shuffles.
#include "attention/common.cuh"

namespace ember::cuda::attention {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kBlockM = 16 * kWarps;  // query rows per block: 16 per warp
constexpr int kBlockN = 64;           // keys per tile
constexpr int kScoreBlocks = kBlockN / 8;
static_assert(kBlockN % 16 == 0, "P V takes keys 16 at a time");

// Shared memory, in bf16 elements, for head-dimension tile DP.
template <int DP>
struct Layout {
  static_assert(DP % 16 == 0, "whole mma k-steps and pairs of 8-column output blocks");
  // rows of whole 16-byte chunks, 16 bytes of padding: the 8 rows an ldmatrix matrix reads start
  // 16 bytes apart modulo 128, so they fall in 8 distinct groups of 4 banks
  static constexpr int kLd = DP + 8;
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + kBlockM * kLd;
  static constexpr size_t kV = kK + kBlockN * kLd;
  static constexpr size_t kBytes = (kV + kBlockN * kLd) * sizeof(uint16_t);
};

template <int DP>
__global__ void __launch_bounds__(kThreads, DP <= 96 ? 2 : 1)
    sdpa_forward_bf16_kernel(const ForwardArgs a) {
  using Lay = Layout<DP>;
  constexpr int LD = Lay::kLd;
  constexpr int kSteps = DP / 16;       // k-steps of Q K^T
  constexpr int kOutBlocks = DP / 8;    // 8-column blocks of O
  EMBER_DYNAMIC_SHARED_BYTES(smem);
  uint16_t* sQ = reinterpret_cast<uint16_t*>(smem) + Lay::kQ;
  uint16_t* sK = reinterpret_cast<uint16_t*>(smem) + Lay::kK;
  uint16_t* sV = reinterpret_cast<uint16_t*>(smem) + Lay::kV;

  const Problem& p = a.p;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int64_t q_tiles = ceil_div(p.L, kBlockM);
  const int64_t b = blockIdx.x / q_tiles;
  const int64_t q0 = (q_tiles - 1 - blockIdx.x % q_tiles) * kBlockM;  // longest causal tiles first
  const uint16_t* q = rows_of<uint16_t>(a.q, p.dims, b);
  const uint16_t* k = rows_of<uint16_t>(a.k, p.dims, b);
  const uint16_t* v = rows_of<uint16_t>(a.v, p.dims, b);
  const ItemMask mask(p.mask, p.dims, b);
  const float scale_log2 = p.scale * kLog2e;
  const int64_t key_end = p.causal && q0 + kBlockM < p.S ? q0 + kBlockM : p.S;
  const int64_t tiles = ceil_div(key_end, kBlockN);

  // This lane's ldmatrix row address: matrix lane / 8, row lane % 8 of it.
  //   Q (A) and V (B, .trans): matrices (rows 0-7, cols 0-7), (rows 8-15, cols 0-7),
  //                            (rows 0-7, cols 8-15), (rows 8-15, cols 8-15)
  //   K (B of two n-blocks):   (keys 0-7, dims 0-7), (keys 0-7, dims 8-15),
  //                            (keys 8-15, dims 0-7), (keys 8-15, dims 8-15)
  const int a_row = lane % 8 + 8 * (lane / 8 % 2), a_col = 8 * (lane / 16);
  const int b_row = lane % 8 + 8 * (lane / 16), b_col = 8 * (lane / 8 % 2);
  const uint16_t* q_frag = sQ + (16 * warp + a_row) * LD + a_col;
  const uint16_t* k_frag = sK + b_row * LD + b_col;
  const uint16_t* v_frag = sV + a_row * LD + a_col;

  load_tile<uint16_t, kBlockM, DP, LD, kThreads>(sQ, q + q0 * a.q.row, a.q.row, p.L - q0, p.E,
                                                 a.q.aligned);
  load_tile<uint16_t, kBlockN, DP, LD, kThreads>(sK, k, a.k.row, p.S, p.E, a.k.aligned);
  cp_async_commit();

  float o[kOutBlocks][4] = {};
  float m[2] = {-kInf, -kInf}, l[2] = {0.0f, 0.0f};  // rows g and g + 8: max (log2 units), sum

  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t k0 = t * kBlockN;
    cp_async_wait<0>();
    __syncthreads();  // K[t] (and Q) have landed; every thread is done with V[t-1]
    load_tile<uint16_t, kBlockN, DP, LD, kThreads>(sV, v + k0 * a.v.row, a.v.row, p.S - k0, p.Ev,
                                                   a.v.aligned);
    cp_async_commit();

    float s[kScoreBlocks][4] = {};
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      uint32_t qa[4];
      ldmatrix_x4(qa, q_frag + 16 * ks);
#pragma unroll
      for (int nb = 0; nb < kScoreBlocks; nb += 2) {
        uint32_t kb[4];
        ldmatrix_x4(kb, k_frag + nb * 8 * LD + 16 * ks);
        const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
        mma_bf16_16816(s[nb], qa, b0);
        mma_bf16_16816(s[nb + 1], qa, b1);
      }
    }

    // online softmax of rows g (h = 0) and g + 8 (h = 1)
    const bool unmasked = tile_unmasked(p, q0 + 16 * warp, k0, kBlockN);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t i = q0 + 16 * warp + g + 8 * h;
      if (unmasked) {
#pragma unroll
        for (int nb = 0; nb < kScoreBlocks; ++nb)
#pragma unroll
          for (int e = 0; e < 2; ++e) s[nb][2 * h + e] *= scale_log2;
      } else {
        const RowMask row = row_mask(p, mask, i, k0, kBlockN);
#pragma unroll
        for (int nb = 0; nb < kScoreBlocks; ++nb)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            s[nb][2 * h + e] = row(8 * nb + 2 * tq + e, s[nb][2 * h + e] * scale_log2);
      }
      float mx = -kInf;
#pragma unroll
      for (int nb = 0; nb < kScoreBlocks; ++nb)
        mx = fmaxf(mx, fmaxf(s[nb][2 * h], s[nb][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      const float base = m_new == -kInf ? 0.0f : m_new;  // nothing seen yet: weights stay 0
      const float correction = exp2f(m[h] - base);
      float sum = 0.0f;
#pragma unroll
      for (int nb = 0; nb < kScoreBlocks; ++nb)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s[nb][2 * h + e];
          x = exp2f(x - base);
          sum += x;
        }
      sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);
      sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 2);
      l[h] = l[h] * correction + sum;
      m[h] = m_new;
#pragma unroll
      for (int dn = 0; dn < kOutBlocks; ++dn) {
        o[dn][2 * h] *= correction;
        o[dn][2 * h + 1] *= correction;
      }
      if (a.dropout.threshold) {
#pragma unroll
        for (int nb = 0; nb < kScoreBlocks; ++nb)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t j = k0 + 8 * nb + 2 * tq + e;
            float& x = s[nb][2 * h + e];
            if (i < p.L && j < p.S)
              x = dropout_keep(a.dropout, static_cast<uint64_t>((b * p.L + i) * p.S + j))
                      ? x * a.dropout.keep_scale
                      : 0.0f;
          }
      }
    }

    cp_async_wait<0>();
    __syncthreads();  // V[t] has landed; every thread is done with K[t]
    if (t + 1 < tiles) {
      load_tile<uint16_t, kBlockN, DP, LD, kThreads>(sK, k + (k0 + kBlockN) * a.k.row, a.k.row,
                                                     p.S - k0 - kBlockN, p.E, a.k.aligned);
      cp_async_commit();
    }

    // O += P V[t], 16 keys per k-step
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint32_t pa[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]),
                              pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                              pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dn = 0; dn < kOutBlocks; dn += 2) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, v_frag + 16 * kk * LD + 8 * dn);
        const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
        mma_bf16_16816(o[dn], pa, b0);
        mma_bf16_16816(o[dn + 1], pa, b1);
      }
    }
  }

  uint16_t* out = static_cast<uint16_t*>(a.out);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = q0 + 16 * warp + g + 8 * h;
    if (i >= p.L) continue;
    // every key masked out (l == 0): NaN, as PyTorch's math path; o is 0 there
    const bool none = l[h] == 0.0f;
    const float inv = none ? __builtin_nanf("") : 1.0f / l[h];
    uint16_t* row = out + (b * p.L + i) * p.Ev;
#pragma unroll
    for (int dn = 0; dn < kOutBlocks; ++dn) {
      const int col = 8 * dn + 2 * tq;
      if (col < p.Ev) row[col] = float_to_bf16(o[dn][2 * h] * inv);
      if (col + 1 < p.Ev) row[col + 1] = float_to_bf16(o[dn][2 * h + 1] * inv);
    }
    if (tq == 0) a.lse[b * p.L + i] = none ? -kInf : m[h] * kLn2 + logf(l[h]);
  }
}

}  // namespace

size_t forward_bf16_shared_bytes(int head_dim_tile) {
  return with_head_dim_tile(head_dim_tile, head_dim_tile,
                            [](auto dp) { return Layout<decltype(dp)::value>::kBytes; });
}

void forward_bf16(const ForwardArgs& a, cudaStream_t stream) {
  with_head_dim_tile(a.p.E, a.p.Ev, [&](auto dp) {
    constexpr int DP = decltype(dp)::value;
    launch("sdpa_forward_bf16_kernel", sdpa_forward_bf16_kernel<DP>,
           a.p.batch * ceil_div(a.p.L, kBlockM), kThreads, Layout<DP>::kBytes, stream, a);
  });
}

}  // namespace ember::cuda::attention
