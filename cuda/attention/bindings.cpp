// ember._cuda bindings of the attention family. ember.ops.attention merges the leading dimensions,
// allocates the outputs and workspaces with CuPy and passes CuPy's current stream; these wrappers
// parse the arrays, check them again (args.cpp: shapes, element sizes, strides, overlaps) and
// launch with the GIL released.
#include <pybind11/pybind11.h>

#include <string>

#include "attention/args.h"
#include "attention/attention.h"
#include "bindings.h"
#include "common/device_array.h"

namespace py = pybind11;

namespace ember::cuda {
namespace {

using attention::ArrayView;
using attention::DType;

ArrayView view_of(const DeviceArray& x) { return {x.data, x.itemsize, x.shape, x.strides}; }

std::string dtype_name(py::handle array) {
  return array.attr("dtype").attr("name").cast<std::string>();
}

// The array `obj`, which must hold dtype `dtype` and live on device `device` (or define it).
DeviceArray parse(const char* fn, py::handle obj, const char* name, const std::string& dtype,
                  int& device) {
  const std::string got = dtype_name(obj);
  if (got != dtype)
    throw py::type_error(std::string(fn) + ": " + name + " must be " + dtype + ", got " + got);
  const DeviceArray x = device_array(obj, name, dtype == "bfloat16" ? 2 : 4);
  if (device < 0) device = x.device;
  if (x.device != device)
    throw py::value_error(std::string(fn) + ": " + name + " is on device " +
                          std::to_string(x.device) + ", the others on device " +
                          std::to_string(device));
  return x;
}

// attn_mask: None, bool or float32.
bool parse_mask(const char* fn, const py::object& mask, DeviceArray& parsed, int& device) {
  if (mask.is_none()) return false;
  const std::string name = dtype_name(mask);
  if (name != "bool" && name != "float32")
    throw py::type_error(std::string(fn) + ": attn_mask must be bool or float32, got " + name);
  parsed = device_array(mask, "attn_mask", name == "bool" ? 1 : 4);
  if (parsed.device != device)
    throw py::value_error(std::string(fn) + ": attn_mask is on device " +
                          std::to_string(parsed.device) + ", q on device " +
                          std::to_string(device));
  return true;
}

// out (batch..., L, Ev) and lse (batch..., L) of attention(q, k, v); q, k, v, out float32 or
// bfloat16 alike.
void sdpa_forward(py::handle q, py::handle k, py::handle v, const py::object& mask, py::handle out,
                  py::handle lse, double scale, bool causal, double dropout_p, uint64_t seed,
                  uintptr_t stream) {
  const char* fn = "scaled_dot_product_attention";
  const std::string dtype = dtype_name(q);
  if (dtype != "float32" && dtype != "bfloat16")
    throw py::type_error(std::string(fn) + ": q must be float32 or bfloat16, got " + dtype);
  int device = -1;
  const DeviceArray aq = parse(fn, q, "q", dtype, device);
  const DeviceArray ak = parse(fn, k, "k", dtype, device);
  const DeviceArray av = parse(fn, v, "v", dtype, device);
  const DeviceArray aout = parse(fn, out, "out", dtype, device);
  const DeviceArray alse = parse(fn, lse, "lse", "float32", device);
  DeviceArray amask;
  const bool has_mask = parse_mask(fn, mask, amask, device);
  const ArrayView vmask = has_mask ? view_of(amask) : ArrayView{};
  const DType type = dtype == "float32" ? DType::f32 : DType::bf16;
  const attention::ForwardArgs a = attention::forward_args(
      type, view_of(aq), view_of(ak), view_of(av), has_mask ? &vmask : nullptr,
      has_mask && amask.itemsize == 1, view_of(aout), view_of(alse), scale, causal, dropout_p,
      seed);
  if (a.p.batch == 0 || a.p.L == 0 || a.p.S == 0) return;  // ember.ops fills the S == 0 case
  const DeviceGuard guard(device);
  py::gil_scoped_release release;
  if (type == DType::f32)
    attention::forward_f32(a, stream_from(stream));
  else
    attention::forward_bf16(a, stream_from(stream));
}

// dq (float32), dk, dv of the forward above (no dropout); delta is a (batch..., L) float32
// workspace. dout, q, k, v, out, dk, dv are float32 or bfloat16 alike.
void sdpa_backward(py::handle dout, py::handle q, py::handle k, py::handle v, py::handle out,
                   py::handle lse, const py::object& mask, py::handle delta, py::handle dq,
                   py::handle dk, py::handle dv, double scale, bool causal, bool deterministic,
                   uintptr_t stream) {
  const char* fn = "scaled_dot_product_attention_backward";
  const std::string dtype = dtype_name(q);
  if (dtype != "float32" && dtype != "bfloat16")
    throw py::type_error(std::string(fn) + ": q must be float32 or bfloat16, got " + dtype);
  int device = -1;
  const std::string f32 = "float32";
  const DeviceArray ag = parse(fn, dout, "dout", dtype, device);
  const DeviceArray aq = parse(fn, q, "q", dtype, device);
  const DeviceArray ak = parse(fn, k, "k", dtype, device);
  const DeviceArray av = parse(fn, v, "v", dtype, device);
  const DeviceArray aout = parse(fn, out, "out", dtype, device);
  const DeviceArray alse = parse(fn, lse, "lse", f32, device);
  const DeviceArray adelta = parse(fn, delta, "delta", f32, device);
  const DeviceArray adq = parse(fn, dq, "dq", f32, device);
  const DeviceArray adk = parse(fn, dk, "dk", dtype, device);
  const DeviceArray adv = parse(fn, dv, "dv", dtype, device);
  DeviceArray amask;
  const bool has_mask = parse_mask(fn, mask, amask, device);
  const ArrayView vmask = has_mask ? view_of(amask) : ArrayView{};
  const DType type = dtype == "float32" ? DType::f32 : DType::bf16;
  const attention::BackwardArgs a = attention::backward_args(
      type, view_of(ag), view_of(aq), view_of(ak), view_of(av), view_of(aout), view_of(alse),
      has_mask ? &vmask : nullptr, has_mask && amask.itemsize == 1, view_of(adelta),
      view_of(adq), view_of(adk), view_of(adv), scale, causal, deterministic);
  if (a.p.batch == 0 || a.p.L == 0 || a.p.S == 0) return;  // ember.ops fills these cases
  const DeviceGuard guard(device);
  py::gil_scoped_release release;
  if (type == DType::f32)
    attention::backward_f32(a, stream_from(stream));
  else
    attention::backward_bf16(a, stream_from(stream));
}

py::dict sdpa_info(int E, int Ev) {
  const int tile = attention::head_dim_tile(E, Ev);
  py::dict d;
  d["head_dim_tile"] = tile;
  if (tile) {
    d["forward_f32_shared_bytes"] = attention::forward_f32_shared_bytes(tile);
    d["forward_bf16_shared_bytes"] = attention::forward_bf16_shared_bytes(tile);
    d["backward_f32_shared_bytes"] = attention::backward_f32_shared_bytes(tile);
    d["backward_bf16_shared_bytes"] = attention::backward_bf16_shared_bytes(tile);
  }
  return d;
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def("sdpa_forward", &sdpa_forward, py::arg("q"), py::arg("k"), py::arg("v"),
        py::arg("attn_mask"), py::arg("out"), py::arg("lse"), py::arg("scale"),
        py::arg("is_causal"), py::arg("dropout_p"), py::arg("seed"), py::arg("stream"),
        "Fused attention on CuPy arrays: writes out (..., L, Ev) and lse (..., L); q, k, v and "
        "attn_mask share their (at most 4) leading dimensions");
  m.def("sdpa_backward", &sdpa_backward, py::arg("dout"), py::arg("q"), py::arg("k"),
        py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("attn_mask"), py::arg("delta"),
        py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("scale"), py::arg("is_causal"),
        py::arg("deterministic"), py::arg("stream"),
        "Gradients of sdpa_forward (without dropout): writes dq (float32), dk, dv (and the delta "
        "workspace)");
  m.def("sdpa_info", &sdpa_info, py::arg("E"), py::arg("Ev"),
        "The head-dimension tile and the kernels' shared memory per block for head dims E, Ev");
}

}  // namespace ember::cuda
