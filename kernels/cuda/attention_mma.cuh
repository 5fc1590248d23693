// Building blocks of the fused attention kernels: swizzled shared-memory
// tiles filled by asynchronous copies, and the tile products on the tensor
// cores (fp16 operands, fp32 accumulation).  Fragment layouts are those of
// the PTX ISA for mma.m16n8k16 (and wgmma's, which repeat them per warp):
// lane = 4 * g + t holds rows g and g + 8, columns 2t, 2t + 1.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/attention_plan.cuh"

namespace st::cuda::attn {

// Shared-memory tiles are [64][D] halves in the 128-byte swizzle of the
// Hopper tensor cores: a tile is split into 64-column halves of 8 KiB, a
// row of a half is 128 bytes, and its 16-byte chunk c sits at chunk
// c ^ (row % 8).  The 8 rows an ldmatrix (or the tensor core) reads then
// fall in 8 different bank groups, and wgmma reads the tile directly
// through a descriptor.  Tiles start on 1024-byte boundaries (the swizzle
// is a function of the address bits).
constexpr int kTileAlign = 1024;

template <int D>
constexpr int kTileElems = kTile * D;

__device__ inline int swizzled(int row, int col) {  // col a multiple of 8, or within a chunk
  return (col / 64) * (kTile * 64) + row * 64 + (((col % 64) / 8) ^ (row % 8)) * 8 + col % 8;
}

__device__ inline uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// This thread's warpgroup, broadcast from lane 0 so that the compiler knows
// it is the same in the whole warp (as CUTLASS's canonical_warp_group_idx):
// the shared-memory addresses derived from it, the products' descriptors
// above all, then stay in uniform registers.
__device__ inline int warpgroup_index() {
  return __shfl_sync(0xffffffff, int(threadIdx.x) / kThreads, 0);
}

// The dynamic shared memory rounded up to kTileAlign (allocate kTileAlign more).
__device__ inline unsigned char* aligned_smem(unsigned char* smem) {
  return smem + (kTileAlign - smem_addr(smem) % kTileAlign) % kTileAlign;
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

// Makes this thread's shared-memory writes (stores, cp.async) visible to
// the tensor cores' reads (the async proxy); a barrier must follow.
__device__ inline void fence_smem_for_mma() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// This thread's copies, all but its N latest groups, are in; then, past
// the barrier, every thread's are, visible to the tensor cores too.
template <int N>
__device__ inline void wait_copies_for_mma() {
  cp_async_wait<N>();
  fence_smem_for_mma();
  __syncthreads();
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

// Tile loads: the rows t in [0, 64) of a segment (row t at position
// seg_pos(s, first + t)) copied from src (row stride `width` halves) into a
// tile; rows past s.count are zero-filled.  Eight consecutive threads fill
// one row's 128 bytes of a half: no bank conflicts.  Called by one
// warpgroup.  A thread's rows r0 + k kRowStep share r0's swizzle (kRowStep
// is a multiple of 8): their destinations are kRowStep rows apart.
template <int D>
constexpr int kRowStep = kThreads / (D / 8);

// A run segment, whose rows are a constant stride apart: both addresses
// advance by additions.  (The backward's query tiles call this directly:
// with the summary paths of load_tile in its loop, it ran 2-4% slower.)
template <int D>
__device__ inline void load_run_tile(__half* dst, const __half* src, int64_t width, const Seg& s,
                                     int first) {
  constexpr int R = kRowStep<D>;
  const int valid = s.count - first, r0 = threadIdx.x % kThreads / (D / 8);
  const int col = threadIdx.x % (D / 8) * 8;
  __half* const d = dst + swizzled(r0, col);
  const __half* p = src + int64_t(run_pos(s, first + r0)) * width + col;
#pragma unroll
  for (int k = 0; k < kTile / R; ++k) {
    bool ok = r0 + k * R < valid;
    cp_async16(d + k * R * 64, ok ? p : src, ok);
    p += int64_t(R * s.step) * width;
  }
}

// Any segment.
template <int D>
__device__ inline void load_tile(__half* dst, const __half* src, int64_t width, const Seg& s,
                                 const Geometry& g, int first) {
  if (!s.summary) {
    load_run_tile<D>(dst, src, width, s, first);
    return;
  }
  constexpr int R = kRowStep<D>;
  const int valid = s.count - first, r0 = threadIdx.x % kThreads / (D / 8);
  const int col = threadIdx.x % (D / 8) * 8;
  __half* const d = dst + swizzled(r0, col);
  // Summary cells: each row's position by shifts where c is a power of two
  // (seg_pos), else walked from the first (one division).
  if (g.c_shift >= 0) {
#pragma unroll
    for (int k = 0; k < kTile / R; ++k) {
      int r = r0 + k * R;
      bool ok = r < valid;
      cp_async16(d + k * R * 64, src + (ok ? int64_t(seg_pos(s, g, first + r)) : 0) * width + col,
                 ok);
    }
    return;
  }
  SegWalk w = seg_walk(s, g, first + r0);
#pragma unroll
  for (int k = 0; k < kTile / R; ++k) {
    bool ok = r0 + k * R < valid;
    cp_async16(d + k * R * 64, src + (ok ? int64_t(w.pos) : 0) * width + col, ok);
    seg_advance(w, s, g, R);
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

// Stores a warpgroup's 64 x 64 fragments in pack_a's layout (warp w: rows
// [16 w, 16 w + 16)) into a swizzled [64][64] tile.  Each pack_a step is
// four 8 x 8 matrices: rows +0 and +8 of columns +0, then of columns +8;
// with stmatrix (sm_90) one instruction stores a step, lane l giving the
// address of row l % 8 of matrix l / 8.
__device__ inline void store_frags(__half* tile, const uint32_t (*a)[4]) {
  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int m = lane / 8, row = warp * 16 + (m % 2) * 8 + lane % 8;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(
                     smem_addr(tile + swizzled(row, 16 * kk + 8 * (m / 2)))),
                 "r"(a[kk][0]), "r"(a[kk][1]), "r"(a[kk][2]), "r"(a[kk][3])
                 : "memory");
#else
  const int row = warp * 16 + lane / 4, col = 2 * (lane % 4);
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      *reinterpret_cast<uint32_t*>(tile + swizzled(row + 8 * (e % 2), 16 * kk + 8 * (e / 2) + col)) =
          a[kk][e];
#endif
}

// ---------------------------------------------------------------------------
// Bulk reductions by the TMA unit (the async proxy): bytes (a multiple of
// 16, both addresses 16-byte aligned) of fp32 in shared memory added
// element-wise and atomically to global memory.  Each thread waits for the
// groups it committed; the shared source may be rewritten once
// bulk_wait_read returns (and the writes must pass fence_smem_for_mma and a
// barrier before a bulk_add_f32 reads them).
__device__ inline void bulk_add_f32(float* dst, const float* src, int bytes) {
  asm volatile("cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 [%0], [%1], %2;\n"
               ::"l"(dst), "r"(smem_addr(src)), "r"(bytes)
               : "memory");
}
__device__ inline void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ inline void bulk_wait_read() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}

// Tile products.  Each is a product of the whole thread block (one
// warpgroup of 4 warps) with a 64-row result; warp w holds rows
// [16 w, 16 w + 16) in the accumulator layout of mma.m16n8k16, 8 columns
// per acc[j].  Two implementations with the same results: Hopper's wgmma
// (built for sm_90a), reading both shared operands straight from the
// swizzled tiles, and mma.sync with ldmatrix for every other target.
// With wgmma a product is only issued: its accumulators (and register
// operands) must not be touched until mma_wait says it has completed.
// ---------------------------------------------------------------------------

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// A shared-memory matrix descriptor for the 128-byte swizzle: 8-row groups
// 1024 bytes apart (the stride byte offset); the leading byte offset is
// unused by the shapes here (one 64-element swizzle atom per operand row).
// Split in two words: the lower holds the address in 16-byte units (below
// 2^14: shared memory is under 256 KiB), so the address of a k step or
// buffer is the tile's word plus a constant; the upper is the same for every
// tile.  (Built whole from each address, the descriptors cost ten
// instructions per product, a quarter of the backward loop's.)
__device__ inline uint32_t desc_lo(const void* p) { return (smem_addr(p) >> 4) | (1u << 16); }
constexpr uint32_t kDescHi = (1024 >> 4) | (1u << 30);
// The lower word's offset for `elems` halves further on.
__host__ __device__ constexpr uint32_t desc_step(int elems) { return uint32_t(elems) * 2 / 16; }

// The same for register operands of products (pack_a fragments): keeps
// them in their registers until the product that reads them has completed.
__device__ inline void fence_frag(uint32_t (*a)[4]) {
#pragma unroll
  for (int k = 0; k < kTile / 16; ++k)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[k][e])::"memory");
}

__device__ inline void wgmma_begin() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}

// Waits until at most N of the products issued so far are in flight.
template <int N>
__device__ inline void mma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving reads or writes of F accumulator
// fragments across the asynchronous products (as CUTLASS's
// warpgroup_fence_operand); call after mma_wait on what it produced.
template <int F>
__device__ inline void fence_acc(float (*c)[4]) {
#pragma unroll
  for (int j = 0; j < F; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(c[j][e])::"memory");
}

// The accumulator operands of a product: 4 per 8 columns.
#define ST_ACC_FRAG(c, j) "+f"(c[j][0]), "+f"(c[j][1]), "+f"(c[j][2]), "+f"(c[j][3])
#define ST_ACC_N32(c) ST_ACC_FRAG(c, 0), ST_ACC_FRAG(c, 1), ST_ACC_FRAG(c, 2), ST_ACC_FRAG(c, 3)
#define ST_ACC_N64(c) \
  ST_ACC_N32(c), ST_ACC_FRAG(c, 4), ST_ACC_FRAG(c, 5), ST_ACC_FRAG(c, 6), ST_ACC_FRAG(c, 7)

// c[64 x 64] (+)= A[64 x 16] B[16 x 64], both from shared memory; TA / TB
// = 1 when the operand is stored M/N-major (transposed) rather than
// K-major.  Without accumulate c's old values are not read.
// The operands are descriptors' lower words (desc_lo).
template <int TA, int TB>
__device__ inline void wgmma_ss(float (*c)[4], uint32_t da, uint32_t db, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 da, db;\n"
      "mov.b64 da, {%32, %34};\nmov.b64 db, {%33, %34};\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
      "da, db, p, 1, 1, %35, %36;\n}\n"
      : ST_ACC_N64(c)
      : "r"(da), "r"(db), "r"(kDescHi), "n"(TA), "n"(TB), "r"(int(accumulate)));
}

// The same with a 64 x 32 result.
template <int TA, int TB>
__device__ inline void wgmma_ss_n32(float (*c)[4], uint32_t da, uint32_t db, bool accumulate) {
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 da, db;\n"
      "mov.b64 da, {%16, %18};\nmov.b64 db, {%17, %18};\nsetp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, "
      "da, db, p, 1, 1, %19, %20;\n}\n"
      : ST_ACC_N32(c)
      : "r"(da), "r"(db), "r"(kDescHi), "n"(TA), "n"(TB), "r"(int(accumulate)));
}

// The same with A from registers (fragments as for mma.m16n8k16) and B
// stored N-major.
__device__ inline void wgmma_rs(float (*c)[4], const uint32_t* a, uint32_t db) {
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 db;\n"
      "mov.b64 db, {%36, %37};\nsetp.ne.b32 p, %38, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,"
      "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, "
      "{%32,%33,%34,%35}, db, p, 1, 1, 1;\n}\n"
      : ST_ACC_N64(c)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(db), "r"(kDescHi), "r"(1));
}

#undef ST_ACC_N64
#undef ST_ACC_N32
#undef ST_ACC_FRAG

// acc[64 x 64] = A B^T, A and B [64][D] tiles: S = Q K^T.
template <int D>
__device__ inline void mma_abt(float (*acc)[4], const __half* a, const __half* b) {
  fence_acc<8>(acc);
  wgmma_begin();
  const uint32_t da = desc_lo(a), db = desc_lo(b);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t off = desc_step((kk / 4) * kTileElems<64> + (kk % 4) * 16);  // 32 bytes along a row
    wgmma_ss<0, 0>(acc, da + off, db + off, kk > 0);
  }
  wgmma_commit();
}

// acc[64 x D] += P B, P [64 x 64] in registers (pack_a), B a [64][D] tile:
// O += P V.
template <int D>
__device__ inline void mma_pb(float (*acc)[4], const uint32_t (*p)[4], const __half* b) {
  fence_acc<D / 8>(acc);
  wgmma_begin();
  const uint32_t db = desc_lo(b);
#pragma unroll
  for (int half = 0; half < D / 64; ++half)
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk)
      wgmma_rs(acc + 8 * half, p[kk], db + desc_step(half * kTileElems<64> + kk * 16 * 64));
  wgmma_commit();
}

// acc[64 x N] = A^T B[:, col, col + N), A KT [64][64] tiles (64 KT rows),
// B KT [64][D] tiles; N is 32 or 64: dQ = dS K from dS^T, over 64 KT keys.
// (With N = 32 the columns may start 64 bytes into the swizzled rows: the
// swizzle is applied to the whole address, as for the K steps of mma_abt.)
template <int D, int KT, int N>
__device__ inline void mma_atb(float (*acc)[4], const __half* a, const __half* b, int col) {
  static_assert(N == 32 || N == 64, "dQ columns per product");
  const uint32_t da0 = desc_lo(a), db0 = desc_lo(b + (col / 64) * kTileElems<64> + col % 64);
  fence_acc<N / 8>(acc);
  wgmma_begin();
#pragma unroll
  for (int kk = 0; kk < KT * kTile / 16; ++kk) {
    uint32_t da = da0 + desc_step((kk / 4) * kTileElems<64> + (kk % 4) * 16 * 64);
    uint32_t db = db0 + desc_step((kk / 4) * kTileElems<D> + (kk % 4) * 16 * 64);
    if constexpr (N == 64)
      wgmma_ss<1, 1>(acc, da, db, kk > 0);
    else
      wgmma_ss_n32<1, 1>(acc, da, db, kk > 0);
  }
  wgmma_commit();
}

#else  // mma.sync: every product is complete when it returns

template <int N>
__device__ inline void mma_wait() {}
template <int F>
__device__ inline void fence_acc(float (*)[4]) {}
__device__ inline void fence_frag(uint32_t (*)[4]) {}

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

// acc[16 x N] += P[16 x 64] B[:, c0, c0 + N), B a [64][D] tile.
template <int D, int N>
__device__ inline void warp_pb(float (*acc)[4], const uint32_t (*a)[4], const __half* b,
                               int c0) {
  int lane = threadIdx.x % 32;
#pragma unroll
  for (int kk = 0; kk < kTile / 16; ++kk)
#pragma unroll
    for (int dp = 0; dp < N / 16; ++dp) {
      uint32_t f[4];
      ldmatrix_x4_trans(f, b + swizzled(kk * 16 + ((lane / 8) % 2) * 8 + lane % 8,
                                        c0 + dp * 16 + (lane / 16) * 8));
      mma16816(acc[2 * dp], a[kk], f);
      mma16816(acc[2 * dp + 1], a[kk], f + 2);
    }
}

template <int F>
__device__ inline void zero(float (*acc)[4]) {
#pragma unroll
  for (int j = 0; j < F; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0;
}

template <int D>
__device__ inline void mma_abt(float (*acc)[4], const __half* a, const __half* b) {
  zero<8>(acc);
  int lane = threadIdx.x % 32, row0 = (threadIdx.x % kThreads / 32) * 16;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t af[4];
    ldmatrix_x4(af, a + swizzled(row0 + lane % 16, kk * 16 + (lane / 16) * 8));
#pragma unroll
    for (int np = 0; np < kTile / 16; ++np) {
      uint32_t f[4];
      ldmatrix_x4(f, b + swizzled(np * 16 + (lane / 16) * 8 + lane % 8,
                                  kk * 16 + ((lane / 8) % 2) * 8));
      mma16816(acc[2 * np], af, f);
      mma16816(acc[2 * np + 1], af, f + 2);
    }
  }
}

template <int D>
__device__ inline void mma_pb(float (*acc)[4], const uint32_t (*p)[4], const __half* b) {
  warp_pb<D, D>(acc, p, b, 0);
}

template <int D, int KT, int N>
__device__ inline void mma_atb(float (*acc)[4], const __half* a, const __half* b, int col) {
  zero<N / 8>(acc);
  int lane = threadIdx.x % 32, row0 = (threadIdx.x % kThreads / 32) * 16;
#pragma unroll
  for (int kt = 0; kt < KT; ++kt) {
    uint32_t af[kTile / 16][4];  // rows [row0, row0 + 16) of a^T
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk)
      ldmatrix_x4_trans(af[kk], a + kt * kTileElems<64> +
                                    swizzled(kk * 16 + (lane / 16) * 8 + lane % 8,
                                             row0 + ((lane / 8) % 2) * 8));
    warp_pb<D, N>(acc, af, b + kt * kTileElems<D>, col);
  }
}

#endif

// Sets the elements of a 16 x 64 score fragment whose pair is not allowed
// (or whose inner index is past the segment) to -inf.  Outer positions of
// the thread's two rows are pos_row[0..1]; the inner segment starts at e0.
// key_major swaps the roles: rows are keys, columns queries.  Each row
// keeps one range of columns (mask_range): two compares per element.
__device__ inline void apply_mask(float (*s)[4], const Seg& inner, const Geometry& g, int e0,
                                  const int* pos_row, bool key_major) {
  int t = threadIdx.x % 4;
  const ColumnRange keep[2] = {mask_range(inner, g, e0, pos_row[0], key_major),
                               mask_range(inner, g, e0, pos_row[1], key_major)};
#pragma unroll
  for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      int col = 8 * j + 2 * t + e;
#pragma unroll
      for (int r = 0; r < 2; ++r)
        if (col < keep[r].lo || col > keep[r].hi) s[j][2 * r + e] = -INFINITY;
    }
}

}  // namespace st::cuda::attn
