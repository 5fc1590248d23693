#include "core/cuda_check.h"
#include "kernels/cuda/matmul.cuh"

namespace st::cuda {

void matmul(cublasHandle_t handle, cudaDataType_t dtype, void* c, const void* a, bool trans_a,
            const void* b, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
            float beta) {
  matmul_mixed(handle, dtype, dtype, c, a, trans_a, b, trans_b, m, n, k, alpha, beta);
}

void matmul_mixed(cublasHandle_t handle, cudaDataType_t ab_type, cudaDataType_t c_type, void* c,
                  const void* a, bool trans_a, const void* b, bool trans_b, int64_t m, int64_t n,
                  int64_t k, float alpha, float beta) {
  // cuBLAS is column-major: a row-major C[m,n] is a column-major C^T[n,m], and
  // C^T = op(B)^T op(A)^T, so B goes first.
  cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  int64_t ldb = trans_b ? k : n, lda = trans_a ? m : k;
  // fp32 accumulation for both storage types (the fp16 inputs still use the
  // tensor cores).
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, int(n), int(m), int(k), &alpha, b, ab_type,
                            int(ldb), a, ab_type, int(lda), &beta, c, c_type, int(n), compute,
                            CUBLAS_GEMM_DEFAULT));
}

}  // namespace st::cuda
