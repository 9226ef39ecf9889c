// The fused SGD and Adam steps (optim.h) as multi-tensor launches: one kernel-parameter struct
// describes up to kMaxTensors tensors and kMaxBlocks chunks of kChunk elements (no device
// allocation, no pointer table in global memory); block b updates chunk block_chunk[b] of tensor
// block_tensor[b], four elements per thread and step with 16-byte accesses where every pointer of
// that tensor is 16-byte aligned (CuPy's allocations are), one element at a time otherwise and in
// the last few elements. Every operation is an explicitly rounded intrinsic (__fmul_rn, ...),
// which nvcc never contracts into an FMA, in the order of the CPU kernels (csrc/optim/optim_simd.h).
#include <algorithm>
#include <array>
#include <climits>
#include <stdexcept>
#include <string>

#include "common/check.h"
#include "optim/optim.h"

namespace ember::cuda::optim {
namespace {

constexpr int kThreads = 256;      // threads per block
constexpr int kVec = 4;            // floats per 16-byte access
constexpr int64_t kChunk = 16384;  // elements one block updates: 16 sweeps of 256 x 4
constexpr int kMaxTensors = 36;    // tensors one launch describes
constexpr int kMaxBlocks = 320;    // chunks (blocks) one launch describes
static_assert(kChunk % (kThreads * kVec) == 0, "a chunk is whole vector sweeps of a block");
static_assert(kMaxTensors <= 255, "block_tensor holds a tensor's slot in a uint8_t");

// The tensors of one launch: Depth arrays per tensor (list 0 the parameters, list 1 the
// gradients, which are only read, then the optimizer's state).
template <int Depth>
struct TensorList {
  float* ptr[Depth][kMaxTensors];
  int64_t n[kMaxTensors];
  uint8_t flag[kMaxTensors];     // SGD: init_buf
  uint8_t aligned[kMaxTensors];  // every non-null pointer of the tensor is 16-byte aligned
  uint8_t block_tensor[kMaxBlocks];
  int32_t block_chunk[kMaxBlocks];
};
// 4 KiB is the kernel-parameter limit every toolkit and architecture accepts
static_assert(sizeof(TensorList<5>) + sizeof(AdamScalars) <= 4096, "kernel parameters > 4 KiB");
static_assert(sizeof(TensorList<3>) + sizeof(SgdScalars) <= 4096, "kernel parameters > 4 KiB");

// ---- the updates of one element --------------------------------------------------------

// NaN if either is NaN (as NumPy's and PyTorch's maximum), else the larger.
__device__ __forceinline__ float max_nan(float a, float b) {
  return a != a ? a : (b != b ? b : (a > b ? a : b));
}

__device__ __forceinline__ void sgd_update(const SgdScalars& s, bool init_buf, float& p, float g,
                                           float& buf) {
  if (s.maximize) g = -g;
  if (s.weight_decay != 0.0f) g = __fadd_rn(g, __fmul_rn(s.weight_decay, p));
  if (s.momentum != 0.0f) {
    buf = init_buf ? g
                   : __fadd_rn(__fmul_rn(buf, s.momentum), __fmul_rn(s.one_minus_dampening, g));
    g = s.nesterov ? __fadd_rn(g, __fmul_rn(s.momentum, buf)) : buf;
  }
  p = __fsub_rn(p, __fmul_rn(s.lr, g));
}

__device__ __forceinline__ void adam_update(const AdamScalars& s, float& p, float g, float& m,
                                            float& v, float& vmax) {
  if (s.maximize) g = -g;
  if (s.decoupled) p = __fmul_rn(p, s.decay);
  else if (s.weight_decay != 0.0f) g = __fadd_rn(g, __fmul_rn(s.weight_decay, p));
  m = __fadd_rn(m, __fmul_rn(s.one_minus_beta1, __fsub_rn(g, m)));
  v = __fadd_rn(__fmul_rn(v, s.beta2), __fmul_rn(__fmul_rn(s.one_minus_beta2, g), g));
  float vv = v;
  if (s.amsgrad) vv = vmax = max_nan(vmax, v);
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vv), s.bias_correction2_sqrt), s.eps);
  p = __fsub_rn(p, __fmul_rn(s.step_size, __fdiv_rn(m, denom)));
}

__device__ __forceinline__ void load4(const float* src, float (&dst)[kVec]) {
  const float4 q = *reinterpret_cast<const float4*>(src);
  dst[0] = q.x, dst[1] = q.y, dst[2] = q.z, dst[3] = q.w;
}

__device__ __forceinline__ void store4(float* dst, const float (&src)[kVec]) {
  *reinterpret_cast<float4*>(dst) = make_float4(src[0], src[1], src[2], src[3]);
}

// The chunk of this block: its tensor's slot, its first element and its length (<= kChunk).
struct Chunk {
  int tensor;
  int64_t begin, len;
};

template <int Depth>
__device__ __forceinline__ Chunk block_chunk(const TensorList<Depth>& list) {
  const int t = list.block_tensor[blockIdx.x];
  const int64_t begin = static_cast<int64_t>(list.block_chunk[blockIdx.x]) * kChunk;
  const int64_t rest = list.n[t] - begin;
  return {t, begin, rest < kChunk ? rest : kChunk};
}

// ---- kernels -----------------------------------------------------------------------------

// p, buf (momentum != 0) updated in place from g; lists: 0 params, 1 grads, 2 momentum buffers.
__global__ void __launch_bounds__(kThreads)
    f32_sgd_step(const __grid_constant__ TensorList<3> list, const SgdScalars s) {
  const Chunk c = block_chunk(list);
  float* p = list.ptr[0][c.tensor] + c.begin;
  const float* g = list.ptr[1][c.tensor] + c.begin;
  float* buf = s.momentum != 0.0f ? list.ptr[2][c.tensor] + c.begin : nullptr;
  const bool init = list.flag[c.tensor] != 0;
  const bool read_buf = buf != nullptr && !init;  // a first step writes the buffer, never reads it
  // four elements at a time (aligned tensors), then the rest one at a time
  const int64_t vec_len = list.aligned[c.tensor] ? c.len - c.len % kVec : 0;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * kVec; i < vec_len; i += kThreads * kVec) {
    float pv[kVec], gv[kVec], bv[kVec] = {};
    load4(p + i, pv);
    load4(g + i, gv);
    if (read_buf) load4(buf + i, bv);
#pragma unroll
    for (int l = 0; l < kVec; ++l) sgd_update(s, init, pv[l], gv[l], bv[l]);
    store4(p + i, pv);
    if (buf) store4(buf + i, bv);
  }
  for (int64_t i = vec_len + threadIdx.x; i < c.len; i += kThreads) {
    float pv = p[i], bv = read_buf ? buf[i] : 0.0f;
    sgd_update(s, init, pv, g[i], bv);
    p[i] = pv;
    if (buf) buf[i] = bv;
  }
}

// p, m, v (and v_max with amsgrad) updated in place from g; lists: 0 params, 1 grads, 2 exp_avg,
// 3 exp_avg_sq, 4 max_exp_avg_sq.
__global__ void __launch_bounds__(kThreads)
    f32_adam_step(const __grid_constant__ TensorList<5> list, const AdamScalars s) {
  const Chunk c = block_chunk(list);
  float* p = list.ptr[0][c.tensor] + c.begin;
  const float* g = list.ptr[1][c.tensor] + c.begin;
  float* m = list.ptr[2][c.tensor] + c.begin;
  float* v = list.ptr[3][c.tensor] + c.begin;
  float* vmax = s.amsgrad ? list.ptr[4][c.tensor] + c.begin : nullptr;
  const int64_t vec_len = list.aligned[c.tensor] ? c.len - c.len % kVec : 0;
  for (int64_t i = static_cast<int64_t>(threadIdx.x) * kVec; i < vec_len; i += kThreads * kVec) {
    float pv[kVec], gv[kVec], mv[kVec], vv[kVec], xv[kVec] = {};
    load4(p + i, pv);
    load4(g + i, gv);
    load4(m + i, mv);
    load4(v + i, vv);
    if (vmax) load4(vmax + i, xv);
#pragma unroll
    for (int l = 0; l < kVec; ++l) adam_update(s, pv[l], gv[l], mv[l], vv[l], xv[l]);
    store4(p + i, pv);
    store4(m + i, mv);
    store4(v + i, vv);
    if (vmax) store4(vmax + i, xv);
  }
  for (int64_t i = vec_len + threadIdx.x; i < c.len; i += kThreads) {
    float pv = p[i], mv = m[i], vv = v[i], xv = vmax ? vmax[i] : 0.0f;
    adam_update(s, pv, g[i], mv, vv, xv);
    p[i] = pv;
    m[i] = mv;
    v[i] = vv;
    if (vmax) vmax[i] = xv;
  }
}

// ---- launchers ---------------------------------------------------------------------------

template <int Depth>
struct Entry {
  std::array<float*, Depth> ptr;
  int64_t n;
  bool flag;
};

template <int Depth>
bool aligned16(const std::array<float*, Depth>& ptr) {
  for (float* q : ptr)
    if (q != nullptr && reinterpret_cast<uintptr_t>(q) % 16 != 0) return false;
  return true;
}

template <int Depth>
void put(TensorList<Depth>& list, int slot, const Entry<Depth>& e) {
  for (int d = 0; d < Depth; ++d) list.ptr[d][slot] = e.ptr[d];
  list.n[slot] = e.n;
  list.flag[slot] = e.flag;
  list.aligned[slot] = aligned16<Depth>(e.ptr);
}

// Fills TensorLists with the chunks of every non-empty tensor and calls launch(list, blocks)
// whenever one is full (kMaxBlocks chunks, or kMaxTensors tensors and the last one complete) and
// at the end. A tensor whose chunks span two launches is described again in slot 0 of the next.
// The kernel parameters are copied at each launch, so refilling the list afterwards is safe.
template <int Depth, class Launch>
void for_each_launch(const std::vector<Entry<Depth>>& entries, Launch launch) {
  TensorList<Depth> list{};
  int count = 0, blocks = 0;
  for (const Entry<Depth>& e : entries) {
    if (e.n == 0) continue;
    const int64_t chunks = (e.n + kChunk - 1) / kChunk;
    if (chunks > INT32_MAX) throw std::length_error("optimizer step: a tensor is too large");
    int slot = count++;
    put(list, slot, e);
    for (int64_t k = 0; k < chunks; ++k) {
      list.block_tensor[blocks] = static_cast<uint8_t>(slot);
      list.block_chunk[blocks] = static_cast<int32_t>(k);
      ++blocks;
      const bool last = k + 1 == chunks;
      if (blocks == kMaxBlocks || (last && count == kMaxTensors)) {
        launch(list, blocks);
        blocks = 0;
        if (last) {
          count = 0;
        } else {
          slot = 0;
          count = 1;
          put(list, slot, e);
        }
      }
    }
  }
  if (blocks > 0) launch(list, blocks);
}

}  // namespace

void sgd_step(const SgdScalars& s, const std::vector<SgdTensor>& tensors, cudaStream_t stream) {
  std::vector<Entry<3>> entries;
  entries.reserve(tensors.size());
  for (const SgdTensor& t : tensors)
    entries.push_back({{t.param, const_cast<float*>(t.grad), t.momentum_buffer}, t.n, t.init_buf});
  for_each_launch<3>(entries, [&](const TensorList<3>& list, int blocks) {
    f32_sgd_step<<<blocks, kThreads, 0, stream>>>(list, s);
    EMBER_CUDA_LAUNCH_CHECK("f32_sgd_step");
  });
}

void adam_step(const AdamScalars& s, const std::vector<AdamTensor>& tensors,
               cudaStream_t stream) {
  std::vector<Entry<5>> entries;
  entries.reserve(tensors.size());
  for (const AdamTensor& t : tensors)
    entries.push_back({{t.param, const_cast<float*>(t.grad), t.exp_avg, t.exp_avg_sq,
                        t.max_exp_avg_sq},
                       t.n,
                       false});
  for_each_launch<5>(entries, [&](const TensorList<5>& list, int blocks) {
    f32_adam_step<<<blocks, kThreads, 0, stream>>>(list, s);
    EMBER_CUDA_LAUNCH_CHECK("f32_adam_step");
  });
}

}  // namespace ember::cuda::optim
