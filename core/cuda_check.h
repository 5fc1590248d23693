// CUDA runtime and cuBLAS checks.  After a kernel launch use
// CUDA_CHECK(cudaGetLastError()) so launch errors are not lost.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/check.h"

#define CUDA_CHECK(call)                                                   \
  do {                                                                     \
    cudaError_t st_err_ = (call);                                          \
    if (st_err_ != cudaSuccess)                                            \
      ::st::fail_at(__FILE__, __LINE__, #call, cudaGetErrorString(st_err_)); \
  } while (0)

#define CUBLAS_CHECK(call)                                                 \
  do {                                                                     \
    cublasStatus_t st_err_ = (call);                                       \
    if (st_err_ != CUBLAS_STATUS_SUCCESS)                                  \
      ::st::fail_at(__FILE__, __LINE__, #call,                             \
                    cublasGetStatusString(st_err_));                       \
  } while (0)
