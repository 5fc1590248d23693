// Elementwise CUDA kernels: fp16 and fp32 storage, fp32 arithmetic.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

void add_f32(float* out, const float* a, const float* b, int64_t count, cudaStream_t stream);
void add_f16(__half* out, const __half* a, const __half* b, int64_t count,
             cudaStream_t stream);
void cast_f32_to_f16(__half* out, const float* in, int64_t count, cudaStream_t stream);
void cast_f16_to_f32(float* out, const __half* in, int64_t count, cudaStream_t stream);
// t *= s and t = value, for T = float or __half.
template <class T>
void scale(T* t, int64_t count, float s, cudaStream_t stream);
template <class T>
void fill(T* t, int64_t count, float value, cudaStream_t stream);

}  // namespace st::cuda
