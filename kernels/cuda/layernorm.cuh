// Layer norm over the last dimension (eps 1e-5) with fp32 statistics.
// Activations are T (float or __half); gamma and beta share their type;
// mean and rstd are fp32 [rows]; the parameter gradients d_gamma and d_beta
// are fp32, or T when grad_half says so (the CPU backend's fp32 gradients
// on fp16 activations are the usual case).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

template <class T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* in, const T* gamma,
                       const T* beta, int64_t rows, int channels, cudaStream_t stream);

// d_in += the input gradient; d_gamma += sum over rows of d_out * xhat,
// d_beta += sum of d_out (each skipped when null), reduced without atomics.
template <class T>
void layernorm_backward(T* d_in, void* d_gamma, void* d_beta, bool grad_half, const T* d_out,
                        const T* in, const float* mean, const float* rstd, const T* gamma,
                        int64_t rows, int channels, cudaStream_t stream);

}  // namespace st::cuda
