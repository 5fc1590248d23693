#include "core/tensor.h"
#include "kernels/cuda/pack.cuh"
#include "kernels/cuda/sum_squares.cuh"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

// Block sum of one value per thread; the result is valid in thread 0.
__device__ double block_sum(double x) {
  __shared__ double warp_sums[32];
#pragma unroll
  for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = x;
  __syncthreads();
  x = 0;
  if (threadIdx.x < 32) {
    x = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  }
  return x;
}

// Squares in fp64: an fp32 square overflows from 1.8e19, a finite gradient
// must not read as an overflow.
__global__ void sum_squares_kernel(double* partial, const void* data, bool half, int64_t count,
                                   bool vec) {
  double sum = 0;
  for_each_chunk(count, [&](int64_t i, int valid) {
    float x[kChunk];
    if (half)
      load_chunk(x, static_cast<const __half*>(data) + i, valid, vec);
    else
      load_chunk(x, static_cast<const float*>(data) + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) sum += double(x[j]) * double(x[j]);
  });
  sum = block_sum(sum);
  if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

// One block adds the partial sums in a fixed order: the same result every run.
__global__ void sum_partials_kernel(double* result, const double* partial, int count) {
  double sum = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partial[i];
  sum = block_sum(sum);
  if (threadIdx.x == 0) *result = sum;
}

}  // namespace

double sum_squares(const void* data, bool half, int64_t count, cudaStream_t stream) {
  if (count == 0) return 0.0;
  int blocks = chunk_grid(count, kThreads);
  Tensor scratch = Tensor::empty({int64_t(blocks) + 1}, DType::F64, Place::Device);
  double* sums = scratch.ptr<double>();
  sum_squares_kernel<<<blocks, kThreads, 0, stream>>>(sums + 1, data, half, count,
                                                      aligned16(data));
  CUDA_CHECK(cudaGetLastError());
  sum_partials_kernel<<<1, 1024, 0, stream>>>(sums, sums + 1, blocks);
  CUDA_CHECK(cudaGetLastError());
  double result = 0;
  CUDA_CHECK(cudaMemcpyAsync(&result, sums, sizeof(double), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return result;
}

}  // namespace st::cuda
