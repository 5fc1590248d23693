// Which items a rank reads in an epoch, and in what order.
//
// A stream of L bytes is cut into windows of `window` = n + 1 bytes that
// step by n (neighbours share one byte: the last target of one window is the
// first input of the next).  For a shuffled order each epoch shifts the cut
// by a random offset below n, so that context boundaries move between epochs,
// then permutes the windows.  An examples dataset has one item per example.
// The epoch's item list is then cut into one contiguous share per rank, the
// same size on every rank (data-parallel ranks step together), so the shares
// are disjoint and together cover every item but the fewer than `ranks`
// left over.  All randomness derives from (seed, epoch): nothing else needs
// saving to repeat an epoch exactly.
#pragma once

#include <cstdint>
#include <vector>

namespace st {

enum class Order {
  Shuffled,    // training: a random shift and permutation every epoch
  Sequential,  // training: windows in order, no shift, epoch after epoch
  OnePass,     // evaluation: the whole split once, in order, every byte scored
};

struct PlanShape {
  int64_t items = 0;   // bytes of a stream, or examples
  bool examples = false;
  int64_t window = 0;  // stream only: n + 1
  int64_t batch = 1;
  int rank = 0, ranks = 1;
  Order order = Order::Shuffled;
  uint64_t seed = 1;
};

struct EpochPlan {
  // Where this rank's items start (byte offset in a stream, example index).
  std::vector<int64_t> starts;
  // OnePass on a stream: the last window is aligned to the end of the split
  // and overlaps the one before; its first `tail_scored` targets were
  // already scored there.  0 otherwise.
  int64_t tail_scored = 0;
  int64_t batches = 0;  // batches in the epoch; the last may be short only in OnePass
};

EpochPlan plan_epoch(const PlanShape& shape, int64_t epoch);

}  // namespace st
