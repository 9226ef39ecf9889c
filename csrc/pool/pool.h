// 2-D pooling on float32 NCHW images, as PyTorch's max_pool2d / avg_pool2d /
// adaptive_avg_pool2d: forward and backward. Every plane (one image, one channel) is pooled on
// its own, so the drivers thread over planes (and over output rows in the forward passes).
#pragma once
#include <cstdint>

namespace ember::pool {

// The geometry of one pooling: input planes (H, W), output planes (P, Q). Window (p, q) covers
// rows p * sh - ph + i * dh (i < kh) and columns q * sw - pw + j * dw (j < kw); positions outside
// the plane are padding. Sizes are validated by the caller (bindings.cpp) as PyTorch does.
struct Window {
  int64_t H, W, P, Q;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;  // average pooling: the divisor counts padding inside the window
  int64_t divisor;         // average pooling: divisor_override, 0 when not given
};

// Read-only planes of an (N, C, H, W) array: element (n, c, h, w) at
// data[n * sn + c * sc + h * rs + w] (element strides; the column stride must be 1).
struct ConstPlanes {
  const float* data;
  int64_t N, C;
  int64_t sn, sc, rs;
};

// ---- drivers (loops.cpp): thread over planes and call the active ISA's kernels -------------

// y, idx (N, C, P, Q) contiguous: the window maxima and their flat indices h * W + w within the
// input plane. A NaN in a window is its maximum (the last NaN), ties keep the first maximum.
void max_pool2d(const Window& g, ConstPlanes x, float* y, int64_t* idx);

// dx (N, C, H, W) contiguous = dy scattered (summed) at idx (N, C, P, Q) contiguous. Returns
// false, with dx incomplete, if some index lies outside [0, H * W).
bool max_pool2d_backward(const Window& g, ConstPlanes dy, const int64_t* idx, float* dx);

// y (N, C, P, Q) contiguous: window sums over the divisor PyTorch uses (Window::divisor,
// count_include_pad, windows clipped at the padded border).
void avg_pool2d(const Window& g, ConstPlanes x, float* y);

// dx (N, C, H, W) contiguous: each dy element spread over its window, over the same divisor.
void avg_pool2d_backward(const Window& g, ConstPlanes dy, float* dx);

// Adaptive average pooling (only H, W, P, Q of the Window are read): output (p, q) averages rows
// [floor(p * H / P), ceil((p + 1) * H / P)) and the same for columns.
void adaptive_avg_pool2d(const Window& g, ConstPlanes x, float* y);
void adaptive_avg_pool2d_backward(const Window& g, ConstPlanes dy, float* dx);

// ---- per-ISA kernels (pool_generic.cpp, pool_avx2.cpp, pool_avx512.cpp) --------------------
// Row kernels compute the output rows [r0, r1) of the (N * C * P, Q) contiguous output (row r is
// row r % P of plane r / P); plane kernels compute the dx planes [i0, i1) of the (N * C, H * W)
// contiguous gradient from the planes of dy. The drivers give each thread one block.
struct Kernels {
  const char* name;
  void (*max_pool_rows)(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, float* y,
                        int64_t* idx);
  void (*avg_pool_rows)(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1, float* y);
  void (*avg_pool_backward_planes)(const Window& g, const ConstPlanes& dy, int64_t i0, int64_t i1,
                                   float* dx);
  void (*adaptive_avg_pool_rows)(const Window& g, const ConstPlanes& x, int64_t r0, int64_t r1,
                                 float* y);
  void (*adaptive_avg_pool_backward_planes)(const Window& g, const ConstPlanes& dy, int64_t i0,
                                            int64_t i1, float* dx);
};

extern const Kernels f32_pool_generic;
#if defined(EMBER_X86)
extern const Kernels f32_pool_avx2;
extern const Kernels f32_pool_avx512;
#endif

}  // namespace ember::pool
