#include "kernels/cpu/elementwise.h"

#include <type_traits>

namespace st::cpu {

template <class T>
void add(T* out, const T* a, const T* b, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) out[i] = a[i] + b[i];
}

template <class To, class From>
void cast(To* out, const From* in, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    if constexpr (std::is_same_v<To, __half>)
      out[i] = __float2half(static_cast<float>(in[i]));
    else if constexpr (std::is_same_v<From, __half>)
      out[i] = static_cast<To>(__half2float(in[i]));
    else
      out[i] = static_cast<To>(in[i]);
  }
}

template void add<float>(float*, const float*, const float*, int64_t);
template void add<double>(double*, const double*, const double*, int64_t);
template void cast<float, double>(float*, const double*, int64_t);
template void cast<double, float>(double*, const float*, int64_t);
template void cast<__half, float>(__half*, const float*, int64_t);
template void cast<float, __half>(float*, const __half*, int64_t);
template void cast<__half, double>(__half*, const double*, int64_t);
template void cast<double, __half>(double*, const __half*, int64_t);

}  // namespace st::cpu
