#include "core/cuda_check.h"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t count) {
  int64_t blocks = (count + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

// Grid-stride loops: one launch shape serves every size.
__global__ void add_f32_kernel(float* out, const float* a, const float* b, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void add_f16_kernel(__half* out, const __half* a, const __half* b, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2half(__half2float(a[i]) + __half2float(b[i]));
}

__global__ void cast_f32_to_f16_kernel(__half* out, const float* in, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2half(in[i]);
}

__global__ void cast_f16_to_f32_kernel(float* out, const __half* in, int64_t count) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __half2float(in[i]);
}

// t *= s, or t = value when is_fill (without reading t), a chunk of eight
// per thread.
template <class T>
__global__ void scale_fill_kernel(T* t, int64_t count, float s, float value, bool is_fill,
                                  bool vec) {
  int64_t step = int64_t(gridDim.x) * blockDim.x * kChunk;
  for (int64_t i = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * kChunk; i < count;
       i += step) {
    int valid = int(count - i < kChunk ? count - i : kChunk);
    float x[kChunk];
    if (!is_fill) load_chunk(x, t + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) x[j] = is_fill ? value : x[j] * s;
    store_chunk(t + i, x, valid, vec);
  }
}

}  // namespace

template <class T>
void scale(T* t, int64_t count, float s, cudaStream_t stream) {
  if (count == 0) return;
  scale_fill_kernel<<<grid_for((count + kChunk - 1) / kChunk, kThreads), kThreads, 0,
                      stream>>>(t, count, s, 0.0f, false, aligned16(t));
  CUDA_CHECK(cudaGetLastError());
}

template <class T>
void fill(T* t, int64_t count, float value, cudaStream_t stream) {
  if (count == 0) return;
  scale_fill_kernel<<<grid_for((count + kChunk - 1) / kChunk, kThreads), kThreads, 0,
                      stream>>>(t, count, 1.0f, value, true, aligned16(t));
  CUDA_CHECK(cudaGetLastError());
}

template void scale(float*, int64_t, float, cudaStream_t);
template void scale(__half*, int64_t, float, cudaStream_t);
template void fill(float*, int64_t, float, cudaStream_t);
template void fill(__half*, int64_t, float, cudaStream_t);

void add_f32(float* out, const float* a, const float* b, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  add_f32_kernel<<<blocks_for(count), kThreads, 0, stream>>>(out, a, b, count);
  CUDA_CHECK(cudaGetLastError());
}

void add_f16(__half* out, const __half* a, const __half* b, int64_t count,
             cudaStream_t stream) {
  if (count == 0) return;
  add_f16_kernel<<<blocks_for(count), kThreads, 0, stream>>>(out, a, b, count);
  CUDA_CHECK(cudaGetLastError());
}

void cast_f32_to_f16(__half* out, const float* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  cast_f32_to_f16_kernel<<<blocks_for(count), kThreads, 0, stream>>>(out, in, count);
  CUDA_CHECK(cudaGetLastError());
}

void cast_f16_to_f32(float* out, const __half* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  cast_f16_to_f32_kernel<<<blocks_for(count), kThreads, 0, stream>>>(out, in, count);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace st::cuda
