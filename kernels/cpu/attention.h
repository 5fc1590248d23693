// The CPU reference of factorized attention (fp32 for training, fp64 for
// gradient checks).  It visits only the allowed keys of each query, so its
// cost follows nnz, not n^2.  Layouts: kernels/attention_pattern.h.
#pragma once

#include "kernels/attention_pattern.h"

namespace st::cpu {

// out and lse are written for every row; a row with no keys gets out = 0 and
// lse = -inf.
template <class T>
void attention_forward(T* out, T* lse, const T* qkv, const AttentionSpec& spec);

// d_qkv is overwritten.  out and lse are the forward pass's.
template <class T>
void attention_backward(T* d_qkv, const T* d_out, const T* qkv, const T* out, const T* lse,
                        const AttentionSpec& spec);

}  // namespace st::cpu
