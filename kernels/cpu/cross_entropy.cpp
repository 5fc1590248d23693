#include "kernels/cpu/cross_entropy.h"

#include <algorithm>
#include <cmath>

namespace st::cpu {

template <class T>
void softmax_cross_entropy(T* losses, T* d_logits, const T* logits, const int32_t* targets,
                           int64_t rows, int64_t classes, T d_scale) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = logits + r * classes;
    T max = *std::max_element(x, x + classes);
    T sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(x[c] - max);
    T lse = max + std::log(sum);
    int32_t target = targets[r];
    T loss = lse - x[target];  // read before d_logits (which may alias x) is written
    if (d_logits) {
      T* d = d_logits + r * classes;
      for (int64_t c = 0; c < classes; ++c)
        d[c] = (std::exp(x[c] - lse) - (c == target ? T(1) : T(0))) * d_scale;
    }
    losses[r] = loss;
  }
}

template void softmax_cross_entropy<float>(float*, float*, const float*, const int32_t*, int64_t,
                                           int64_t, float);
template void softmax_cross_entropy<double>(double*, double*, const double*, const int32_t*,
                                            int64_t, int64_t, double);

}  // namespace st::cpu
