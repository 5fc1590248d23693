// GELU as the paper uses it, x * sigmoid(1.702 x), and its gradient.
// T is float or __half; the arithmetic is fp32.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

template <class T>
void gelu_forward(T* out, const T* in, int64_t count, cudaStream_t stream);
// d_in = d_out * gelu'(in) (overwritten).
template <class T>
void gelu_backward(T* d_in, const T* d_out, const T* in, int64_t count, cudaStream_t stream);

}  // namespace st::cuda
