#include "runtime/loss_scaler.h"

#include <cmath>
#include <string>

namespace st {

GradCheck LossScaler::check(Backend& backend, const Tensor& flat_grads) {
  return update(backend.sum_squares(flat_grads));
}

GradCheck LossScaler::update(double sum_squares) {
  // The norm and the unscale factor belong to the scale these gradients were
  // made with, so they are taken before the scale changes.
  GradCheck result = {std::isfinite(sum_squares), std::sqrt(sum_squares) / scale, 1.0f / scale};
  if (!result.finite) {
    ++skipped_steps;
    clean_steps = 0;
    ST_CHECK(scale / 2 >= min_scale,
             "the gradients are inf or NaN even at loss scale " + std::to_string(scale) +
                 " (" + std::to_string(skipped_steps) + " steps skipped): the model has diverged");
    scale /= 2;
  } else if (++clean_steps >= growth_interval) {
    clean_steps = 0;
    scale *= 2;
  }
  return result;
}

}  // namespace st
