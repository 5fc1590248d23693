// The fully connected layer on cuBLASLt/cuBLAS with fp32 accumulation:
// out[rows,n] = in[rows,k] weight[n,k]^T + bias[n], the bias added in the
// matrix product's epilogue (no second pass over out), and its backward.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>

#include <array>
#include <cstdint>
#include <map>

namespace st::cuda {

// What the backend keeps for cuBLASLt: the handle, a workspace, and the
// algorithm chosen for each shape and alignment (the heuristic query costs
// tens of microseconds; a step makes hundreds of these products).
struct LinearContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::map<std::array<int64_t, 8>, cublasLtMatmulAlgo_t> algos;
};

// in, weight, out and bias (null: none) all of dtype (CUDA_R_16F or CUDA_R_32F).
void linear_forward(LinearContext& ctx, cudaDataType_t dtype, void* out, const void* in,
                    const void* weight, const void* bias, int64_t rows, int64_t k, int64_t n,
                    cudaStream_t stream);

// d_in = d_out weight (skipped when null); d_weight += d_out^T in;
// d_bias += column sums of d_out (skipped when null), computed as d_out^T
// times `ones` (rows ones of act_type) so that it too accumulates in fp32.
// Activations are act_type; d_weight and d_bias are grad_type (CUDA_R_32F, or
// act_type).
void linear_backward(cublasHandle_t handle, cudaDataType_t act_type, cudaDataType_t grad_type,
                     void* d_in, void* d_weight, void* d_bias, const void* ones,
                     const void* d_out, const void* in, const void* weight, int64_t rows,
                     int64_t k, int64_t n);

}  // namespace st::cuda
