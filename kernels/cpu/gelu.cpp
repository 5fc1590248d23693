#include "kernels/cpu/gelu.h"

#include <cmath>

namespace st::cpu {

template <class T>
static T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <class T>
void gelu_forward(T* out, const T* in, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) out[i] = in[i] * sigmoid(T(kGeluAlpha) * in[i]);
}

template <class T>
void gelu_backward(T* d_in, const T* d_out, const T* in, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    T x = in[i], s = sigmoid(T(kGeluAlpha) * x);
    d_in[i] = d_out[i] * (s + T(kGeluAlpha) * x * s * (T(1) - s));
  }
}

template void gelu_forward<float>(float*, const float*, int64_t);
template void gelu_forward<double>(double*, const double*, int64_t);
template void gelu_backward<float>(float*, const float*, const float*, int64_t);
template void gelu_backward<double>(double*, const double*, const double*, int64_t);

}  // namespace st::cpu
