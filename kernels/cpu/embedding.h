// Sums of embedding-table rows on the CPU: out[t] = sum_k tables[k][indices[k][t]].
// Indices are int32 and already range-checked by the backend.
#pragma once

#include <cstdint>
#include <vector>

namespace st::cpu {

template <class T>
void embedding_forward(T* out, const std::vector<const int32_t*>& indices,
                       const std::vector<const T*>& tables, int64_t rows, int64_t cols);

// d_tables[k][indices[k][t]] += d_out[t]; deterministic (no atomics).
template <class T>
void embedding_backward(const std::vector<T*>& d_tables, const T* d_out,
                        const std::vector<const int32_t*>& indices, int64_t rows, int64_t cols);

}  // namespace st::cpu
