#include "io/batch_reader.h"

#include "core/hdf5_check.h"

namespace st {

BatchReader::BatchReader(const ReaderConfig& config)
    : config_(config),
      split_(open_split(config.path, config.split, config.window, config.order == Order::Shuffled)) {
  const SplitInfo& info = split_.info;
  ST_CHECK(info.examples || config.window >= 2,
           config.path + ": a stream needs a window of n + 1 >= 2 bytes, got " + std::to_string(config.window));
  shape_ = {info.items, info.examples, config.window, config.batch, config.rank,
            config.ranks, config.order, config.seed};
  batches_per_epoch_ = plan_epoch(shape_, 0).batches;
  ST_CHECK(batches_per_epoch_ > 0,
           config.path + ": split '" + config.split + "' is too short for one batch of " +
               std::to_string(config.batch) + " per rank on " + std::to_string(config.ranks) + " ranks");
  consumed_ = produced_ = Cursor{0, 0, config.seed};
  // The prefetch thread reads while the trainer may write a checkpoint: HDF5
  // must serialise its calls (Debian's and Ubuntu's builds do).
  hbool_t thread_safe = false;
  HDF5_CHECK(H5is_library_threadsafe(&thread_safe));
  ST_CHECK(config.prefetch == 0 || thread_safe,
           "this HDF5 library is not built thread-safe: read with prefetch = 0");
  start();
}

BatchReader::~BatchReader() { stop(); }

int64_t BatchReader::item_bytes() const {
  return split_.info.examples ? split_.info.item_bytes : config_.window;
}

void BatchReader::start() {
  stopping_ = finished_ = false;
  error_ = nullptr;
  queue_.clear();
  if (config_.prefetch > 0) thread_ = std::thread(&BatchReader::produce, this);
}

void BatchReader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchReader::restore(const Cursor& cursor) {
  ST_CHECK(cursor.seed == config_.seed,
           "the saved reading position has seed " + std::to_string(cursor.seed) +
               ", this reader " + std::to_string(config_.seed) + ": it would not continue the same sequence");
  ST_CHECK(cursor.epoch >= 0 && cursor.position >= 0 && cursor.position <= batches_per_epoch_,
           "the saved reading position (epoch " + std::to_string(cursor.epoch) + ", batch " +
               std::to_string(cursor.position) + ") does not fit " + std::to_string(batches_per_epoch_) +
               " batches per epoch");
  stop();
  consumed_ = produced_ = cursor;
  start();
}

bool BatchReader::read_batch(Cursor& at, Batch& batch) {
  if (at.position >= batches_per_epoch_) {
    if (config_.order == Order::OnePass) return false;
    ++at.epoch, at.position = 0;
  }
  if (plan_epoch_ != at.epoch) {
    plan_ = plan_epoch(shape_, at.epoch);
    plan_epoch_ = at.epoch;
  }
  int64_t first = at.position * config_.batch;
  int64_t rows = std::min<int64_t>(config_.batch, int64_t(plan_.starts.size()) - first);
  int64_t bytes = item_bytes();
  bool examples = split_.info.examples;
  batch.bytes = Tensor::empty({rows, bytes}, DType::U8, Place::Host);
  batch.starts.assign(plan_.starts.begin() + first, plan_.starts.begin() + first + rows);
  batch.scored.assign(rows, 0);
  if (first + rows == int64_t(plan_.starts.size())) batch.scored.back() = plan_.tail_scored;
  H5Handle file_space(HDF5_CHECK(H5Dget_space(split_.dataset)), H5Sclose);
  hsize_t memory_count = hsize_t(bytes);
  H5Handle memory_space(HDF5_CHECK(H5Screate_simple(1, &memory_count, nullptr)), H5Sclose);
  for (int64_t r = 0; r < rows; ++r) {
    // One hyperslab per row: a window of the stream, or one example's row.
    hsize_t start[2] = {hsize_t(batch.starts[r]), 0};
    hsize_t count[2] = {examples ? 1 : hsize_t(bytes), hsize_t(bytes)};
    HDF5_CHECK(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr));
    HDF5_CHECK(H5Dread(split_.dataset, H5T_NATIVE_UINT8, memory_space, file_space, H5P_DEFAULT,
                       batch.bytes.ptr<uint8_t>() + r * bytes));
  }
  ++at.position;
  batch.after = at;
  return true;
}

void BatchReader::produce() {
  try {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || int(queue_.size()) < config_.prefetch; });
        if (stopping_) return;
      }
      Batch batch;
      bool more = read_batch(produced_, batch);
      std::lock_guard<std::mutex> lock(mutex_);
      if (!more) {
        finished_ = true;
        changed_.notify_all();
        return;
      }
      queue_.push_back(std::move(batch));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
    changed_.notify_all();
  }
}

bool BatchReader::next(Batch& batch) {
  if (config_.prefetch == 0) {
    if (!read_batch(produced_, batch)) return false;
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !queue_.empty() || finished_ || error_; });
    if (queue_.empty()) {
      if (error_) std::rethrow_exception(error_);
      return false;
    }
    batch = std::move(queue_.front());
    queue_.pop_front();
    changed_.notify_all();
  }
  consumed_ = batch.after;
  return true;
}

}  // namespace st
