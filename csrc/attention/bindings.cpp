// ember._C bindings of the attention family. ember.ops broadcasts the leading dimensions and
// allocates the outputs; these wrappers check everything again before the kernel runs.
#include "bindings.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "common/pyarray.h"
#include "cpu/dispatch.h"

namespace py = pybind11;

namespace ember {
namespace {

// A strided operand and the element offsets of its batch items (kept alive with it).
struct Operand {
  std::vector<int64_t> offsets;
  int64_t rs = 0, cs = 0;
  const void* data = nullptr;
  attention::View view() const { return {static_cast<const float*>(data), offsets.data(), rs, cs}; }
};

// Checks that x has the batch dimensions of `ref` (all but its last `ref_tail`) followed by
// `tail`; names both in the error.
void check_shape(const char* fn, const py::array& x, const char* name, const py::array& ref,
                 int ref_tail, const std::vector<int64_t>& tail) {
  const int batch_dims = static_cast<int>(ref.ndim()) - ref_tail;
  bool ok = x.ndim() == batch_dims + static_cast<py::ssize_t>(tail.size());
  for (int d = 0; ok && d < batch_dims; ++d) ok = x.shape(d) == ref.shape(d);
  for (size_t d = 0; ok && d < tail.size(); ++d) ok = x.shape(batch_dims + d) == tail[d];
  if (!ok) {
    std::string want = "(";
    for (int d = 0; d < batch_dims; ++d) want += std::to_string(ref.shape(d)) + ", ";
    for (size_t d = 0; d < tail.size(); ++d) want += (d ? ", " : "") + std::to_string(tail[d]);
    throw py::value_error(std::string(fn) + ": " + name + " must have shape " + want + "), got " +
                          shape_str(x));
  }
}

// An input's element strides after checking it is float32 and nd-D.
std::vector<int64_t> input(const char* fn, const py::array& x, const char* name, int nd) {
  auto st = float32_strides(x, name);
  if (x.ndim() != nd || nd < 2)
    throw py::value_error(std::string(fn) + ": " + name + " must be " + std::to_string(nd) +
                          "-D (at least 2-D), got " + shape_str(x));
  return st;
}

// The operand of a checked array: built only once the call is known to have work, as it lists
// every batch item.
Operand operand(const py::array& x, const std::vector<int64_t>& st) {
  const int nd = static_cast<int>(x.ndim());
  return {batch_offsets(x, st, nd - 2), st[nd - 2], st[nd - 1], x.data()};
}

float* output(const char* fn, py::array& x, const char* name,
              const std::vector<py::array>& inputs) {
  float32_strides(x, name);
  if (!(x.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": " + name + " must be C-contiguous");
  if (!x.writeable()) throw py::value_error(std::string(fn) + ": " + name + " is read-only");
  for (const py::array& in : inputs)
    if (overlap(x, in)) throw py::value_error(std::string(fn) + ": " + name + " overlaps an input");
  return static_cast<float*>(x.mutable_data());
}

// attn_mask: None, or bool / float32 of shape batch + (L, S). Returns its kind and sets its
// strides (in bytes for a bool mask, elements for a float one).
attention::MaskKind check_mask(const char* fn, const py::object& mask, const py::array& q,
                               int64_t L, int64_t S, std::vector<int64_t>& st) {
  if (mask.is_none()) return attention::MaskKind::none;
  if (!py::isinstance<py::array>(mask))
    throw py::type_error(std::string(fn) + ": attn_mask must be a NumPy array or None");
  const py::array m = py::reinterpret_borrow<py::array>(mask);
  check_shape(fn, m, "attn_mask", q, 2, {L, S});
  if (m.dtype().equal(py::dtype::of<bool>())) {
    st.assign(m.strides(), m.strides() + m.ndim());
    return attention::MaskKind::boolean;
  }
  st = float32_strides(m, "attn_mask");
  return attention::MaskKind::additive;
}

Operand mask_operand(const py::object& mask, attention::MaskKind kind,
                     const std::vector<int64_t>& st) {
  if (kind == attention::MaskKind::none) return {};
  return operand(py::reinterpret_borrow<py::array>(mask), st);
}

// k (..., S, E) and v (..., S, Ev) against q (..., L, E), all of one rank (checked by input()).
void check_qkv(const char* fn, const py::array& q, const py::array& k, const py::array& v) {
  const int nd = static_cast<int>(q.ndim());
  check_shape(fn, k, "k", q, 2, {k.shape(nd - 2), q.shape(nd - 1)});
  check_shape(fn, v, "v", q, 2, {k.shape(nd - 2), v.shape(nd - 1)});
}

// The kernel's view of one call; the batch is the number of leading-index combinations of q.
attention::Problem problem(const Operand& q, int64_t L, int64_t S, int64_t E, int64_t Ev,
                           float scale, bool causal, attention::MaskKind kind,
                           const Operand& mask) {
  attention::Problem p{};
  p.batch = static_cast<int64_t>(q.offsets.size());
  p.L = L;
  p.S = S;
  p.E = E;
  p.Ev = Ev;
  p.scale = scale;
  p.causal = causal;
  p.mask = {kind, mask.data, mask.offsets.data(), mask.rs, mask.cs};
  return p;
}

// out (..., L, Ev) and lse (..., L) = attention(q (..., L, E), k (..., S, E), v (..., S, Ev)).
void sdpa_forward(const py::array& q, const py::array& k, const py::array& v,
                  const py::object& mask, py::array out, py::array lse, float scale, bool causal,
                  double dropout_p, uint64_t seed) {
  const char* fn = "scaled_dot_product_attention";
  const int nd = static_cast<int>(q.ndim());
  const auto sq = input(fn, q, "q", nd), sk = input(fn, k, "k", nd), sv = input(fn, v, "v", nd);
  check_qkv(fn, q, k, v);
  const int64_t L = q.shape(nd - 2), E = q.shape(nd - 1), S = k.shape(nd - 2), Ev = v.shape(nd - 1);
  std::vector<int64_t> sm;
  const attention::MaskKind kind = check_mask(fn, mask, q, L, S, sm);
  if (causal && kind != attention::MaskKind::none)
    throw py::value_error(std::string(fn) + ": attn_mask and is_causal=True cannot be combined");
  if (!(dropout_p >= 0.0 && dropout_p < 1.0))
    throw py::value_error(std::string(fn) + ": dropout_p must be in [0, 1), got " +
                          std::to_string(dropout_p));
  check_shape(fn, out, "out", q, 2, {L, Ev});
  check_shape(fn, lse, "lse", q, 2, {L});
  std::vector<py::array> inputs{q, k, v};
  if (kind != attention::MaskKind::none) inputs.push_back(py::reinterpret_borrow<py::array>(mask));
  float* out_data = output(fn, out, "out", inputs);
  inputs.push_back(out);
  float* lse_data = output(fn, lse, "lse", inputs);
  if (lse.size() == 0) return;  // no query rows, however many batch items: nothing to write

  const Operand oq = operand(q, sq), ok = operand(k, sk), ov = operand(v, sv);
  const Operand om = mask_operand(mask, kind, sm);
  attention::ForwardArgs a{};
  a.p = problem(oq, L, S, E, Ev, scale, causal, kind, om);
  a.q = oq.view();
  a.k = ok.view();
  a.v = ov.view();
  if (dropout_p > 0.0)
    a.dropout = {static_cast<uint32_t>(std::ceil(dropout_p * 16777216.0)),
                 static_cast<float>(1.0 / (1.0 - dropout_p)), seed};
  a.out = out_data;
  a.lse = lse_data;
  py::gil_scoped_release release;
  attention::forward(a);
}

// (dq, dk, dv) of the forward above (no dropout), from dout, out and lse.
void sdpa_backward(const py::array& dout, const py::array& q, const py::array& k,
                   const py::array& v, const py::array& out, const py::array& lse,
                   const py::object& mask, py::array dq, py::array dk, py::array dv, float scale,
                   bool causal) {
  const char* fn = "scaled_dot_product_attention_backward";
  const int nd = static_cast<int>(q.ndim());
  const auto sq = input(fn, q, "q", nd), sk = input(fn, k, "k", nd), sv = input(fn, v, "v", nd);
  check_qkv(fn, q, k, v);
  const int64_t L = q.shape(nd - 2), E = q.shape(nd - 1), S = k.shape(nd - 2), Ev = v.shape(nd - 1);
  const auto sg = input(fn, dout, "dout", nd), so = input(fn, out, "out", nd);
  check_shape(fn, dout, "dout", q, 2, {L, Ev});
  check_shape(fn, out, "out", q, 2, {L, Ev});
  float32_strides(lse, "lse");
  check_shape(fn, lse, "lse", q, 2, {L});
  if (!(lse.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": lse must be C-contiguous");
  std::vector<int64_t> sm;
  const attention::MaskKind kind = check_mask(fn, mask, q, L, S, sm);
  if (causal && kind != attention::MaskKind::none)
    throw py::value_error(std::string(fn) + ": attn_mask and is_causal=True cannot be combined");
  check_shape(fn, dq, "dq", q, 2, {L, E});
  check_shape(fn, dk, "dk", q, 2, {S, E});
  check_shape(fn, dv, "dv", q, 2, {S, Ev});
  std::vector<py::array> inputs{dout, q, k, v, out, lse};
  if (kind != attention::MaskKind::none) inputs.push_back(py::reinterpret_borrow<py::array>(mask));
  float* dq_data = output(fn, dq, "dq", inputs);
  inputs.push_back(dq);
  float* dk_data = output(fn, dk, "dk", inputs);
  inputs.push_back(dk);
  float* dv_data = output(fn, dv, "dv", inputs);
  if (dq.size() == 0 && dk.size() == 0 && dv.size() == 0) return;  // however many batch items

  const Operand oq = operand(q, sq), ok = operand(k, sk), ov = operand(v, sv);
  const Operand og = operand(dout, sg), oo = operand(out, so), om = mask_operand(mask, kind, sm);
  attention::BackwardArgs a{};
  a.p = problem(oq, L, S, E, Ev, scale, causal, kind, om);
  a.dout = og.view();
  a.q = oq.view();
  a.k = ok.view();
  a.v = ov.view();
  a.lse = static_cast<const float*>(lse.data());
  a.dk = dk_data;
  a.dv = dv_data;
  const attention::View out_view = oo.view();
  py::gil_scoped_release release;
  attention::backward(a, out_view, dq_data);
}

py::dict attention_blocking() {
  const attention::Kernels& k = *cpu::kernels().attention;
  py::dict d;
  d["name"] = k.name;
  d["row_panel"] = k.row_panel;
  d["forward_rows"] = k.forward_rows;
  d["forward_keys"] = k.forward_keys;
  d["backward_q"] = k.backward_q;
  d["backward_k"] = k.backward_k;
  return d;
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("attention_blocking", &attention_blocking,
        "The active attention kernels' name and blocking (query rows and keys per block)");
  m.def("sdpa_forward", &sdpa_forward, py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("attn_mask"), py::arg("out"), py::arg("lse"), py::arg("scale"),
        py::arg("is_causal"), py::arg("dropout_p"), py::arg("seed"),
        "Fused attention: writes out (..., L, Ev) and lse (..., L); q, k, v, attn_mask share their "
        "leading dimensions");
  m.def("sdpa_backward", &sdpa_backward, py::arg("dout"), py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("out"), py::arg("lse"), py::arg("attn_mask"), py::arg("dq"), py::arg("dk"),
        py::arg("dv"), py::arg("scale"), py::arg("is_causal"),
        "Gradients of sdpa_forward (without dropout): writes dq, dk, dv");
}

}  // namespace ember
