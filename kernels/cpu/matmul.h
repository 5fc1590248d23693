// CPU matrix products through CBLAS (OpenBLAS): row-major
// c[m,n] = alpha * op(a) op(b) + beta * c.
#pragma once

#include <cstdint>

namespace st::cpu {

template <class T>
void matmul(T* c, const T* a, bool trans_a, const T* b, bool trans_b, int64_t m, int64_t n,
            int64_t k, T alpha, T beta);

}  // namespace st::cpu
