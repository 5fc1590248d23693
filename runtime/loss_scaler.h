// Dynamic loss scaling for fp16 training.
//
// The loss is multiplied by `scale` before the backward pass so that small
// gradients survive in fp16; the optimizer divides it out again (Adam's
// grad_scale).  After every backward pass one sum_squares pass over the flat
// gradient buffer decides the step: inf or NaN anywhere (an fp16 overflow
// somewhere in the backward pass) makes the sum inf or NaN, so the step is
// skipped and counted and the scale halved; after growth_interval clean steps
// in a row the scale doubles.  The fields are plain so a checkpoint can save
// and restore them.
#pragma once

#include <cstdint>

#include "kernels/backend.h"

namespace st {

// What one step's gradient check decided.
struct GradCheck {
  bool finite;       // false: skip the optimizer step
  double grad_norm;  // L2 norm of the gradients with the loss scale removed
  float unscale;     // 1 / the scale these gradients were computed with
};

struct LossScaler {
  float scale = 65536.0f;         // 2^16
  int64_t growth_interval = 2000;  // clean steps before the scale doubles
  float min_scale = 1.0f;         // halving below this means the model diverged
  int64_t clean_steps = 0;        // since the scale last changed
  int64_t skipped_steps = 0;      // in the whole run

  // Checks the step's gradients, all in one flat buffer (fp32 or fp16), with
  // one sum_squares pass and one value brought back to the host.  When it
  // returns finite == false the caller must not touch the weights.
  GradCheck check(Backend& backend, const Tensor& flat_grads);
  // The same decision from a sum of squares already taken (for example one
  // summed over the data-parallel ranks).  Throws when the scale would fall
  // below min_scale: gradients that overflow even there will never recover.
  GradCheck update(double sum_squares);
};

}  // namespace st
