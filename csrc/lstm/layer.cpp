// One LSTM layer over a sequence (lstm.h: LayerForward, LayerBackward).
// The input projection of all T steps is one GEMM. The time loop runs in one OpenMP region in which
// each thread owns a block of batch rows x hidden units: per step it computes its units' four gate
// columns (the recurrent GEMM) and runs the fused cell on them, so a step needs one barrier and no
// allocation. The backward runs the same way in reverse; the weight gradients are then one GEMM
// each over all T * B rows.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "cpu/dispatch.h"
#include "cpu/threads.h"
#include "lstm/lstm.h"

namespace ember::lstm {
namespace {

// Below this many flops of recurrent GEMM per step and thread, another thread costs more (one more
// party to every step's barrier) than it saves.
constexpr double kMinFlopsPerThread = 2.0 * 64 * 64 * 64;
// Floats of padding after each row of dgates. The weight-gradient GEMMs read dgates^T in place,
// stepping down its rows; 4H floats apart (a multiple of 4 KiB for H a multiple of 256), those
// reads all fall in one L1 cache set: dw_ih went from 48 to 57 GFLOP/s at (1024, 3200, 128).
constexpr int64_t kDgatesPad = 16;
// Columns per task of the bias-gradient reduction.
constexpr int64_t kReduceColumns = 256;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// [begin, end) of part i of `parts` over d elements, cut at multiples of r.
void band(int64_t d, int64_t r, int parts, int i, int64_t& begin, int64_t& end) {
  const int64_t units = ceil_div(d, r);
  begin = std::min(d, units * i / parts * r);
  end = std::min(d, units * (i + 1) / parts * r);
}

// A thread's share of every step: batch rows [r0, r1) x hidden units [j0, j1).
struct Block {
  int64_t r0, r1, j0, j1;
  int64_t rows() const { return r1 - r0; }
  int64_t units() const { return j1 - j0; }
  bool empty() const { return r0 >= r1 || j0 >= j1; }
};

// (B, H) cut into tm row bands x tn unit bands at whole GEMM register tiles (mr rows, nr units):
// the grid with the least work per thread, then the fewest tile edges, then the fewest threads.
class Partition {
 public:
  Partition(int64_t B, int64_t H, const gemm::UKernel& uk) : B_(B), H_(H), mr_(uk.mr), nr_(uk.nr) {
    const double flops = 8.0 * static_cast<double>(B) * H * H;
    const int most = static_cast<int>(
        std::clamp(flops / kMinFlopsPerThread, 1.0, static_cast<double>(cpu::num_threads())));
    const int64_t units_m = ceil_div(B, mr_), units_n = ceil_div(H, nr_);
    int64_t best_area = units_m * units_n, best_perimeter = units_m * mr_ + units_n * nr_;
    for (int t = 2; t <= most; ++t)
      for (int tm = 1; tm <= t; ++tm) {
        const int tn = t / tm;
        if (tm * tn != t || tm > units_m || tn > units_n) continue;
        const int64_t bm = ceil_div(units_m, tm), bn = ceil_div(units_n, tn);
        const int64_t area = bm * bn, perimeter = bm * mr_ + bn * nr_;
        if (area < best_area || (area == best_area && perimeter < best_perimeter)) {
          tm_ = tm;
          tn_ = tn;
          best_area = area;
          best_perimeter = perimeter;
        }
      }
  }
  int threads() const { return tm_ * tn_; }
  // the most units any block has
  int64_t max_units() const { return std::min(H_, ceil_div(ceil_div(H_, nr_), tn_) * nr_); }
  Block block(int t) const {
    Block b;
    band(B_, mr_, tm_, t / tn_, b.r0, b.r1);
    band(H_, nr_, tn_, t % tn_, b.j0, b.j1);
    return b;
  }

 private:
  int64_t B_, H_, mr_, nr_;
  int tm_ = 1, tn_ = 1;
};

// The first exception thrown by any thread of a region. A thread that fails keeps meeting the
// barriers (skipping its work) so that the others are not left waiting.
class FirstError {
 public:
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  void record() noexcept {
#pragma omp critical(ember_lstm_error)
    if (!error_) error_ = std::current_exception();
    failed_.store(true, std::memory_order_relaxed);
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

// A 64-byte aligned float buffer for one call.
class Buffer {
 public:
  explicit Buffer(int64_t count) {
    const size_t bytes =
        (static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float) + 63) / 64 * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!data_) throw std::bad_alloc();
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* data() const { return data_; }

 private:
  float* data_;
};

// dst rows = src rows, n floats each
void copy_rows(int64_t m, int64_t n, const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  for (int64_t r = 0; r < m; ++r)
    std::memcpy(dst + r * ld_dst, src + r * ld_src, n * sizeof(float));
}

// db = the column sums of dgates (rows, cols), rows ld apart
void column_sums(int64_t rows, int64_t cols, const float* dgates, int64_t ld, float* db) {
  const int64_t tasks = ceil_div(cols, kReduceColumns);
#pragma omp parallel for num_threads(static_cast<int>(std::min<int64_t>(cpu::num_threads(), tasks)))
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t j0 = task * kReduceColumns, j1 = std::min(cols, j0 + kReduceColumns);
    for (int64_t j = j0; j < j1; ++j) db[j] = 0.0f;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = j0; j < j1; ++j) db[j] += dgates[r * ld + j];
  }
}

}  // namespace

Seq seq_of(float* data, Order order, int64_t T, int64_t B, int64_t n) {
  if (order == Order::time_major) return {data, B * n, n};
  return {data, n, T * n};
}

void layer_forward(const LayerForward& a) {
  const int64_t T = a.T, B = a.B, H = a.H, G4 = 4 * H;
  const bool save = a.c_all != nullptr;
  if (T == 0 || B == 0 || H == 0) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j)
        a.h_n[b * H + j] = a.h0.data ? a.h0.data[b * a.h0.rs + j * a.h0.cs] : 0.0f;
    copy_rows(B, H, a.c0, H, a.c_n, H);
    return;
  }
  // The input projection of every step at once: gates = x @ w_ih^T, (T*B, I) @ (I, 4H).
  gemm::sgemm(T * B, G4, a.I, 1.0f, a.x, {a.w_ih.data, a.w_ih.cs, a.w_ih.rs}, 0.0f,
              {a.gates, G4, 1});
  const Seq gates = seq_of(a.gates, a.order, T, B, G4);
  const Seq c_all = seq_of(a.c_all, a.order, T, B, H);
  const Seq tanh_c = seq_of(a.tanh_c, a.order, T, B, H);
  const Seq h_prev = seq_of(a.h_prev, a.order, T, B, H);
  if (save)  // h_{-1} = h0 for the weight gradient of the first step
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j)
        h_prev.at(0, b)[j] = a.h0.data ? a.h0.data[b * a.h0.rs + j * a.h0.cs] : 0.0f;

  const cpu::KernelTable& kt = cpu::kernels();
  const CellKernels& cell = *kt.lstm;
  const gemm::UKernel& uk = *kt.gemm;
  const Partition part(B, H, uk);
  // each thread's four w_hh^T gate blocks (H, units), packed once for all steps
  const int64_t packed = gemm::packed_b_size(uk, H, part.max_units());
  const Buffer w_packed(part.threads() * 4 * packed);
  FirstError error;
#pragma omp parallel num_threads(part.threads())
  {
    const Block blk = part.block(omp_get_thread_num());
    float* w_blk = w_packed.data() + omp_get_thread_num() * 4 * packed;
    if (!blk.empty()) {
      try {
        for (int64_t k = 0; k < 4; ++k)
          gemm::pack_b_once(uk, H, blk.units(),
                            {a.w_hh.data + (k * H + blk.j0) * a.w_hh.rs, a.w_hh.cs, a.w_hh.rs},
                            w_blk + k * packed);
      } catch (...) {
        error.record();
      }
    }
    for (int64_t t = 0; t < T; ++t) {
      if (!blk.empty() && !error.failed()) {
        try {
          // gates[t] += h_{t-1} @ w_hh^T for this block's units of each gate (none when h0 = 0)
          const gemm::ConstMatrix h =
              t == 0 ? a.h0 : gemm::ConstMatrix{a.y.at(t - 1, 0), a.y.row, 1};
          if (h.data)
            for (int64_t k = 0; k < 4; ++k)
              gemm::sgemm_packed_b(uk, blk.rows(), blk.units(), H, 1.0f,
                                   {h.data + blk.r0 * h.rs, h.rs, h.cs}, w_blk + k * packed, 1.0f,
                                   {gates.at(t, blk.r0) + k * H + blk.j0, gates.row, 1});
          CellForward p{};
          p.m = blk.rows();
          p.n = blk.units();
          p.gate_stride = H;
          p.gates = gates.at(t, blk.r0) + blk.j0;
          p.ld_gates = gates.row;
          p.bias = a.bias ? a.bias + blk.j0 : nullptr;
          if (save) {
            p.c = t == 0 ? a.c0 + blk.r0 * H + blk.j0 : c_all.at(t - 1, blk.r0) + blk.j0;
            p.ld_c = t == 0 ? H : c_all.row;
            p.c_next = c_all.at(t, blk.r0) + blk.j0;
            p.ld_c_next = c_all.row;
            p.tanh_c = tanh_c.at(t, blk.r0) + blk.j0;
            p.ld_tanh_c = tanh_c.row;
          } else {  // c_n holds the running state
            p.c = (t == 0 ? a.c0 : a.c_n) + blk.r0 * H + blk.j0;
            p.ld_c = H;
            p.c_next = a.c_n + blk.r0 * H + blk.j0;
            p.ld_c_next = H;
          }
          p.h_next = a.y.at(t, blk.r0) + blk.j0;
          p.ld_h_next = a.y.row;
          cell.forward(p);
          if (save && t + 1 < T)
            copy_rows(blk.rows(), blk.units(), p.h_next, p.ld_h_next,
                      h_prev.at(t + 1, blk.r0) + blk.j0, h_prev.row);
        } catch (...) {
          error.record();
        }
      }
#pragma omp barrier
    }
  }
  error.rethrow();
  copy_rows(B, H, a.y.at(T - 1, 0), a.y.row, a.h_n, H);
  if (save) copy_rows(B, H, c_all.at(T - 1, 0), c_all.row, a.c_n, H);
}

void layer_backward(const LayerBackward& a) {
  const int64_t T = a.T, B = a.B, I = a.I, H = a.H, G4 = 4 * H, rows = T * B;
  // dL/d(pre-activations) of every step, (T*B, 4H) in `order`
  const int64_t ld_dg = G4 + kDgatesPad;
  const Buffer dgates_all(rows * ld_dg);
  if (T > 0 && B > 0 && H > 0) {
    const Seq gates = seq_of(const_cast<float*>(a.gates), a.order, T, B, G4);
    const Seq dgates = seq_of(dgates_all.data(), a.order, T, B, ld_dg);
    const Seq c_all = seq_of(const_cast<float*>(a.c_all), a.order, T, B, H);
    const Seq tanh_c = seq_of(const_cast<float*>(a.tanh_c), a.order, T, B, H);
    const cpu::KernelTable& kt = cpu::kernels();
    const CellKernels& cell = *kt.lstm;
    const gemm::UKernel& uk = *kt.gemm;
    const Partition part(B, H, uk);
    // each thread's w_hh columns (4H, units), packed once for all steps
    const int64_t packed = gemm::packed_b_size(uk, G4, part.max_units());
    const Buffer w_packed(part.threads() * packed);
    FirstError error;
#pragma omp parallel num_threads(part.threads())
    {
      const Block blk = part.block(omp_get_thread_num());
      float* w_blk = w_packed.data() + omp_get_thread_num() * packed;
      if (!blk.empty()) {
        try {
          gemm::pack_b_once(uk, G4, blk.units(),
                            {a.w_hh.data + blk.j0 * a.w_hh.cs, a.w_hh.rs, a.w_hh.cs}, w_blk);
        } catch (...) {
          error.record();
        }
      }
      for (int64_t t = T - 1; t >= 0; --t) {
        if (!blk.empty() && !error.failed()) {
          try {
            CellBackward p{};
            p.m = blk.rows();
            p.n = blk.units();
            p.gate_stride = H;
            p.dh = a.dy.at(t, blk.r0) + blk.j0;
            p.ld_dh = a.dy.row;
            p.dh2 = a.dh + blk.r0 * H + blk.j0;
            p.ld_dh2 = H;
            p.dc = a.dc + blk.r0 * H + blk.j0;
            p.ld_dc = H;
            p.gates = gates.at(t, blk.r0) + blk.j0;
            p.ld_gates = gates.row;
            p.c = t == 0 ? a.c0 + blk.r0 * H + blk.j0 : c_all.at(t - 1, blk.r0) + blk.j0;
            p.ld_c = t == 0 ? H : c_all.row;
            p.tanh_c = tanh_c.at(t, blk.r0) + blk.j0;
            p.ld_tanh_c = tanh_c.row;
            p.dgates = dgates.at(t, blk.r0) + blk.j0;
            p.ld_dgates = dgates.row;
            cell.backward(p);
          } catch (...) {
            error.record();
          }
        }
        // every unit's dgates[t] is needed by every block's dh
#pragma omp barrier
        if (!blk.empty() && !error.failed()) {
          try {
            // dh_{t-1} = dgates[t] @ w_hh for this block; the next step's cell reads only this
            // block
            gemm::sgemm_packed_b(uk, blk.rows(), blk.units(), G4, 1.0f,
                                 {dgates.at(t, blk.r0), dgates.row, 1}, w_blk, 0.0f,
                                 {a.dh + blk.r0 * H + blk.j0, H, 1});
          } catch (...) {
            error.record();
          }
        }
      }
    }
    error.rethrow();
  }
  // Over all steps at once: dw_ih = dgates^T @ x, dw_hh = dgates^T @ h_prev, dx = dgates @ w_ih.
  const gemm::ConstMatrix dg{dgates_all.data(), ld_dg, 1}, dg_t{dgates_all.data(), 1, ld_dg};
  gemm::sgemm(G4, I, rows, 1.0f, dg_t, a.x, 0.0f, {a.dw_ih, I, 1});
  gemm::sgemm(G4, H, rows, 1.0f, dg_t, {a.h_prev, H, 1}, 0.0f, {a.dw_hh, H, 1});
  gemm::sgemm(rows, I, G4, 1.0f, dg, a.w_ih, 0.0f, {a.dx, I, 1});
  if (a.db) column_sums(rows, G4, dgates_all.data(), ld_dg, a.db);
}

}  // namespace ember::lstm
