// Summed embeddings (token, row and column position tables, up to four):
// the forward gather and the backward scatter-add.  Tables are the
// activation type T (float or __half); their gradients fp32, or T when
// grad_half says so.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

constexpr int kMaxEmbeddingTables = 4;

// One table per summed embedding: its rows (vocab x channels) and the
// int32 row index of every token.
struct EmbeddingTables {
  void* table[kMaxEmbeddingTables];
  const int32_t* index[kMaxEmbeddingTables];
  int64_t vocab[kMaxEmbeddingTables];
  int count;
};

// out[t] = sum_k table_k[index_k[t]].  An index outside its table stops the
// kernel with a message.
template <class T>
void embedding_forward(T* out, const EmbeddingTables& tables, int64_t rows, int channels,
                       cudaStream_t stream);
// table_k[index_k[t]] += d_out[t] for the gradient tables (atomic adds:
// the order of the additions, and so the last bits, varies from run to run).
template <class T>
void embedding_backward(const EmbeddingTables& d_tables, bool grad_half, const T* d_out,
                        int64_t rows, int channels, cudaStream_t stream);

}  // namespace st::cuda
