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

}  // namespace st::cpu
