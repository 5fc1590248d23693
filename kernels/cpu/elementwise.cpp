#include "kernels/cpu/elementwise.h"

#include <algorithm>
#include <type_traits>
#include <vector>

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

template <class T>
void scale(T* t, int64_t count, T s) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) t[i] *= s;
}

template <class T>
void fill(T* t, int64_t count, T value) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) t[i] = value;
}

template <class T>
double sum_squares(const T* t, int64_t count) {
  // Fixed chunks summed in order: the result does not depend on the threads.
  constexpr int64_t kChunks = 256;
  std::vector<double> partial(kChunks, 0.0);
  const int64_t chunk = (count + kChunks - 1) / kChunks;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < kChunks; ++c) {
    double sum = 0;
    for (int64_t i = c * chunk; i < std::min(count, (c + 1) * chunk); ++i)
      sum += double(t[i]) * double(t[i]);
    partial[c] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template void scale<float>(float*, int64_t, float);
template void scale<double>(double*, int64_t, double);
template void fill<float>(float*, int64_t, float);
template void fill<double>(double*, int64_t, double);
template double sum_squares<float>(const float*, int64_t);
template double sum_squares<double>(const double*, int64_t);
template void add<float>(float*, const float*, const float*, int64_t);
template void add<double>(double*, const double*, const double*, int64_t);
template void cast<float, double>(float*, const double*, int64_t);
template void cast<double, float>(double*, const float*, int64_t);
template void cast<__half, float>(__half*, const float*, int64_t);
template void cast<float, __half>(float*, const __half*, int64_t);
template void cast<__half, double>(__half*, const double*, int64_t);
template void cast<double, __half>(double*, const __half*, int64_t);

}  // namespace st::cpu
