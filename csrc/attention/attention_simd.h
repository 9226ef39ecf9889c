// The attention kernels of attention.h, written once over a SIMD vector type V (common/
// simd_avx2.h, common/simd_avx512.h, or the one-lane type of attention_generic.cpp) and
// instantiated by each ISA's file with that ISA's flags.
//
// Everything is in an anonymous namespace and no standard-library template is used, so each ISA
// file gets a private copy that the linker cannot merge into another ISA's path.
#pragma once
#include <cstdint>

#include "attention/attention.h"
#include "common/simd_math.h"
#include "gemm/ukernel_simd.h"  // Fixed<N>: compile-time strides

namespace {

using ember::attention::BackwardArgs;
using ember::attention::ForwardArgs;
using ember::attention::Mask;
using ember::attention::MaskKind;
using ember::attention::Problem;
using ember::attention::View;

constexpr float kNegInf = -__builtin_inff();

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

inline void fill(float* p, int64_t n, float value) {
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

// Consecutive 64-byte aligned slices of one per-thread scratch buffer, as offsets in floats.
struct Carver {
  int64_t used = 0;
  int64_t take(int64_t n) {
    const int64_t at = used;
    used += round_up(n, 16);
    return at;
  }
};

// ---- register tile ------------------------------------------------------------------------

enum class Init { zero, load, row_scaled };

// C = init + A @ B for one register tile of MR rows x NV vectors of V::width columns:
//   A(i, p) = a[i * rs_a + p * cs_a], B(p, :) = b + p * rs_b, C(i, :) = c + i * rs_c.
// init is zero, C itself (accumulate), or C with row i scaled by row_scale[i] (the online
// softmax's correction of the output accumulator, applied for free as the tile is loaded).
template <class V, int MR, int NV, Init init, class RowStride, class ColStride>
inline __attribute__((always_inline)) void tile_mm(int64_t k, const float* a, RowStride rs_a,
                                                   ColStride cs_a, const float* b, int64_t rs_b,
                                                   float* c, int64_t rs_c, const float* row_scale) {
  using Reg = typename V::Reg;
  Reg acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    Reg scale = V::zero();
    if constexpr (init == Init::row_scaled) scale = V::set1(row_scale[i]);
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      if constexpr (init == Init::zero)
        acc[i][j] = V::zero();
      else if constexpr (init == Init::load)
        acc[i][j] = V::load(c + i * rs_c + j * V::width);
      else
        acc[i][j] = V::mul(scale, V::load(c + i * rs_c + j * V::width));
    }
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    Reg bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * V::width);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const Reg av = V::broadcast(a + i * static_cast<int64_t>(rs_a));
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
    }
    a += static_cast<int64_t>(cs_a);
    b += rs_b;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) V::store(c + i * rs_c + j * V::width, acc[i][j]);
}

// The same over ncols columns (a multiple of NR = NV * V::width): one row panel of a tile
// product. B's column tile t starts at b + t * b_next: b_next = NR for a row-major B, k * NR for
// B packed in micro-panels.
template <class V, int MR, int NV, Init init, class RowStride, class ColStride>
inline void panel_mm(int64_t k, int64_t ncols, const float* a, RowStride rs_a, ColStride cs_a,
                     const float* b, int64_t rs_b, int64_t b_next, float* c, int64_t rs_c,
                     const float* row_scale = nullptr) {
  constexpr int64_t NR = NV * V::width;
  for (int64_t c0 = 0; c0 < ncols; c0 += NR, b += b_next)
    tile_mm<V, MR, NV, init>(k, a, rs_a, cs_a, b, rs_b, c + c0, rs_c, row_scale);
}

// ---- packing ------------------------------------------------------------------------------

// dst[i * ld + e] = scale * x(r0 + i, e) for i < n, e < width; columns width..ld are zeroed.
inline void pack_rows(const View& x, int64_t b, int64_t r0, int64_t n, int64_t width, int64_t ld,
                      float scale, float* dst) {
  const float* src = x.data + x.offsets[b];
  for (int64_t i = 0; i < n; ++i) {
    const float* row = src + (r0 + i) * x.rs;
    for (int64_t e = 0; e < width; ++e) dst[i * ld + e] = scale * row[e * x.cs];
    fill(dst + i * ld + width, ld - width, 0.0f);
  }
}

// Rows r0 .. r0 + n of x transposed into B micro-panels of NR columns (K^T of a key block):
// dst[(j / NR) * width * NR + e * NR + j % NR] = x(r0 + j, e); columns n .. round_up(n, NR)
// are zeroed. Each panel is contiguous, so the tile product streams it.
template <int64_t NR>
inline void pack_transposed_panels(const View& x, int64_t b, int64_t r0, int64_t n, int64_t width,
                                   float* dst) {
  const float* src = x.data + x.offsets[b];
  for (int64_t j = 0; j < round_up(n, NR); ++j) {
    float* col = dst + (j / NR) * width * NR + j % NR;
    if (j >= n) {
      for (int64_t e = 0; e < width; ++e) col[e * NR] = 0.0f;
      continue;
    }
    const float* row = src + (r0 + j) * x.rs;
    for (int64_t e = 0; e < width; ++e) col[e * NR] = row[e * x.cs];
  }
}

// Rows r0 .. r0 + n of x in B micro-panels of NR columns, each `depth` rows deep (V of a key
// block): dst[(e / NR) * depth * NR + i * NR + e % NR] = x(r0 + i, e); columns width ..
// round_up(width, NR) are zeroed.
template <int64_t NR>
inline void pack_row_panels(const View& x, int64_t b, int64_t r0, int64_t n, int64_t width,
                            int64_t depth, float* dst) {
  const float* src = x.data + x.offsets[b];
  for (int64_t i = 0; i < n; ++i) {
    const float* row = src + (r0 + i) * x.rs;
    for (int64_t t0 = 0; t0 < width; t0 += NR) {
      float* d = dst + t0 * depth + i * NR;
      const int64_t w = min_i64(NR, width - t0);
      for (int64_t e = 0; e < w; ++e) d[e] = row[(t0 + e) * x.cs];
      fill(d + w, NR - w, 0.0f);
    }
  }
}

// Rows r0 .. r0 + n of x, scaled, in MR-row micro-panels (the register tile's A operand):
// dst[(i / MR) * MR * width + e * MR + i % MR]; rows n .. round_up(n, MR) are zeroed.
template <int MR>
inline void pack_panels(const View& x, int64_t b, int64_t r0, int64_t n, int64_t width, float scale,
                        float* dst) {
  const float* src = x.data + x.offsets[b];
  for (int64_t i = 0; i < round_up(n, MR); ++i) {
    float* panel = dst + (i / MR) * MR * width + i % MR;
    if (i >= n) {
      for (int64_t e = 0; e < width; ++e) panel[e * MR] = 0.0f;
      continue;
    }
    const float* row = src + (r0 + i) * x.rs;
    for (int64_t e = 0; e < width; ++e) panel[e * MR] = scale * row[e * x.cs];
  }
}

// ---- masking ------------------------------------------------------------------------------

// Scores s[j] of query row qi against keys k0 + j, j < n: -inf where a boolean mask excludes
// the key, the mask added where it is additive.
template <class V>
inline void apply_mask(const Mask& mask, int64_t b, int64_t qi, int64_t k0, int64_t n, float* s) {
  if (mask.kind == MaskKind::none || n <= 0) return;
  const int64_t at = mask.offsets[b] + qi * mask.rs + k0 * mask.cs;
  if (mask.kind == MaskKind::boolean) {
    const uint8_t* m = static_cast<const uint8_t*>(mask.data) + at;
    for (int64_t j = 0; j < n; ++j)
      if (!m[j * mask.cs]) s[j] = kNegInf;
    return;
  }
  const float* m = static_cast<const float*>(mask.data) + at;
  int64_t j = 0;
  if (mask.cs == 1)
    for (; j + V::width <= n; j += V::width)
      V::store(s + j, V::add(V::load(s + j), V::load(m + j)));
  for (; j < n; ++j) s[j] += m[j * mask.cs];
}

// The keep decision of attention.h's Dropout for one weight.
inline bool dropout_keep(uint64_t seed, uint64_t counter, uint32_t threshold) {
  uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 40) >= threshold;
}

// ---- kernels ------------------------------------------------------------------------------

// MR x NV vectors: the register tile of every product. Blocks: fwd_rows, the most query rows of
// one forward work item; fwd_keys, keys per forward key block; bwd_rows and bwd_keys, the
// query and key blocks of the backward.
template <class V, int MR, int NV, class Blocks>
struct Sdpa {
  using Reg = typename V::Reg;
  static constexpr int64_t NR = NV * V::width;
  static constexpr int64_t BQ = Blocks::fwd_rows;
  static constexpr int64_t BK = Blocks::fwd_keys;
  static constexpr int64_t BQB = Blocks::bwd_rows;
  static constexpr int64_t BKB = Blocks::bwd_keys;
  static_assert(BQ % MR == 0 && BQB % MR == 0, "query blocks hold whole row panels");
  static_assert(BK % NR == 0 && BKB % NR == 0, "key blocks hold whole column tiles");
  // Forward: row panels handled together, so that each B micro-panel (NR columns of K^T or V)
  // is loaded into L1 once for all of them.
  static constexpr int64_t G = Blocks::fwd_group;
  static constexpr int64_t GR = G * MR;

  // Forward scratch: the query block in row panels (scaled), one key block as K^T and V in
  // micro-panels, the scores of one group of row panels, the output accumulator and the
  // running max / sum per row.
  struct ForwardLayout {
    int64_t ldv;  // columns of packed V and of the accumulator: Ev rounded up to the tile
    int64_t qp, kt, vp, s, o, m, l, alpha, floats;
    explicit ForwardLayout(const Problem& p) : ldv(round_up(p.Ev, NR)) {
      Carver c;
      qp = c.take(BQ * p.E);
      kt = c.take(p.E * BK);
      vp = c.take(BK * ldv);
      s = c.take(GR * BK);
      o = c.take(BQ * ldv);
      m = c.take(BQ);
      l = c.take(BQ);
      alpha = c.take(GR);
      floats = c.used;
    }
  };

  static int64_t forward_scratch(const Problem& p) { return ForwardLayout(p).floats; }

  // out, lse of rows q0 .. q0 + qn (qn <= BQ) of batch item b: for each key block (causal:
  // only those the last row sees), for each row panel: scores, online softmax, P @ V.
  static void forward_block(const ForwardArgs& a, int64_t b, int64_t q0, int64_t qn, float* ws) {
    const Problem& p = a.p;
    const ForwardLayout lay(p);
    const int64_t E = p.E, Ev = p.Ev, ldv = lay.ldv;
    float* qp = ws + lay.qp;
    float* kt = ws + lay.kt;
    float* vp = ws + lay.vp;
    float* s = ws + lay.s;
    float* o = ws + lay.o;
    float* m = ws + lay.m;
    float* l = ws + lay.l;
    float* alpha = ws + lay.alpha;

    pack_panels<MR>(a.q, b, q0, qn, E, p.scale, qp);
    fill(o, round_up(qn, MR) * ldv, 0.0f);
    fill(m, qn, kNegInf);
    fill(l, qn, 0.0f);

    const int64_t kend = p.causal ? min_i64(p.S, q0 + qn) : p.S;
    // BK keys at a time: K^T and V of the block stay in L1/L2 while the row panels pass.
    for (int64_t k0 = 0; k0 < kend; k0 += BK) {
      const int64_t kn = min_i64(BK, p.S - k0);
      pack_transposed_panels<NR>(a.k, b, k0, kn, E, kt);
      pack_row_panels<NR>(a.v, b, k0, kn, Ev, BK, vp);
      // G row panels (GR query rows) at a time: their scores stay in L1/L2.
      for (int64_t g0 = 0; g0 < qn; g0 += GR) {
        // keys of this block that each panel's last row sees; causal skips the masked tiles
        int64_t kvis[G];
        const int64_t panels = min_i64(G, (qn - g0 + MR - 1) / MR);
        for (int64_t g = 0; g < panels; ++g)
          kvis[g] = p.causal ? min_i64(kn, q0 + g0 + (g + 1) * MR - k0) : kn;
        const int64_t cols = kvis[panels - 1];
        if (cols <= 0) continue;
        // scores: one micro-panel of K^T at a time, for every row panel of the group
        for (int64_t c0 = 0; c0 < cols; c0 += NR)
          for (int64_t g = 0; g < panels; ++g)
            if (c0 < kvis[g])
              tile_mm<V, MR, NV, Init::zero>(E, qp + (g0 + g * MR) * E, Fixed<1>{}, Fixed<MR>{},
                                             kt + c0 * E, NR, s + g * MR * BK + c0, BK, nullptr);
        for (int64_t i = 0; i < panels * MR; ++i) {
          const int64_t g = i / MR, ncv = round_up(max_i64(kvis[g], 0), V::width);
          if (kvis[g] > 0 && g0 + i < qn) {
            alpha[i] =
                softmax_row(a, b, q0 + g0 + i, k0, kvis[g], ncv, s + i * BK, m[g0 + i], l[g0 + i]);
          } else {  // padding rows past L
            fill(s + i * BK, ncv, 0.0f);
            alpha[i] = 1.0f;
          }
        }
        // O = alpha * O + P @ V: one micro-panel of V at a time, for every row panel
        for (int64_t t0 = 0; t0 < ldv; t0 += NR)
          for (int64_t g = 0; g < panels; ++g)
            if (kvis[g] > 0)
              tile_mm<V, MR, NV, Init::row_scaled>(
                  kvis[g], s + g * MR * BK, Fixed<BK>{}, Fixed<1>{}, vp + t0 * BK, NR,
                  o + (g0 + g * MR) * ldv + t0, ldv, alpha + g * MR);
      }
    }

    for (int64_t i = 0; i < qn; ++i) {
      float* out = a.out + (b * p.L + q0 + i) * Ev;
      float* lse = a.lse + b * p.L + q0 + i;
      if (m[i] == kNegInf) {  // every key masked out: NaN, as PyTorch's math reference
        fill(out, Ev, __builtin_nanf(""));
        *lse = kNegInf;
        continue;
      }
      const float inv = 1.0f / l[i];
      for (int64_t e = 0; e < Ev; ++e) out[e] = o[i * ldv + e] * inv;
      *lse = m[i] + __builtin_logf(l[i]);
    }
  }

  // One score row s[0 .. ncv) of query qi against keys k0 ..: masks it, updates the running max
  // m and sum l, turns s into the weights exp(s - m) (dropped out if asked) and returns the
  // factor exp(m_old - m) that rescales the row's accumulator.
  static float softmax_row(const ForwardArgs& a, int64_t b, int64_t qi, int64_t k0, int64_t kvis,
                           int64_t ncv, float* s, float& m, float& l) {
    const Problem& p = a.p;
    const int64_t vis = p.causal ? max_i64(0, min_i64(kvis, qi - k0 + 1)) : kvis;
    apply_mask<V>(p.mask, b, qi, k0, vis, s);
    fill(s + vis, ncv - vis, kNegInf);

    Reg vmax = V::set1(kNegInf);
    for (int64_t j = 0; j < ncv; j += V::width) vmax = V::max(vmax, V::load(s + j));
    const float row_max = V::reduce_max(vmax);
    const float m_new = row_max > m || row_max != row_max ? row_max : m;  // NaN propagates
    if (m_new == kNegInf) {  // nothing seen yet: the row's weights are all zero
      fill(s, ncv, 0.0f);
      return 1.0f;
    }
    const float correction = __builtin_expf(m - m_new);
    const Reg vm = V::set1(m_new);
    Reg sum = V::zero();
    for (int64_t j = 0; j < ncv; j += V::width) {
      const Reg e = exp_v<V>(V::sub(V::load(s + j), vm));
      V::store(s + j, e);
      sum = V::add(sum, e);
    }
    l = l * correction + V::reduce_add(sum);
    m = m_new;
    if (a.dropout.threshold) {
      const uint64_t counter = static_cast<uint64_t>((b * p.L + qi) * p.S + k0);
      for (int64_t j = 0; j < vis; ++j)
        s[j] = dropout_keep(a.dropout.seed, counter + j, a.dropout.threshold)
                   ? s[j] * a.dropout.keep_scale
                   : 0.0f;
    }
    return correction;
  }

  // Backward scratch: one key block as K^T, V^T and K, its dK^T and dV^T accumulators; one
  // query block of Q (scaled) and dO; the weight and dS tiles of the block pair.
  struct BackwardLayout {
    int64_t ldq;  // columns of packed Q and rows of dK^T: E rounded up to the row panel
    int64_t ldo;  // columns of packed dO and rows of dV^T: Ev rounded up to the row panel
    int64_t ldk;  // columns of packed K and of the dq accumulator: E rounded up to the tile
    int64_t kt, vt, kp, dkt, dvt, qp, dop, pt, ds, floats;
    explicit BackwardLayout(const Problem& p)
        : ldq(round_up(p.E, MR)), ldo(round_up(p.Ev, MR)), ldk(round_up(p.E, NR)) {
      Carver c;
      kt = c.take(p.E * BKB);
      vt = c.take(p.Ev * BKB);
      kp = c.take(BKB * ldk);
      dkt = c.take(ldq * BKB);
      dvt = c.take(ldo * BKB);
      qp = c.take(BQB * ldq);
      dop = c.take(BQB * ldo);
      pt = c.take(BQB * BKB);
      ds = c.take(BQB * BKB);
      floats = c.used;
    }
  };

  static int64_t backward_scratch(const Problem& p) { return BackwardLayout(p).floats; }

  // FlashAttention-2's backward for key blocks chunk, chunk + nchunks, ... of batch item b:
  // per key block, over the query blocks that see it, recompute P = exp(S - lse), then
  //   dV^T += dO^T P,  dP = dO V^T,  dS = P * (dP - D),  dK^T += (scale Q)^T dS,  dQ += dS K.
  static void backward_chunk(const BackwardArgs& a, int64_t b, int64_t chunk, int64_t nchunks,
                             float* dq_acc, float* ws) {
    const Problem& p = a.p;
    const BackwardLayout lay(p);
    const int64_t E = p.E, Ev = p.Ev, ldq = lay.ldq, ldo = lay.ldo, ldk = lay.ldk;
    float* kt = ws + lay.kt;
    float* vt = ws + lay.vt;
    float* kp = ws + lay.kp;
    float* dkt = ws + lay.dkt;
    float* dvt = ws + lay.dvt;
    float* qp = ws + lay.qp;
    float* dop = ws + lay.dop;
    float* pt = ws + lay.pt;
    float* ds = ws + lay.ds;

    for (int64_t k0 = chunk * BKB; k0 < p.S; k0 += nchunks * BKB) {
      const int64_t kn = min_i64(BKB, p.S - k0);
      pack_transposed_panels<NR>(a.k, b, k0, kn, E, kt);
      pack_transposed_panels<NR>(a.v, b, k0, kn, Ev, vt);
      pack_row_panels<NR>(a.k, b, k0, kn, E, BKB, kp);
      fill(dkt, ldq * BKB, 0.0f);
      fill(dvt, ldo * BKB, 0.0f);
      // BQB queries at a time; causal: the blocks before k0's see none of these keys
      for (int64_t q0 = p.causal ? k0 / BQB * BQB : 0; q0 < p.L; q0 += BQB) {
        const int64_t qn = min_i64(BQB, p.L - q0);
        const int64_t kvis = p.causal ? min_i64(kn, q0 + qn - k0) : kn;
        if (kvis <= 0) continue;
        const int64_t ncols = round_up(kvis, NR);
        pack_rows(a.q, b, q0, qn, E, ldq, p.scale, qp);
        pack_rows(a.dout, b, q0, qn, Ev, ldo, 1.0f, dop);
        fill(qp + qn * ldq, (round_up(qn, MR) - qn) * ldq, 0.0f);
        fill(dop + qn * ldo, (round_up(qn, MR) - qn) * ldo, 0.0f);
        for (int64_t r0 = 0; r0 < qn; r0 += MR)
          weights_and_ds(a, b, q0, r0, qn, k0, kn, ncols, qp + r0 * ldq, ldq, dop + r0 * ldo, ldo,
                         kt, vt, pt + r0 * BKB, ds + r0 * BKB);
        // dV^T, dK^T: MR head-dim rows at a time, the block's qn queries as the inner dimension
        for (int64_t r0 = 0; r0 < Ev; r0 += MR)
          panel_mm<V, MR, NV, Init::load>(qn, ncols, dop + r0, Fixed<1>{}, ldo, pt, BKB, NR,
                                          dvt + r0 * BKB, BKB);
        for (int64_t r0 = 0; r0 < E; r0 += MR)
          panel_mm<V, MR, NV, Init::load>(qn, ncols, qp + r0, Fixed<1>{}, ldq, ds, BKB, NR,
                                          dkt + r0 * BKB, BKB);
        for (int64_t r0 = 0; r0 < qn; r0 += MR)
          panel_mm<V, MR, NV, Init::load>(kvis, ldk, ds + r0 * BKB, Fixed<BKB>{}, Fixed<1>{}, kp,
                                          NR, BKB * NR, dq_acc + (q0 + r0) * ldk, ldk);
      }
      for (int64_t j = 0; j < kn; ++j) {
        float* dk = a.dk + (b * p.S + k0 + j) * E;
        float* dv = a.dv + (b * p.S + k0 + j) * Ev;
        for (int64_t e = 0; e < E; ++e) dk[e] = dkt[e * BKB + j];
        for (int64_t e = 0; e < Ev; ++e) dv[e] = dvt[e * BKB + j];
      }
    }
  }

  // The weights P and dS of one row panel (rows r0 .. r0 + MR of the query block at q0)
  // against the key block at k0, columns 0 .. ncols; zero where a row sees none of the keys.
  static void weights_and_ds(const BackwardArgs& a, int64_t b, int64_t q0, int64_t r0, int64_t qn,
                             int64_t k0, int64_t kn, int64_t ncols, const float* qp, int64_t ldq,
                             const float* dop, int64_t ldo, const float* kt, const float* vt,
                             float* pt, float* ds) {
    const Problem& p = a.p;
    const int64_t kvis = p.causal ? min_i64(kn, q0 + r0 + MR - k0) : kn;
    if (kvis <= 0) {
      for (int i = 0; i < MR; ++i) {
        fill(pt + i * BKB, ncols, 0.0f);
        fill(ds + i * BKB, ncols, 0.0f);
      }
      return;
    }
    const int64_t ncv = round_up(kvis, V::width);
    panel_mm<V, MR, NV, Init::zero>(p.E, round_up(kvis, NR), qp, ldq, Fixed<1>{}, kt, NR, p.E * NR,
                                    pt, BKB);
    panel_mm<V, MR, NV, Init::zero>(p.Ev, round_up(kvis, NR), dop, ldo, Fixed<1>{}, vt, NR,
                                    p.Ev * NR, ds, BKB);
    for (int i = 0; i < MR; ++i) {
      float* s = pt + i * BKB;
      float* d = ds + i * BKB;
      const int64_t qi = q0 + r0 + i;
      if (r0 + i >= qn) {
        fill(s, ncols, 0.0f);
        fill(d, ncols, 0.0f);
        continue;
      }
      const int64_t vis = p.causal ? max_i64(0, min_i64(kvis, qi - k0 + 1)) : kvis;
      apply_mask<V>(p.mask, b, qi, k0, vis, s);
      fill(s + vis, ncv - vis, kNegInf);
      const Reg lse = V::set1(a.lse[b * p.L + qi]);
      const Reg delta = V::set1(a.delta[b * p.L + qi]);
      for (int64_t j = 0; j < ncv; j += V::width) {
        const Reg w = exp_v<V>(V::sub(V::load(s + j), lse));
        V::store(s + j, w);
        V::store(d + j, V::mul(w, V::sub(V::load(d + j), delta)));
      }
      fill(s + ncv, ncols - ncv, 0.0f);
      fill(d + ncv, ncols - ncv, 0.0f);
    }
  }
};

}  // namespace
