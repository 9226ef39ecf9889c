// Fused attention forward in float32 on exact FMA (no TF32): out (batch, L, Ev) and lse (batch, L)
// from q (batch, L, E), k (batch, S, E), v (batch, S, Ev); see attention.h.
//
// One block of 256 threads per (batch item, tile of 64 query rows). Q stays in shared memory;
// tiles of 64 keys stream through, one buffer each for K and V: K[t + 1] loads while P V[t] runs
// and V[t] while Q K[t]^T runs. The threads form a 16 x 16 grid (tx, ty): thread (tx, ty) owns
// the query rows 4 ty .. 4 ty + 3, of each score tile the keys tx + 16 c (c < 4), and of the
// output the column pairs 2 tx + 32 h. A row's 16 threads are one half warp, so the online
// softmax's row max and row sum are 4 shuffles each. The weights P go through shared memory
// from the score layout to the P V layout.
#include "attention/common.cuh"

namespace ember::cuda::attention {
namespace {

constexpr int kBlockM = 64;    // query rows per block
constexpr int kBlockN = 64;    // keys per tile
constexpr int kThreads = 256;  // a 16 x 16 grid
constexpr int kRows = 4;       // query rows per thread: 4 ty + r
constexpr int kKeys = 4;       // keys per thread and tile: tx + 16 c
static_assert(kBlockM == 16 * kRows && kBlockN == 16 * kKeys, "the thread grid covers a tile");
static_assert(kBlockN % 4 == 0, "P V reads P four keys at a time");

// Shared memory, in floats, for head-dimension tile DP.
template <int DP>
struct Layout {
  static_assert(DP % 32 == 0, "whole float2 column pairs per thread");
  // Q, K, V rows: whole float4s, and 4 floats of padding so that consecutive rows start 4 banks
  // apart (the 16 threads reading K rows tx + 16 c, 4 floats each, hit each bank at most twice:
  // the minimum for 256 bytes)
  static constexpr int kLd = DP + 4;
  static constexpr int kLdP = kBlockN + 4;  // P rows: 16-byte aligned float4 reads
  static constexpr int kPairs = DP / 32;    // output column pairs per thread
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + kBlockM * kLd;
  static constexpr size_t kV = kK + kBlockN * kLd;
  static constexpr size_t kP = kV + kBlockN * kLd;
  static constexpr size_t kBytes = (kP + kBlockM * kLdP) * sizeof(float);
};

__device__ __forceinline__ float lane_of(const float4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

template <int DP>
__global__ void __launch_bounds__(kThreads) sdpa_forward_f32_kernel(const ForwardArgs a) {
  using Lay = Layout<DP>;
  constexpr int LD = Lay::kLd, LDP = Lay::kLdP, PAIRS = Lay::kPairs;
  EMBER_DYNAMIC_SHARED_BYTES(smem);
  float* sQ = reinterpret_cast<float*>(smem) + Lay::kQ;
  float* sK = reinterpret_cast<float*>(smem) + Lay::kK;
  float* sV = reinterpret_cast<float*>(smem) + Lay::kV;
  float* sP = reinterpret_cast<float*>(smem) + Lay::kP;

  const Problem& p = a.p;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t q_tiles = ceil_div(p.L, kBlockM);
  const int64_t b = blockIdx.x / q_tiles;
  const int64_t q0 = (q_tiles - 1 - blockIdx.x % q_tiles) * kBlockM;  // longest causal tiles first
  const float* q = rows_of<float>(a.q, p.dims, b);
  const float* k = rows_of<float>(a.k, p.dims, b);
  const float* v = rows_of<float>(a.v, p.dims, b);
  const ItemMask mask(p.mask, p.dims, b);
  const float scale_log2 = p.scale * kLog2e;
  // causal: the keys the tile's last row sees
  const int64_t key_end = p.causal && q0 + kBlockM < p.S ? q0 + kBlockM : p.S;
  const int64_t tiles = ceil_div(key_end, kBlockN);

  load_tile<float, kBlockM, DP, LD, kThreads>(sQ, q + q0 * a.q.row, a.q.row, p.L - q0, p.E,
                                              a.q.aligned);
  load_tile<float, kBlockN, DP, LD, kThreads>(sK, k, a.k.row, p.S, p.E, a.k.aligned);
  cp_async_commit();

  float o[kRows][2 * PAIRS] = {};
  float m[kRows], l[kRows];  // running max (log2 units) and sum of each row
#pragma unroll
  for (int r = 0; r < kRows; ++r) m[r] = -kInf, l[r] = 0.0f;

  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t k0 = t * kBlockN;
    cp_async_wait<0>();
    __syncthreads();  // K[t] (and Q) have landed; every thread is done with V[t-1] and P
    load_tile<float, kBlockN, DP, LD, kThreads>(sV, v + k0 * a.v.row, a.v.row, p.S - k0, p.Ev,
                                                a.v.aligned);
    cp_async_commit();

    // this thread's 4 x 4 scores of Q K[t]^T
    float s[kRows][kKeys] = {};
#pragma unroll
    for (int d = 0; d < DP; d += 4) {
      float4 qv[kRows], kv[kKeys];
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        qv[r] = *reinterpret_cast<const float4*>(sQ + (kRows * ty + r) * LD + d);
#pragma unroll
      for (int c = 0; c < kKeys; ++c)
        kv[c] = *reinterpret_cast<const float4*>(sK + (tx + 16 * c) * LD + d);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < kKeys; ++c) {
          s[r][c] = fmaf(qv[r].x, kv[c].x, s[r][c]);
          s[r][c] = fmaf(qv[r].y, kv[c].y, s[r][c]);
          s[r][c] = fmaf(qv[r].z, kv[c].z, s[r][c]);
          s[r][c] = fmaf(qv[r].w, kv[c].w, s[r][c]);
        }
    }

    // online softmax: new row max, weights exp2(s - max), rescaled running sums and outputs
    const bool unmasked = tile_unmasked(p, q0, k0, kBlockN);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t i = q0 + kRows * ty + r;
      if (unmasked) {
#pragma unroll
        for (int c = 0; c < kKeys; ++c) s[r][c] *= scale_log2;
      } else {
        const RowMask row = row_mask(p, mask, i, k0, kBlockN);
#pragma unroll
        for (int c = 0; c < kKeys; ++c) s[r][c] = row(tx + 16 * c, s[r][c] * scale_log2);
      }
      float mx = fmaxf(fmaxf(s[r][0], s[r][1]), fmaxf(s[r][2], s[r][3]));
#pragma unroll
      for (int off = 8; off > 0; off /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xFFFFFFFFu, mx, off));
      const float m_new = fmaxf(m[r], mx);
      const float base = m_new == -kInf ? 0.0f : m_new;  // nothing seen yet: weights stay 0
      const float correction = exp2f(m[r] - base);
      float sum = 0.0f;
#pragma unroll
      for (int c = 0; c < kKeys; ++c) {
        s[r][c] = exp2f(s[r][c] - base);
        sum += s[r][c];
      }
#pragma unroll
      for (int off = 8; off > 0; off /= 2) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, off);
      l[r] = l[r] * correction + sum;
      m[r] = m_new;
#pragma unroll
      for (int e = 0; e < 2 * PAIRS; ++e) o[r][e] *= correction;
      if (a.dropout.threshold) {
#pragma unroll
        for (int c = 0; c < kKeys; ++c) {
          const int64_t j = k0 + tx + 16 * c;
          if (i < p.L && j < p.S)
            s[r][c] = dropout_keep(a.dropout, static_cast<uint64_t>((b * p.L + i) * p.S + j))
                          ? s[r][c] * a.dropout.keep_scale
                          : 0.0f;
        }
      }
#pragma unroll
      for (int c = 0; c < kKeys; ++c) sP[(kRows * ty + r) * LDP + tx + 16 * c] = s[r][c];
    }

    cp_async_wait<0>();
    __syncthreads();  // V[t] has landed and P is complete; every thread is done with K[t]
    if (t + 1 < tiles) {
      load_tile<float, kBlockN, DP, LD, kThreads>(sK, k + (k0 + kBlockN) * a.k.row, a.k.row,
                                                  p.S - k0 - kBlockN, p.E, a.k.aligned);
      cp_async_commit();
    }

    // O += P V[t]: four keys of P at a time
#pragma unroll 2
    for (int j = 0; j < kBlockN; j += 4) {
      float4 pv[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        pv[r] = *reinterpret_cast<const float4*>(sP + (kRows * ty + r) * LDP + j);
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        float2 vv[PAIRS];
#pragma unroll
        for (int h = 0; h < PAIRS; ++h)
          vv[h] = *reinterpret_cast<const float2*>(sV + (j + jj) * LD + 2 * tx + 32 * h);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float w = lane_of(pv[r], jj);
#pragma unroll
          for (int h = 0; h < PAIRS; ++h) {
            o[r][2 * h] = fmaf(w, vv[h].x, o[r][2 * h]);
            o[r][2 * h + 1] = fmaf(w, vv[h].y, o[r][2 * h + 1]);
          }
        }
      }
    }
  }

  float* out = static_cast<float*>(a.out);
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t i = q0 + kRows * ty + r;
    if (i >= p.L) continue;
    // every key masked out (l == 0): NaN, as PyTorch's math path; o is 0 there
    const bool none = l[r] == 0.0f;
    const float inv = none ? __builtin_nanf("") : 1.0f / l[r];
    float* row = out + (b * p.L + i) * p.Ev;
#pragma unroll
    for (int h = 0; h < PAIRS; ++h) {
      const int col = 2 * tx + 32 * h;
      if (col < p.Ev) row[col] = o[r][2 * h] * inv;
      if (col + 1 < p.Ev) row[col + 1] = o[r][2 * h + 1] * inv;
    }
    if (tx == 0) a.lse[b * p.L + i] = none ? -kInf : m[r] * kLn2 + logf(l[r]);
  }
}

}  // namespace

size_t forward_f32_shared_bytes(int head_dim_tile) {
  return with_head_dim_tile(head_dim_tile, head_dim_tile,
                            [](auto dp) { return Layout<decltype(dp)::value>::kBytes; });
}

void forward_f32(const ForwardArgs& a, cudaStream_t stream) {
  with_head_dim_tile(a.p.E, a.p.Ev, [&](auto dp) {
    constexpr int DP = decltype(dp)::value;
    launch("sdpa_forward_f32_kernel", sdpa_forward_f32_kernel<DP>,
           a.p.batch * ceil_div(a.p.L, kBlockM), kThreads, Layout<DP>::kBytes, stream, a);
  });
}

}  // namespace ember::cuda::attention
