// A CPU emulator of the CUDA features ember's kernels use, so that their exact source runs
// (slowly) on a machine without a GPU. Test-only: tests/cuda_emu.py compiles the kernels' .cu
// files (launches rewritten to emu::launch_kernel) with g++, EMBER_CUDA_EMULATION and
// cuda/emu/include/cuda_runtime.h, together with C entry points (cuda/emu/*_emu.cpp), and the
// tests/test_cuda_*_emulated.py files compare the results with ember.ref, NumPy or ember._C.
// Not emulated: static __shared__ arrays are plain statics (blocks run one at a time), so they
// are not poisoned between blocks as dynamic shared memory is.
//
// Model. A launch runs its blocks one after another; the threads of a block are fibers (switched
// by a few instructions of assembly on x86-64, by ucontext elsewhere) on one OS thread, switched
// only at __syncthreads() and at warp-collective operations (shuffles, ldmatrix, mma), so
// everything between two such points runs as one uninterrupted step of one thread. The
// scheduler runs the threads in one of several orders (Options::order), warps far ahead of each
// other among them: a missing __syncthreads shows up as a result that depends on the order. It
// also checks what the hardware would leave undefined or hang on:
//   - a __syncthreads that only part of the block reaches, or a collective only part of a warp
//     reaches (deadlock), is an error naming the block;
//   - shared memory starts as 0xFF bytes (NaN as float and as bf16), so a read of a byte nobody
//     wrote poisons the result; it sits against an inaccessible page, so reading or writing past
//     the dynamic size faults;
//   - cp.async copies land only at the cp.async.wait_group that covers them (reading earlier sees
//     the poison), and a thread that exits with copies in flight is an error;
//   - ldmatrix addresses must be 16-byte aligned and inside shared memory.
// mma.m16n8k16 and ldmatrix follow the fragment layouts of the PTX ISA (written out again here,
// independently of the kernels, in mma_bf16_16816 and ldmatrix_x4*).
#pragma once
#include <sys/mman.h>
#include <unistd.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

// ---- CUDA's vocabulary ----------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned x_, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};

using cudaStream_t = void*;

inline float __uint_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t __float_as_uint(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

namespace emu {

// How the scheduler picks the threads to run next (each runs until it blocks): all runnable
// threads in forward or reverse order, a random half of them in random order, or only the first
// (last) warp that can run, so that each warp runs as far ahead of the others as the barriers
// let it (what a missing barrier between warps needs to show).
enum class Order { forward, reverse, random, warp_serial, warp_serial_reverse };

struct Options {
  Order order = Order::forward;
  uint32_t seed = 0;
  int multiprocessors = 132;  // what cudaDeviceGetAttribute reports (cuda/emu/include)
};
inline Options& options() {
  static Options o;
  return o;
}

// `bytes` of memory whose end touches an inaccessible page (and whose start follows one): an
// access past either end faults. The start is 16-byte aligned; up to 15 bytes of slack may
// follow the end.
class FencedBuffer {
 public:
  FencedBuffer() = default;
  explicit FencedBuffer(size_t bytes) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t rounded = (bytes + 15) / 16 * 16;
    const size_t body = (rounded + page - 1) / page * page;
    size_ = body + 2 * page;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<unsigned char*>(p);
    mprotect(base_, page, PROT_NONE);
    mprotect(base_ + page + body, page, PROT_NONE);
    data_ = base_ + page + body - rounded;
    bytes_ = bytes;
  }
  ~FencedBuffer() {
    if (base_) munmap(base_, size_);
  }
  FencedBuffer(FencedBuffer&& o) noexcept { *this = std::move(o); }
  FencedBuffer& operator=(FencedBuffer&& o) noexcept {
    std::swap(base_, o.base_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  unsigned char* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  unsigned char* base_ = nullptr;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
  size_t bytes_ = 0;
};

struct CpAsyncCopy {
  unsigned char* dst;
  const unsigned char* src;
  int src_bytes;  // the rest of the `bytes` is zero-filled
  int bytes;      // 16 or 4
};

// A suspended thread of control: its stack pointer (x86-64), or a ucontext.
#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};
// Saves the callee-saved registers and the x87/SSE control words on the current stack, stores the
// stack pointer in *save and resumes the context whose stack pointer is `next` (defined once, in
// switch.cpp).
extern "C" void emu_switch(void** save, void* next);
inline void switch_context(Context& save, Context& next) { emu_switch(&save.sp, next.sp); }
#else
struct Context {
  ucontext_t uc;
};
inline void switch_context(Context& save, Context& next) { swapcontext(&save.uc, &next.uc); }
#endif

enum class State { runnable, block_barrier, warp_barrier, done };

struct Fiber {
  Context context;
  unsigned char* stack = nullptr;  // kStackBytes of fenced_stack(thread index)
  dim3 thread_idx;
  unsigned lane = 0, warp = 0;
  State state = State::runnable;
  alignas(16) unsigned char exchange[64];  // this lane's operand of a warp-collective operation
  std::vector<CpAsyncCopy> open_group;
  std::vector<std::vector<CpAsyncCopy>> committed;
};

// The block being run.
struct Block {
  dim3 block_idx, block_dim, grid_dim;
  FencedBuffer shared;
  std::vector<Fiber> fibers;
  Context scheduler;
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
  std::string error;  // set by a thread that hit an error; the launch stops and throws it
};

inline Block*& block() {
  static Block* b = nullptr;
  return b;
}

inline Fiber& self() { return *block()->current; }

inline void yield() {
  Block& b = *block();
  switch_context(b.current->context, b.scheduler);
}

// Records an error and parks the thread for good: the scheduler stops the launch.
[[noreturn]] inline void fail(const std::string& what) {
  Block& b = *block();
  if (b.error.empty())
    b.error = what + " (block " + std::to_string(b.block_idx.x) + ", thread " +
              std::to_string(b.current->thread_idx.x) + ")";
  for (;;) {
    b.current->state = State::warp_barrier;
    yield();
  }
}

inline void syncthreads() {
  self().state = State::block_barrier;
  yield();
}

// Every lane of the warp waits here until all 32 have arrived.
inline void warp_sync() {
  self().state = State::warp_barrier;
  yield();
}

inline Fiber& lane_fiber(unsigned lane) {
  Block& b = *block();
  return b.fibers[self().warp * 32 + lane];
}

[[noreturn]] inline void fiber_main() {
  Block& b = *block();
  (*b.body)();
  bool pending = !b.current->open_group.empty();
  for (const auto& group : b.current->committed) pending = pending || !group.empty();
  if (pending) fail("thread exited with cp.async copies never waited for");
  b.current->state = State::done;
  yield();
  __builtin_unreachable();  // a finished thread is never resumed
}

// 0 .. n - 1 in forward (and the serial orders), reverse or random order.
inline std::vector<unsigned> order(unsigned n, std::mt19937& rng) {
  std::vector<unsigned> idx(n);
  for (unsigned i = 0; i < n; ++i) idx[i] = i;
  if (options().order == Order::reverse)
    for (unsigned i = 0; i < n / 2; ++i) std::swap(idx[i], idx[n - 1 - i]);
  if (options().order == Order::random) std::shuffle(idx.begin(), idx.end(), rng);
  return idx;
}

// The threads one scheduling pass offers to run (see Order).
inline std::vector<unsigned> pass(const Block& b, std::mt19937& rng) {
  const unsigned n = static_cast<unsigned>(b.fibers.size()), warps = n / 32;
  const Order o = options().order;
  if (o == Order::warp_serial || o == Order::warp_serial_reverse) {
    for (unsigned k = 0; k < warps; ++k) {
      const unsigned w = o == Order::warp_serial ? k : warps - 1 - k;
      for (unsigned l = 0; l < 32; ++l)
        if (b.fibers[w * 32 + l].state == State::runnable) {
          std::vector<unsigned> lanes(32);
          for (unsigned i = 0; i < 32; ++i) lanes[i] = w * 32 + i;
          return lanes;
        }
    }
    return {};
  }
  std::vector<unsigned> idx = order(n, rng);
  if (o == Order::random) {
    std::bernoulli_distribution sit_out(0.5);
    idx.erase(std::remove_if(idx.begin(), idx.end(), [&](unsigned) { return sit_out(rng); }),
              idx.end());
  }
  return idx;
}

// Runs the threads of one block to the end, releasing barriers as they fill.
inline void run_block(Block& b, std::mt19937& rng) {
  const unsigned n = static_cast<unsigned>(b.fibers.size());
  for (;;) {
    bool progress = false, runnable = false;
    for (const Fiber& f : b.fibers) runnable = runnable || f.state == State::runnable;
    for (unsigned i : pass(b, rng)) {
      Fiber& f = b.fibers[i];
      if (f.state != State::runnable) continue;
      b.current = &f;
      switch_context(b.scheduler, f.context);
      progress = true;
      if (!b.error.empty()) throw std::runtime_error(b.error);
    }
    unsigned done = 0, at_barrier = 0;
    for (Fiber& f : b.fibers) {
      done += f.state == State::done;
      at_barrier += f.state == State::block_barrier;
    }
    if (done == n) return;
    if (at_barrier > 0 && at_barrier + done == n) {
      if (done > 0)
        throw std::runtime_error("__syncthreads reached by only part of block " +
                                 std::to_string(b.block_idx.x));
      for (Fiber& f : b.fibers) f.state = State::runnable;
      progress = true;
    }
    for (unsigned w = 0; w < n / 32; ++w) {
      unsigned waiting = 0;
      for (unsigned l = 0; l < 32; ++l)
        waiting += b.fibers[w * 32 + l].state == State::warp_barrier;
      if (waiting == 32) {
        for (unsigned l = 0; l < 32; ++l) b.fibers[w * 32 + l].state = State::runnable;
        progress = true;
      }
    }
    if (!progress && !runnable)
      throw std::runtime_error("deadlock in block " + std::to_string(b.block_idx.x) +
                               ": a warp-collective operation or __syncthreads that not every "
                               "thread reaches");
  }
}

constexpr size_t kStackBytes = 256 * 1024;

// The stack of thread t (kept from launch to launch: creating stacks with their guard pages for
// every block would cost more than running most blocks).
inline unsigned char* fenced_stack(unsigned t, size_t bytes) {
  static std::vector<FencedBuffer> stacks;
  while (stacks.size() <= t) stacks.emplace_back(bytes);
  return stacks[t].data();
}

// A fiber that starts in fiber_main on its own stack.
#if defined(__x86_64__)
inline void make_fiber(Fiber& f, size_t stack_bytes) {
  // the frame emu_switch pops: control words, r15, r14, r13, r12, rbx, rbp, return address
  // (fiber_main, entered with the stack 8 bytes off 16-byte alignment, as after a call)
  uint64_t* top = reinterpret_cast<uint64_t*>(f.stack + stack_bytes - 64);
  top[-1] = 0;
  top[-2] = reinterpret_cast<uint64_t>(&fiber_main);
  for (int r = 3; r <= 8; ++r) top[-r] = 0;
  top[-9] = 0x1F80 | (uint64_t{0x037F} << 32);  // MXCSR and x87 control word defaults
  f.context.sp = top - 9;
}
#else
__attribute__((noinline)) inline void make_fiber(Fiber& f, size_t stack_bytes) {
  getcontext(&f.context.uc);  // returns twice, like setjmp: kept in a function of its own
  f.context.uc.uc_stack.ss_sp = f.stack;
  f.context.uc.uc_stack.ss_size = stack_bytes - 64;
  f.context.uc.uc_link = nullptr;
  makecontext(&f.context.uc, reinterpret_cast<void (*)()>(&fiber_main), 0);
}
#endif

// kernel<<<grid, block, shared_bytes>>>: `body` is the kernel call; it reads threadIdx and
// blockIdx through block(). Threads are numbered x fastest, then y, then z (warps of 32 in that
// order, as on the GPU); the block's thread count must be a multiple of 32.
inline void launch(dim3 grid, dim3 block_dim, size_t shared_bytes,
                   const std::function<void()>& body) {
  const uint64_t threads = uint64_t{block_dim.x} * block_dim.y * block_dim.z;
  if (threads == 0 || threads % 32 != 0 || threads > 1024)
    throw std::runtime_error("emu: block size must be a multiple of 32 up to 1024");
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 ||
      grid.x > 0x7FFFFFFFu)
    throw std::runtime_error("emu: grid dimensions out of range");
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  if (blocks > 0xFFFFFFFFu) throw std::runtime_error("emu: too many blocks to emulate");
  std::mt19937 rng(options().seed);
  for (unsigned blk : order(static_cast<unsigned>(blocks), rng)) {
    Block b;
    b.block_idx = dim3(blk % grid.x, blk / grid.x % grid.y, blk / grid.x / grid.y);
    b.block_dim = block_dim;
    b.grid_dim = grid;
    b.shared = FencedBuffer(shared_bytes);
    std::memset(b.shared.data(), 0xFF, shared_bytes);
    b.body = &body;
    b.fibers.resize(threads);
    block() = &b;
    for (unsigned t = 0; t < threads; ++t) {
      Fiber& f = b.fibers[t];
      f.thread_idx = dim3(t % block_dim.x, t / block_dim.x % block_dim.y,
                          t / block_dim.x / block_dim.y);
      f.lane = t % 32;
      f.warp = t / 32;
      f.stack = fenced_stack(t, kStackBytes);
      make_fiber(f, kStackBytes);
    }
    try {
      run_block(b, rng);
    } catch (...) {
      block() = nullptr;
      throw;
    }
    block() = nullptr;
  }
}

inline void launch(unsigned blocks, unsigned threads, size_t shared_bytes,
                   const std::function<void()>& body) {
  launch(dim3(blocks), dim3(threads), shared_bytes, body);
}

inline unsigned char* shared_memory() { return block()->shared.data(); }

inline bool in_shared(const void* p, size_t bytes) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  const Block& b = *block();
  return c >= b.shared.data() && c + bytes <= b.shared.data() + b.shared.bytes();
}

// ---- bf16 -------------------------------------------------------------------------------------

inline uint16_t float_to_bf16(float f) {  // round to nearest even; NaN stays NaN
  const uint32_t u = __float_as_uint(f);
  if (std::isnan(f)) return 0x7FC0;
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}
inline float bf16_to_float(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

}  // namespace emu

// ---- what the kernels call -----------------------------------------------------------------

#define threadIdx (::emu::self().thread_idx)
#define blockIdx (::emu::block()->block_idx)
#define blockDim (::emu::block()->block_dim)
#define gridDim (::emu::block()->grid_dim)

inline void __syncthreads() { emu::syncthreads(); }

template <class T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
  static_assert(sizeof(T) <= sizeof(emu::Fiber::exchange), "operand too large");
  if (mask != 0xFFFFFFFFu) emu::fail("__shfl_xor_sync: only full-warp masks are emulated");
  emu::Fiber& me = emu::self();
  std::memcpy(me.exchange, &value, sizeof(T));
  emu::warp_sync();
  T out;
  std::memcpy(&out, emu::lane_fiber(me.lane ^ static_cast<unsigned>(lane_mask)).exchange,
              sizeof(T));
  emu::warp_sync();
  return out;
}

inline float atomicAdd(float* address, float value) {  // threads never run concurrently here
  const float old = *address;
  *address = old + value;
  return old;
}

inline int cuda_memset_async(void* p, int value, size_t bytes) {
  std::memset(p, value, bytes);
  return 0;
}

// cp.async.cg.shared.global 16 bytes, src_bytes of them read (0 to 16), the rest zero-filled.
inline void cp_async_16(void* smem, const void* gmem, int src_bytes) {
  if (!emu::in_shared(smem, 16) || reinterpret_cast<uintptr_t>(smem) % 16 != 0)
    emu::fail("cp.async: destination not 16-byte aligned inside shared memory");
  if (src_bytes < 0 || src_bytes > 16) emu::fail("cp.async: src-size out of 0..16");
  if (src_bytes > 0 && reinterpret_cast<uintptr_t>(gmem) % 16 != 0)
    emu::fail("cp.async: source not 16-byte aligned");
  emu::self().open_group.push_back({static_cast<unsigned char*>(smem),
                                    static_cast<const unsigned char*>(gmem), src_bytes, 16});
}

// cp.async.ca.shared.global 4 bytes, src_bytes of them read (0 or 4), the rest zero-filled.
inline void cp_async_4(void* smem, const void* gmem, int src_bytes) {
  if (!emu::in_shared(smem, 4) || reinterpret_cast<uintptr_t>(smem) % 4 != 0)
    emu::fail("cp.async: destination not 4-byte aligned inside shared memory");
  if (src_bytes != 0 && src_bytes != 4) emu::fail("cp.async: src-size of a 4-byte copy not 0 or 4");
  if (src_bytes > 0 && reinterpret_cast<uintptr_t>(gmem) % 4 != 0)
    emu::fail("cp.async: source not 4-byte aligned");
  emu::self().open_group.push_back({static_cast<unsigned char*>(smem),
                                    static_cast<const unsigned char*>(gmem), src_bytes, 4});
}

inline void cp_async_commit() {
  emu::Fiber& me = emu::self();
  me.committed.push_back(std::move(me.open_group));
  me.open_group.clear();
}

// Lands every committed group but the newest N (cp.async.wait_group N).
template <int N>
inline void cp_async_wait() {
  emu::Fiber& me = emu::self();
  while (me.committed.size() > static_cast<size_t>(N)) {
    for (const emu::CpAsyncCopy& c : me.committed.front()) {
      std::memset(c.dst, 0, static_cast<size_t>(c.bytes));
      if (c.src_bytes > 0) std::memcpy(c.dst, c.src, static_cast<size_t>(c.src_bytes));
    }
    me.committed.erase(me.committed.begin());
  }
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16: lanes 8m .. 8m + 7 give the addresses of rows 0..7
// of matrix m (16 bytes each); lane l receives in r[m] row l / 4, elements 2 (l % 4) and
// 2 (l % 4) + 1 (the lower index in the low half). With .trans it receives instead the elements
// (row 2 (l % 4), column l / 4) and (row 2 (l % 4) + 1, column l / 4).
inline void ldmatrix_emulated(uint32_t (&r)[4], const void* smem, bool trans) {
  if (!emu::in_shared(smem, 16) || reinterpret_cast<uintptr_t>(smem) % 16 != 0)
    emu::fail("ldmatrix: row address not 16-byte aligned inside shared memory");
  emu::Fiber& me = emu::self();
  std::memcpy(me.exchange, &smem, sizeof(smem));
  emu::warp_sync();
  const auto row = [](unsigned lane) {
    const uint16_t* p;
    std::memcpy(&p, emu::lane_fiber(lane).exchange, sizeof(p));
    return p;
  };
  const unsigned l = me.lane;
  for (unsigned m = 0; m < 4; ++m) {
    uint16_t lo, hi;
    if (!trans) {
      lo = row(8 * m + l / 4)[2 * (l % 4)];
      hi = row(8 * m + l / 4)[2 * (l % 4) + 1];
    } else {
      lo = row(8 * m + 2 * (l % 4))[l / 4];
      hi = row(8 * m + 2 * (l % 4) + 1)[l / 4];
    }
    r[m] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
  }
  emu::warp_sync();
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* smem) { ldmatrix_emulated(r, smem, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  ldmatrix_emulated(r, smem, true);
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d += A (16 x 16) B (16 x 8). With
// g = lane / 4 and t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point
// type"): a[0] = A(g, 2t..2t+1), a[1] = A(g+8, 2t..2t+1), a[2] = A(g, 2t+8..2t+9),
// a[3] = A(g+8, 2t+8..2t+9); b[0] = B(2t..2t+1, g), b[1] = B(2t+8..2t+9, g);
// d[0..1] = D(g, 2t..2t+1), d[2..3] = D(g+8, 2t..2t+1). Pairs hold the lower index in the low
// half.
inline void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  struct Operands {
    uint32_t a[4], b[2];
  };
  emu::Fiber& me = emu::self();
  Operands mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  std::memcpy(me.exchange, &mine, sizeof(mine));
  emu::warp_sync();
  float A[16][16], B[16][8];
  const auto lo = [](uint32_t u) { return emu::bf16_to_float(static_cast<uint16_t>(u & 0xFFFF)); };
  const auto hi = [](uint32_t u) { return emu::bf16_to_float(static_cast<uint16_t>(u >> 16)); };
  for (unsigned lane = 0; lane < 32; ++lane) {
    Operands o;
    std::memcpy(&o, emu::lane_fiber(lane).exchange, sizeof(o));
    const unsigned g = lane / 4, t = lane % 4;
    A[g][2 * t] = lo(o.a[0]), A[g][2 * t + 1] = hi(o.a[0]);
    A[g + 8][2 * t] = lo(o.a[1]), A[g + 8][2 * t + 1] = hi(o.a[1]);
    A[g][2 * t + 8] = lo(o.a[2]), A[g][2 * t + 9] = hi(o.a[2]);
    A[g + 8][2 * t + 8] = lo(o.a[3]), A[g + 8][2 * t + 9] = hi(o.a[3]);
    B[2 * t][g] = lo(o.b[0]), B[2 * t + 1][g] = hi(o.b[0]);
    B[2 * t + 8][g] = lo(o.b[1]), B[2 * t + 9][g] = hi(o.b[1]);
  }
  emu::warp_sync();
  const unsigned g = me.lane / 4, t = me.lane % 4;
  for (int e = 0; e < 4; ++e) {
    const unsigned i = e < 2 ? g : g + 8, j = 2 * t + (e & 1);
    float sum = d[e];
    for (int k = 0; k < 16; ++k) sum += A[i][k] * B[k][j];
    d[e] = sum;
  }
}

// cvt.rn.bf16x2.f32: lo in the low half, hi in the high half.
inline uint32_t pack_bf16x2(float lo, float hi) {
  return static_cast<uint32_t>(emu::float_to_bf16(lo)) |
         (static_cast<uint32_t>(emu::float_to_bf16(hi)) << 16);
}
inline float bf16_to_float(uint16_t h) { return emu::bf16_to_float(h); }
inline uint16_t float_to_bf16(float f) { return emu::float_to_bf16(f); }

#define EMBER_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::emu::shared_memory())

// ---- what the GEMM, pooling, convolution, LSTM and optimizer kernels call --------------------

#define __shared__ static  // blocks run one at a time, on one OS thread (not poisoned: see below)
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
#define __grid_constant__

using std::isfinite;  // CUDA's math functions are global
using std::isinf;
using std::isnan;

template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }

template <class T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta) {
  static_assert(sizeof(T) <= sizeof(emu::Fiber::exchange), "operand too large");
  if (mask != 0xFFFFFFFFu) emu::fail("__shfl_down_sync: only full-warp masks are emulated");
  emu::Fiber& me = emu::self();
  std::memcpy(me.exchange, &value, sizeof(T));
  emu::warp_sync();
  T out = value;  // a source lane past the warp's end leaves the value unchanged
  if (me.lane + delta < 32) std::memcpy(&out, emu::lane_fiber(me.lane + delta).exchange, sizeof(T));
  emu::warp_sync();
  return out;
}

// IEEE single operations rounded to nearest even, never contracted into an FMA (-ffp-contract=off
// is among the emulator's flags, and these are calls the compiler cannot fuse).
__attribute__((noinline)) inline float __fadd_rn(float a, float b) { return a + b; }
__attribute__((noinline)) inline float __fsub_rn(float a, float b) { return a - b; }
__attribute__((noinline)) inline float __fmul_rn(float a, float b) { return a * b; }
__attribute__((noinline)) inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }

// cvt.rna.tf32.f32: round to the 10-bit mantissa of TF32, to nearest with ties away from zero;
// the low 13 bits of the result are zero. Infinity and NaN pass unchanged.
inline unsigned to_tf32(float x) {
  const uint32_t u = __float_as_uint(x);
  if ((u & 0x7F800000u) == 0x7F800000u) return u;
  return (u + 0x1000u) & 0xFFFFE000u;
}

// mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32, d += A (16 x 8) B (8 x 8). With g = lane / 4
// and t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k8", .tf32): a[0] = A(g, t),
// a[1] = A(g + 8, t), a[2] = A(g, t + 4), a[3] = A(g + 8, t + 4); b[0] = B(t, g),
// b[1] = B(t + 4, g); d[0..1] = D(g, 2t..2t+1), d[2..3] = D(g + 8, 2t..2t+1). A finite operand
// with any of its low 13 bits set was not converted to TF32: an error.
inline void mma_tf32(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  struct Operands {
    uint32_t a[4], b[2];
  };
  emu::Fiber& me = emu::self();
  Operands mine{{a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  const auto unrounded = [](uint32_t u) {  // a NaN (say shared memory's poison) stays NaN
    return (u & 0x1FFFu) != 0 && (u & 0x7F800000u) != 0x7F800000u;
  };
  for (uint32_t u : mine.a)
    if (unrounded(u)) emu::fail("mma tf32: an A operand not rounded to TF32");
  for (uint32_t u : mine.b)
    if (unrounded(u)) emu::fail("mma tf32: a B operand not rounded to TF32");
  std::memcpy(me.exchange, &mine, sizeof(mine));
  emu::warp_sync();
  float A[16][8], B[8][8];
  for (unsigned lane = 0; lane < 32; ++lane) {
    Operands o;
    std::memcpy(&o, emu::lane_fiber(lane).exchange, sizeof(o));
    const unsigned g = lane / 4, t = lane % 4;
    A[g][t] = __uint_as_float(o.a[0]);
    A[g + 8][t] = __uint_as_float(o.a[1]);
    A[g][t + 4] = __uint_as_float(o.a[2]);
    A[g + 8][t + 4] = __uint_as_float(o.a[3]);
    B[t][g] = __uint_as_float(o.b[0]);
    B[t + 4][g] = __uint_as_float(o.b[1]);
  }
  emu::warp_sync();
  const unsigned g = me.lane / 4, t = me.lane % 4;
  for (int e = 0; e < 4; ++e) {
    const unsigned i = e < 2 ? g : g + 8, j = 2 * t + (e & 1);
    float sum = d[e];
    for (int k = 0; k < 8; ++k) sum += A[i][k] * B[k][j];
    d[e] = sum;
  }
}

namespace emu {

// Streams and graphs. Work enqueued on a stream runs at once, except on a stream being captured:
// there it is recorded, in order, into the graph that cudaStreamEndCapture returns, and it runs
// each time a graph instantiated from it is launched (cuda/emu/include/cuda_runtime.h). A
// recorded launch keeps copies of its arguments, as a graph's kernel node does; `kinds` names
// each node's kernel (or operation), what an update must keep.
struct Graph {
  std::vector<std::function<void()>> work;
  std::vector<const void*> kinds;
};
struct Stream {
  Graph* capture = nullptr;  // the graph being recorded, or null
};

inline void enqueue(cudaStream_t stream, const void* kind, std::function<void()> work) {
  Graph* capture = stream ? static_cast<Stream*>(stream)->capture : nullptr;
  if (!capture) {
    work();
    return;
  }
  capture->work.push_back(std::move(work));
  capture->kinds.push_back(kind);
}

// kernel<<<grid, block, shared_bytes, stream>>>(args...), as tests/cuda_emu.py rewrites it.
template <class Kernel, class... Args>
void launch_kernel(dim3 grid, dim3 block_dim, size_t shared_bytes, cudaStream_t stream,
                   Kernel kernel, const Args&... args) {
  enqueue(stream, reinterpret_cast<const void*>(kernel), [=] {
    launch(grid, block_dim, shared_bytes, [&] { kernel(args...); });
  });
}

}  // namespace emu
