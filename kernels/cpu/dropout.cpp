#include "kernels/cpu/dropout.h"

#include "kernels/dropout_hash.h"

namespace st::cpu {

// The factor element i of a tensor is multiplied by: 0 when dropped.
template <class T>
static T dropout_factor(uint64_t seed, int64_t i, float p) {
  if (p == 0.0f) return T(1);
  return dropout_keep(seed, uint64_t(i), p) ? T(1) / (T(1) - T(p)) : T(0);
}

template <class T>
void dropout_residual(T* out, const T* residual, const T* in, int64_t count, float p,
                      uint64_t seed) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) out[i] = residual[i] + in[i] * dropout_factor<T>(seed, i, p);
}

template <class T>
void dropout_backward(T* d_in, const T* d_out, int64_t count, float p, uint64_t seed) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) d_in[i] = d_out[i] * dropout_factor<T>(seed, i, p);
}

template void dropout_residual<float>(float*, const float*, const float*, int64_t, float,
                                      uint64_t);
template void dropout_residual<double>(double*, const double*, const double*, int64_t, float,
                                       uint64_t);
template void dropout_backward<float>(float*, const float*, int64_t, float, uint64_t);
template void dropout_backward<double>(double*, const double*, int64_t, float, uint64_t);

}  // namespace st::cpu
