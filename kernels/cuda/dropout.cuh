// Dropout fused with the residual add, and its backward pass, with the
// counter-based mask of kernels/dropout_hash.h (the CPU backend's mask, bit
// for bit).  T is float or __half; the arithmetic is fp32.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

// out = residual + dropout(in); out may alias residual.  p = 0 adds.
template <class T>
void dropout_residual(T* out, const T* residual, const T* in, int64_t count, float p,
                      uint64_t seed, cudaStream_t stream);
// d_in = dropout(d_out) with the same mask and 1 / (1 - p) scale.
template <class T>
void dropout_backward(T* d_in, const T* d_out, int64_t count, float p, uint64_t seed,
                      cudaStream_t stream);

}  // namespace st::cuda
