#include "io/epoch_plan.h"

#include <numeric>

#include "core/check.h"
#include "io/rng.h"

namespace st {

// Every item of the epoch, in reading order, before sharding.
static std::vector<int64_t> all_items(const PlanShape& s, Rng& rng, int64_t& tail_scored) {
  std::vector<int64_t> starts;
  if (s.examples) {
    starts.resize(s.items);
    std::iota(starts.begin(), starts.end(), 0);
  } else {
    int64_t stride = s.window - 1;
    int64_t count = (s.items - 1) / stride;  // windows at shift 0
    int64_t shift = 0;
    if (s.order == Order::Shuffled) {
      // Giving up one window frees a full stride of room for the shift
      // (unless there is only one), and keeps every epoch the same length.
      int64_t room = (s.items - 1) - count * stride;
      if (count >= 2) --count, room += stride;
      shift = int64_t(rng.below(uint64_t(std::min(room, stride - 1) + 1)));
    }
    for (int64_t k = 0; k < count; ++k) starts.push_back(shift + k * stride);
    int64_t covered = count * stride;  // the last target scored so far
    if (s.order == Order::OnePass && covered < s.items - 1) {
      starts.push_back(s.items - s.window);
      tail_scored = covered - (s.items - s.window);
    }
  }
  if (s.order == Order::Shuffled)
    for (int64_t i = int64_t(starts.size()) - 1; i > 0; --i)
      std::swap(starts[i], starts[rng.below(uint64_t(i + 1))]);
  return starts;
}

EpochPlan plan_epoch(const PlanShape& s, int64_t epoch) {
  ST_CHECK(s.examples || s.window >= 2, "a stream window needs at least 2 bytes (n >= 1)");
  ST_CHECK(s.ranks >= 1 && s.rank >= 0 && s.rank < s.ranks && s.batch >= 1,
           "bad rank, rank count or batch size");
  Rng rng{derive_seed(s.seed, uint64_t(epoch))};
  EpochPlan plan;
  std::vector<int64_t> starts = all_items(s, rng, plan.tail_scored);
  int64_t total = int64_t(starts.size());
  int64_t begin, end;
  if (s.order == Order::OnePass) {
    // Evaluation: every item is read; shares differ by at most one item.
    begin = total * s.rank / s.ranks, end = total * (s.rank + 1) / s.ranks;
    if (end != total) plan.tail_scored = 0;  // the tail window is the last rank's
  } else {
    int64_t share = (total / s.ranks) / s.batch * s.batch;  // whole batches, equal on every rank
    begin = s.rank * share, end = begin + share;
  }
  plan.starts.assign(starts.begin() + begin, starts.begin() + end);
  plan.batches = (int64_t(plan.starts.size()) + s.batch - 1) / s.batch;
  return plan;
}

}  // namespace st
