// The fused LSTM cell (lstm.h: CellForward, CellBackward) over a SIMD vector type V, one vector of
// hidden units at a time; the last n % width units go through padded vectors, so every unit gets
// the same arithmetic. Anonymous namespace: each ISA file gets its own private copy.
#pragma once
#include <cstdint>

#include "common/simd_math.h"
#include "lstm/lstm.h"

namespace {

// One vector of units. g points at unit j of gate i (gate k at g + k * gs); bias likewise or null.
template <class V>
inline __attribute__((always_inline)) void cell_forward_vec(float* g, int64_t gs, const float* bias,
                                                            const float* c, float* c_next,
                                                            float* h_next, float* tanh_c) {
  using Reg = typename V::Reg;
  Reg pi = V::load(g), pf = V::load(g + gs), pg = V::load(g + 2 * gs), po = V::load(g + 3 * gs);
  if (bias) {
    pi = V::add(pi, V::load(bias));
    pf = V::add(pf, V::load(bias + gs));
    pg = V::add(pg, V::load(bias + 2 * gs));
    po = V::add(po, V::load(bias + 3 * gs));
  }
  const Reg i = sigmoid_v<V>(pi), f = sigmoid_v<V>(pf), gg = tanh_v<V>(pg), o = sigmoid_v<V>(po);
  const Reg cn = V::fma(f, V::load(c), V::mul(i, gg));
  const Reg tc = tanh_v<V>(cn);
  V::store(g, i);
  V::store(g + gs, f);
  V::store(g + 2 * gs, gg);
  V::store(g + 3 * gs, o);
  V::store(c_next, cn);
  V::store(h_next, V::mul(o, tc));
  if (tanh_c) V::store(tanh_c, tc);
}

// dL/dh_next = dh + dh2, dL/dc_next = dc; a points at the activations as g above.
template <class V>
inline __attribute__((always_inline)) void cell_backward_vec(const float* dh, const float* dh2,
                                                             float* dc, const float* a, int64_t gs,
                                                             const float* c, const float* tanh_c,
                                                             float* dg) {
  using Reg = typename V::Reg;
  const Reg one = V::set1(1.0f);
  const Reg i = V::load(a), f = V::load(a + gs), gg = V::load(a + 2 * gs), o = V::load(a + 3 * gs);
  const Reg tc = V::load(tanh_c);
  const Reg dhn = V::add(V::load(dh), V::load(dh2));
  // dc_next in total: from above, and through h_next = o * tanh(c_next)
  const Reg dct = V::fma(V::mul(dhn, o), V::fnma(tc, tc, one), V::load(dc));
  V::store(dg, V::mul(V::mul(dct, gg), V::mul(i, V::sub(one, i))));
  V::store(dg + gs, V::mul(V::mul(dct, V::load(c)), V::mul(f, V::sub(one, f))));
  V::store(dg + 2 * gs, V::mul(V::mul(dct, i), V::fnma(gg, gg, one)));
  V::store(dg + 3 * gs, V::mul(V::mul(dhn, tc), V::mul(o, V::sub(one, o))));
  V::store(dc, V::mul(dct, f));
}

template <class V>
void cell_forward(const ember::lstm::CellForward& p) {
  constexpr int W = V::width;
  const int64_t gs = p.gate_stride;
  const int64_t full = p.n / W * W, rest = p.n - full;
  for (int64_t r = 0; r < p.m; ++r) {
    float* g = p.gates + r * p.ld_gates;
    const float* c = p.c + r * p.ld_c;
    float* cn = p.c_next + r * p.ld_c_next;
    float* h = p.h_next + r * p.ld_h_next;
    float* tc = p.tanh_c ? p.tanh_c + r * p.ld_tanh_c : nullptr;
    for (int64_t j = 0; j < full; j += W)
      cell_forward_vec<V>(g + j, gs, p.bias ? p.bias + j : nullptr, c + j, cn + j, h + j,
                          tc ? tc + j : nullptr);
    if (rest == 0) continue;
    // the tail through padded vectors: gates/bias as 4 rows of W, then c, c_next, h, tanh_c
    float gb[4 * W] = {}, bb[4 * W] = {}, cb[W] = {}, cnb[W], hb[W], tb[W];
    for (int k = 0; k < 4; ++k)
      for (int64_t j = 0; j < rest; ++j) {
        gb[k * W + j] = g[k * gs + full + j];
        if (p.bias) bb[k * W + j] = p.bias[k * gs + full + j];
      }
    for (int64_t j = 0; j < rest; ++j) cb[j] = c[full + j];
    cell_forward_vec<V>(gb, W, bb, cb, cnb, hb, tb);
    for (int k = 0; k < 4; ++k)
      for (int64_t j = 0; j < rest; ++j) g[k * gs + full + j] = gb[k * W + j];
    for (int64_t j = 0; j < rest; ++j) {
      cn[full + j] = cnb[j];
      h[full + j] = hb[j];
      if (tc) tc[full + j] = tb[j];
    }
  }
}

template <class V>
void cell_backward(const ember::lstm::CellBackward& p) {
  constexpr int W = V::width;
  const int64_t gs = p.gate_stride;
  const int64_t full = p.n / W * W, rest = p.n - full;
  for (int64_t r = 0; r < p.m; ++r) {
    const float* dh = p.dh + r * p.ld_dh;
    const float* dh2 = p.dh2 + r * p.ld_dh2;
    float* dc = p.dc + r * p.ld_dc;
    const float* a = p.gates + r * p.ld_gates;
    const float* c = p.c + r * p.ld_c;
    const float* tc = p.tanh_c + r * p.ld_tanh_c;
    float* dg = p.dgates + r * p.ld_dgates;
    for (int64_t j = 0; j < full; j += W)
      cell_backward_vec<V>(dh + j, dh2 + j, dc + j, a + j, gs, c + j, tc + j, dg + j);
    if (rest == 0) continue;
    float dhb[W] = {}, dh2b[W] = {}, dcb[W] = {}, ab[4 * W] = {}, cb[W] = {}, tb[W] = {},
          dgb[4 * W];
    for (int64_t j = 0; j < rest; ++j) {
      dhb[j] = dh[full + j];
      dh2b[j] = dh2[full + j];
      dcb[j] = dc[full + j];
      cb[j] = c[full + j];
      tb[j] = tc[full + j];
      for (int k = 0; k < 4; ++k) ab[k * W + j] = a[k * gs + full + j];
    }
    cell_backward_vec<V>(dhb, dh2b, dcb, ab, W, cb, tb, dgb);
    for (int64_t j = 0; j < rest; ++j) {
      dc[full + j] = dcb[j];
      for (int k = 0; k < 4; ++k) dg[k * gs + full + j] = dgb[k * W + j];
    }
  }
}

}  // namespace
