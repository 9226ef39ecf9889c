// The BLIS loop nest around the micro-kernel, and the split of C over OpenMP threads.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <new>

#include "cpu/dispatch.h"
#include "cpu/threads.h"
#include "gemm/gemm.h"
#include "gemm/pack.h"

namespace ember::gemm {
namespace {

// Below this many flops per thread, extra threads cost more than they save.
constexpr double kMinFlopsPerThread = 2.0 * 64 * 64 * 64;
// A is read in place, unpacked, when B has at most this many columns: too few reuses of each A
// block to pay for packing it (measured at 64x784x128 and 256^3, bench/RESULTS.md). Packing B
// in place of reading it always paid off.
constexpr int64_t kDirectAMaxCols = 128;

// A product runs on the micro-kernel's narrow sibling when the big tile, padded to whole tiles,
// would do at least this many times the sibling's work (bench/RESULTS.md: the demo CNN's
// convolutions, 16 to 64 positions wide, on a 14x32 AVX-512 tile).
constexpr double kNarrowGain = 1.5;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t padded_work(const UKernel& uk, int64_t m, int64_t n) {
  return ceil_div(m, uk.mr) * uk.mr * (ceil_div(n, uk.nr) * uk.nr);
}

// uk, or its narrow sibling for an m x n product that uk's tiles would mostly pad.
const UKernel& fitted(const UKernel& uk, int64_t m, int64_t n) {
  if (uk.narrow && padded_work(uk, m, n) >= kNarrowGain * padded_work(*uk.narrow, m, n))
    return *uk.narrow;
  return uk;
}

// A 64-byte aligned scratch buffer that grows on demand and is kept for the thread's lifetime.
class Scratch {
 public:
  ~Scratch() { std::free(data_); }
  float* get(int64_t count) {
    if (count > size_) {
      std::free(data_);
      size_t bytes = (static_cast<size_t>(count) * sizeof(float) + 63) / 64 * 64;
      data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      size_ = data_ ? count : 0;
      if (!data_) throw std::bad_alloc();
    }
    return data_;
  }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
};

struct Workspace {
  Scratch a;  // packed A block, mc x kc (or one zero-padded micro-panel when A is read in place)
  Scratch b;  // packed B panel, kc x nc
};

Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

// Where the micro-kernel reads one A micro-panel: A(i, p) = data[i * rs + p * cs].
struct APanel {
  const float* data;
  int64_t rs;
  int64_t cs;
};

// C (mc, nc) = alpha * A-block @ B-panel + beta * C for one A block (packed or in place) and one
// packed B panel. a_panel(ir) gives the A micro-panel of rows ir..ir+MR; edge and strided C tiles
// go through a scratch tile so nothing outside C is touched.
template <class APanelAt>
void macro_kernel(const UKernel& uk, int64_t mc, int64_t nc, int64_t kc, float alpha,
                  APanelAt a_panel, const float* b_pack, float beta, Matrix c) {
  alignas(64) float tile[kMaxMR * kMaxNR];
  // NR columns at a time: the B micro-panel stays in L1 while every A micro-panel passes by.
  for (int64_t jr = 0; jr < nc; jr += uk.nr) {
    const int64_t nr = std::min<int64_t>(uk.nr, nc - jr);
    const float* bp = b_pack + jr * kc;
    // MR rows at a time: one register tile of C.
    for (int64_t ir = 0; ir < mc; ir += uk.mr) {
      const int64_t mr = std::min<int64_t>(uk.mr, mc - ir);
      const APanel ap = a_panel(ir);
      float* cij = c.data + ir * c.rs + jr * c.cs;
      if (mr == uk.mr && nr == uk.nr && c.cs == 1) {
        uk.fn(kc, ap.data, ap.rs, ap.cs, bp, uk.nr, cij, c.rs, alpha, beta);
        continue;
      }
      // Same rounding as the micro-kernel's own epilogue, so no element's value depends on
      // whether its tile is whole (and so on how C was cut among threads).
      uk.fn(kc, ap.data, ap.rs, ap.cs, bp, uk.nr, tile, uk.nr, 1.0f, 0.0f);
      for (int64_t i = 0; i < mr; ++i)
        for (int64_t j = 0; j < nr; ++j) {
          float& out = cij[i * c.rs + j * c.cs];
          const float acc = tile[i * uk.nr + j];
          out = beta == 0.0f ? acc * alpha : std::fma(acc, alpha, out * beta);
        }
    }
  }
}

// Equal depths of at most KC (784 = 392 + 392, not 384 + 384 + 16): a thin last block would
// spend its time loading and storing C.
int64_t kc_step(const UKernel& uk, int64_t k) { return ceil_div(k, ceil_div(k, uk.kc)); }

// C (m, nc) = alpha * A (m, kc) @ B-panel + beta * C for one packed B panel (kc, nc). A is read
// in place when `direct_a` (only its last rows, fewer than MR, are packed), else packed.
void a_blocks(const UKernel& uk, int64_t m, int64_t nc, int64_t kc, float alpha, ConstMatrix a,
              const float* b_pack, float beta, Matrix c, bool direct_a, float* a_pack) {
  const int64_t MR = uk.mr;
  // MC rows at a time: the packed A block stays in L2.
  for (int64_t ic = 0; ic < m; ic += uk.mc) {
    const int64_t mc = std::min(uk.mc, m - ic);
    const ConstMatrix a_blk{a.data + ic * a.rs, a.rs, a.cs};
    const int64_t full_rows = direct_a ? mc / MR * MR : 0;
    pack_a(mc - full_rows, kc, {a_blk.data + full_rows * a.rs, a.rs, a.cs}, MR, a_pack);
    auto a_panel = [&](int64_t ir) -> APanel {
      if (ir < full_rows) return {a_blk.data + ir * a.rs, a.rs, a.cs};
      return {a_pack + (ir - full_rows) * kc, 1, MR};
    };
    macro_kernel(uk, mc, nc, kc, alpha, a_panel, b_pack, beta, {c.data + ic * c.rs, c.rs, c.cs});
  }
}

// One thread's product, blocked for the caches around the micro-kernel `uk`.
void gemm_blocked(const UKernel& uk, int64_t m, int64_t n, int64_t k, float alpha, ConstMatrix a,
                  ConstMatrix b, float beta, Matrix c) {
  Workspace& ws = workspace();
  const bool direct_a = n <= kDirectAMaxCols;
  float* a_pack = ws.a.get(direct_a ? uk.mr * uk.kc : uk.mc * uk.kc);
  float* b_pack = ws.b.get(uk.kc * uk.nc);
  const int64_t kc_max = kc_step(uk, k);
  // NC columns at a time: the packed B panel stays in L3.
  for (int64_t jc = 0; jc < n; jc += uk.nc) {
    const int64_t nc = std::min(uk.nc, n - jc);
    // KC deep at a time: an A and a B micro-panel fit in L1 together.
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, k - pc);
      pack_b(kc, nc, {b.data + pc * b.rs + jc * b.cs, b.rs, b.cs}, uk.nr, b_pack);
      a_blocks(uk, m, nc, kc, alpha, {a.data + pc * a.cs, a.rs, a.cs}, b_pack,
               pc == 0 ? beta : 1.0f, {c.data + jc * c.cs, c.rs, c.cs}, direct_a, a_pack);
    }
  }
}

// C = beta * C (k == 0: the product is empty).
void scale(int64_t m, int64_t n, float beta, Matrix c) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& out = c.data[i * c.rs + j * c.cs];
      out = beta == 0.0f ? 0.0f : beta * out;
    }
}

// How C is cut among threads: tm row bands x tn column bands.
struct Grid {
  int tm;
  int tn;
};

// The grid with the least work per thread (whole register tiles), then the squarest blocks
// (least packing per flop), then the fewest threads.
Grid split(int threads, int64_t m, int64_t n, int64_t mr, int64_t nr) {
  const int64_t units_m = ceil_div(m, mr), units_n = ceil_div(n, nr);
  Grid best{1, 1};
  int64_t best_area = units_m * units_n, best_perimeter = units_m * mr + units_n * nr;
  for (int t = 2; t <= threads; ++t)
    for (int tm = 1; tm <= t; ++tm) {
      if (t % tm) continue;
      const int tn = t / tm;
      if (tm > units_m || tn > units_n) continue;
      const int64_t bm = ceil_div(units_m, tm), bn = ceil_div(units_n, tn);
      const int64_t area = bm * bn, perimeter = bm * mr + bn * nr;
      if (area < best_area || (area == best_area && perimeter < best_perimeter)) {
        best = {tm, tn};
        best_area = area;
        best_perimeter = perimeter;
      }
    }
  return best;
}

// [begin, end) of part `i` of `parts` over `d` elements, cut at multiples of `r`.
void band(int64_t d, int64_t r, int parts, int i, int64_t& begin, int64_t& end) {
  const int64_t units = ceil_div(d, r);
  begin = std::min(d, units * i / parts * r);
  end = std::min(d, units * (i + 1) / parts * r);
}

}  // namespace

void sgemm_with(const UKernel& table_uk, int threads, int64_t m, int64_t n, int64_t k,
                float alpha, ConstMatrix a, ConstMatrix b, float beta, Matrix c) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    scale(m, n, beta, c);
    return;
  }
  // The micro-kernel stores rows of C: a column-major C is computed as C^T = B^T @ A^T.
  if (c.cs != 1 && c.rs == 1) {
    std::swap(m, n);
    std::swap(a, b);
    std::swap(a.rs, a.cs);
    std::swap(b.rs, b.cs);
    std::swap(c.rs, c.cs);
  }
  const UKernel& uk = fitted(table_uk, m, n);
  const double flops = 2.0 * m * n * k;
  threads = static_cast<int>(std::clamp(flops / kMinFlopsPerThread, 1.0, double(std::max(threads, 1))));
  const Grid grid = split(threads, m, n, uk.mr, uk.nr);
  if (grid.tm * grid.tn == 1) {
    gemm_blocked(uk, m, n, k, alpha, a, b, beta, c);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(grid.tm * grid.tn)
  {
    const int t = omp_get_thread_num();
    int64_t i0, i1, j0, j1;
    band(m, uk.mr, grid.tm, t / grid.tn, i0, i1);
    band(n, uk.nr, grid.tn, t % grid.tn, j0, j1);
    try {
      if (i0 < i1 && j0 < j1)
        gemm_blocked(uk, i1 - i0, j1 - j0, k, alpha, {a.data + i0 * a.rs, a.rs, a.cs},
                     {b.data + j0 * b.cs, b.rs, b.cs}, beta,
                     {c.data + i0 * c.rs + j0 * c.cs, c.rs, c.cs});
    } catch (...) {
#pragma omp critical(ember_gemm_error)
      error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void sgemm(int64_t m, int64_t n, int64_t k, float alpha, ConstMatrix a, ConstMatrix b, float beta,
           Matrix c) {
  sgemm_with(*cpu::kernels().gemm, cpu::num_threads(), m, n, k, alpha, a, b, beta, c);
}

int64_t packed_b_size(const UKernel& uk, int64_t k, int64_t n) {
  return k * (ceil_div(n, uk.nr) * uk.nr);
}

// Each KC-deep block of B, all n columns of it as micro-panels, one block after the other.
void pack_b_once(const UKernel& uk, int64_t k, int64_t n, ConstMatrix b, float* dst) {
  const int64_t n_pad = ceil_div(n, uk.nr) * uk.nr, kc_max = kc_step(uk, k);
  for (int64_t pc = 0; pc < k; pc += kc_max)
    pack_b(std::min(kc_max, k - pc), n, {b.data + pc * b.rs, b.rs, b.cs}, uk.nr, dst + pc * n_pad);
}

void sgemm_packed_b(const UKernel& uk, int64_t m, int64_t n, int64_t k, float alpha, ConstMatrix a,
                    const float* b_packed, float beta, Matrix c) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    scale(m, n, beta, c);
    return;
  }
  const bool direct_a = n <= kDirectAMaxCols;
  float* a_pack = workspace().a.get(direct_a ? uk.mr * uk.kc : uk.mc * uk.kc);
  const int64_t n_pad = ceil_div(n, uk.nr) * uk.nr, kc_max = kc_step(uk, k);
  for (int64_t jc = 0; jc < n; jc += uk.nc) {
    const int64_t nc = std::min(uk.nc, n - jc);
    for (int64_t pc = 0; pc < k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, k - pc);
      a_blocks(uk, m, nc, kc, alpha, {a.data + pc * a.cs, a.rs, a.cs},
               b_packed + pc * n_pad + jc * kc, pc == 0 ? beta : 1.0f,
               {c.data + jc * c.cs, c.rs, c.cs}, direct_a, a_pack);
    }
  }
}

}  // namespace ember::gemm
