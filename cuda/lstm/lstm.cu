// The LSTM layer's kernels and time loops (lstm.h): the fused cell forward and backward, a row
// copy for the states, and the bias gradient's column sums; every product is an sgemm.
// Each step is two launches (the recurrent sgemm and the cell), so at small batch the loop is
// bound by launch overhead: layer_forward and layer_backward replay the whole layer as a CUDA
// graph when asked (a.graph), one cached graph per argument set (common/graph.h).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/check.h"
#include "common/graph.h"
#include "gemm/gemm.h"
#include "lstm/lstm.h"

namespace ember::cuda::lstm {

Seq seq_of(float* data, bool batch_major, int64_t T, int64_t B, int64_t n) {
  if (batch_major) return {data, n, T * n};
  return {data, B * n, n};
}

namespace {

constexpr int kCellThreads = 128;  // threads along the hidden units of a batch row
constexpr int kCopyThreads = 256;
constexpr int kSumCols = 32;       // column sums: a block is 32 columns x 16 row lanes
constexpr int kSumRows = 16;
constexpr int64_t kMaxGridY = 65535;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// (hidden units, batch rows) of the elementwise kernels: blocks along H, block rows along B
// (grid-stride beyond 65535 rows).
dim3 rows_grid(int64_t rows, int64_t cols, int threads) {
  return dim3(static_cast<unsigned>(ceil_div(cols, threads)),
              static_cast<unsigned>(std::min(rows, kMaxGridY)));
}

__device__ __forceinline__ float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// ---- kernels ---------------------------------------------------------------------------------

struct CellForwardArgs {
  int64_t batch, hidden;
  float* gates;  // (B, 4H) rows ld_gates apart: pre-activations in, activations out
  int64_t ld_gates;
  const float* bias;  // (4H) or null
  const float* c;     // c_{t-1}
  int64_t ld_c;
  float* c_next;  // may be c (the running state)
  int64_t ld_c_next;
  float* tanh_c;  // or null
  int64_t ld_tanh_c;
  float* h_next;
  int64_t ld_h_next;
  float* h_copy;  // or null: a second destination of h_next (h_prev of the next step, or h_n)
  int64_t ld_h_copy;
  float* c_copy;  // or null: a second destination of c_next (c_n)
  int64_t ld_c_copy;
};

// One step's cell for batch row b and unit j: reads the four gate pre-activations once, writes
// their activations back in place (the backward reads them), c_next, tanh(c_next) and h_next.
__global__ void __launch_bounds__(kCellThreads) lstm_cell_forward_kernel(const CellForwardArgs a) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kCellThreads + threadIdx.x;
  if (j >= a.hidden) return;
  const int64_t H = a.hidden;
  for (int64_t b = blockIdx.y; b < a.batch; b += gridDim.y) {
    float* g = a.gates + b * a.ld_gates + j;
    float pi = g[0], pf = g[H], pg = g[2 * H], po = g[3 * H];
    if (a.bias) {
      pi += a.bias[j];
      pf += a.bias[H + j];
      pg += a.bias[2 * H + j];
      po += a.bias[3 * H + j];
    }
    const float i = sigmoid(pi), f = sigmoid(pf), gt = tanhf(pg), o = sigmoid(po);
    const float c_next = f * a.c[b * a.ld_c + j] + i * gt;
    const float tc = tanhf(c_next);
    const float h = o * tc;
    g[0] = i;
    g[H] = f;
    g[2 * H] = gt;
    g[3 * H] = o;
    a.c_next[b * a.ld_c_next + j] = c_next;
    if (a.tanh_c) a.tanh_c[b * a.ld_tanh_c + j] = tc;
    a.h_next[b * a.ld_h_next + j] = h;
    if (a.h_copy) a.h_copy[b * a.ld_h_copy + j] = h;
    if (a.c_copy) a.c_copy[b * a.ld_c_copy + j] = c_next;
  }
}

struct CellBackwardArgs {
  int64_t batch, hidden;
  const float* dy;  // this step's dL/dh from above, (b, j) at dy[b*dy_b + j*dy_j]; or null
  int64_t dy_b, dy_j;
  const float* dh;  // (B, H) contiguous: dL/dh_t through the recurrence
  float* dc;        // (B, H) contiguous: dL/dc_t in, dL/dc_{t-1} out
  const float* gates;  // the step's activations (i, f, g, o)
  int64_t ld_gates;
  const float* c;  // c_{t-1}
  int64_t ld_c;
  const float* tanh_c;  // tanh(c_t)
  int64_t ld_tanh_c;
  float* dgates;  // dL/d(pre-activations) of the step
  int64_t ld_dgates;
};

// The cell's backward for batch row b and unit j, from dL/dh_t = dy + dh and dL/dc_t = dc.
__global__ void __launch_bounds__(kCellThreads)
    lstm_cell_backward_kernel(const CellBackwardArgs a) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kCellThreads + threadIdx.x;
  if (j >= a.hidden) return;
  const int64_t H = a.hidden;
  for (int64_t b = blockIdx.y; b < a.batch; b += gridDim.y) {
    const float* g = a.gates + b * a.ld_gates + j;
    const float i = g[0], f = g[H], gt = g[2 * H], o = g[3 * H];
    const float tc = a.tanh_c[b * a.ld_tanh_c + j];
    const float c = a.c[b * a.ld_c + j];
    const float dh = a.dh[b * H + j] + (a.dy ? a.dy[b * a.dy_b + j * a.dy_j] : 0.0f);
    const float dc = a.dc[b * H + j] + dh * o * (1.0f - tc * tc);
    float* dg = a.dgates + b * a.ld_dgates + j;
    dg[0] = dc * gt * i * (1.0f - i);
    dg[H] = dc * c * f * (1.0f - f);
    dg[2 * H] = dc * i * (1.0f - gt * gt);
    dg[3 * H] = dh * tc * o * (1.0f - o);
    a.dc[b * H + j] = dc * f;
  }
}

// dst (rows, cols), rows ld_dst apart with contiguous columns, = src (any strides), or zeros when
// src is null.
__global__ void copy_rows_kernel(int64_t rows, int64_t cols, Matrix src, float* dst,
                                 int64_t ld_dst) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kCopyThreads + threadIdx.x;
  if (j >= cols) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    dst[r * ld_dst + j] = src.data ? src.data[r * src.rs + j * src.cs] : 0.0f;
}

// out[j] = the sum over rows r of a[r*ld + j]: a block owns 32 columns, its 16 row lanes each
// summing every 16th row (a warp reads 32 consecutive floats of one row), then one lane per column
// adds the 16 partial sums in a fixed order.
__global__ void __launch_bounds__(kSumCols* kSumRows)
    column_sums_kernel(int64_t rows, int64_t cols, const float* a, int64_t ld, float* out) {
  __shared__ float partial[kSumRows][kSumCols + 1];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * kSumCols + threadIdx.x;
  float acc = 0.0f;
  if (j < cols)
    for (int64_t r = threadIdx.y; r < rows; r += kSumRows) acc += a[r * ld + j];
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float sum = 0.0f;
    for (int k = 0; k < kSumRows; ++k) sum += partial[k][threadIdx.x];
    out[j] = sum;
  }
}

// ---- launchers -------------------------------------------------------------------------------

void copy_rows(int64_t rows, int64_t cols, Matrix src, float* dst, int64_t ld_dst,
               cudaStream_t stream) {
  if (rows == 0 || cols == 0) return;
  copy_rows_kernel<<<rows_grid(rows, cols, kCopyThreads), kCopyThreads, 0, stream>>>(
      rows, cols, src, dst, ld_dst);
  EMBER_CUDA_LAUNCH_CHECK("copy_rows_kernel");
}

void zero(float* data, int64_t count, cudaStream_t stream) {
  if (count > 0) EMBER_CUDA_CHECK(cudaMemsetAsync(data, 0, count * sizeof(float), stream));
}

// C (m x n, rows ldc apart) = op(A) @ op(B) + beta * C through sgemm; an empty reduction
// (k == 0) leaves beta * C, so that nothing depends on how sgemm treats k == 0.
void product(int64_t m, int64_t n, int64_t k, Matrix a, Matrix b, float* c, int64_t ldc,
             float beta, bool tf32, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.0f) copy_rows(m, n, {nullptr, 0, 0}, c, ldc, stream);  // beta is 0 or 1 here
    return;
  }
  GemmArgs g;
  g.m = m, g.n = n, g.k = k;
  g.a = a.data, g.a_row = a.rs, g.a_col = a.cs;
  g.b = b.data, g.b_row = b.rs, g.b_col = b.cs;
  g.c = c, g.c_row = ldc, g.c_col = 1;
  g.beta = beta;
  g.tf32 = tf32;
  sgemm(g, stream);
}

Matrix transposed(Matrix m) { return {m.data, m.cs, m.rs}; }

// The layers whose forward and backward keep their graphs at once (a 4-layer LSTM trained with
// one batch shape uses 8; more distinct argument sets replace the least recently used).
constexpr size_t kCachedGraphs = 16;

GraphCache& graphs() {
  static GraphCache* cache = new GraphCache(kCachedGraphs);
  return *cache;
}

int64_t bits(const void* p) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(p)); }

// Graph keys: every field of the arguments but `graph`, after a tag for the direction.
std::vector<int64_t> key_of(const LayerForward& a) {
  return {0, a.T, a.B, a.I, a.H, a.batch_major, a.tf32,
          bits(a.x.data), a.x.rs, a.x.cs,
          bits(a.w_ih.data), a.w_ih.rs, a.w_ih.cs,
          bits(a.w_hh.data), a.w_hh.rs, a.w_hh.cs,
          bits(a.bias),
          bits(a.h0.data), a.h0.rs, a.h0.cs,
          bits(a.c0), bits(a.gates),
          bits(a.y.data), a.y.step, a.y.row,
          bits(a.h_n), bits(a.c_n), bits(a.c_all), bits(a.tanh_c), bits(a.h_prev)};
}

std::vector<int64_t> key_of(const LayerBackward& a) {
  return {1, a.T, a.B, a.I, a.H, a.batch_major, a.tf32,
          bits(a.x.data), a.x.rs, a.x.cs,
          bits(a.w_ih.data), a.w_ih.rs, a.w_ih.cs,
          bits(a.w_hh.data), a.w_hh.rs, a.w_hh.cs,
          bits(a.c0), bits(a.gates), bits(a.c_all), bits(a.tanh_c), bits(a.h_prev),
          bits(a.dy), a.dy_t, a.dy_b, a.dy_j,
          bits(a.dh), bits(a.dc), bits(a.dgates),
          bits(a.dx), bits(a.dw_ih), bits(a.dw_hh), bits(a.db)};
}


void enqueue_forward(const LayerForward& a, cudaStream_t stream) {
  const int64_t T = a.T, B = a.B, H = a.H, G4 = 4 * H;
  if (B == 0 || H == 0) return;
  if (T == 0) {
    copy_rows(B, H, a.h0, a.h_n, H, stream);
    copy_rows(B, H, {a.c0, H, 1}, a.c_n, H, stream);
    return;
  }
  const bool save = a.c_all != nullptr;
  // the input projection of every step at once: gates = x @ w_ih^T, (T*B, I) @ (I, 4H)
  product(T * B, G4, a.I, a.x, transposed(a.w_ih), a.gates, G4, 0.0f, a.tf32, stream);
  const Seq gates = seq_of(a.gates, a.batch_major, T, B, G4);
  Seq c_all{}, tanh_c{}, h_prev{};
  if (save) {
    c_all = seq_of(a.c_all, a.batch_major, T, B, H);
    tanh_c = seq_of(a.tanh_c, a.batch_major, T, B, H);
    h_prev = seq_of(a.h_prev, a.batch_major, T, B, H);
    copy_rows(B, H, a.h0, h_prev.at(0, 0), h_prev.row, stream);  // h_{-1} = h0 for dw_hh
  }
  const dim3 grid = rows_grid(B, H, kCellThreads);
  for (int64_t t = 0; t < T; ++t) {
    // gates[t] += h_{t-1} @ w_hh^T (nothing when h0 is zeros)
    const Matrix h = t == 0 ? a.h0 : Matrix{a.y.at(t - 1, 0), a.y.row, 1};
    if (h.data)
      product(B, G4, H, h, transposed(a.w_hh), gates.at(t, 0), gates.row, 1.0f, a.tf32, stream);
    CellForwardArgs c{};
    c.batch = B, c.hidden = H;
    c.gates = gates.at(t, 0), c.ld_gates = gates.row;
    c.bias = a.bias;
    if (save) {
      c.c = t == 0 ? a.c0 : c_all.at(t - 1, 0);
      c.ld_c = t == 0 ? H : c_all.row;
      c.c_next = c_all.at(t, 0), c.ld_c_next = c_all.row;
      c.tanh_c = tanh_c.at(t, 0), c.ld_tanh_c = tanh_c.row;
    } else {  // c_n holds the running state
      c.c = t == 0 ? a.c0 : a.c_n, c.ld_c = H;
      c.c_next = a.c_n, c.ld_c_next = H;
    }
    c.h_next = a.y.at(t, 0), c.ld_h_next = a.y.row;
    if (t + 1 == T) {
      c.h_copy = a.h_n, c.ld_h_copy = H;
      if (save) c.c_copy = a.c_n, c.ld_c_copy = H;
    } else if (save) {
      c.h_copy = h_prev.at(t + 1, 0), c.ld_h_copy = h_prev.row;
    }
    lstm_cell_forward_kernel<<<grid, kCellThreads, 0, stream>>>(c);
    EMBER_CUDA_LAUNCH_CHECK("lstm_cell_forward_kernel");
  }
}

void enqueue_backward(const LayerBackward& a, cudaStream_t stream) {
  const int64_t T = a.T, B = a.B, I = a.I, H = a.H, G4 = 4 * H, rows = T * B;
  if (H == 0) {  // no units: x has no influence; the weights and biases have no elements
    zero(a.dx, rows * I, stream);
    return;
  }
  if (rows == 0) {  // no steps or no batch rows: dh and dc pass through, dx has no elements
    zero(a.dw_ih, G4 * I, stream);
    zero(a.dw_hh, G4 * H, stream);
    if (a.db) zero(a.db, G4, stream);
    return;
  }
  const Seq gates = seq_of(const_cast<float*>(a.gates), a.batch_major, T, B, G4);
  const Seq c_all = seq_of(const_cast<float*>(a.c_all), a.batch_major, T, B, H);
  const Seq tanh_c = seq_of(const_cast<float*>(a.tanh_c), a.batch_major, T, B, H);
  const Seq dgates = seq_of(a.dgates, a.batch_major, T, B, G4);
  const dim3 grid = rows_grid(B, H, kCellThreads);
  for (int64_t t = T - 1; t >= 0; --t) {
    CellBackwardArgs c{};
    c.batch = B, c.hidden = H;
    c.dy = a.dy ? a.dy + t * a.dy_t : nullptr, c.dy_b = a.dy_b, c.dy_j = a.dy_j;
    c.dh = a.dh, c.dc = a.dc;
    c.gates = gates.at(t, 0), c.ld_gates = gates.row;
    c.c = t == 0 ? a.c0 : c_all.at(t - 1, 0);
    c.ld_c = t == 0 ? H : c_all.row;
    c.tanh_c = tanh_c.at(t, 0), c.ld_tanh_c = tanh_c.row;
    c.dgates = dgates.at(t, 0), c.ld_dgates = dgates.row;
    lstm_cell_backward_kernel<<<grid, kCellThreads, 0, stream>>>(c);
    EMBER_CUDA_LAUNCH_CHECK("lstm_cell_backward_kernel");
    // dh_{t-1} = dgates[t] @ w_hh, (B, 4H) @ (4H, H)
    product(B, H, G4, {dgates.at(t, 0), dgates.row, 1}, a.w_hh, a.dh, H, 0.0f, a.tf32, stream);
  }
  // over all steps at once: dw_ih = dgates^T @ x, dw_hh = dgates^T @ h_prev, dx = dgates @ w_ih
  const Matrix dg{a.dgates, G4, 1};
  product(G4, I, rows, transposed(dg), a.x, a.dw_ih, I, 0.0f, a.tf32, stream);
  product(G4, H, rows, transposed(dg), {a.h_prev, H, 1}, a.dw_hh, H, 0.0f, a.tf32, stream);
  product(rows, I, G4, dg, a.w_ih, a.dx, I, 0.0f, a.tf32, stream);
  if (a.db) {
    const dim3 block(kSumCols, kSumRows);
    column_sums_kernel<<<static_cast<unsigned>(ceil_div(G4, kSumCols)), block, 0, stream>>>(
        rows, G4, a.dgates, G4, a.db);
    EMBER_CUDA_LAUNCH_CHECK("column_sums_kernel");
  }
}

// enqueue(a, stream) itself, or replayed as a cached graph when asked and there is a loop.
template <class Args>
void run_layer(const Args& a, void (*enqueue)(const Args&, cudaStream_t), cudaStream_t stream) {
  if (a.graph && a.T > 1 && a.B > 0 && a.H > 0)
    graphs().run(key_of(a), [&](cudaStream_t s) { enqueue(a, s); }, stream);
  else
    enqueue(a, stream);
}

}  // namespace

void layer_forward(const LayerForward& a, cudaStream_t stream) {
  run_layer(a, enqueue_forward, stream);
}

void layer_backward(const LayerBackward& a, cudaStream_t stream) {
  run_layer(a, enqueue_backward, stream);
}

}  // namespace ember::cuda::lstm
