#include "kernels/cuda/dropout.cuh"
#include "kernels/cuda/pack.cuh"
#include "kernels/dropout_hash.h"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

// x[j] *= keep ? scale : 0 for the elements i + j; p = 0 keeps everything
// without hashing.
__device__ inline void apply_mask(float (&x)[kChunk], int64_t i, float p, float scale,
                                  uint64_t seed) {
  if (p == 0.0f) return;
#pragma unroll
  for (int j = 0; j < kChunk; ++j)
    x[j] = dropout_keep(seed, uint64_t(i + j), p) ? x[j] * scale : 0.0f;
}

template <class T>
__global__ void dropout_residual_kernel(T* out, const T* residual, const T* in, int64_t count,
                                        float p, float scale, uint64_t seed, bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk], r[kChunk];
    load_chunk(x, in + i, valid, vec);
    load_chunk(r, residual + i, valid, vec);
    apply_mask(x, i, p, scale, seed);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) x[j] += r[j];
    store_chunk(out + i, x, valid, vec);
  });
}

template <class T>
__global__ void dropout_backward_kernel(T* d_in, const T* d_out, int64_t count, float p,
                                        float scale, uint64_t seed, bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk];
    load_chunk(x, d_out + i, valid, vec);
    apply_mask(x, i, p, scale, seed);
    store_chunk(d_in + i, x, valid, vec);
  });
}

}  // namespace

template <class T>
void dropout_residual(T* out, const T* residual, const T* in, int64_t count, float p,
                      uint64_t seed, cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(out) && aligned16(residual) && aligned16(in);
  dropout_residual_kernel<<<chunk_grid(count, kThreads), kThreads, 0,
                            stream>>>(out, residual, in, count, p, 1.0f / (1.0f - p), seed,
                                      vec);
  CUDA_CHECK(cudaGetLastError());
}

template <class T>
void dropout_backward(T* d_in, const T* d_out, int64_t count, float p, uint64_t seed,
                      cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(d_in) && aligned16(d_out);
  dropout_backward_kernel<<<chunk_grid(count, kThreads), kThreads, 0,
                            stream>>>(d_in, d_out, count, p, 1.0f / (1.0f - p), seed, vec);
  CUDA_CHECK(cudaGetLastError());
}

template void dropout_residual(float*, const float*, const float*, int64_t, float, uint64_t,
                               cudaStream_t);
template void dropout_residual(__half*, const __half*, const __half*, int64_t, float, uint64_t,
                               cudaStream_t);
template void dropout_backward(float*, const float*, int64_t, float, uint64_t, cudaStream_t);
template void dropout_backward(__half*, const __half*, int64_t, float, uint64_t, cudaStream_t);

}  // namespace st::cuda
