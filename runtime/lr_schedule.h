// The learning-rate schedule the paper trains with: linear warm-up from 0 to
// the peak over `warmup` steps, then cosine decay to `final_fraction` of the
// peak at `total` steps.
#pragma once

#include <cstdint>

namespace st {

struct LrSchedule {
  double peak = 3.5e-4;
  int64_t warmup = 5000;
  int64_t total = 100000;
  double final_fraction = 0.0;
};

// The rate for 1-based step `step`.
double learning_rate(const LrSchedule& schedule, int64_t step);

}  // namespace st
