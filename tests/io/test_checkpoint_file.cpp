// The checkpoint file: round trip, refusal of bad files, and a failed save
// that leaves the previous checkpoint intact.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/check.h"
#include "io/checkpoint_file.h"

using namespace st;
namespace fs = std::filesystem;

namespace {

fs::path temp_folder(const std::string& name) {
  fs::path folder = fs::temp_directory_path() / ("st_ckpt_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder;
}

CheckpointData sample_data(uint64_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  CheckpointData data;
  data.attributes["step"] = std::to_string(seed);
  data.attributes["config.layers"] = "4";
  for (const char* name : {"params/blocks.0.attn.qkv.weight", "params/head.bias", "optimizer/m/head.bias"}) {
    NamedArray array{name, {3, 5}, {}};
    for (int i = 0; i < 15; ++i) array.values.push_back(dist(gen));
    data.arrays.push_back(array);
  }
  return data;
}

std::string error_of(const std::string& path) {
  try {
    read_checkpoint_file(path, {"params"});
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST(CheckpointFile, RoundTripsArraysAndAttributes) {
  fs::path folder = temp_folder("roundtrip");
  std::string path = (folder / "ckpt.h5").string();
  CheckpointData data = sample_data(7);
  write_checkpoint_file(path, data);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  CheckpointData back = read_checkpoint_file(path, {"params", "optimizer/m"});
  EXPECT_EQ(back.attributes, data.attributes);
  ASSERT_EQ(back.arrays.size(), data.arrays.size());
  for (const NamedArray& want : data.arrays) {
    auto it = std::find_if(back.arrays.begin(), back.arrays.end(),
                           [&](const NamedArray& a) { return a.name == want.name; });
    ASSERT_NE(it, back.arrays.end()) << want.name;
    EXPECT_EQ(it->shape, want.shape);
    EXPECT_EQ(it->values, want.values);  // bit-identical
  }
  fs::remove_all(folder);
}

TEST(CheckpointFile, RefusesFilesThatAreNotCheckpoints) {
  fs::path folder = temp_folder("bad");
  std::string text = (folder / "text.h5").string();
  std::ofstream(text) << "not hdf5";
  EXPECT_NE(error_of(text).find("not an HDF5 file"), std::string::npos) << error_of(text);
  EXPECT_NE(error_of(text).find(text), std::string::npos);
  EXPECT_NE(error_of((folder / "missing.h5").string()).find("no such file"), std::string::npos);
  // A truncated checkpoint (a copy cut in half) is refused, not half-read.
  std::string good = (folder / "good.h5").string(), cut = (folder / "cut.h5").string();
  write_checkpoint_file(good, sample_data(3));
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) / 2);
  EXPECT_NE(error_of(cut), "(accepted)");
  fs::remove_all(folder);
}

TEST(CheckpointFile, FailedSaveLeavesThePreviousCheckpointIntact) {
  // A folder squatting on the temporary name makes the save fail the same
  // way for root (who ignores permissions, as in CI) and for other users.
  fs::path folder = temp_folder("fail");
  std::string path = (folder / "ckpt.h5").string();
  write_checkpoint_file(path, sample_data(1));
  uintmax_t size = fs::file_size(path);
  fs::create_directories(path + ".tmp");
  try {
    write_checkpoint_file(path, sample_data(2));
    ADD_FAILURE() << "the save succeeded although its temporary file could not be created";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::file_size(path), size);
  EXPECT_EQ(read_checkpoint_file(path, {"params"}).attributes.at("step"), "1");
  fs::remove_all(folder);
}
