// Warp-level building blocks of the fused attention kernels: asynchronous
// tile copies, ldmatrix and the m16n8k16 fp16 tensor-core product with fp32
// accumulation.  Fragment layouts are those of the PTX ISA for
// mma.m16n8k16: lane = 4 * g + t holds rows g and g + 8, columns 2t, 2t + 1.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/attention_plan.cuh"

namespace st::cuda::attn {

// Shared-memory tiles are [64][D + 8] halves: the 16-byte pad puts the 8
// rows an ldmatrix reads in 8 different bank groups.
template <int D>
constexpr int kStride = D + 8;

__device__ inline uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, or zeros where !valid (the source is not read).
__device__ inline void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)),
               "l"(src), "r"(valid ? 16 : 0));
}
__device__ inline void cp_async4(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)),
               "l"(src), "r"(valid ? 4 : 0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ inline void ldmatrix_x4(uint32_t* r, const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ inline void ldmatrix_x4_trans(uint32_t* r, const __half* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// c[16x8] += a[16x16] b[16x8].
__device__ inline void mma16816(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ inline uint32_t pack_half2(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

__device__ inline float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Copies the rows t in [0, 64) of a segment (row t at position
// seg_pos(s, first + t)) from src (row stride `width` halves) into a tile;
// rows past s.count are zero-filled.
template <int D>
__device__ inline void load_tile(__half* dst, const __half* src, int64_t width, const Seg& s,
                                 const Geometry& g, int first) {
  constexpr int kChunks = D / 8;
  int valid = s.count - first;
#pragma unroll
  for (int k = 0; k < kTile * kChunks / kThreads; ++k) {
    int c = threadIdx.x + k * kThreads, r = c / kChunks, col = (c % kChunks) * 8;
    bool ok = r < valid;
    int64_t pos = ok ? seg_pos(s, g, first + r) : 0;
    cp_async16(dst + r * kStride<D> + col, src + pos * width + col, ok);
  }
}

// A fragments of a warp's 16 rows [row0, row0 + 16) x columns [16 kk, 16 kk + 16).
template <int D>
__device__ inline void load_a(uint32_t* a, const __half* tile, int row0, int kk) {
  int lane = threadIdx.x % 32;
  ldmatrix_x4(a, tile + (row0 + lane % 16) * kStride<D> + kk * 16 + (lane / 16) * 8);
}

// The same from a tile stored transposed, [64][kStride<64>] with
// tile[k][row]: the A fragments of rows [row0, row0 + 16) of tile^T, all
// four 16-wide steps of its k.
__device__ inline void load_a_trans(uint32_t (*a)[4], const __half* tile, int row0) {
  int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
    ldmatrix_x4_trans(a[kk], tile + (kk * 16 + (lane / 16) * 8 + lane % 8) * kStride<kTile> +
                                 row0 + ((lane / 8) % 2) * 8);
}

// acc[16 x 64] += A[16 x D] * B^T where B is a [64][D] tile: S = Q K^T.
template <int D>
__device__ inline void gemm_abt(float (*acc)[4], const uint32_t (*a)[4], const __half* b) {
  int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
    for (int np = 0; np < kTile / 16; ++np) {
      uint32_t f[4];
      ldmatrix_x4(f, b + (np * 16 + (lane / 16) * 8 + lane % 8) * kStride<D> + kk * 16 +
                         ((lane / 8) % 2) * 8);
      mma16816(acc[2 * np], a[kk], f);
      mma16816(acc[2 * np + 1], a[kk], f + 2);
    }
}

// Same with A read from a shared tile (rows row0 .. row0 + 15).
template <int D>
__device__ inline void gemm_abt_smem(float (*acc)[4], const __half* a_tile, int row0,
                                     const __half* b) {
  int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[4];
    load_a<D>(a, a_tile, row0, kk);
#pragma unroll
    for (int np = 0; np < kTile / 16; ++np) {
      uint32_t f[4];
      ldmatrix_x4(f, b + (np * 16 + (lane / 16) * 8 + lane % 8) * kStride<D> + kk * 16 +
                         ((lane / 8) % 2) * 8);
      mma16816(acc[2 * np], a, f);
      mma16816(acc[2 * np + 1], a, f + 2);
    }
  }
}

// The accumulator fragments of a 16 x 64 product as fp16 A fragments of
// the next product (4 steps of 16 along its k).
__device__ inline void pack_a(uint32_t (*a)[4], const float (*p)[4]) {
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk) {
    a[kk][0] = pack_half2(p[2 * kk][0], p[2 * kk][1]);
    a[kk][1] = pack_half2(p[2 * kk][2], p[2 * kk][3]);
    a[kk][2] = pack_half2(p[2 * kk + 1][0], p[2 * kk + 1][1]);
    a[kk][3] = pack_half2(p[2 * kk + 1][2], p[2 * kk + 1][3]);
  }
}

// acc[16 x N] += P[16 x 64] * B where B is N columns of a [64][D] tile
// (b points at the first): O += P V.
template <int D, int N = D>
__device__ inline void gemm_pb(float (*acc)[4], const uint32_t (*a)[4], const __half* b) {
  int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
#pragma unroll
    for (int dp = 0; dp < N / 16; ++dp) {
      uint32_t f[4];
      ldmatrix_x4_trans(f, b + (kk * 16 + ((lane / 8) % 2) * 8 + lane % 8) * kStride<D> +
                               dp * 16 + (lane / 16) * 8);
      mma16816(acc[2 * dp], a[kk], f);
      mma16816(acc[2 * dp + 1], a[kk], f + 2);
    }
}

// Sets the elements of a 16 x 64 score fragment whose pair is not allowed
// (or whose inner index is past the segment) to -inf.  Outer positions of
// the thread's two rows are pos_row[0..1]; the inner segment starts at e0.
// key_major swaps the roles: rows are keys, columns queries.  Outer rows
// past the tile's end extrapolate the segment to positions >= n, so every
// pair of theirs is masked too.
__device__ inline void apply_mask(float (*s)[4], const Seg& inner, const Geometry& g, int e0,
                                  const int* pos_row, bool key_major) {
  int t = threadIdx.x % 4, valid = inner.count - e0;
#pragma unroll
  for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      int col = 8 * j + 2 * t + e;
      bool ok = col < valid;
      int pos = ok ? seg_pos(inner, g, e0 + col) : 0;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        bool keep = ok && (key_major ? allowed(inner.rel, pos, pos_row[r], g.l)
                                     : allowed(inner.rel, pos_row[r], pos, g.l));
        if (!keep) s[j][2 * r + e] = -INFINITY;
      }
    }
}

}  // namespace st::cuda::attn
