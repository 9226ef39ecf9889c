// The part of the CUDA runtime API ember's kernels and launchers use, for the CPU emulator of
// cuda/emu/emu.h (tests/cuda_emu.py compiles the kernels' sources with this directory first on
// the include path). Launch errors are exceptions from emu::launch; the device is one emulated GPU
// whose multiprocessor count the tests set (emu::options().multiprocessors) to steer tile choice.
#pragma once
#include <utility>

#include "emu/emu.h"

using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount, cudaDevAttrMaxSharedMemoryPerBlockOptin };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };

inline const char* cudaGetErrorName(cudaError_t) { return "cudaErrorEmulated"; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  *value = attr == cudaDevAttrMultiProcessorCount ? emu::options().multiprocessors : 227 * 1024;
  return cudaSuccess;
}
template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel, cudaFuncAttribute, int bytes) {
  return bytes <= 227 * 1024 ? cudaSuccess : 1;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  static const char memset_node = 0;
  emu::enqueue(stream, &memset_node, [=] { std::memset(p, value, bytes); });
  return cudaSuccess;
}

// Streams and graphs (emu.h): capture records a stream's work, a launched graph runs it. Errors
// are those of CUDA's that ember's code can meet: capturing a stream twice, ending a capture
// that was not begun, and an update whose graph's nodes are not those of the executable graph.
constexpr cudaError_t cudaErrorIllegalState = 401;
constexpr cudaError_t cudaErrorGraphExecUpdateFailure = 910;
constexpr unsigned cudaStreamNonBlocking = 1;
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone, cudaStreamCaptureStatusActive };
enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal, cudaStreamCaptureModeThreadLocal };
using cudaGraph_t = emu::Graph*;
using cudaGraphExec_t = emu::Graph*;
struct cudaGraphExecUpdateResultInfo {};

inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new emu::Stream;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete static_cast<emu::Stream*>(stream);
  return cudaSuccess;
}
inline cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  const bool active = stream && static_cast<emu::Stream*>(stream)->capture;
  *status = active ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}
inline cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  auto* s = static_cast<emu::Stream*>(stream);
  if (!s || s->capture) return cudaErrorIllegalState;
  s->capture = new emu::Graph;
  return cudaSuccess;
}
inline cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  auto* s = static_cast<emu::Stream*>(stream);
  *graph = nullptr;
  if (!s || !s->capture) return cudaErrorIllegalState;
  *graph = std::exchange(s->capture, nullptr);
  return cudaSuccess;
}
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph,
                                        unsigned long long) {
  *exec = new emu::Graph(*graph);
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph,
                                       cudaGraphExecUpdateResultInfo*) {
  if (exec->kinds != graph->kinds) return cudaErrorGraphExecUpdateFailure;
  exec->work = graph->work;
  return cudaSuccess;
}
inline cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  static const char graph_node = 0;
  emu::enqueue(stream, &graph_node, [exec] {
    for (const auto& work : exec->work) work();
  });
  return cudaSuccess;
}
inline cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}
