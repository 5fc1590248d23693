#include <cstdio>

#include "kernels/cuda/cross_entropy.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr int kWarps = 8;

template <class T>
__global__ void softmax_cross_entropy_kernel(float* losses, T* d_logits, const T* logits,
                                             const int32_t* targets, int64_t rows, int V,
                                             float d_scale, bool vec) {
  int lane = threadIdx.x % 32;
  int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (row >= rows) return;
  const T* x = logits + row * V;
  int target = targets[row];
  if (target < 0 || target >= V) {
    printf("softmax_cross_entropy: target %d of row %lld is not a class in [0, %d)\n", target,
           (long long)row, V);
    __trap();
  }
  // Read before the warp's shuffles: after them a lane may overwrite it
  // through an aliased d_logits.
  float x_target = to_float(x[target]);
  // Online softmax statistics: running max and the sum of exp(x - max).
  float max = -INFINITY, sum = 0;
  for (int c = lane * kChunk; c < V; c += 32 * kChunk) {
    float v[kChunk];
    load_chunk(v, x + c, V - c, vec);
    float chunk_max = max;
#pragma unroll
    for (int j = 0; j < kChunk; ++j)
      if (c + j < V) chunk_max = fmaxf(chunk_max, v[j]);
    sum *= expf(max - chunk_max);
#pragma unroll
    for (int j = 0; j < kChunk; ++j)
      if (c + j < V) sum += expf(v[j] - chunk_max);
    max = chunk_max;
  }
  float row_max = warp_max(max);
  sum = warp_sum(max == -INFINITY ? 0.0f : sum * expf(max - row_max));
  if (losses != nullptr && lane == 0) losses[row] = logf(sum) + row_max - x_target;
  if (d_logits == nullptr) return;
  float inv_sum = 1.0f / sum;
  for (int c = lane * kChunk; c < V; c += 32 * kChunk) {
    float v[kChunk];
    load_chunk(v, x + c, V - c, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j)
      v[j] = (expf(v[j] - row_max) * inv_sum - (c + j == target ? 1.0f : 0.0f)) * d_scale;
    store_chunk(d_logits + row * V + c, v, V - c, vec);
  }
}

}  // namespace

template <class T>
void softmax_cross_entropy(float* losses, T* d_logits, const T* logits, const int32_t* targets,
                           int64_t rows, int classes, float d_scale, cudaStream_t stream) {
  if (rows == 0) return;
  bool vec = classes % kChunk == 0 && aligned16(logits) &&
             (d_logits == nullptr || aligned16(d_logits));
  int blocks = int((rows + kWarps - 1) / kWarps);
  softmax_cross_entropy_kernel<<<blocks, kWarps * 32, 0, stream>>>(
      losses, d_logits, logits, targets, rows, classes, d_scale, vec);
  CUDA_CHECK(cudaGetLastError());
}

template void softmax_cross_entropy(float*, float*, const float*, const int32_t*, int64_t, int,
                                    float, cudaStream_t);
template void softmax_cross_entropy(float*, __half*, const __half*, const int32_t*, int64_t,
                                    int, float, cudaStream_t);

}  // namespace st::cuda
