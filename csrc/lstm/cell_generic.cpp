// f32_lstm_cell_generic: the fused LSTM cell (lstm.h) one unit at a time with libm, for any CPU.
#include <cmath>

#include "lstm/lstm.h"

namespace ember::lstm {
namespace {

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

void forward(const CellForward& p) {
  const int64_t gs = p.gate_stride;
  for (int64_t r = 0; r < p.m; ++r) {
    float* g = p.gates + r * p.ld_gates;
    for (int64_t j = 0; j < p.n; ++j) {
      float pre[4];
      for (int k = 0; k < 4; ++k) pre[k] = g[k * gs + j] + (p.bias ? p.bias[k * gs + j] : 0.0f);
      const float i = sigmoid(pre[0]), f = sigmoid(pre[1]), gg = std::tanh(pre[2]),
                  o = sigmoid(pre[3]);
      const float cn = f * p.c[r * p.ld_c + j] + i * gg;
      const float tc = std::tanh(cn);
      g[j] = i;
      g[gs + j] = f;
      g[2 * gs + j] = gg;
      g[3 * gs + j] = o;
      p.c_next[r * p.ld_c_next + j] = cn;
      p.h_next[r * p.ld_h_next + j] = o * tc;
      if (p.tanh_c) p.tanh_c[r * p.ld_tanh_c + j] = tc;
    }
  }
}

void backward(const CellBackward& p) {
  const int64_t gs = p.gate_stride;
  for (int64_t r = 0; r < p.m; ++r) {
    const float* a = p.gates + r * p.ld_gates;
    float* dg = p.dgates + r * p.ld_dgates;
    for (int64_t j = 0; j < p.n; ++j) {
      const float i = a[j], f = a[gs + j], gg = a[2 * gs + j], o = a[3 * gs + j];
      const float tc = p.tanh_c[r * p.ld_tanh_c + j];
      const float dhn = p.dh[r * p.ld_dh + j] + p.dh2[r * p.ld_dh2 + j];
      float& dc = p.dc[r * p.ld_dc + j];
      // dc_next in total: from above, and through h_next = o * tanh(c_next)
      const float dct = dhn * o * (1.0f - tc * tc) + dc;
      dg[j] = dct * gg * (i * (1.0f - i));
      dg[gs + j] = dct * p.c[r * p.ld_c + j] * (f * (1.0f - f));
      dg[2 * gs + j] = dct * i * (1.0f - gg * gg);
      dg[3 * gs + j] = dhn * tc * (o * (1.0f - o));
      dc = dct * f;
    }
  }
}

}  // namespace

const CellKernels f32_lstm_cell_generic{"f32_lstm_cell_generic", &forward, &backward};

}  // namespace ember::lstm
