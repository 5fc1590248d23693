#include "core/cuda_check.h"
#include "kernels/cuda/elementwise.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

// Chunks of eight (for_each_chunk), with 16-byte loads where every pointer
// allows them.
template <class T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t count, bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk], y[kChunk];
    load_chunk(x, a + i, valid, vec);
    load_chunk(y, b + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) x[j] += y[j];
    store_chunk(out + i, x, valid, vec);
  });
}

template <class To, class From>
__global__ void cast_kernel(To* out, const From* in, int64_t count, bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk];
    load_chunk(x, in + i, valid, vec);
    store_chunk(out + i, x, valid, vec);
  });
}

// t *= s, or t = value when is_fill (without reading t), a chunk of eight
// per thread.
template <class T>
__global__ void scale_fill_kernel(T* t, int64_t count, float s, float value, bool is_fill,
                                  bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk];
    if (!is_fill) load_chunk(x, t + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) x[j] = is_fill ? value : x[j] * s;
    store_chunk(t + i, x, valid, vec);
  });
}

}  // namespace

template <class T>
void scale(T* t, int64_t count, float s, cudaStream_t stream) {
  if (count == 0) return;
  scale_fill_kernel<<<chunk_grid(count, kThreads), kThreads, 0, stream>>>(t, count, s, 0.0f,
                                                                          false, aligned16(t));
  CUDA_CHECK(cudaGetLastError());
}

template <class T>
void fill(T* t, int64_t count, float value, cudaStream_t stream) {
  if (count == 0) return;
  scale_fill_kernel<<<chunk_grid(count, kThreads), kThreads, 0, stream>>>(t, count, 1.0f, value,
                                                                          true, aligned16(t));
  CUDA_CHECK(cudaGetLastError());
}

template void scale(float*, int64_t, float, cudaStream_t);
template void scale(__half*, int64_t, float, cudaStream_t);
template void fill(float*, int64_t, float, cudaStream_t);
template void fill(__half*, int64_t, float, cudaStream_t);

template <class T>
void add(T* out, const T* a, const T* b, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(out) && aligned16(a) && aligned16(b);
  add_kernel<<<chunk_grid(count, kThreads), kThreads, 0, stream>>>(out, a, b, count, vec);
  CUDA_CHECK(cudaGetLastError());
}

template <class To, class From>
void cast(To* out, const From* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(out) && aligned16(in);
  cast_kernel<<<chunk_grid(count, kThreads), kThreads, 0, stream>>>(out, in, count, vec);
  CUDA_CHECK(cudaGetLastError());
}

template void add(float*, const float*, const float*, int64_t, cudaStream_t);
template void add(__half*, const __half*, const __half*, int64_t, cudaStream_t);
template void cast(__half*, const float*, int64_t, cudaStream_t);
template void cast(float*, const __half*, int64_t, cudaStream_t);

}  // namespace st::cuda
