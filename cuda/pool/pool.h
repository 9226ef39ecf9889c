// 2-D pooling on float32 NCHW images on the GPU, as PyTorch's max_pool2d / avg_pool2d /
// adaptive_avg_pool2d, forward and backward (the same rules as the CPU kernels in csrc/pool).
// Memory-bound kernels, one thread per output element (forward) or per input element (the
// average-pooling gradients, gathered: no atomics), consecutive threads along W; sizes and
// offsets in 64 bits. Outputs are C-contiguous; inputs may have any strides. Every launcher
// enqueues on `stream` and throws (naming the kernel) if the launch fails.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ember::cuda::pool {

// The geometry of one pooling: input planes (H, W), output planes (P, Q). Window (p, q) covers
// rows p * sh - ph + i * dh (i < kh) and columns q * sw - pw + j * dw (j < kw); positions outside
// the plane are padding. The kernels clip every window to the plane, so any sizes are safe to
// run; the binding checks the parameters are positive where they divide.
struct Window {
  int64_t H, W, P, Q;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;  // average pooling: the divisor counts padding inside the window
  int64_t divisor;         // average pooling: divisor_override, 0 when not given
};

// A read-only (N, C, rows, cols) array: element (n, c, i, j) at
// data[n * sn + c * sc + i * sr + j * scol] (element strides, any sign).
struct Planes {
  const float* data;
  int64_t N, C;
  int64_t sn, sc, sr, scol;
};

// y, idx (N, C, P, Q): the window maxima and their flat indices h * W + w in the input plane. A
// NaN in a window is its maximum (the last NaN), ties keep the first maximum in row-major window
// order; a window that skips the plane gives -inf at its first position (as PyTorch).
void max_pool2d(const Window& g, const Planes& x, float* y, int64_t* idx, cudaStream_t stream);

// dx (N, C, H, W), zeroed by the caller, += dy scattered at idx (N, C, P, Q), whose element
// (n, c, p, q) is at idx[n * in + c * ic + p * ip + q * iq]. Scatters with atomic adds (the
// indices do not say whether windows overlap); an index outside [0, H * W) is skipped and sets
// *bad to 1.
struct Indices {
  const int64_t* data;
  int64_t sn, sc, sr, scol;
};
void max_pool2d_backward(const Window& g, const Planes& dy, const Indices& idx, float* dx, int* bad,
                         cudaStream_t stream);

// y (N, C, P, Q): window sums over the divisor PyTorch uses (Window::divisor, else the window
// clipped to the padded plane with count_include_pad, else its number of input elements).
void avg_pool2d(const Window& g, const Planes& x, float* y, cudaStream_t stream);

// dx (N, C, H, W) = for each input element, the sum over the windows that cover it of
// dy / divisor, in the windows' row-major order.
void avg_pool2d_backward(const Window& g, const Planes& dy, float* dx, cudaStream_t stream);

// Adaptive average pooling (only H, W, P, Q of the Window are read): output (p, q) averages rows
// [floor(p H / P), ceil((p + 1) H / P)) and the same for columns.
void adaptive_avg_pool2d(const Window& g, const Planes& x, float* y, cudaStream_t stream);
void adaptive_avg_pool2d_backward(const Window& g, const Planes& dy, float* dx,
                                  cudaStream_t stream);

}  // namespace ember::cuda::pool
