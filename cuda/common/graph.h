// Host loops that launch many small kernels (the LSTM's time steps) replayed as CUDA graphs:
// the work a loop enqueues is captured once into a graph, instantiated, and later calls with the
// same arguments launch that graph with one call, so the GPU runs the kernels back to back
// instead of waiting for the host to launch each. The graph reads its buffers when it runs, so a
// replay sees their current contents; it is keyed by everything the enqueued work depends on
// (sizes, pointers, strides, flags) plus the device.
//
// Capture runs on a private non-blocking stream in thread-local mode (CuPy's default stream, the
// legacy one, cannot be captured; other threads are not affected), and the graph is launched on
// the caller's stream. When the caller's stream is itself being captured the loop is enqueued
// directly (it becomes part of the caller's graph); when capture or instantiation fails the loop
// runs directly too, so a graph is only ever a faster way to do the same work.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <list>
#include <mutex>
#include <utility>
#include <vector>

#include "common/check.h"

namespace ember::cuda {

// One per loop family, living for the whole process (create it with new and never delete it:
// destroying graphs at exit could run after the CUDA runtime's own teardown).
class GraphCache {
 public:
  explicit GraphCache(size_t capacity) : capacity_(capacity) {}
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // Runs enqueue(s) (which enqueues work on the stream s and nothing else) for `stream`: as the
  // graph cached under `key` when there is one, else captured into a new graph (replacing the
  // least recently used, by an in-place update when the topologies match).
  template <class Enqueue>
  void run(std::vector<int64_t> key, Enqueue&& enqueue, cudaStream_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    EMBER_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
    if (status != cudaStreamCaptureStatusNone) {
      enqueue(stream);
      return;
    }
    int device = 0;
    EMBER_CUDA_CHECK(cudaGetDevice(&device));
    key.push_back(device);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->key == key) {
        entries_.splice(entries_.begin(), entries_, it);
        EMBER_CUDA_CHECK(cudaGraphLaunch(it->exec, stream));
        return;
      }
    cudaGraphExec_t exec = nullptr;
    try {
      exec = capture(enqueue);
    } catch (const std::exception&) {
      cudaGetLastError();  // a failed capture's error is not the caller's: run the loop itself
      enqueue(stream);
      return;
    }
    entries_.push_front({std::move(key), exec});
    EMBER_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  }

 private:
  struct Entry {
    std::vector<int64_t> key;
    cudaGraphExec_t exec;
  };

  // A stream, destroyed at the end of the scope.
  struct SideStream {
    cudaStream_t stream = nullptr;
    SideStream() { EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)); }
    ~SideStream() { cudaStreamDestroy(stream); }
  };

  // A graph, destroyed at the end of the scope (an instantiated graph does not need it).
  struct Graph {
    cudaGraph_t graph = nullptr;
    ~Graph() {
      if (graph) cudaGraphDestroy(graph);
    }
  };

  // The work of enqueue as an executable graph: the least recently used entry updated in place
  // when the cache is full and the topologies match (then removed from the list), else a new one.
  template <class Enqueue>
  cudaGraphExec_t capture(Enqueue& enqueue) {
    SideStream side;
    Graph g;
    EMBER_CUDA_CHECK(cudaStreamBeginCapture(side.stream, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue(side.stream);
    } catch (...) {
      cudaStreamEndCapture(side.stream, &g.graph);
      throw;
    }
    EMBER_CUDA_CHECK(cudaStreamEndCapture(side.stream, &g.graph));
    if (entries_.size() >= capacity_) {
      cudaGraphExec_t oldest = entries_.back().exec;
      entries_.pop_back();
      cudaGraphExecUpdateResultInfo info;
      if (cudaGraphExecUpdate(oldest, g.graph, &info) == cudaSuccess) return oldest;
      cudaGetLastError();
      cudaGraphExecDestroy(oldest);
    }
    cudaGraphExec_t exec = nullptr;
    EMBER_CUDA_CHECK(cudaGraphInstantiate(&exec, g.graph, 0));
    return exec;
  }

  size_t capacity_;
  std::mutex mutex_;
  std::list<Entry> entries_;  // most recently used first
};

}  // namespace ember::cuda
