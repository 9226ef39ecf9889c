// C entry points of the convolution (cuda/conv/conv.cu, with ember::cuda::sgemm of cuda/gemm for
// the im2col path) under the CPU emulator (emu.h), for tests/test_cuda_conv_emulated.py: the
// arrays are copied into fenced buffers, a workspace of `workspace_images` images is allocated
// fenced and poisoned with NaN, and the outputs are copied back.
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <vector>

#include "conv/conv.h"
#include "emu/array.h"

namespace conv = ember::cuda::conv;

namespace {

// geometry: n, c, h, w, k, r, s, stride_h, stride_w, pad top, bottom, left, right, dil_h,
// dil_w, groups (bindings.cpp's geometry()).
conv::Geometry geometry(const int64_t* v) {
  conv::Geometry g{};
  g.n = v[0], g.c = v[1], g.h = v[2], g.w = v[3], g.k = v[4], g.r = v[5], g.s = v[6];
  g.stride_h = v[7], g.stride_w = v[8], g.pad_h = v[9], g.pad_w = v[11];
  g.dil_h = v[13], g.dil_w = v[14], g.groups = v[15];
  g.p = conv::output_size(g.h, v[9], v[10], g.r, g.stride_h, g.dil_h);
  g.q = conv::output_size(g.w, v[11], v[12], g.s, g.stride_w, g.dil_w);
  conv::check_limits(g);
  return g;
}

conv::Tensor4 tensor4(const emu::FencedCopy& x) {
  return {x.data<float>(), x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
}

// A NaN-filled fenced workspace of `floats` floats (none for 0).
std::unique_ptr<emu::FencedBuffer> workspace(int64_t floats) {
  if (floats == 0) return nullptr;
  auto ws = std::make_unique<emu::FencedBuffer>(static_cast<size_t>(floats) * sizeof(float));
  std::memset(ws->data(), 0xFF, ws->bytes());
  return ws;
}

std::unique_ptr<emu::FencedCopy> optional(const EmuArray* a) {
  return a ? std::make_unique<emu::FencedCopy>(*a) : nullptr;
}

template <class F>
int guarded(char* error, int64_t error_len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::invalid_argument& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::snprintf(error, static_cast<size_t>(error_len), "%s", e.what());
    return 2;
  }
}

void set_options(int multiprocessors, int order, uint32_t schedule_seed) {
  emu::options().multiprocessors = multiprocessors;
  emu::options().order = static_cast<emu::Order>(order);
  emu::options().seed = schedule_seed;
}

}  // namespace

extern "C" {

// y = conv2d(x, w) + b (b may be null); algo 0 im2col + sgemm, 1 implicit GEMM, 2 as
// choose_forward picks. Returns the algorithm that ran in *ran.
int emu_conv2d(const int64_t* geo, const EmuArray* x, const EmuArray* w, const EmuArray* b,
               const EmuArray* y, int algo, int64_t workspace_images, int tf32,
               int multiprocessors, int order, uint32_t schedule_seed, int* ran, char* error,
               int64_t error_len) {
  return guarded(error, error_len, [&] {
    set_options(multiprocessors, order, schedule_seed);
    const conv::Geometry g = geometry(geo);
    const emu::FencedCopy xc(*x), wc(*w), yc(*y);
    const auto bc = optional(b);
    const conv::Algorithm chosen = algo == 2   ? conv::choose_forward(g, tensor4(xc), tf32 != 0)
                                   : algo == 1 ? conv::Algorithm::implicit_gemm
                                               : conv::Algorithm::im2col_gemm;
    *ran = chosen == conv::Algorithm::implicit_gemm;
    const int64_t floats =
        conv::forward_workspace_per_image(g, tensor4(xc), chosen) * workspace_images;
    const auto ws = workspace(floats);
    conv::conv2d_forward(g, tensor4(xc), wc.data<float>(), bc ? bc->data<float>() : nullptr,
                         bc ? bc->stride(0) : 0, yc.data<float>(), chosen,
                         ws ? reinterpret_cast<float*>(ws->data()) : nullptr, floats, tf32 != 0,
                         nullptr);
    yc.copy_back();
  });
}

// dx, dw, db of conv2d (each may be null) from dy (N, K, P, Q) contiguous.
int emu_conv2d_backward(const int64_t* geo, const EmuArray* dy, const EmuArray* x,
                        const EmuArray* w, const EmuArray* dx, const EmuArray* dw,
                        const EmuArray* db, int64_t workspace_images, int tf32,
                        int multiprocessors, int order, uint32_t schedule_seed, char* error,
                        int64_t error_len) {
  return guarded(error, error_len, [&] {
    set_options(multiprocessors, order, schedule_seed);
    const conv::Geometry g = geometry(geo);
    const emu::FencedCopy dyc(*dy), xc(*x), wc(*w);
    const auto dxc = optional(dx), dwc = optional(dw), dbc = optional(db);
    const int64_t floats =
        conv::backward_workspace_per_image(g, dx != nullptr, dw != nullptr) * workspace_images;
    const auto ws = workspace(floats);
    conv::conv2d_backward(g, dyc.data<float>(), tensor4(xc), wc.data<float>(),
                          dxc ? dxc->data<float>() : nullptr, dwc ? dwc->data<float>() : nullptr,
                          dbc ? dbc->data<float>() : nullptr,
                          ws ? reinterpret_cast<float*>(ws->data()) : nullptr, floats, tf32 != 0,
                          nullptr);
    for (const auto* out : {dxc.get(), dwc.get(), dbc.get()})
      if (out) out->copy_back();
  });
}

}  // extern "C"
