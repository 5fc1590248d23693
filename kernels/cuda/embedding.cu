#include <cstdio>

#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

__device__ inline int64_t checked_index(const EmbeddingTables& t, int k, int64_t row) {
  int64_t i = t.index[k][row];
  if (i < 0 || i >= t.vocab[k]) {
    printf("embedding: index %lld of token %lld is outside table %d of %lld rows\n",
           (long long)i, (long long)row, k, (long long)t.vocab[k]);
    __trap();
  }
  return i;
}

// One thread per chunk of eight channels of one token.
template <class T>
__global__ void embedding_forward_kernel(T* out, EmbeddingTables tables, int64_t rows, int C,
                                         bool vec) {
  int64_t chunks = (C + kChunk - 1) / kChunk;
  for (int64_t item = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; item < rows * chunks;
       item += int64_t(gridDim.x) * blockDim.x) {
    int64_t row = item / chunks;
    int c = int(item % chunks) * kChunk;
    float sum[kChunk] = {};
    for (int k = 0; k < tables.count; ++k) {
      float v[kChunk];
      const T* table = static_cast<const T*>(tables.table[k]);
      load_chunk(v, table + checked_index(tables, k, row) * C + c, C - c, vec);
#pragma unroll
      for (int j = 0; j < kChunk; ++j) sum[j] += v[j];
    }
    store_chunk(out + row * C + c, sum, C - c, vec);
  }
}

__device__ inline void add_chunk(void* grad, int64_t offset, const float (&d)[kChunk], int valid,
                                 bool grad_half, bool vec) {
  if (grad_half) {
    __half* g = static_cast<__half*>(grad) + offset;
    for (int j = 0; j < valid; ++j) atomicAdd(g + j, __float2half(d[j]));
    return;
  }
  float* g = static_cast<float*>(grad) + offset;
#if __CUDA_ARCH__ >= 900
  if (vec && valid == kChunk) {  // Hopper's vector atomics: two instructions, not eight
    atomicAdd(reinterpret_cast<float4*>(g), make_float4(d[0], d[1], d[2], d[3]));
    atomicAdd(reinterpret_cast<float4*>(g) + 1, make_float4(d[4], d[5], d[6], d[7]));
    return;
  }
#endif
  for (int j = 0; j < valid; ++j) atomicAdd(g + j, d[j]);
}

template <class T>
__global__ void embedding_backward_kernel(EmbeddingTables d_tables, bool grad_half,
                                          const T* d_out, int64_t rows, int C, bool vec) {
  int64_t chunks = (C + kChunk - 1) / kChunk;
  for (int64_t item = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; item < rows * chunks;
       item += int64_t(gridDim.x) * blockDim.x) {
    int64_t row = item / chunks;
    int c = int(item % chunks) * kChunk, valid = C - c < kChunk ? C - c : kChunk;
    float d[kChunk];
    load_chunk(d, d_out + row * C + c, valid, vec);
    for (int k = 0; k < d_tables.count; ++k)
      add_chunk(d_tables.table[k], checked_index(d_tables, k, row) * C + c, d, valid, grad_half,
                vec);
  }
}

bool tables_aligned(const EmbeddingTables& t, int C) {
  bool ok = C % kChunk == 0;
  for (int k = 0; k < t.count; ++k) ok = ok && aligned16(t.table[k]);
  return ok;
}

}  // namespace

template <class T>
void embedding_forward(T* out, const EmbeddingTables& tables, int64_t rows, int channels,
                       cudaStream_t stream) {
  int64_t items = rows * ((channels + kChunk - 1) / kChunk);
  if (items == 0) return;
  bool vec = tables_aligned(tables, channels) && aligned16(out);
  embedding_forward_kernel<<<grid_for(items, kThreads), kThreads, 0, stream>>>(
      out, tables, rows, channels, vec);
  CUDA_CHECK(cudaGetLastError());
}

template <class T>
void embedding_backward(const EmbeddingTables& d_tables, bool grad_half, const T* d_out,
                        int64_t rows, int channels, cudaStream_t stream) {
  int64_t items = rows * ((channels + kChunk - 1) / kChunk);
  if (items == 0) return;
  bool vec = tables_aligned(d_tables, channels) && aligned16(d_out);
  embedding_backward_kernel<<<grid_for(items, kThreads), kThreads, 0, stream>>>(
      d_tables, grad_half, d_out, rows, channels, vec);
  CUDA_CHECK(cudaGetLastError());
}

template void embedding_forward(float*, const EmbeddingTables&, int64_t, int, cudaStream_t);
template void embedding_forward(__half*, const EmbeddingTables&, int64_t, int, cudaStream_t);
template void embedding_backward(const EmbeddingTables&, bool, const float*, int64_t, int,
                                 cudaStream_t);
template void embedding_backward(const EmbeddingTables&, bool, const __half*, int64_t, int,
                                 cudaStream_t);

}  // namespace st::cuda
