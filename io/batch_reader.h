// Streams training batches from one split of a byte dataset file.
//
//   ReaderConfig config{.path = "data.h5", .split = "train", .window = n + 1,
//                       .batch = 8, .rank = r, .ranks = R, .seed = 1};
//   BatchReader reader(config);
//   reader.restore(saved_cursor);        // when resuming
//   Batch batch;
//   while (reader.next(batch)) { ... batch.bytes: host uint8 [8, n + 1] ... }
//   Cursor to_save = reader.cursor();   // goes into the checkpoint
//
// A background thread reads ahead into a bounded queue; the cursor counts
// only the batches next() has handed out, so a restored reader yields exactly
// the batches the uninterrupted run would have read next.  See epoch_plan.h
// for how items are ordered and sharded.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "io/epoch_plan.h"
#include "io/split_file.h"

namespace st {

// A reading position: plain integers, for checkpoint attributes.  The
// generator's state is (seed, epoch): every draw of an epoch derives from
// them, so no further state exists.
struct Cursor {
  int64_t epoch = 0;
  int64_t position = 0;  // batches of the epoch already handed out
  uint64_t seed = 0;
};

struct ReaderConfig {
  std::string path, split;
  int64_t window = 0;  // stream: bytes per item, n + 1; examples: 0 (an item is one example)
  int64_t batch = 1;   // items per batch on this rank
  int rank = 0, ranks = 1;
  Order order = Order::Shuffled;
  uint64_t seed = 1;
  int prefetch = 4;  // batches read ahead by a background thread; 0: read in next()
};

struct Batch {
  Tensor bytes;                // host uint8 [rows, item bytes]; rows < batch only at the end of OnePass
  std::vector<int64_t> starts; // each row's start in the split (byte offset or example index)
  // Per row, how many leading targets an earlier row already scored (OnePass
  // tail window only; 0 everywhere else): skip them when summing a loss.
  std::vector<int64_t> scored;
  Cursor after;                // the cursor once this batch is consumed
};

class BatchReader {
 public:
  // Opens and validates the split (see open_split) and starts reading ahead.
  explicit BatchReader(const ReaderConfig& config);
  ~BatchReader();
  BatchReader(const BatchReader&) = delete;
  BatchReader& operator=(const BatchReader&) = delete;

  // The next batch; false once a OnePass reader has delivered the whole
  // split (training orders never end).  Rethrows a read error.
  bool next(Batch& batch);
  Cursor cursor() const { return consumed_; }
  // Continues from a saved cursor; the seed must match the configuration's.
  void restore(const Cursor& cursor);

  const SplitInfo& info() const { return split_.info; }
  int64_t item_bytes() const;
  // Batches per epoch on this rank (the same on every rank in training).
  int64_t batches_per_epoch() const { return batches_per_epoch_; }

 private:
  void start();
  void stop();
  void produce();
  // Reads the batch at `at` (advancing the plan to its epoch as needed).
  bool read_batch(Cursor& at, Batch& batch);

  ReaderConfig config_;
  OpenSplit split_;
  PlanShape shape_;
  EpochPlan plan_;            // the producer's current epoch
  int64_t plan_epoch_ = -1;
  int64_t batches_per_epoch_ = 0;
  Cursor consumed_, produced_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> queue_;
  bool stopping_ = false, finished_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace st
