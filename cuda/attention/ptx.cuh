// Inline-PTX wrappers the attention kernels use (sm_80+): asynchronous global->shared copies,
// ldmatrix, the bf16 tensor-core mma, and bf16 packing. cuda/emu/emu.h defines the same names for
// the CPU emulator.
#pragma once
#include <cstdint>

namespace ember::cuda::attention {

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared (both 16-byte aligned), of which src_bytes (0 to 16) are read and the
// rest zero-filled; with src_bytes == 0 nothing is read.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(smem)),
               "l"(gmem), "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

// Waits until at most N of this thread's committed groups are in flight (their data is visible
// to this thread; __syncthreads makes it visible to the block).
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// ldmatrix .x4: lanes 8m .. 8m + 7 give the row addresses of 8 x 8 b16 matrix m; lane l gets in
// r[m] row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1. The .trans form gives lane l the
// elements (2 (l % 4), l / 4) and (2 (l % 4) + 1, l / 4) instead. Lower index in the low half.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(smem)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(smem)));
}

// d += A B for A 16 x 16 (row), B 16 x 8 (col) in bf16, d in fp32. Fragments, g = lane / 4,
// t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"):
//   a[0] = A(g, 2t..2t+1)     a[1] = A(g+8, 2t..2t+1)
//   a[2] = A(g, 2t+8..2t+9)   a[3] = A(g+8, 2t+8..2t+9)
//   b[0] = B(2t..2t+1, g)     b[1] = B(2t+8..2t+9, g)
//   d[0], d[1] = D(g, 2t), D(g, 2t+1)   d[2], d[3] = D(g+8, 2t), D(g+8, 2t+1)
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[2]) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Two floats rounded to nearest-even bf16: lo in the low half (cvt puts its first source in the
// high half).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ uint16_t float_to_bf16(float f) {
  return static_cast<uint16_t>(pack_bf16x2(f, 0.0f) & 0xFFFFu);
}

__device__ __forceinline__ float bf16_to_float(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}

}  // namespace ember::cuda::attention
