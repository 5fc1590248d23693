// cuBLAS matrix products with fp32 accumulation: row-major
// c[m,n] = alpha * op(a) op(b) + beta * c for fp16 or fp32 storage.
#pragma once

#include <cublas_v2.h>

#include <cstdint>

namespace st::cuda {

// dtype is CUDA_R_16F or CUDA_R_32F, shared by a, b and c.
void matmul(cublasHandle_t handle, cudaDataType_t dtype, void* c, const void* a, bool trans_a,
            const void* b, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
            float beta);
// As matmul, with a and b of ab_type and c of c_type: CUDA_R_16F products
// accumulated into CUDA_R_32F weight gradients.
void matmul_mixed(cublasHandle_t handle, cudaDataType_t ab_type, cudaDataType_t c_type, void* c,
                  const void* a, bool trans_a, const void* b, bool trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, float beta);

}  // namespace st::cuda
