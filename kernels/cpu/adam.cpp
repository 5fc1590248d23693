#include "kernels/cpu/adam.h"

#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

namespace st::cpu {

template <class T, class Copy>
void adam_update(T* param, T* m, T* v, Copy* param_copy, const T* grad, int64_t count,
                 const AdamHyper& h) {
  const T b1 = T(h.beta1), b2 = T(h.beta2), lr = T(h.lr), eps = T(h.eps);
  const T wd = T(h.weight_decay), gs = T(h.grad_scale);
  const T correct1 = T(1) / (T(1) - T(std::pow(h.beta1, double(h.step))));
  const T correct2 = T(1) / (T(1) - T(std::pow(h.beta2, double(h.step))));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    T g = grad[i] * gs;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    T step = (m[i] * correct1) / (std::sqrt(v[i] * correct2) + eps);
    T p = param[i] - lr * (step + wd * param[i]);
    param[i] = p;
    if (param_copy) {
      if constexpr (std::is_same_v<Copy, __half>)
        param_copy[i] = __float2half(float(p));
      else
        param_copy[i] = Copy(p);
    }
  }
}

#define ST_ADAM(T, Copy)                                                                  \
  template void adam_update<T, Copy>(T*, T*, T*, Copy*, const T*, int64_t, const AdamHyper&);
ST_ADAM(float, float)
ST_ADAM(float, double)
ST_ADAM(float, __half)
ST_ADAM(double, double)
ST_ADAM(double, float)
ST_ADAM(double, __half)
#undef ST_ADAM

}  // namespace st::cpu
