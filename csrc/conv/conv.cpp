// conv2d forward and backward as im2col + SGEMM, one chunk of output positions at a time:
//   forward   y_n (K, P*Q)          = W (K, C*R*S) @ cols_n (C*R*S, P*Q)            (+ b)
//   backward  dcols_n (C*R*S, P*Q)  = W^T @ dy_n, then dx_n = col2im(dcols_n)
//             dW^T (C*R*S, K)      += cols_n @ dy_n^T,   db (K) += row sums of dy_n
// each product taken group by group on the groups' blocks of rows (W and cols are block-diagonal
// in the groups). Threads work on (image, chunk) pairs or images, each running a single-threaded
// GEMM, when there are enough of them; otherwise every GEMM uses all the threads.
#include <omp.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <stdexcept>
#include <vector>

#include "conv/conv.h"
#include "cpu/dispatch.h"
#include "cpu/threads.h"
#include "gemm/gemm.h"

namespace ember::conv {
namespace {

using gemm::ConstMatrix;
using gemm::UKernel;

// im2col writes at most this many bytes per chunk (per thread), so that the chunk is still in L2
// when the GEMM packs it into B panels ...
constexpr int64_t kChunkBytes = 256 * 1024;
// ... as a whole number of every ISA's register-tile widths (NR = 8, 16, 32), and never fewer
// than kMinChunk positions: dW's GEMM is a chunk deep, and at <= 128 columns the GEMM reads W in
// place instead of packing it for every chunk (gemm/loops.cpp, kDirectAMaxCols). So layers with
// C*R*S >= 512 run 128 positions at a time; 128 to 786 KiB chunks measured within noise of each
// other on (8, 64, 56, 56) and (8, 128, 28, 28) 3x3 layers (one Zen 3 core, shared machine).
constexpr int64_t kChunkAlign = 32;
constexpr int64_t kMinChunk = 128;
static_assert(kMinChunk % kChunkAlign == 0, "the minimum chunk is a whole number of tiles");

// The one stride that walks `nd` dims in C order (dims of size 1 impose nothing), if there is one.
bool fold(int nd, const int64_t* shape, const int64_t* strides, int64_t& stride) {
  stride = 1;
  for (int d = 0; d < nd; ++d)
    if (shape[d] == 0) return true;
  int64_t span = 0;  // elements spanned by the dims inside d (0: no dim longer than 1 yet)
  for (int d = nd - 1; d >= 0; --d) {
    if (shape[d] == 1) continue;
    if (span == 0) {
      stride = strides[d];
      span = shape[d];
    } else if (strides[d] != stride * span) {
      return false;
    } else {
      span *= shape[d];
    }
  }
  return true;
}

// Threads take independent work items (single-threaded GEMMs each) when they divide evenly or
// are many enough that the remainder is noise; otherwise the GEMMs themselves are threaded.
bool spread(int64_t items, int threads) {
  return threads > 1 && items >= threads && (items % threads == 0 || items >= 4 * threads);
}

ConstMatrix rows_of(ConstMatrix m, int64_t first) { return {m.data + first * m.rs, m.rs, m.cs}; }
ConstMatrix transposed(ConstMatrix m) { return {m.data, m.cs, m.rs}; }

// w (K, C/groups, R, S) as the matrix W (K, C/groups*R*S): read in place when its last three dims
// fold into one stride, else from a contiguous copy.
class Weights {
 public:
  Weights(const Geometry& g, Tensor4 w) : kg_(g.k / g.groups) {
    const int64_t cg = g.c / g.groups, cols = cg * g.r * g.s;
    const int64_t shape[3] = {cg, g.r, g.s}, strides[3] = {w.s1, w.s2, w.s3};
    int64_t cs;
    if (fold(3, shape, strides, cs)) {
      m_ = {w.data, w.s0, cs};
      return;
    }
    copy_.resize(g.k * cols);
    for (int64_t k = 0; k < g.k; ++k)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t r = 0; r < g.r; ++r)
          for (int64_t s = 0; s < g.s; ++s)
            copy_[k * cols + (c * g.r + r) * g.s + s] =
                w.data[k * w.s0 + c * w.s1 + r * w.s2 + s * w.s3];
    m_ = {copy_.data(), cols, 1};
  }
  // Group gi's block W_g (K/groups, C/groups*R*S).
  ConstMatrix group(int64_t gi) const { return rows_of(m_, gi * kg_); }

 private:
  int64_t kg_;
  ConstMatrix m_;
  std::vector<float> copy_;
};

// How one image's column matrix is made. A 1x1, stride-1, unpadded convolution whose (H, W) fold
// into one stride reads the image itself as its (C, H*W) column matrix; any other goes through
// im2col, `chunk` output positions at a time.
struct Plan {
  int64_t rows;       // C*R*S
  int64_t rows_g;     // rows per group, C/groups*R*S
  int64_t kg;         // output channels per group
  int64_t positions;  // P*Q
  int64_t chunk;
  bool direct;
  int64_t x_step;  // direct: the stride of x along H*W

  int64_t chunks() const { return (positions + chunk - 1) / chunk; }
};

Plan make_plan(const Geometry& g, Tensor4 x) {
  Plan plan;
  plan.rows = g.c * g.r * g.s;
  plan.rows_g = plan.rows / g.groups;
  plan.kg = g.k / g.groups;
  plan.positions = g.p * g.q;
  const int64_t hw[2] = {g.h, g.w}, hw_strides[2] = {x.s2, x.s3};
  plan.direct = g.r == 1 && g.s == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
                g.pad_w == 0 && g.p == g.h && g.q == g.w && fold(2, hw, hw_strides, plan.x_step);
  const int64_t fit = kChunkBytes / (int64_t(sizeof(float)) * std::max<int64_t>(plan.rows, 1));
  plan.chunk = std::min(plan.positions, std::max(kMinChunk, fit / kChunkAlign * kChunkAlign));
  return plan;
}

// Image n of a batch, as the (C, H, W) Tensor4 the one-image functions take.
Tensor4 image(Tensor4 x, int64_t n) { return {x.data + n * x.s0, 0, x.s1, x.s2, x.s3}; }

// The column matrix of image xn for positions [l0, l1): a view of xn when direct, else im2col'd
// into buf (rows (C*R*S, l1 - l0)), by channel over `threads` threads.
ConstMatrix columns(const Geometry& g, const Plan& plan, Tensor4 xn, int64_t l0, int64_t l1,
                    float* buf, int threads) {
  if (plan.direct) return {xn.data + l0 * plan.x_step, xn.s1, plan.x_step};
  const int64_t nl = l1 - l0;
  if (threads > 1 && g.c > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < g.c; ++c) im2col(g, xn, c, c + 1, l0, l1, buf, nl);
  } else {
    im2col(g, xn, 0, g.c, l0, l1, buf, nl);
  }
  return {buf, nl, 1};
}

// y_n[:, l0:l1] = W @ cols (+ b) for one image's chunk, y_n (K, P*Q) contiguous.
void forward_chunk(const Geometry& g, const Plan& plan, const UKernel& uk, int threads,
                   const Weights& w, const float* b, int64_t b_stride, Tensor4 xn, float* yn,
                   int64_t l0, int64_t l1, float* buf) {
  const int64_t nl = l1 - l0;
  const ConstMatrix cols = columns(g, plan, xn, l0, l1, buf, threads);
  for (int64_t gi = 0; gi < g.groups; ++gi)
    gemm::sgemm_with(uk, threads, plan.kg, nl, plan.rows_g, 1.0f, w.group(gi),
                     rows_of(cols, gi * plan.rows_g), 0.0f,
                     {yn + gi * plan.kg * plan.positions + l0, plan.positions, 1});
  if (!b) return;
  for (int64_t k = 0; k < g.k; ++k) {
    float* row = yn + k * plan.positions;
    const float bias = b[k * b_stride];
    for (int64_t l = l0; l < l1; ++l) row[l] += bias;
  }
}

// Where one image's gradients go: dx_n (C, H, W) is overwritten, dw_t and db are summed into.
struct ImageGrads {
  float* dx;
  float* dw_t;  // (groups, C/groups*R*S, K/groups): each group's dW_g transposed
  double* db;   // (K)
};

// Scratch for one thread's backward: the columns of a chunk and their gradient.
struct ChunkBuffers {
  float* cols;
  float* dcols;
};

// One image's share of every gradient; dyn is its (K, P*Q) matrix.
void backward_image(const Geometry& g, const Plan& plan, const UKernel& uk, int threads,
                    const Weights* w, ConstMatrix dyn, Tensor4 xn, ImageGrads out,
                    ChunkBuffers buf) {
  if (out.dx && !plan.direct) std::fill(out.dx, out.dx + g.c * g.h * g.w, 0.0f);
  for (int64_t l0 = 0; l0 < plan.positions; l0 += plan.chunk) {
    const int64_t l1 = std::min(plan.positions, l0 + plan.chunk), nl = l1 - l0;
    const ConstMatrix dy{dyn.data + l0 * dyn.cs, dyn.rs, dyn.cs};
    if (out.dw_t) {
      // dW_g^T += cols_g (C/groups*R*S, nl) @ dy_g^T (nl, K/groups): the column matrix, the
      // large operand, is the GEMM's A, read in place for up to 128 output channels; as B it
      // would be packed again for every chunk (measured 1.5-1.9x slower on Zen 4).
      const ConstMatrix cols = columns(g, plan, xn, l0, l1, buf.cols, threads);
      for (int64_t gi = 0; gi < g.groups; ++gi)
        gemm::sgemm_with(uk, threads, plan.rows_g, plan.kg, nl, 1.0f,
                         rows_of(cols, gi * plan.rows_g), transposed(rows_of(dy, gi * plan.kg)),
                         1.0f, {out.dw_t + gi * plan.rows_g * plan.kg, plan.kg, 1});
    }
    if (out.dx && plan.direct) {
      // dx_g[:, l0:l1] = W_g^T @ dy_g: the image is its own column matrix
      const int64_t cg = g.c / g.groups;
      for (int64_t gi = 0; gi < g.groups; ++gi)
        gemm::sgemm_with(uk, threads, cg, nl, plan.kg, 1.0f, transposed(w->group(gi)),
                         rows_of(dy, gi * plan.kg), 0.0f,
                         {out.dx + gi * cg * plan.positions + l0, plan.positions, 1});
    } else if (out.dx) {
      // dcols_g = W_g^T @ dy_g, then scattered back onto the image
      for (int64_t gi = 0; gi < g.groups; ++gi)
        gemm::sgemm_with(uk, threads, plan.rows_g, nl, plan.kg, 1.0f, transposed(w->group(gi)),
                         rows_of(dy, gi * plan.kg), 0.0f,
                         {buf.dcols + gi * plan.rows_g * nl, nl, 1});
      if (threads > 1 && g.c > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t c = 0; c < g.c; ++c) col2im(g, buf.dcols, nl, 1, c, c + 1, l0, l1, out.dx);
      } else {
        col2im(g, buf.dcols, nl, 1, 0, g.c, l0, l1, out.dx);
      }
    }
  }
  if (!out.db) return;
  for (int64_t k = 0; k < g.k; ++k) {
    const float* row = dyn.data + k * dyn.rs;
    double sum = 0.0;
    for (int64_t l = 0; l < plan.positions; ++l) sum += row[l * dyn.cs];
    out.db[k] += sum;
  }
}

// a * b elements of scratch, or std::length_error (a ValueError in Python) if that wraps around.
int64_t scratch_size(int64_t a, int64_t b) {
  int64_t n;
  if (__builtin_mul_overflow(a, b, &n))
    throw std::length_error("conv2d: the scratch space would pass 2**63 elements");
  return n;
}

// Rethrows, after an OpenMP region, the first exception any of its threads caught.
class ErrorSlot {
 public:
  template <class F>
  void run(F&& f) {
    try {
      f();
    } catch (...) {
#pragma omp critical(ember_conv_error)
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

// dw (K, C/groups*R*S) = the sum over `parts` partials of dW^T, each (groups, C/groups*R*S,
// K/groups) and dw_size floats apart, added in order (so the result does not depend on timing).
void dw_from_transposed(const Geometry& g, const Plan& plan, const float* partials, int parts,
                        int threads, float* dw) {
  const int64_t dw_size = g.k * plan.rows_g;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < g.k; ++k) {
    const int64_t gi = k / plan.kg, kk = k % plan.kg;
    const float* block = partials + gi * plan.rows_g * plan.kg + kk;
    for (int64_t j = 0; j < plan.rows_g; ++j) {
      float sum = 0.0f;
      for (int t = 0; t < parts; ++t) sum += block[t * dw_size + j * plan.kg];
      dw[k * plan.rows_g + j] = sum;
    }
  }
}

}  // namespace

void conv2d_forward(const Geometry& g, Tensor4 x, Tensor4 w, const float* b, int64_t b_stride,
                    float* y) {
  if (g.n == 0 || g.k == 0 || g.p * g.q == 0) return;
  if (is_depthwise(g)) {
    depthwise_forward(g, x, w, b, b_stride, y);
    return;
  }
  const Weights weights(g, w);
  const Plan plan = make_plan(g, x);
  const UKernel& uk = *cpu::kernels().gemm;
  const int threads = cpu::num_threads();
  const int64_t per_image = plan.chunks(), buf_size = plan.direct ? 0 : plan.rows * plan.chunk;
  const int64_t y_image = g.k * plan.positions;

  if (!spread(g.n * per_image, threads)) {
    std::vector<float> buf(buf_size);
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t l0 = 0; l0 < plan.positions; l0 += plan.chunk)
        forward_chunk(g, plan, uk, threads, weights, b, b_stride, image(x, n), y + n * y_image, l0,
                      std::min(plan.positions, l0 + plan.chunk), buf.data());
    return;
  }
  // (image, chunk) pairs over the threads, consecutive chunks of an image on one thread.
  std::vector<float> buf(scratch_size(buf_size, threads));
  ErrorSlot error;
#pragma omp parallel num_threads(threads)
  {
    float* mine = buf.data() + omp_get_thread_num() * buf_size;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < g.n * per_image; ++item) {
      const int64_t n = item / per_image, l0 = item % per_image * plan.chunk;
      error.run([&] {
        forward_chunk(g, plan, uk, 1, weights, b, b_stride, image(x, n), y + n * y_image, l0,
                      std::min(plan.positions, l0 + plan.chunk), mine);
      });
    }
  }
  error.rethrow();
}

void conv2d_backward(const Geometry& g, Tensor4 dy, Tensor4 x, Tensor4 w, float* dx, float* dw,
                     float* db) {
  const int64_t dx_size = g.n * g.c * g.h * g.w, dw_size = g.k * (g.c / g.groups) * g.r * g.s;
  if (g.n == 0 || g.k == 0 || g.p * g.q == 0) {  // an empty sum: every gradient is zero
    if (dx) std::fill(dx, dx + dx_size, 0.0f);
    if (dw) std::fill(dw, dw + dw_size, 0.0f);
    if (db) std::fill(db, db + g.k, 0.0f);
    return;
  }
  if (is_depthwise(g)) {
    depthwise_backward(g, dy, x, w, dx, dw, db);
    return;
  }
  // dy_n as the matrix (K, P*Q): in place when (P, Q) fold into one stride, else copied.
  std::vector<float> dy_copy;
  int64_t dy_step;
  const int64_t pq[2] = {g.p, g.q}, pq_strides[2] = {dy.s2, dy.s3};
  if (!fold(2, pq, pq_strides, dy_step)) {
    dy_copy.resize(g.n * g.k * g.p * g.q);
    for (int64_t nk = 0; nk < g.n * g.k; ++nk)
      for (int64_t p = 0; p < g.p; ++p)
        for (int64_t q = 0; q < g.q; ++q)
          dy_copy[(nk * g.p + p) * g.q + q] =
              dy.data[nk / g.k * dy.s0 + nk % g.k * dy.s1 + p * dy.s2 + q * dy.s3];
    dy = {dy_copy.data(), g.k * g.p * g.q, g.p * g.q, g.q, 1};
    dy_step = 1;
  }
  auto dy_image = [&](int64_t n) -> ConstMatrix { return {dy.data + n * dy.s0, dy.s1, dy_step}; };

  const Plan plan = make_plan(g, x);
  const UKernel& uk = *cpu::kernels().gemm;
  const int threads = cpu::num_threads();
  std::optional<Weights> weights;  // only the input gradient reads W
  if (dx) weights.emplace(g, w);
  const Weights* wp = dx ? &*weights : nullptr;
  const int64_t x_image = g.c * g.h * g.w;
  const int64_t cols_size = dw && !plan.direct ? plan.rows * plan.chunk : 0;
  const int64_t dcols_size = dx && !plan.direct ? plan.rows * plan.chunk : 0;

  if (!spread(g.n, threads)) {
    std::vector<float> cols(cols_size), dcols(dcols_size), dw_t(dw ? dw_size : 0);
    std::vector<double> db_sum(db ? g.k : 0);
    for (int64_t n = 0; n < g.n; ++n)
      backward_image(g, plan, uk, threads, wp, dy_image(n), image(x, n),
                     {dx ? dx + n * x_image : nullptr, dw ? dw_t.data() : nullptr,
                      db ? db_sum.data() : nullptr},
                     {cols.data(), dcols.data()});
    if (dw) dw_from_transposed(g, plan, dw_t.data(), 1, threads, dw);
    if (db) std::copy(db_sum.begin(), db_sum.end(), db);
    return;
  }
  // Images over the threads. Each thread sums dW^T and db into partials of its own, and the
  // partials are added in thread order: the result does not depend on timing.
  std::vector<float> cols(scratch_size(cols_size, threads));
  std::vector<float> dcols(scratch_size(dcols_size, threads));
  std::vector<float> dw_partial(dw ? scratch_size(dw_size, threads) : 0);
  std::vector<double> db_partial(db ? scratch_size(g.k, threads) : 0);
  ErrorSlot error;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    float* dw_mine = dw ? dw_partial.data() + t * dw_size : nullptr;
    double* db_mine = db ? db_partial.data() + t * g.k : nullptr;
    const ChunkBuffers mine{cols.data() + t * cols_size, dcols.data() + t * dcols_size};
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.n; ++n)
      error.run([&] {
        backward_image(g, plan, uk, 1, wp, dy_image(n), image(x, n),
                       {dx ? dx + n * x_image : nullptr, dw_mine, db_mine}, mine);
      });
  }
  error.rethrow();
  if (dw) dw_from_transposed(g, plan, dw_partial.data(), threads, threads, dw);
  if (db)
    for (int64_t k = 0; k < g.k; ++k) {
      double sum = 0.0;
      for (int t = 0; t < threads; ++t) sum += db_partial[t * g.k + k];
      db[k] = static_cast<float>(sum);
    }
}

}  // namespace ember::conv
