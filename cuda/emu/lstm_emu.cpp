// C entry points of one LSTM layer (cuda/lstm/lstm.cu, with ember::cuda::sgemm of cuda/gemm)
// under the CPU emulator (emu.h), for tests/test_cuda_lstm_emulated.py: every array is copied
// into a fenced buffer (all contiguous, in the layer's memory order: (T, B, ...) or, batch-major,
// (B, T, ...)), and the outputs are copied back.
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <stdexcept>

#include "emu/array.h"
#include "lstm/lstm.h"

namespace lstm = ember::cuda::lstm;

namespace {

std::unique_ptr<emu::FencedCopy> copy(const EmuArray* a) {
  return a ? std::make_unique<emu::FencedCopy>(*a) : nullptr;
}
float* data(const std::unique_ptr<emu::FencedCopy>& c) {
  return c ? c->data<float>() : nullptr;
}
void copy_back(const std::unique_ptr<emu::FencedCopy>& c) {
  if (c) c->copy_back();
}

using Copies = std::initializer_list<const std::unique_ptr<emu::FencedCopy>*>;

// run() once, or, with `replay`, twice on the same buffers: first with every input negated (a
// decoy: the call captures the layer's graph), then with the inputs and outputs restored from the
// caller's arrays (outputs to their NaN poison), so that the second call's results, a replay of
// the cached graph, are right only if the graph reads its buffers anew and writes every output.
template <class Run>
void run_layer(bool replay, Copies inputs, Copies outputs, Run&& run) {
  if (replay) {
    for (const auto* c : inputs)
      if (*c) (*c)->negate();
    run();
    for (Copies copies : {inputs, outputs})
      for (const auto* c : copies)
        if (*c) (*c)->restore();
  }
  run();
}

template <class F>
int guarded(int order, uint32_t seed, char* error, int64_t error_len, F&& f) {
  try {
    emu::options().order = static_cast<emu::Order>(order);
    emu::options().seed = seed;
    f();
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 2;
  }
}

}  // namespace

extern "C" {

// sizes: T, B, I, H. bias (4H) and h0 may be null; c_all, tanh_c, h_prev null for inference.
// graph: the layer replayed as a CUDA graph, after a decoy call (run_layer).
int emu_lstm_forward(const int64_t* sizes, int batch_major, const EmuArray* x,
                     const EmuArray* w_ih, const EmuArray* w_hh, const EmuArray* bias,
                     const EmuArray* h0, const EmuArray* c0, const EmuArray* gates,
                     const EmuArray* y, const EmuArray* h_n, const EmuArray* c_n,
                     const EmuArray* c_all, const EmuArray* tanh_c, const EmuArray* h_prev,
                     int tf32, int graph, int order, uint32_t schedule_seed, char* error,
                     int64_t error_len) {
  return guarded(order, schedule_seed, error, error_len, [&] {
    const int64_t T = sizes[0], B = sizes[1], I = sizes[2], H = sizes[3];
    const auto cx = copy(x), cwi = copy(w_ih), cwh = copy(w_hh), cb = copy(bias), ch0 = copy(h0);
    const auto cc0 = copy(c0), cg = copy(gates), cy = copy(y), chn = copy(h_n), ccn = copy(c_n);
    const auto ca = copy(c_all), ct = copy(tanh_c), chp = copy(h_prev);
    lstm::LayerForward a{};
    a.T = T, a.B = B, a.I = I, a.H = H, a.batch_major = batch_major != 0;
    a.x = {data(cx), I, 1};
    a.w_ih = {data(cwi), I, 1};
    a.w_hh = {data(cwh), H, 1};
    a.bias = data(cb);
    a.h0 = {data(ch0), H, 1};
    a.c0 = data(cc0);
    a.gates = data(cg);
    a.y = lstm::seq_of(data(cy), a.batch_major, T, B, H);
    a.h_n = data(chn), a.c_n = data(ccn);
    a.c_all = data(ca), a.tanh_c = data(ct), a.h_prev = data(chp);
    a.tf32 = tf32 != 0;
    a.graph = graph != 0;
    const Copies outputs = {&cg, &cy, &chn, &ccn, &ca, &ct, &chp};
    run_layer(a.graph, {&cx, &cwi, &cwh, &cb, &ch0, &cc0}, outputs,
              [&] { lstm::layer_forward(a, nullptr); });
    for (const auto* c : outputs) copy_back(*c);
  });
}

// dy (T, B, H) in the layer's order, or null; dh, dc: dL/dh_T, dL/dc_T in, dL/dh0, dL/dc0 out.
// graph: as for emu_lstm_forward.
int emu_lstm_backward(const int64_t* sizes, int batch_major, const EmuArray* x,
                      const EmuArray* w_ih, const EmuArray* w_hh, const EmuArray* c0,
                      const EmuArray* gates, const EmuArray* c_all, const EmuArray* tanh_c,
                      const EmuArray* h_prev, const EmuArray* dy, const EmuArray* dh,
                      const EmuArray* dc, const EmuArray* dgates, const EmuArray* dx,
                      const EmuArray* dw_ih, const EmuArray* dw_hh, const EmuArray* db, int tf32,
                      int graph, int order, uint32_t schedule_seed, char* error,
                      int64_t error_len) {
  return guarded(order, schedule_seed, error, error_len, [&] {
    const int64_t T = sizes[0], B = sizes[1], I = sizes[2], H = sizes[3];
    const auto cx = copy(x), cwi = copy(w_ih), cwh = copy(w_hh), cc0 = copy(c0);
    const auto cg = copy(gates), ca = copy(c_all), ct = copy(tanh_c), chp = copy(h_prev);
    const auto cdy = copy(dy), cdh = copy(dh), cdc = copy(dc), cdg = copy(dgates);
    const auto cdx = copy(dx), cdwi = copy(dw_ih), cdwh = copy(dw_hh), cdb = copy(db);
    lstm::LayerBackward a{};
    a.T = T, a.B = B, a.I = I, a.H = H, a.batch_major = batch_major != 0;
    a.x = {data(cx), I, 1};
    a.w_ih = {data(cwi), I, 1};
    a.w_hh = {data(cwh), H, 1};
    a.c0 = data(cc0);
    a.gates = data(cg), a.c_all = data(ca), a.tanh_c = data(ct), a.h_prev = data(chp);
    a.dy = data(cdy);
    a.dy_t = a.batch_major ? H : B * H;
    a.dy_b = a.batch_major ? T * H : H;
    a.dy_j = 1;
    a.dh = data(cdh), a.dc = data(cdc), a.dgates = data(cdg);
    a.dx = data(cdx), a.dw_ih = data(cdwi), a.dw_hh = data(cdwh), a.db = data(cdb);
    a.tf32 = tf32 != 0;
    a.graph = graph != 0;
    const Copies outputs = {&cdh, &cdc, &cdg, &cdx, &cdwi, &cdwh, &cdb};
    run_layer(a.graph, {&cx, &cwi, &cwh, &cc0, &cg, &ca, &ct, &chp, &cdy, &cdh, &cdc}, outputs,
              [&] { lstm::layer_backward(a, nullptr); });
    for (const auto* c : outputs) copy_back(*c);
  });
}

}  // extern "C"
