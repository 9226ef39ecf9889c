// 2-D convolution on NCHW float32 images: im2col / col2im (im2col.cpp, col2im.cpp), conv2d
// forward and backward as im2col + SGEMM (conv.cpp), and a direct kernel for depthwise
// convolutions (depthwise.cpp). Letters as everywhere in ember:
//   x (N, C, H, W), w (K, C/groups, R, S), y (N, K, P, Q), columns (C*R*S, P*Q) per image.
// Index arithmetic is int64; strides are in elements and may be anything a NumPy view has.
#pragma once
#include <cstdint>

namespace ember::conv {

// A read-only 4-D float32 tensor: element (i, j, k, l) at data[i*s0 + j*s1 + k*s2 + l*s3].
struct Tensor4 {
  const float* data;
  int64_t s0, s1, s2, s3;
};

// The shape of one convolution. Padding is given for the top and left; the bottom and right
// padding are whatever P and Q imply (PyTorch's 'same' pads one more at the bottom/right for
// even kernels).
struct Geometry {
  int64_t n, c, h, w;  // input
  int64_t k, r, s;     // output channels, kernel height and width
  int64_t p, q;        // output height and width
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;  // top, left
  int64_t dil_h, dil_w;
  int64_t groups;
};

// The output size along one axis for padding (before, after); <= 0 when the dilated kernel is
// larger than the padded input.
int64_t output_size(int64_t in, int64_t pad_before, int64_t pad_after, int64_t kernel,
                    int64_t stride, int64_t dilation);

// ---- one image (x here is (C, H, W): s1, s2, s3 of a Tensor4 are its strides) --------------

// cols[(c*R + r)*S + s][l - l0] = x[c, p*sh - ph + r*dh, q*sw - pw + s*dw], 0 in the padding,
// for channels c in [c0, c1) and output positions l = p*Q + q in [l0, l1); row stride ld. Rows
// are numbered from channel 0 either way, so threads may fill one matrix by channel.
void im2col(const Geometry& g, Tensor4 x, int64_t c0, int64_t c1, int64_t l0, int64_t l1,
            float* cols, int64_t ld);

// The adjoint of im2col: dx[c, ih, iw] += cols(row, l - l0) over the same index map, with
// cols(i, j) = cols[i*rs + j*cs] and dx (C, H, W) contiguous. Only the planes of channels
// [c0, c1) are written, so threads may share an image by channel.
void col2im(const Geometry& g, const float* cols, int64_t rs, int64_t cs, int64_t c0, int64_t c1,
            int64_t l0, int64_t l1, float* dx);

// ---- whole batches (threaded over images x channels) -----------------------------------------

// cols (N, C*R*S, P*Q) contiguous = im2col of every image of x (N, C, H, W).
void im2col_batch(const Geometry& g, Tensor4 x, float* cols);

// x (N, C, H, W) contiguous = col2im of cols (N, C*R*S, P*Q), cols(n, i, l) at
// cols[n*s0 + i*s1 + l*s2] (Tensor4's s3 unused); overlapping windows sum.
void col2im_batch(const Geometry& g, Tensor4 cols, float* x);

// ---- conv2d -----------------------------------------------------------------------------------

// y (N, K, P, Q) contiguous = conv(x, w) + b; b may be null (no bias), else b[k * b_stride].
void conv2d_forward(const Geometry& g, Tensor4 x, Tensor4 w, const float* b, int64_t b_stride,
                    float* y);

// Gradients of conv2d from dy (N, K, P, Q). Each output may be null (not wanted); those given are
// contiguous and overwritten: dx (N, C, H, W), dw (K, C/groups, R, S), db (K).
void conv2d_backward(const Geometry& g, Tensor4 dy, Tensor4 x, Tensor4 w, float* dx, float* dw,
                     float* db);

// Depthwise convolution (groups == C, w (K, 1, R, S), output channel k reads input channel
// k / (K / C)) by direct loops over the kernel offsets: as a GEMM each group would be a
// matrix-vector product.
bool is_depthwise(const Geometry& g);
void depthwise_forward(const Geometry& g, Tensor4 x, Tensor4 w, const float* b, int64_t b_stride,
                       float* y);
void depthwise_backward(const Geometry& g, Tensor4 dy, Tensor4 x, Tensor4 w, float* dx, float* dw,
                        float* db);

}  // namespace ember::conv
