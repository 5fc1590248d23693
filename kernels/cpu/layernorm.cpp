#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>

namespace st::cpu {

template <class T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* gamma, const T* beta,
                       int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = in + r * cols;
    T sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += x[c];
    T m = sum / T(cols);
    T var = 0;  // two passes: no cancellation for rows with a large mean
    for (int64_t c = 0; c < cols; ++c) var += (x[c] - m) * (x[c] - m);
    T s = T(1) / std::sqrt(var / T(cols) + T(kLayerNormEps));
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = (x[c] - m) * s * gamma[c] + beta[c];
    mean[r] = m;
    rstd[r] = s;
  }
}

template <class T>
void layernorm_backward(T* d_in, T* d_gamma, T* d_beta, const T* d_out, const T* in,
                        const T* mean, const T* rstd, const T* gamma, int64_t rows,
                        int64_t cols) {
  // d_in: with xhat = (x - mean) rstd and g = d_out gamma,
  // d_x = rstd (g - mean(g) - xhat mean(g xhat)).
  if (d_in) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T *x = in + r * cols, *dy = d_out + r * cols;
      T sum_g = 0, sum_gx = 0;
      for (int64_t c = 0; c < cols; ++c) {
        T g = dy[c] * gamma[c];
        sum_g += g;
        sum_gx += g * (x[c] - mean[r]) * rstd[r];
      }
      T mean_g = sum_g / T(cols), mean_gx = sum_gx / T(cols);
      for (int64_t c = 0; c < cols; ++c) {
        T xhat = (x[c] - mean[r]) * rstd[r];
        d_in[r * cols + c] += rstd[r] * (dy[c] * gamma[c] - mean_g - xhat * mean_gx);
      }
    }
  }
  // d_gamma, d_beta: column sums, one strip of columns per thread (no races,
  // fixed order).
  constexpr int64_t kStrip = 64;
  const int64_t strips = (cols + kStrip - 1) / kStrip;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < strips; ++s) {
    int64_t c0 = s * kStrip, c1 = std::min(cols, c0 + kStrip);
    T acc_gamma[kStrip] = {}, acc_beta[kStrip] = {};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = c0; c < c1; ++c) {
        T dy = d_out[r * cols + c];
        acc_gamma[c - c0] += dy * (in[r * cols + c] - mean[r]) * rstd[r];
        acc_beta[c - c0] += dy;
      }
    for (int64_t c = c0; c < c1; ++c) {
      if (d_gamma) d_gamma[c] += acc_gamma[c - c0];
      if (d_beta) d_beta[c] += acc_beta[c - c0];
    }
  }
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*,
                                       const float*, int64_t, int64_t);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, int64_t, int64_t);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*,
                                        const float*, const float*, const float*, int64_t,
                                        int64_t);
template void layernorm_backward<double>(double*, double*, double*, const double*,
                                         const double*, const double*, const double*,
                                         const double*, int64_t, int64_t);

}  // namespace st::cpu
