// Fused attention backward in bf16 on tensor cores (mma.sync m16n8k16, fp32 accumulation),
// FlashAttention-2's algorithm: dk, dv (bf16) and dq's float32 accumulator from bf16 dout, q, k,
// v, out and the forward's lse (attention.h; the algebra is backward_f32.cu's).
//   sdpa_delta_kernel<bf16>       D = rowsum(dout * out) (delta.cuh).
//   sdpa_backward_kv_bf16_kernel  one block of 4 warps per (batch item, 64 keys): warp w owns the
//                                 keys 16 w .. 16 w + 15 and accumulates their dK and dV in
//                                 registers while tiles of 64 query rows stream through. It
//                                 computes S^T = K Q^T and dP^T = V dO^T with its keys as the
//                                 mma's rows, so that P^T and dS^T leave the accumulators already
//                                 as the A fragments of dV += P^T dO and dK += dS^T Q (the C
//                                 layout of two adjacent 8-column blocks is the A layout of one
//                                 16-deep k-step, as in forward_bf16.cu). dS^T then goes to
//                                 shared memory as [key][query], and warp w adds dQ = dS K of the
//                                 tile's queries 16 w .. 16 w + 15 into the float32 accumulator
//                                 with atomics, 32 columns at a time.
// Fragment addressing (ldmatrix lane patterns a_* and b_*) as in forward_bf16.cu.
#include "attention/common.cuh"
#include "attention/delta.cuh"

namespace ember::cuda::attention {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kBlockN = 16 * kWarps;  // keys per block: 16 per warp
constexpr int kBlockM = 64;           // query rows per tile
constexpr int kQueryBlocks = kBlockM / 8;
constexpr int kDqColumns = 32;  // dQ columns per pass: 16 accumulators per thread
static_assert(kBlockM == 16 * kWarps, "dQ: each warp takes 16 query rows of a tile");

// Shared memory for head-dimension tile DP: K, V (the block's keys), Q, dO (the query tile) and
// dS^T in bf16 elements, then lse (log2 units) and D of the query tile in floats.
template <int DP>
struct Layout {
  static_assert(DP % kDqColumns == 0, "whole dQ passes");
  static constexpr int kLd = DP + 8;        // as forward_bf16.cu: ldmatrix rows in distinct banks
  static constexpr int kLdS = kBlockM + 8;  // dS^T [key][query], likewise
  static constexpr size_t kK = 0;
  static constexpr size_t kV = kK + kBlockN * kLd;
  static constexpr size_t kQ = kV + kBlockN * kLd;
  static constexpr size_t kdO = kQ + kBlockM * kLd;
  static constexpr size_t kdS = kdO + kBlockM * kLd;
  static constexpr size_t kStatsByte = (kdS + kBlockN * kLdS) * sizeof(uint16_t);
  static constexpr size_t kBytes = kStatsByte + 2 * kBlockM * sizeof(float);
  static_assert(kStatsByte % 16 == 0, "float statistics after whole 16-byte rows");
};

template <int DP>
__global__ void __launch_bounds__(kThreads) sdpa_backward_kv_bf16_kernel(const BackwardArgs a) {
  using Lay = Layout<DP>;
  constexpr int LD = Lay::kLd, LDS = Lay::kLdS;
  constexpr int kSteps = DP / 16;     // k-steps over the head dimension
  constexpr int kOutBlocks = DP / 8;  // 8-column blocks of dK and dV
  EMBER_DYNAMIC_SHARED_BYTES(smem);
  uint16_t* sK = reinterpret_cast<uint16_t*>(smem) + Lay::kK;
  uint16_t* sV = reinterpret_cast<uint16_t*>(smem) + Lay::kV;
  uint16_t* sQ = reinterpret_cast<uint16_t*>(smem) + Lay::kQ;
  uint16_t* sdO = reinterpret_cast<uint16_t*>(smem) + Lay::kdO;
  uint16_t* sdS = reinterpret_cast<uint16_t*>(smem) + Lay::kdS;
  float* sLse = reinterpret_cast<float*>(smem + Lay::kStatsByte);
  float* sD = sLse + kBlockM;

  const Problem& p = a.p;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, tq = lane % 4;
  const int64_t k_tiles = ceil_div(p.S, kBlockN);
  const int64_t b = blockIdx.x / k_tiles;
  const int64_t k0 = blockIdx.x % k_tiles * kBlockN;  // causal: the first tiles see most queries
  const uint16_t* q = rows_of<uint16_t>(a.q, p.dims, b);
  const uint16_t* dout = rows_of<uint16_t>(a.dout, p.dims, b);
  const ItemMask mask(p.mask, p.dims, b);
  const float scale_log2 = p.scale * kLog2e;

  const int a_row = lane % 8 + 8 * (lane / 8 % 2), a_col = 8 * (lane / 16);
  const int b_row = lane % 8 + 8 * (lane / 16), b_col = 8 * (lane / 8 % 2);
  const uint16_t* k_rows = sK + (16 * warp + a_row) * LD + a_col;  // A of S^T: this warp's keys
  const uint16_t* v_rows = sV + (16 * warp + a_row) * LD + a_col;  // A of dP^T
  const uint16_t* q_cols = sQ + b_row * LD + b_col;                // B of S^T: queries
  const uint16_t* do_cols = sdO + b_row * LD + b_col;              // B of dP^T
  const uint16_t* q_k = sQ + a_row * LD + a_col;    // B of dK (.trans): queries as k
  const uint16_t* do_k = sdO + a_row * LD + a_col;  // B of dV (.trans)
  const uint16_t* k_k = sK + a_row * LD + a_col;    // B of dQ (.trans): keys as k
  // A of dQ (.trans): dS rows 16 w .. 16 w + 15 from dS^T [key][query]
  const uint16_t* ds_rows = sdS + b_row * LDS + 16 * warp + b_col;

  const uint16_t* k = rows_of<uint16_t>(a.k, p.dims, b) + k0 * a.k.row;
  const uint16_t* v = rows_of<uint16_t>(a.v, p.dims, b) + k0 * a.v.row;
  load_tile<uint16_t, kBlockN, DP, LD, kThreads>(sK, k, a.k.row, p.S - k0, p.E, a.k.aligned);
  load_tile<uint16_t, kBlockN, DP, LD, kThreads>(sV, v, a.v.row, p.S - k0, p.Ev, a.v.aligned);
  cp_async_commit();

  float dk[kOutBlocks][4] = {}, dv[kOutBlocks][4] = {};
  // causal: the query tiles before k0 see none of these keys
  for (int64_t i0 = p.causal ? k0 / kBlockM * kBlockM : 0; i0 < p.L; i0 += kBlockM) {
    __syncthreads();  // every thread is done with the previous tile's Q, dO, dS^T, lse and D
    load_tile<uint16_t, kBlockM, DP, LD, kThreads>(sQ, q + i0 * a.q.row, a.q.row, p.L - i0, p.E,
                                                   a.q.aligned);
    load_tile<uint16_t, kBlockM, DP, LD, kThreads>(sdO, dout + i0 * a.dout.row, a.dout.row,
                                                   p.L - i0, p.Ev, a.dout.aligned);
    cp_async_commit();
    for (int r = threadIdx.x; r < kBlockM; r += kThreads) {
      const int64_t i = i0 + r;  // +inf past the last row: its weights are 0
      sLse[r] = i < p.L ? a.lse[b * p.L + i] * kLog2e : kInf;
      sD[r] = i < p.L ? a.delta[b * p.L + i] : 0.0f;
    }
    cp_async_wait<0>();
    __syncthreads();  // the query tile (and K, V) are in shared memory

    // S^T and dP^T of this warp's 16 keys against the tile's 64 queries: s[nb] holds queries
    // 8 nb + 2 tq + (e % 2) of key g (e < 2) and g + 8 (e >= 2)
    float s[kQueryBlocks][4] = {}, dp[kQueryBlocks][4] = {};
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks) {
      uint32_t ka[4], va[4];
      ldmatrix_x4(ka, k_rows + 16 * ks);
      ldmatrix_x4(va, v_rows + 16 * ks);
#pragma unroll
      for (int nb = 0; nb < kQueryBlocks; nb += 2) {
        uint32_t qb[4], gb[4];
        ldmatrix_x4(qb, q_cols + nb * 8 * LD + 16 * ks);
        ldmatrix_x4(gb, do_cols + nb * 8 * LD + 16 * ks);
        const uint32_t q0b[2] = {qb[0], qb[1]}, q1b[2] = {qb[2], qb[3]};
        const uint32_t g0b[2] = {gb[0], gb[1]}, g1b[2] = {gb[2], gb[3]};
        mma_bf16_16816(s[nb], ka, q0b);
        mma_bf16_16816(s[nb + 1], ka, q1b);
        mma_bf16_16816(dp[nb], va, g0b);
        mma_bf16_16816(dp[nb + 1], va, g1b);
      }
    }

    // P^T = exp2(S^T - lse) and dS^T = P^T (dP^T - D) scale, in place
    const bool unmasked = tile_unmasked(p, i0, k0, kBlockN);
#pragma unroll
    for (int nb = 0; nb < kQueryBlocks; ++nb)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int il = 8 * nb + 2 * tq + e;
        const RowMask row = unmasked ? RowMask{kBlockN, MaskKind::none, nullptr, 0}
                                     : row_mask(p, mask, i0 + il, k0, kBlockN);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const float x = row(16 * warp + g + 8 * h, s[nb][2 * h + e] * scale_log2);
          const float w = exp2f(x - sLse[il]);
          s[nb][2 * h + e] = w;
          dp[nb][2 * h + e] = w * (dp[nb][2 * h + e] - sD[il]) * p.scale;
        }
      }

    // dV += P^T dO and dK += dS^T Q, the tile's queries as k
#pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      const uint32_t pa[4] = {pack_bf16x2(s[2 * kk][0], s[2 * kk][1]),
                              pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                              pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      const uint32_t da[4] = {pack_bf16x2(dp[2 * kk][0], dp[2 * kk][1]),
                              pack_bf16x2(dp[2 * kk][2], dp[2 * kk][3]),
                              pack_bf16x2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                              pack_bf16x2(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int dn = 0; dn < kOutBlocks; dn += 2) {
        uint32_t gb[4], qb[4];
        ldmatrix_x4_trans(gb, do_k + 16 * kk * LD + 8 * dn);
        ldmatrix_x4_trans(qb, q_k + 16 * kk * LD + 8 * dn);
        const uint32_t g0b[2] = {gb[0], gb[1]}, g1b[2] = {gb[2], gb[3]};
        const uint32_t q0b[2] = {qb[0], qb[1]}, q1b[2] = {qb[2], qb[3]};
        mma_bf16_16816(dv[dn], pa, g0b);
        mma_bf16_16816(dv[dn + 1], pa, g1b);
        mma_bf16_16816(dk[dn], da, q0b);
        mma_bf16_16816(dk[dn + 1], da, q1b);
      }
    }

    // dS^T into shared memory, [key][query]
#pragma unroll
    for (int nb = 0; nb < kQueryBlocks; ++nb)
#pragma unroll
      for (int h = 0; h < 2; ++h)
        *reinterpret_cast<uint32_t*>(sdS + (16 * warp + g + 8 * h) * LDS + 8 * nb + 2 * tq) =
            pack_bf16x2(dp[nb][2 * h], dp[nb][2 * h + 1]);
    __syncthreads();  // dS^T is complete

    // dQ of queries i0 + 16 w .. i0 + 16 w + 15, kDqColumns at a time, added into the accumulator
    uint32_t dsa[kBlockN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) ldmatrix_x4_trans(dsa[kk], ds_rows + 16 * kk * LDS);
#pragma unroll 1
    for (int c0 = 0; c0 < DP; c0 += kDqColumns) {
      float acc[kDqColumns / 8][4] = {};
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk)
#pragma unroll
        for (int dn = 0; dn < kDqColumns / 8; dn += 2) {
          uint32_t kb[4];
          ldmatrix_x4_trans(kb, k_k + 16 * kk * LD + c0 + 8 * dn);
          const uint32_t k0b[2] = {kb[0], kb[1]}, k1b[2] = {kb[2], kb[3]};
          mma_bf16_16816(acc[dn], dsa[kk], k0b);
          mma_bf16_16816(acc[dn + 1], dsa[kk], k1b);
        }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t i = i0 + 16 * warp + g + 8 * h;
        if (i >= p.L) continue;
        float* row = a.dq + (b * p.L + i) * p.E;
#pragma unroll
        for (int dn = 0; dn < kDqColumns / 8; ++dn) {
          const int col = c0 + 8 * dn + 2 * tq;
          if (col < p.E) atomicAdd(row + col, acc[dn][2 * h]);
          if (col + 1 < p.E) atomicAdd(row + col + 1, acc[dn][2 * h + 1]);
        }
      }
    }
  }
  cp_async_wait<0>();  // K and V were never waited for when no query tile sees these keys

  uint16_t* dk_out = static_cast<uint16_t*>(a.dk);
  uint16_t* dv_out = static_cast<uint16_t*>(a.dv);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t j = k0 + 16 * warp + g + 8 * h;
    if (j >= p.S) continue;
#pragma unroll
    for (int dn = 0; dn < kOutBlocks; ++dn) {
      const int col = 8 * dn + 2 * tq;
      uint16_t* dk_row = dk_out + (b * p.S + j) * p.E;
      uint16_t* dv_row = dv_out + (b * p.S + j) * p.Ev;
      if (col < p.E) dk_row[col] = float_to_bf16(dk[dn][2 * h]);
      if (col + 1 < p.E) dk_row[col + 1] = float_to_bf16(dk[dn][2 * h + 1]);
      if (col < p.Ev) dv_row[col] = float_to_bf16(dv[dn][2 * h]);
      if (col + 1 < p.Ev) dv_row[col + 1] = float_to_bf16(dv[dn][2 * h + 1]);
    }
  }
}

}  // namespace

size_t backward_bf16_shared_bytes(int head_dim_tile) {
  return with_head_dim_tile(head_dim_tile, head_dim_tile,
                            [](auto dp) { return Layout<decltype(dp)::value>::kBytes; });
}

void backward_bf16(const BackwardArgs& a, cudaStream_t stream) {
  const Problem& p = a.p;
  if (a.deterministic)
    throw std::invalid_argument(
        "scaled_dot_product_attention_backward: the bf16 kernels add dq with atomics only");
  launch_delta<uint16_t>(a, stream);
  zero_async(a.dq, static_cast<size_t>(p.batch * p.L * p.E) * sizeof(float), stream);
  with_head_dim_tile(p.E, p.Ev, [&](auto dp) {
    constexpr int DP = decltype(dp)::value;
    launch("sdpa_backward_kv_bf16_kernel", sdpa_backward_kv_bf16_kernel<DP>,
           p.batch * ceil_div(p.S, kBlockN), kThreads, Layout<DP>::kBytes, stream, a);
  });
}

}  // namespace ember::cuda::attention
