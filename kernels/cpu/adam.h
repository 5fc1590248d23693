// AdamW on the CPU, for fp32 master weights (fp64 in gradient checks):
//   g = grad * grad_scale
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
//            + lr * weight_decay * param      (decoupled decay, old param)
// and, when param_copy is not null, param_copy = param in its own type.
#pragma once

#include <cstdint>

namespace st::cpu {

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay, grad_scale;
  int64_t step;
};

template <class T, class Copy>
void adam_update(T* param, T* m, T* v, Copy* param_copy, const T* grad, int64_t count,
                 const AdamHyper& h);

}  // namespace st::cpu
