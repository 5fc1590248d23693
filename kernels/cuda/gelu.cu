#include "kernels/cuda/gelu.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

__device__ inline float sigmoid_1702(float x) { return 1.0f / (1.0f + expf(-1.702f * x)); }

// One chunk of eight per thread and step; `vec` when every pointer allows
// 16-byte access (the last chunk may still be short).
template <class T>
__global__ void gelu_forward_kernel(T* out, const T* in, int64_t count, bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk];
    load_chunk(x, in + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) x[j] *= sigmoid_1702(x[j]);
    store_chunk(out + i, x, valid, vec);
  });
}

template <class T>
__global__ void gelu_backward_kernel(T* d_in, const T* d_out, const T* in, int64_t count,
                                     bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk], dy[kChunk];
    load_chunk(x, in + i, valid, vec);
    load_chunk(dy, d_out + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      float s = sigmoid_1702(x[j]);
      x[j] = dy[j] * (s + 1.702f * x[j] * s * (1.0f - s));
    }
    store_chunk(d_in + i, x, valid, vec);
  });
}

}  // namespace

template <class T>
void gelu_forward(T* out, const T* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(out) && aligned16(in);
  gelu_forward_kernel<<<chunk_grid(count, kThreads), kThreads, 0,
                        stream>>>(out, in, count, vec);
  CUDA_CHECK(cudaGetLastError());
}

template <class T>
void gelu_backward(T* d_in, const T* d_out, const T* in, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(d_in) && aligned16(d_out) && aligned16(in);
  gelu_backward_kernel<<<chunk_grid(count, kThreads), kThreads, 0,
                         stream>>>(d_in, d_out, in, count, vec);
  CUDA_CHECK(cudaGetLastError());
}

template void gelu_forward(float*, const float*, int64_t, cudaStream_t);
template void gelu_forward(__half*, const __half*, int64_t, cudaStream_t);
template void gelu_backward(float*, const float*, const float*, int64_t, cudaStream_t);
template void gelu_backward(__half*, const __half*, const __half*, int64_t, cudaStream_t);

}  // namespace st::cuda
