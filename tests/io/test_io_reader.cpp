// The batch reader: validation errors, sharding, reproducibility, cursors,
// one pass over a split.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/hdf5_check.h"
#include "io/batch_reader.h"
#include "io/convert.h"
#include "io/dataset_format.h"
#include "io/dataset_writer.h"
#include "io/hdf5_attributes.h"
#include "io_test_files.h"

using namespace st;
using namespace st::test;

namespace {

// A stream file whose train split holds `bytes` (and a small valid split).
void make_stream(const TempDir& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  write_bytes(dir / "train.bin", bytes);
  write_bytes(dir / "valid.bin", random_bytes(100, 99));
  ConvertOptions o;
  o.kind = "raw", o.output = dir / name, o.quiet = true;
  o.inputs = {dir / "train.bin"}, o.valid_inputs = {dir / "valid.bin"};
  convert(o);
}

// Every batch of one epoch on one rank.
std::vector<Batch> epoch_of(ReaderConfig config, int64_t epoch = 0) {
  BatchReader reader(config);
  if (epoch > 0) reader.restore({epoch, 0, config.seed});
  std::vector<Batch> batches(reader.batches_per_epoch());
  for (auto& batch : batches) EXPECT_TRUE(reader.next(batch));
  return batches;
}

// Checks that each row holds the bytes at its start in `split`.
void expect_rows_match(const Batch& batch, const std::vector<uint8_t>& split) {
  int64_t width = batch.bytes.dim(1);
  for (int64_t r = 0; r < batch.bytes.dim(0); ++r)
    for (int64_t i = 0; i < width; ++i)
      ASSERT_EQ(batch.bytes.ptr<uint8_t>()[r * width + i], split[batch.starts[r] + i]) << "row " << r;
}

std::vector<int64_t> all_starts(const std::vector<Batch>& batches) {
  std::vector<int64_t> starts;
  for (const auto& b : batches) starts.insert(starts.end(), b.starts.begin(), b.starts.end());
  return starts;
}

// Writes an HDF5 file by hand that looks like a dataset but for one flaw.
void make_flawed(const std::string& path, int64_t version, hid_t type, int rank) {
  H5Handle file(HDF5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)), H5Fclose);
  write_int_attribute(file, format::kAttrFormatVersion, version);
  write_string_attribute(file, format::kAttrKind, format::kKindStream);
  hsize_t dims[2] = {1000, 4};
  H5Handle space(HDF5_CHECK(H5Screate_simple(rank, dims, nullptr)), H5Sclose);
  H5Handle dataset(HDF5_CHECK(H5Dcreate2(file, "train", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                   H5Dclose);
}

}  // namespace

TEST(ReaderValidation, NamesTheFileAndTheProblem) {
  TempDir dir;
  write_bytes(dir / "text.h5", random_bytes(5000, 1));
  make_flawed(dir / "int32.h5", format::kVersion, H5T_STD_I32LE, 1);
  make_flawed(dir / "rank2.h5", format::kVersion, H5T_STD_U8LE, 2);
  make_flawed(dir / "future.h5", 99, H5T_STD_U8LE, 1);
  make_stream(dir, "good.h5", random_bytes(1000, 2));
  struct Case { std::string file, split; int64_t window; std::string problem; };
  std::vector<Case> cases = {
      {"absent.h5", "train", 65, "cannot open"},
      {"text.h5", "train", 65, "not an HDF5 file"},
      {"int32.h5", "train", 65, "holds 32-bit signed integers, not unsigned bytes"},
      {"rank2.h5", "train", 65, "has rank 2; a stream dataset must have rank 1"},
      {"future.h5", "train", 65, "format version 99 is not one this reader knows"},
      {"good.h5", "test", 65, "no split 'test' (the file holds: train, valid)"},
      {"good.h5", "valid", 257, "holds 100 bytes, shorter than one context window of 257 bytes"},
  };
  for (const auto& c : cases) {
    std::string message = error_of([&] {
      ReaderConfig config{.path = dir / c.file, .split = c.split, .window = c.window, .batch = 1};
      BatchReader reader(config);
    });
    EXPECT_NE(message.find(dir / c.file), std::string::npos) << message;
    EXPECT_NE(message.find(c.problem), std::string::npos) << "expected '" << c.problem << "', got: " << message;
  }
}

TEST(ReaderValidation, RefusesASplitTooShortForOneBatchPerRank) {
  TempDir dir;
  make_stream(dir, "d.h5", random_bytes(64 * 10 + 1, 3));  // 10 windows of 65
  ReaderConfig config{.path = dir / "d.h5", .split = "train", .window = 65, .batch = 4, .ranks = 3};
  std::string message = error_of([&] { BatchReader reader(config); });
  EXPECT_NE(message.find("too short for one batch of 4 per rank on 3 ranks"), std::string::npos) << message;
}

TEST(ReaderSharding, SequentialShardsAreDisjointAndCoverTheSplit) {
  TempDir dir;
  const int64_t n = 64, batch = 2;
  for (int ranks : {1, 2, 3}) {
    const int64_t windows = ranks * batch * 5;
    std::vector<uint8_t> bytes = random_bytes(windows * n + 1, 4 + ranks);
    make_stream(dir, "d.h5", bytes);
    std::vector<int> covered(bytes.size());
    std::set<int64_t> starts;
    for (int rank = 0; rank < ranks; ++rank) {
      ReaderConfig config{.path = dir / "d.h5", .split = "train", .window = n + 1, .batch = batch,
                          .rank = rank, .ranks = ranks, .order = Order::Sequential};
      for (const Batch& b : epoch_of(config)) {
        expect_rows_match(b, bytes);
        for (int64_t s : b.starts) {
          EXPECT_TRUE(starts.insert(s).second) << "window at " << s << " read twice";
          for (int64_t i = s + 1; i <= s + n; ++i) ++covered[i];  // the targets
        }
      }
    }
    EXPECT_EQ(int64_t(starts.size()), windows);
    for (size_t i = 1; i < bytes.size(); ++i) ASSERT_EQ(covered[i], 1) << "byte " << i << " on " << ranks << " ranks";
  }
}

TEST(ReaderSharding, ShuffledShardsAreDisjointReproducibleAndChangeEachEpoch) {
  TempDir dir;
  const int64_t n = 32, batch = 3, ranks = 4;
  std::vector<uint8_t> bytes = random_bytes(n * 200 + 17, 5);
  make_stream(dir, "d.h5", bytes);
  auto epoch_starts = [&](uint64_t seed, int64_t epoch, int prefetch) {
    std::vector<int64_t> all;
    for (int rank = 0; rank < ranks; ++rank) {
      ReaderConfig config{.path = dir / "d.h5", .split = "train", .window = n + 1, .batch = batch,
                          .rank = rank, .ranks = int(ranks), .seed = seed, .prefetch = prefetch};
      std::vector<Batch> batches = epoch_of(config, epoch);
      for (const auto& b : batches) expect_rows_match(b, bytes);
      std::vector<int64_t> mine = all_starts(batches);
      all.insert(all.end(), mine.begin(), mine.end());
    }
    return all;
  };
  std::vector<int64_t> first = epoch_starts(1, 0, 4);
  // 200 windows at shift 0; the shuffled order gives one up for room to
  // shift: 199, of which each rank takes 199 / 4 / 3 * 3 = 48.
  EXPECT_EQ(first.size(), 4u * 48);
  std::set<int64_t> distinct(first.begin(), first.end());
  EXPECT_EQ(distinct.size(), first.size()) << "ranks overlap";
  for (int64_t s : first) EXPECT_EQ(s % n, first[0] % n) << "windows of one epoch share one shift";
  EXPECT_EQ(epoch_starts(1, 0, 0), first) << "the same seed must give the same order, prefetch or not";
  EXPECT_NE(epoch_starts(2, 0, 4), first) << "another seed, another order";
  EXPECT_NE(epoch_starts(1, 1, 4), first) << "another epoch, another order";
}

TEST(ReaderCursor, ARestoredReaderContinuesTheExactSequence) {
  TempDir dir;
  const int64_t n = 16;
  std::vector<uint8_t> bytes = random_bytes(n * 40 + 5, 6);
  make_stream(dir, "d.h5", bytes);
  ReaderConfig config{.path = dir / "d.h5", .split = "train", .window = n + 1, .batch = 4,
                      .rank = 1, .ranks = 2, .seed = 11, .prefetch = 3};
  // The uninterrupted run: three epochs' worth of batches.
  BatchReader whole(config);
  std::vector<Batch> expected(whole.batches_per_epoch() * 3);
  for (auto& b : expected) ASSERT_TRUE(whole.next(b));
  for (int64_t stop_at : {int64_t(1), whole.batches_per_epoch(), whole.batches_per_epoch() + 2}) {
    Cursor saved;
    {
      BatchReader first(config);  // reads ahead past stop_at, which must not matter
      Batch b;
      for (int64_t i = 0; i < stop_at; ++i) ASSERT_TRUE(first.next(b));
      saved = first.cursor();
    }
    BatchReader resumed(config);
    resumed.restore(saved);
    for (size_t i = size_t(stop_at); i < expected.size(); ++i) {
      Batch b;
      ASSERT_TRUE(resumed.next(b));
      ASSERT_EQ(b.starts, expected[i].starts) << "batch " << i << " after resuming at " << stop_at;
      expect_rows_match(b, bytes);
      EXPECT_EQ(b.after.epoch, expected[i].after.epoch);
      EXPECT_EQ(b.after.position, expected[i].after.position);
    }
  }
  BatchReader other(config);
  std::string message = error_of([&] { other.restore({0, 1, 12}); });
  EXPECT_NE(message.find("seed 12"), std::string::npos) << message;
}

TEST(ReaderOnePass, ScoresEveryTargetOfTheSplitExactlyOnce) {
  TempDir dir;
  const int64_t n = 50;
  for (int64_t length : {n * 13 + 1, n * 13 + 30}) {  // without and with a tail
    std::vector<uint8_t> bytes = random_bytes(length, 7);
    make_stream(dir, "d.h5", bytes);
    std::vector<int> scored(length);
    for (int rank = 0; rank < 3; ++rank) {
      ReaderConfig config{.path = dir / "d.h5", .split = "train", .window = n + 1, .batch = 4,
                          .rank = rank, .ranks = 3, .order = Order::OnePass};
      BatchReader reader(config);
      Batch b;
      int64_t count = 0;
      while (reader.next(b)) {
        ++count;
        expect_rows_match(b, bytes);
        for (size_t r = 0; r < b.starts.size(); ++r)
          for (int64_t i = b.starts[r] + 1 + b.scored[r]; i <= b.starts[r] + n; ++i) ++scored[i];
      }
      EXPECT_EQ(count, reader.batches_per_epoch());
      EXPECT_FALSE(reader.next(b)) << "a finished pass stays finished";
    }
    for (int64_t i = 1; i < length; ++i) ASSERT_EQ(scored[i], 1) << "byte " << i << " of " << length;
  }
}

TEST(ReaderExamples, ShardsWholeExamples) {
  TempDir dir;
  const int count = 90, row = 20;
  std::vector<uint8_t> images = random_bytes(count * row, 8);
  write_bytes(dir / "images", idx_bytes({count, 4, 5}, images));
  ConvertOptions o;
  o.kind = "idx", o.output = dir / "d.h5", o.quiet = true, o.inputs = {dir / "images"}, o.valid_fraction = 0.1;
  convert(o);
  const int train = count - count / 10;
  std::set<int64_t> seen;
  for (int rank = 0; rank < 2; ++rank) {
    ReaderConfig config{.path = dir / "d.h5", .split = "train", .batch = 5, .rank = rank, .ranks = 2};
    std::vector<Batch> batches = epoch_of(config);
    for (const auto& b : batches) {
      ASSERT_EQ(b.bytes.dim(1), row);
      for (int64_t r = 0; r < b.bytes.dim(0); ++r) {
        EXPECT_TRUE(seen.insert(b.starts[r]).second) << "example " << b.starts[r] << " read twice";
        EXPECT_TRUE(std::equal(images.begin() + b.starts[r] * row, images.begin() + (b.starts[r] + 1) * row,
                               b.bytes.ptr<uint8_t>() + r * row));
      }
    }
  }
  // 81 examples: 40 per rank (8 batches of 5), fewer than `ranks` left over.
  EXPECT_EQ(int(seen.size()), 80);
  EXPECT_LT(train - int(seen.size()), 2);
}
