// GELU as the paper uses it, x * sigmoid(1.702 x), on the CPU.
#pragma once

#include <cstdint>

namespace st::cpu {

constexpr double kGeluAlpha = 1.702;

template <class T>
void gelu_forward(T* out, const T* in, int64_t count);

// d_in = d_out * d/dx[x sigmoid(a x)] = d_out * (s + a x s (1 - s)), overwritten.
template <class T>
void gelu_backward(T* d_in, const T* d_out, const T* in, int64_t count);

}  // namespace st::cpu
