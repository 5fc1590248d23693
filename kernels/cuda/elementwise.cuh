// Elementwise CUDA kernels: fp16 and fp32 storage, fp32 arithmetic.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

// For T = float or __half (and casts between the two):
// out = a + b; out = in converted; t *= s; t = value.
template <class T>
void add(T* out, const T* a, const T* b, int64_t count, cudaStream_t stream);
template <class To, class From>
void cast(To* out, const From* in, int64_t count, cudaStream_t stream);
template <class T>
void scale(T* t, int64_t count, float s, cudaStream_t stream);
template <class T>
void fill(T* t, int64_t count, float value, cudaStream_t stream);

}  // namespace st::cuda
