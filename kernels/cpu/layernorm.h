// Layer norm over the last dimension on the CPU (eps 1e-5).  mean and rstd
// are [rows], in the activations' type (fp32 or fp64).
#pragma once

#include <cstdint>

namespace st::cpu {

constexpr double kLayerNormEps = 1e-5;

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* gamma, const T* beta,
                       int64_t rows, int64_t cols);

// d_in += ..., d_gamma += ..., d_beta += ... (each skipped if null).
template <class T>
void layernorm_backward(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                        const T* mean, const T* rstd, const T* gamma, int64_t rows,
                        int64_t cols);

}  // namespace st::cpu
