#include "runtime/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace st {

double learning_rate(const LrSchedule& s, int64_t step) {
  if (s.warmup > 0 && step <= s.warmup) return s.peak * double(step) / double(s.warmup);
  int64_t decay_steps = std::max<int64_t>(1, s.total - s.warmup);
  double progress = std::clamp(double(step - s.warmup) / double(decay_steps), 0.0, 1.0);
  double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return s.peak * (s.final_fraction + (1.0 - s.final_fraction) * cosine);
}

}  // namespace st
