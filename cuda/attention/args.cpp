// The checks of an attention call and the kernels' view of its arrays (args.h).
#include "attention/args.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace ember::cuda::attention {
namespace {

const char* const kForward = "scaled_dot_product_attention";
const char* const kBackward = "scaled_dot_product_attention_backward";

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

[[noreturn]] void fail(const char* fn, const std::string& what) {
  throw std::invalid_argument(std::string(fn) + ": " + what);
}

std::vector<int64_t> concat(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

void check_shape(const char* fn, const ArrayView& x, const char* name,
                 const std::vector<int64_t>& shape) {
  if (x.shape != shape)
    fail(fn, std::string(name) + " must have shape " + shape_string(shape) + ", got " +
                 shape_string(x.shape));
  if (x.strides.size() != x.shape.size()) fail(fn, std::string(name) + " has malformed strides");
}

void check_itemsize(const char* fn, const ArrayView& x, const char* name, int64_t itemsize) {
  if (x.itemsize != itemsize)
    fail(fn, std::string(name) + " has " + std::to_string(x.itemsize) +
                 "-byte elements, expected " + std::to_string(itemsize));
}

int64_t size_of(const ArrayView& x) {
  int64_t n = 1;
  for (int64_t d : x.shape) n *= d;
  return n;
}

// x's stride along d, 0 where the dimension has one element (its stride never matters there)
int64_t stride(const ArrayView& x, size_t d) { return x.shape[d] == 1 ? 0 : x.strides[d]; }

void check_c_contiguous(const char* fn, const ArrayView& x, const char* name) {
  int64_t expected = 1;
  for (size_t d = x.shape.size(); d-- > 0;) {
    if (x.shape[d] != 1 && x.strides[d] != expected)
      fail(fn, std::string(name) + " must be C-contiguous");
    expected *= x.shape[d];
  }
}

// [lo, hi) bytes that x's elements occupy (lo == hi when empty)
void extent(const ArrayView& x, uintptr_t& lo, uintptr_t& hi) {
  lo = hi = reinterpret_cast<uintptr_t>(x.data);
  if (size_of(x) == 0) return;
  int64_t low = 0, high = 0;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    const int64_t reach = (x.shape[d] - 1) * x.strides[d];
    (reach < 0 ? low : high) += reach;
  }
  lo += low * x.itemsize;
  hi += (high + 1) * x.itemsize;
}

void check_no_overlap(const char* fn, const ArrayView& out, const char* out_name,
                      const ArrayView& in, const char* in_name) {
  uintptr_t out_lo, out_hi, in_lo, in_hi;
  extent(out, out_lo, out_hi);
  extent(in, in_lo, in_hi);
  if (out_lo < out_hi && in_lo < in_hi && out_lo < in_hi && in_lo < out_hi)
    fail(fn, std::string(out_name) + " must not overlap " + in_name);
}

// The batch dimensions of q (all but its last two), at most kMaxBatchDims.
Batch batch_of(const char* fn, const ArrayView& q, std::vector<int64_t>& shape) {
  if (q.ndim() < 2 || q.ndim() > kMaxBatchDims + 2)
    fail(fn, "q must have 2 to " + std::to_string(kMaxBatchDims + 2) + " dimensions, got " +
                 shape_string(q.shape));
  Batch dims;
  dims.ndim = static_cast<int>(q.ndim() - 2);
  shape.assign(q.shape.begin(), q.shape.end() - 2);
  for (int d = 0; d < dims.ndim; ++d) dims.size[d] = shape[d];
  return dims;
}

int64_t count(const Batch& dims) {
  int64_t n = 1;
  for (int d = 0; d < dims.ndim; ++d) n *= dims.size[d];
  return n;
}

// An operand of shape batch + (rows, cols) with adjacent columns.
Rows rows_of(const char* fn, const ArrayView& x, const char* name, int nb) {
  const size_t rd = static_cast<size_t>(nb), cd = rd + 1;
  if (x.shape[cd] > 1 && x.strides[cd] != 1)
    fail(fn, std::string(name) + "'s last dimension must be contiguous (stride 1)");
  Rows r;
  r.data = x.data;
  r.row = stride(x, rd);
  const int64_t per_chunk = 16 / x.itemsize;
  bool aligned = reinterpret_cast<uintptr_t>(x.data) % 16 == 0 && r.row % per_chunk == 0;
  for (int d = 0; d < nb; ++d) {
    r.batch[d] = stride(x, static_cast<size_t>(d));
    aligned = aligned && r.batch[d] % per_chunk == 0;
  }
  r.aligned = aligned;
  return r;
}

void check_head_dims(const char* fn, int64_t E, int64_t Ev) {
  if (E < 1 || E > kMaxHeadDim || Ev < 1 || Ev > kMaxHeadDim)
    fail(fn, "head dimensions must be 1 .. " + std::to_string(kMaxHeadDim) +
                 " on the GPU, got E = " + std::to_string(E) + ", Ev = " + std::to_string(Ev));
}

Mask mask_of(const char* fn, const ArrayView* m, bool is_bool, const std::vector<int64_t>& batch,
             int64_t L, int64_t S) {
  Mask mask;
  if (m == nullptr) return mask;
  check_shape(fn, *m, "attn_mask", concat(batch, {L, S}));
  check_itemsize(fn, *m, "attn_mask", is_bool ? 1 : 4);
  mask.kind = is_bool ? MaskKind::boolean : MaskKind::additive;
  mask.data = m->data;
  const size_t nb = batch.size();
  for (size_t d = 0; d < nb; ++d) mask.batch[d] = stride(*m, d);
  mask.row = stride(*m, nb);
  mask.col = stride(*m, nb + 1);
  return mask;
}

Problem problem_of(const char* fn, const ArrayView& q, const ArrayView& k, const ArrayView& v,
                   const ArrayView* mask, bool mask_is_bool, double scale, bool causal,
                   std::vector<int64_t>& batch) {
  Problem p;
  p.dims = batch_of(fn, q, batch);
  p.batch = count(p.dims);
  const size_t nb = batch.size();
  p.L = q.shape[nb];
  p.S = k.ndim() == q.ndim() ? k.shape[nb] : -1;
  const int64_t E = q.shape[nb + 1];
  const int64_t Ev = v.ndim() == q.ndim() ? v.shape[nb + 1] : -1;
  check_shape(fn, q, "q", concat(batch, {p.L, E}));
  check_shape(fn, k, "k", concat(batch, {p.S, E}));
  check_shape(fn, v, "v", concat(batch, {p.S, Ev}));
  check_head_dims(fn, E, Ev);
  p.E = static_cast<int>(E);
  p.Ev = static_cast<int>(Ev);
  p.scale = static_cast<float>(scale);
  p.causal = causal;
  if (causal && mask != nullptr) fail(fn, "attn_mask and is_causal=True cannot be combined");
  p.mask = mask_of(fn, mask, mask_is_bool, batch, p.L, p.S);
  return p;
}

}  // namespace

ForwardArgs forward_args(DType dtype, const ArrayView& q, const ArrayView& k, const ArrayView& v,
                         const ArrayView* mask, bool mask_is_bool, const ArrayView& out,
                         const ArrayView& lse, double scale, bool causal, double dropout_p,
                         uint64_t seed) {
  const char* fn = kForward;
  const int64_t itemsize = dtype == DType::f32 ? 4 : 2;
  for (const auto& [x, name] : {std::pair{&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}})
    check_itemsize(fn, *x, name, itemsize);
  check_itemsize(fn, lse, "lse", 4);
  std::vector<int64_t> batch;
  ForwardArgs a;
  a.p = problem_of(fn, q, k, v, mask, mask_is_bool, scale, causal, batch);
  const int nb = static_cast<int>(batch.size());
  a.q = rows_of(fn, q, "q", nb);
  a.k = rows_of(fn, k, "k", nb);
  a.v = rows_of(fn, v, "v", nb);
  check_shape(fn, out, "out", concat(batch, {a.p.L, a.p.Ev}));
  check_shape(fn, lse, "lse", concat(batch, {a.p.L}));
  check_c_contiguous(fn, out, "out");
  check_c_contiguous(fn, lse, "lse");
  for (const auto& [x, name] : {std::pair{&out, "out"}, {&lse, "lse"}}) {
    check_no_overlap(fn, *x, name, q, "q");
    check_no_overlap(fn, *x, name, k, "k");
    check_no_overlap(fn, *x, name, v, "v");
    if (mask) check_no_overlap(fn, *x, name, *mask, "attn_mask");
  }
  check_no_overlap(fn, out, "out", lse, "lse");
  if (!(dropout_p >= 0.0 && dropout_p < 1.0))
    fail(fn, "dropout_p must be in [0, 1), got " + std::to_string(dropout_p));
  if (dropout_p > 0.0)
    a.dropout = {static_cast<uint32_t>(std::ceil(dropout_p * 16777216.0)),
                 static_cast<float>(1.0 / (1.0 - dropout_p)), seed};
  a.out = out.data;
  a.lse = static_cast<float*>(lse.data);
  return a;
}

BackwardArgs backward_args(DType dtype, const ArrayView& dout, const ArrayView& q,
                           const ArrayView& k, const ArrayView& v, const ArrayView& out,
                           const ArrayView& lse, const ArrayView* mask, bool mask_is_bool,
                           const ArrayView& delta, const ArrayView& dq, const ArrayView& dk,
                           const ArrayView& dv, double scale, bool causal, bool deterministic) {
  const char* fn = kBackward;
  const int64_t itemsize = dtype == DType::f32 ? 4 : 2;
  for (const auto& [x, name] : {std::pair{&dout, "dout"}, {&q, "q"}, {&k, "k"}, {&v, "v"},
                                {&out, "out"}, {&dk, "dk"}, {&dv, "dv"}})
    check_itemsize(fn, *x, name, itemsize);
  for (const auto& [x, name] : {std::pair{&lse, "lse"}, {&delta, "delta"}, {&dq, "dq"}})
    check_itemsize(fn, *x, name, 4);
  if (deterministic && dtype != DType::f32)
    fail(fn, "deterministic gradients need float32 arrays on the GPU");
  std::vector<int64_t> batch;
  BackwardArgs a;
  a.p = problem_of(fn, q, k, v, mask, mask_is_bool, scale, causal, batch);
  const int nb = static_cast<int>(batch.size());
  const Problem& p = a.p;
  check_shape(fn, dout, "dout", concat(batch, {p.L, p.Ev}));
  check_shape(fn, out, "out", concat(batch, {p.L, p.Ev}));
  check_shape(fn, lse, "lse", concat(batch, {p.L}));
  check_shape(fn, delta, "delta", concat(batch, {p.L}));
  check_shape(fn, dq, "dq", concat(batch, {p.L, p.E}));
  check_shape(fn, dk, "dk", concat(batch, {p.S, p.E}));
  check_shape(fn, dv, "dv", concat(batch, {p.S, p.Ev}));
  a.dout = rows_of(fn, dout, "dout", nb);
  a.q = rows_of(fn, q, "q", nb);
  a.k = rows_of(fn, k, "k", nb);
  a.v = rows_of(fn, v, "v", nb);
  a.out = rows_of(fn, out, "out", nb);
  check_c_contiguous(fn, lse, "lse");
  const std::pair<const ArrayView*, const char*> outputs[] = {
      {&delta, "delta"}, {&dq, "dq"}, {&dk, "dk"}, {&dv, "dv"}};
  const std::pair<const ArrayView*, const char*> inputs[] = {
      {&dout, "dout"}, {&q, "q"}, {&k, "k"}, {&v, "v"}, {&out, "out"}, {&lse, "lse"}};
  for (size_t i = 0; i < 4; ++i) {
    const auto& [x, name] = outputs[i];
    check_c_contiguous(fn, *x, name);
    for (const auto& [y, other] : inputs) check_no_overlap(fn, *x, name, *y, other);
    if (mask) check_no_overlap(fn, *x, name, *mask, "attn_mask");
    for (size_t j = i + 1; j < 4; ++j)
      check_no_overlap(fn, *x, name, *outputs[j].first, outputs[j].second);
  }
  a.lse = static_cast<const float*>(lse.data);
  a.delta = static_cast<float*>(delta.data);
  a.dq = static_cast<float*>(dq.data);
  a.dk = dk.data;
  a.dv = dv.data;
  a.deterministic = deterministic;
  return a;
}

}  // namespace ember::cuda::attention
