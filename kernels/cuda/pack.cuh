// Device helpers shared by the CUDA kernels: 16-byte loads and stores of
// eight activations (one fp16 vector, two fp32 vectors) converted to fp32,
// and warp reductions.  Kernels are templates over the activation type T
// (float or __half) only; everything else is computed in fp32.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/cuda_check.h"

namespace st::cuda {

// Elements in one chunk: a 16-byte vector of fp16.
constexpr int kChunk = 8;

// Whether a pointer allows 16-byte vector access.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__half x) { return __half2float(x); }
__device__ inline void store_float(float* p, float x) { *p = x; }
__device__ inline void store_float(__half* p, float x) { *p = __float2half(x); }

// Eight elements at p (16-byte aligned).
__device__ inline void load8(float (&x)[kChunk], const __half* p) {
  int4 raw = *reinterpret_cast<const int4*>(p);
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float2 f = __half22float2(h[i]);
    x[2 * i] = f.x, x[2 * i + 1] = f.y;
  }
}
__device__ inline void load8(float (&x)[kChunk], const float* p) {
  float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}
__device__ inline void store8(__half* p, const float (&x)[kChunk]) {
  int4 raw;
  __half2* h = reinterpret_cast<__half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(x[2 * i], x[2 * i + 1]);
  *reinterpret_cast<int4*>(p) = raw;
}
__device__ inline void store8(float* p, const float (&x)[kChunk]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(x[0], x[1], x[2], x[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(x[4], x[5], x[6], x[7]);
}

// A chunk that may be short (valid < 8) or unaligned (vec false): the rows of
// odd widths take this path, element by element; missing elements read as 0.
template <class T>
__device__ inline void load_chunk(float (&x)[kChunk], const T* p, int valid, bool vec) {
  if (vec && valid >= kChunk) return load8(x, p);
#pragma unroll
  for (int i = 0; i < kChunk; ++i) x[i] = i < valid ? to_float(p[i]) : 0.0f;
}
template <class T>
__device__ inline void store_chunk(T* p, const float (&x)[kChunk], int valid, bool vec) {
  if (vec && valid >= kChunk) return store8(p, x);
#pragma unroll
  for (int i = 0; i < kChunk; ++i)
    if (i < valid) store_float(p + i, x[i]);
}

__device__ inline float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ inline float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Blocks for a grid-stride loop over `count` items: enough to fill every
// multiprocessor (2048 threads each), never more than the items need.
inline int grid_for(int64_t count, int threads) {
  static const int sms = [] {
    int device = 0, count = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  }();
  int64_t blocks = (count + threads - 1) / threads, cap = int64_t(sms) * (2048 / threads);
  return int(blocks < 1 ? 1 : blocks < cap ? blocks : cap);
}

// Blocks of `threads` for for_each_chunk over `count` elements.
inline int chunk_grid(int64_t count, int threads) {
  return grid_for((count + kChunk - 1) / kChunk, threads);
}

// A grid-stride loop over the chunks of eight of [0, count): f(i, valid) for
// each chunk's first element i and its number of elements (kChunk except
// for a short last chunk).  One launch shape serves every size.
template <class F>
__device__ inline void for_each_chunk(int64_t count, F&& f) {
  const int64_t step = int64_t(gridDim.x) * blockDim.x * kChunk;
  for (int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kChunk; i < count;
       i += step)
    f(i, int(count - i < kChunk ? count - i : kChunk));
}

}  // namespace st::cuda
