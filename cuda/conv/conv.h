// 2-D convolution on NCHW float32 device memory, the CUDA counterpart of csrc/conv. Letters as
// everywhere in ember:
//   x (N, C, H, W), w (K, C/groups, R, S), y (N, K, P, Q);
//   the column matrix of one image: row (c*R + r)*S + s, column l = p*Q + q (torch's unfold).
// Kernels (conv.cu): im2col, col2im (a gather: each input element sums its own taps, no
// atomics), an implicit-GEMM forward that gathers column tiles straight into shared memory, and
// the small helpers of the GEMM paths. Every matrix product goes through ember::cuda::sgemm.
// Host functions enqueue on `stream` and throw on a failed launch; they never allocate: the
// caller passes a workspace of workspace_per_image() floats per image (at least one image's).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace ember::cuda::conv {

// A read-only 4-D float32 tensor: element (i, j, k, l) at data[i*s0 + j*s1 + k*s2 + l*s3]
// (strides in elements, any sign).
struct Tensor4 {
  const float* data;
  int64_t s0, s1, s2, s3;
};

// The shape of one convolution. Padding is given for the top and left; the bottom and right
// padding are whatever P and Q imply ('same' pads one more at the bottom/right for even kernels).
struct Geometry {
  int64_t n, c, h, w;  // input
  int64_t k, r, s;     // output channels, kernel height and width
  int64_t p, q;        // output height and width
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;  // top, left
  int64_t dil_h, dil_w;
  int64_t groups;

  int64_t cg() const { return c / groups; }  // input channels per group
  int64_t kg() const { return k / groups; }  // output channels per group
  int64_t taps() const { return r * s; }
  int64_t pixels() const { return p * q; }  // outputs per image and channel
};

// The output size along one axis for padding (before, after); <= 0 when the dilated kernel is
// larger than the padded input.
int64_t output_size(int64_t in, int64_t pad_before, int64_t pad_after, int64_t kernel,
                    int64_t stride, int64_t dilation);

// Throws std::invalid_argument when a size exceeds what the kernels index in 32 bits: every
// quantity along H or W (sizes, padding, the reach of the dilated kernel) up to 2**30, and
// C/groups * R * S, K/groups and groups up to 2**31 - 1. Flattened sizes (N*P*Q, C*H*W, ...)
// are int64 everywhere.
void check_limits(const Geometry& g);

// ---- column matrices ------------------------------------------------------------------------

// cols(i, (c*R + r)*S + s, l) = x[i, c, p*sh - ph + r*dh, q*sw - pw + s*dw], 0 in the padding, for
// the first `images` images of x; cols(i, row, l) at cols[i*ld_image + row*ld_row + l].
void im2col(const Geometry& g, Tensor4 x, int64_t images, float* cols, int64_t ld_image,
            int64_t ld_row, cudaStream_t stream);

// The adjoint of im2col: dx (images, C, H, W) contiguous, each element the sum of the columns'
// entries that im2col would have copied it to; cols(i, row, l) at
// cols[i*ld_image + row*ld_row + l*ld_col].
void col2im(const Geometry& g, const float* cols, int64_t ld_image, int64_t ld_row, int64_t ld_col,
            int64_t images, float* dx, cudaStream_t stream);

// ---- conv2d ---------------------------------------------------------------------------------

enum class Algorithm {
  im2col_gemm,    // im2col into the workspace (a chunk of images at a time), then sgemm
  implicit_gemm,  // one kernel gathering column tiles into shared memory: no workspace
};

// The forward algorithm for a shape when none is forced (see the rule in conv.cu).
Algorithm choose_forward(const Geometry& g, Tensor4 x, bool tf32);

// Floats of workspace per image in a chunk (0: none needed).
int64_t forward_workspace_per_image(const Geometry& g, Tensor4 x, Algorithm algo);
int64_t backward_workspace_per_image(const Geometry& g, bool need_dx, bool need_dw);

// y (N, K, P, Q) contiguous = conv(x, w) + b. w (K, C/groups, R, S) contiguous; b null (no bias)
// or b[k * b_stride]. The workspace holds workspace_size floats, at least one image's worth when
// the algorithm needs one; tf32 lets the GEMM path use TF32 tensor cores.
void conv2d_forward(const Geometry& g, Tensor4 x, const float* w, const float* b, int64_t b_stride,
                    float* y, Algorithm algo, float* workspace, int64_t workspace_size, bool tf32,
                    cudaStream_t stream);

// Gradients of conv2d from dy (N, K, P, Q) contiguous. Each output may be null (not wanted); those
// given are contiguous and overwritten: dx (N, C, H, W), dw (K, C/groups, R, S), db (K).
void conv2d_backward(const Geometry& g, const float* dy, Tensor4 x, const float* w, float* dx,
                     float* dw, float* db, float* workspace, int64_t workspace_size, bool tf32,
                     cudaStream_t stream);

}  // namespace ember::cuda::conv
