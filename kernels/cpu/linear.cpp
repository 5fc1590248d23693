#include "kernels/cpu/linear.h"

#include <algorithm>

#include "kernels/cpu/matmul.h"

namespace st::cpu {

template <class T>
void linear_forward(T* out, const T* in, const T* weight, const T* bias, int64_t rows,
                    int64_t k, int64_t n) {
  // Start from the bias (or zero), then accumulate the product onto it.
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) out[r * n + c] = bias ? bias[c] : T(0);
  matmul(out, in, false, weight, true, rows, n, k, T(1), T(1));
}

template <class T>
void linear_backward(T* d_in, T* d_weight, T* d_bias, const T* d_out, const T* in,
                     const T* weight, int64_t rows, int64_t k, int64_t n) {
  if (d_in) matmul(d_in, d_out, false, weight, false, rows, k, n, T(1), T(0));
  matmul(d_weight, d_out, true, in, false, n, k, rows, T(1), T(1));
  if (d_bias) add_column_sums(d_bias, d_out, rows, n);
}

template <class T>
void add_column_sums(T* sums, const T* x, int64_t rows, int64_t cols) {
  // Each thread owns a strip of columns and walks all rows: contiguous reads,
  // no races, and a fixed summation order.
  constexpr int64_t kStrip = 64;
  const int64_t strips = (cols + kStrip - 1) / kStrip;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < strips; ++s) {
    int64_t c0 = s * kStrip, c1 = std::min(cols, c0 + kStrip);
    T acc[kStrip] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += x[r * cols + c];
    for (int64_t c = c0; c < c1; ++c) sums[c] += acc[c - c0];
  }
}

template void linear_forward<float>(float*, const float*, const float*, const float*, int64_t,
                                    int64_t, int64_t);
template void linear_forward<double>(double*, const double*, const double*, const double*,
                                     int64_t, int64_t, int64_t);
template void linear_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, int64_t, int64_t, int64_t);
template void linear_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, int64_t, int64_t, int64_t);
template void add_column_sums<float>(float*, const float*, int64_t, int64_t);
template void add_column_sums<double>(double*, const double*, int64_t, int64_t);

}  // namespace st::cpu
