// Dropout fused with the residual add, on the CPU.  The mask comes from
// kernels/dropout_hash.h: element i is kept when dropout_keep(seed, i, p),
// and kept elements are scaled by 1 / (1 - p).
#pragma once

#include <cstdint>

namespace st::cpu {

// out = residual + dropout(in); out may alias residual.  p = 0 is a plain add.
template <class T>
void dropout_residual(T* out, const T* residual, const T* in, int64_t count, float p,
                      uint64_t seed);

// d_in = dropout(d_out) with the same mask and scale; p = 0 is a copy.
template <class T>
void dropout_backward(T* d_in, const T* d_out, int64_t count, float p, uint64_t seed);

}  // namespace st::cpu
