// Elementwise CPU kernels (OpenMP over elements).
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace st::cpu {

template <class T>
void add(T* out, const T* a, const T* b, int64_t count);

// Conversions between the floating types the CPU backend holds.
template <class To, class From>
void cast(To* out, const From* in, int64_t count);

// t *= s; t = value.
template <class T>
void scale(T* t, int64_t count, T s);
template <class T>
void fill(T* t, int64_t count, T value);

// Sum of squares in fp64, in a fixed order whatever the thread count (so
// that a run is reproducible); inf or NaN when any element is.
template <class T>
double sum_squares(const T* t, int64_t count);

}  // namespace st::cpu
