#include "kernels/cpu/embedding.h"

#include <algorithm>

namespace st::cpu {

template <class T>
void embedding_forward(T* out, const std::vector<const int32_t*>& indices,
                       const std::vector<const T*>& tables, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < rows; ++t) {
    T* o = out + t * cols;
    std::fill(o, o + cols, T(0));
    for (size_t k = 0; k < tables.size(); ++k) {
      const T* row = tables[k] + int64_t(indices[k][t]) * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] += row[c];
    }
  }
}

template <class T>
void embedding_backward(const std::vector<T*>& d_tables, const T* d_out,
                        const std::vector<const int32_t*>& indices, int64_t rows, int64_t cols) {
  // Many tokens hit the same table row, so threads split the columns, not
  // the tokens: each thread scatters its strip of every row, in token order.
  constexpr int64_t kStrip = 16;
  const int64_t strips = (cols + kStrip - 1) / kStrip;
  for (size_t k = 0; k < d_tables.size(); ++k) {
#pragma omp parallel for schedule(static)
    for (int64_t s = 0; s < strips; ++s) {
      int64_t c0 = s * kStrip, c1 = std::min(cols, c0 + kStrip);
      for (int64_t t = 0; t < rows; ++t) {
        T* d_row = d_tables[k] + int64_t(indices[k][t]) * cols;
        for (int64_t c = c0; c < c1; ++c) d_row[c] += d_out[t * cols + c];
      }
    }
  }
}

template void embedding_forward<float>(float*, const std::vector<const int32_t*>&,
                                       const std::vector<const float*>&, int64_t, int64_t);
template void embedding_forward<double>(double*, const std::vector<const int32_t*>&,
                                        const std::vector<const double*>&, int64_t, int64_t);
template void embedding_backward<float>(const std::vector<float*>&, const float*,
                                        const std::vector<const int32_t*>&, int64_t, int64_t);
template void embedding_backward<double>(const std::vector<double*>&, const double*,
                                         const std::vector<const int32_t*>&, int64_t, int64_t);

}  // namespace st::cpu
