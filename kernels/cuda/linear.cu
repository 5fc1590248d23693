#include <string>

#include "core/cuda_check.h"
#include "kernels/cuda/linear.cuh"
#include "kernels/cuda/matmul.cuh"

namespace st::cuda {

namespace {

// The largest power of two (up to 256) dividing the address: cuBLASLt picks
// only kernels that this alignment allows.
int64_t alignment(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  int64_t align = 256;
  while (align > 1 && a % align != 0) align /= 2;
  return align;
}

// Owns the descriptors of one product for the length of a call.
struct LtProduct {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  ~LtProduct() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

void linear_forward(LinearContext& ctx, cudaDataType_t dtype, void* out, const void* in,
                    const void* weight, const void* bias, int64_t rows, int64_t k, int64_t n,
                    cudaStream_t stream) {
  if (rows == 0 || n == 0) return;
  // Column-major view: out^T[n,rows] = weight[k,n]^T in^T[k,rows].
  LtProduct p;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t trans = CUBLAS_OP_T;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans,
                                              sizeof(trans)));
  if (bias != nullptr) {
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                sizeof(epilogue)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                sizeof(bias)));
  }
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, dtype, uint64_t(k), uint64_t(n), k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, dtype, uint64_t(k), uint64_t(rows), k));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, dtype, uint64_t(n), uint64_t(rows), n));

  std::array<int64_t, 8> key = {rows, k, n, int64_t(dtype), bias != nullptr, alignment(in),
                                alignment(weight), alignment(out)};
  auto found = ctx.algos.find(key);
  if (found == ctx.algos.end()) {
    cublasLtMatmulPreference_t pref = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t workspace = ctx.workspace_bytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
    auto set_alignment = [&](cublasLtMatmulPreferenceAttributes_t attr, int64_t bytes) {
      uint32_t value = uint32_t(bytes);  // these attributes are 32-bit
      CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value)));
    };
    set_alignment(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key[6]);
    set_alignment(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key[5]);
    set_alignment(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key[7]);
    set_alignment(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key[7]);
    cublasLtMatmulHeuristicResult_t result = {};
    int found_count = 0;
    cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(ctx.handle, p.op, p.a, p.b, p.c, p.c,
                                                           pref, 1, &result, &found_count);
    cublasLtMatmulPreferenceDestroy(pref);
    CUBLAS_CHECK(status);
    ST_CHECK(found_count > 0, "cuBLASLt has no algorithm for linear_forward of " +
                                  std::to_string(rows) + "x" + std::to_string(k) + " by " +
                                  std::to_string(n));
    found = ctx.algos.emplace(key, result.algo).first;
  }
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasLtMatmul(ctx.handle, p.op, &alpha, weight, p.a, in, p.b, &beta, out, p.c,
                              out, p.c, &found->second, ctx.workspace, ctx.workspace_bytes,
                              stream));
}

void linear_backward(cublasHandle_t handle, cudaDataType_t act_type, cudaDataType_t grad_type,
                     void* d_in, void* d_weight, void* d_bias, const void* ones,
                     const void* d_out, const void* in, const void* weight, int64_t rows,
                     int64_t k, int64_t n) {
  if (d_in != nullptr) matmul(handle, act_type, d_in, d_out, false, weight, false, rows, k, n,
                              1.0f, 0.0f);
  if (rows == 0) return;
  matmul_mixed(handle, act_type, grad_type, d_weight, d_out, true, in, false, n, k, rows, 1.0f,
               1.0f);
  if (d_bias != nullptr)
    matmul_mixed(handle, act_type, grad_type, d_bias, d_out, true, ones, false, n, 1, rows,
                 1.0f, 1.0f);
}

}  // namespace st::cuda
