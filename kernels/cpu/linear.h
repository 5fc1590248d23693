// The fully connected layer on the CPU: out = in weight^T + bias, and its
// backward, through CBLAS.  Shapes: in [rows, k], weight [n, k], bias [n].
#pragma once

#include <cstdint>

namespace st::cpu {

// bias may be null.
template <class T>
void linear_forward(T* out, const T* in, const T* weight, const T* bias, int64_t rows,
                    int64_t k, int64_t n);

// d_in = d_out weight (overwritten; skipped if null); d_weight += d_out^T in;
// d_bias += column sums of d_out (skipped if null).
template <class T>
void linear_backward(T* d_in, T* d_weight, T* d_bias, const T* d_out, const T* in,
                     const T* weight, int64_t rows, int64_t k, int64_t n);

// sums[c] += sum over rows of x[r, c]; deterministic (no atomics).
template <class T>
void add_column_sums(T* sums, const T* x, int64_t rows, int64_t cols);

}  // namespace st::cpu
