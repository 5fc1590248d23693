// Conversion round trips: bytes in equal bytes out for every input kind, the
// attributes included; Fashion-MNIST from Debian's package.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "core/hdf5_check.h"
#include "io/convert.h"
#include "io/dataset_format.h"
#include "io/hdf5_attributes.h"
#include "io/hdf5_handle.h"
#include "io/mulaw.h"
#include "io/sha256.h"
#include "io/split_file.h"
#include "io_test_files.h"

using namespace st;
using namespace st::test;

namespace {

// A whole dataset's bytes and shape, read with plain HDF5 calls.
struct Stored {
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;
};

Stored read_stored(const std::string& path, const std::string& name) {
  H5Handle file(HDF5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)), H5Fclose);
  H5Handle dataset(HDF5_CHECK(H5Dopen2(file, name.c_str(), H5P_DEFAULT)), H5Dclose);
  H5Handle space(HDF5_CHECK(H5Dget_space(dataset)), H5Sclose);
  hsize_t dims[2] = {0, 0};
  int rank = HDF5_CHECK(H5Sget_simple_extent_dims(space, dims, nullptr));
  Stored stored;
  stored.dims.assign(dims, dims + rank);
  stored.bytes.resize(HDF5_CHECK(H5Sget_simple_extent_npoints(space)));
  HDF5_CHECK(H5Dread(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored.bytes.data()));
  return stored;
}

H5Handle open_file(const std::string& path) {
  return H5Handle(HDF5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)), H5Fclose);
}

int64_t dataset_int_attribute(const std::string& path, const std::string& name, const char* attribute) {
  H5Handle file = open_file(path);
  H5Handle dataset(HDF5_CHECK(H5Dopen2(file, name.c_str(), H5P_DEFAULT)), H5Dclose);
  return read_int_attribute(dataset, attribute);
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

// The attributes every file carries, with the sources' real SHA-256.
void expect_common_attributes(const std::string& path, const char* kind, const char* input_kind,
                              const std::vector<std::string>& sources) {
  H5Handle file = open_file(path);
  EXPECT_EQ(read_int_attribute(file, format::kAttrFormatVersion), format::kVersion);
  EXPECT_EQ(read_string_attribute(file, format::kAttrKind), kind);
  EXPECT_EQ(read_string_attribute(file, format::kAttrInputKind), input_kind);
  EXPECT_EQ(read_string_attribute(file, format::kAttrConverterVersion), format::kConverterVersion);
  EXPECT_NE(read_string_attribute(file, format::kAttrConverterOptions).find(std::string("kind=") + input_kind),
            std::string::npos);
  EXPECT_EQ(read_strings_attribute(file, format::kAttrSourceNames), sources);
  std::vector<std::string> sha = read_strings_attribute(file, format::kAttrSourceSha256);
  ASSERT_EQ(sha.size(), sources.size());
  for (size_t i = 0; i < sources.size(); ++i) EXPECT_EQ(sha[i], sha256_file(sources[i])) << sources[i];
}

ConvertOptions options_for(const std::string& kind, const std::string& output) {
  ConvertOptions o;
  o.kind = kind;
  o.output = output;
  o.quiet = true;
  return o;
}

}  // namespace

TEST(ConvertText, ConcatenatesWithSeparatorAndSplitsByFraction) {
  TempDir dir;
  std::vector<uint8_t> a = random_bytes(70000, 1), b = random_bytes(30001, 2), c = random_bytes(5, 3);
  write_bytes(dir / "a", a), write_bytes(dir / "b", b), write_bytes(dir / "c", c);
  for (const char* kind : {"text", "raw"}) {
    for (int deflate : {0, 6}) {
      ConvertOptions o = options_for(kind, dir / "out.h5");
      o.inputs = {dir / "a", dir / "b", dir / "c"};
      o.separator = "\n--\n";
      o.valid_fraction = 0.1, o.test_fraction = 0.2;
      o.deflate = deflate;
      convert(o);
      std::vector<uint8_t> sep = {'\n', '-', '-', '\n'};
      std::vector<uint8_t> all = concat({a, sep, b, sep, c});
      int64_t valid = int64_t(all.size() / 10), test = int64_t(all.size() / 5);
      int64_t train = int64_t(all.size()) - valid - test;
      Stored tr = read_stored(dir / "out.h5", "train"), va = read_stored(dir / "out.h5", "valid"),
             te = read_stored(dir / "out.h5", "test");
      EXPECT_EQ(tr.dims, (std::vector<int64_t>{train}));
      EXPECT_EQ(concat({tr.bytes, va.bytes, te.bytes}), all) << kind << " deflate " << deflate;
      EXPECT_EQ(int64_t(va.bytes.size()), valid);
      EXPECT_EQ(dataset_int_attribute(dir / "out.h5", "test", format::kAttrByteCount), test);
      expect_common_attributes(dir / "out.h5", format::kKindStream, kind, o.inputs);
      EXPECT_FALSE(std::filesystem::exists(dir / "out.h5.tmp"));
    }
  }
}

TEST(ConvertText, MakesSplitsFromSeparateInputs) {
  TempDir dir;
  std::vector<uint8_t> a = random_bytes(3000, 4), b = random_bytes(1000, 5), v = random_bytes(700, 6),
                       t = random_bytes(600, 7);
  write_bytes(dir / "a", a), write_bytes(dir / "b", b), write_bytes(dir / "v", v), write_bytes(dir / "t", t);
  ConvertOptions o = options_for("raw", dir / "out.h5");
  o.inputs = {dir / "a", dir / "b"};
  o.valid_inputs = {dir / "v"};
  o.test_inputs = {dir / "t"};
  convert(o);
  EXPECT_EQ(read_stored(dir / "out.h5", "train").bytes, concat({a, b}));
  EXPECT_EQ(read_stored(dir / "out.h5", "valid").bytes, v);
  EXPECT_EQ(read_stored(dir / "out.h5", "test").bytes, t);
  expect_common_attributes(dir / "out.h5", format::kKindStream, "raw", {dir / "a", dir / "b", dir / "v", dir / "t"});
}

TEST(ConvertIdx, KeepsImagesLabelsAndShapeFromGzipAndPlainFiles) {
  TempDir dir;
  std::vector<uint8_t> train = random_bytes(50 * 6 * 5, 8), train_labels = random_bytes(50, 9);
  std::vector<uint8_t> valid = random_bytes(20 * 6 * 5, 10), valid_labels = random_bytes(20, 11);
  write_gzip(dir / "train.gz", idx_bytes({50, 6, 5}, train));
  write_gzip(dir / "train_labels.gz", idx_bytes({50}, train_labels));
  write_bytes(dir / "valid.idx", idx_bytes({20, 6, 5}, valid));
  write_bytes(dir / "valid_labels.idx", idx_bytes({20}, valid_labels));
  ConvertOptions o = options_for("idx", dir / "out.h5");
  o.inputs = {dir / "train.gz"}, o.labels = {dir / "train_labels.gz"};
  o.valid_inputs = {dir / "valid.idx"}, o.valid_labels = {dir / "valid_labels.idx"};
  convert(o);
  Stored tr = read_stored(dir / "out.h5", "train");
  EXPECT_EQ(tr.dims, (std::vector<int64_t>{50, 30}));
  EXPECT_EQ(tr.bytes, train);
  EXPECT_EQ(read_stored(dir / "out.h5", "train_labels").bytes, train_labels);
  EXPECT_EQ(read_stored(dir / "out.h5", "valid").bytes, valid);
  EXPECT_EQ(read_stored(dir / "out.h5", "valid_labels").bytes, valid_labels);
  EXPECT_EQ(dataset_int_attribute(dir / "out.h5", "valid", format::kAttrExampleCount), 20);
  EXPECT_EQ(dataset_int_attribute(dir / "out.h5", "valid", format::kAttrByteCount), 20 * 30);
  H5Handle file = open_file(dir / "out.h5");
  EXPECT_EQ(read_ints_attribute(file, format::kAttrExampleShape), (std::vector<int64_t>{6, 5, 1}));
  expect_common_attributes(dir / "out.h5", format::kKindExamples, "idx",
                           {dir / "train.gz", dir / "train_labels.gz", dir / "valid.idx", dir / "valid_labels.idx"});
}

TEST(ConvertIdx, ShufflesWithASeedKeepingLabelsWithTheirImages) {
  TempDir dir;
  // Example i is filled with byte i and labelled i: a shuffle must keep them together.
  const int count = 200, row = 12;
  std::vector<uint8_t> images, labels;
  for (int i = 0; i < count; ++i) {
    images.insert(images.end(), row, uint8_t(i));
    labels.push_back(uint8_t(i));
  }
  write_bytes(dir / "images", idx_bytes({count, 3, 4}, images));
  write_bytes(dir / "labels", idx_bytes({count}, labels));
  auto run = [&](const std::string& out, uint64_t seed) -> std::vector<uint8_t> {
    ConvertOptions o = options_for("idx", dir / out);
    o.inputs = {dir / "images"}, o.labels = {dir / "labels"};
    o.shuffle = true, o.seed = seed, o.valid_fraction = 0.25;
    convert(o);
    Stored tr = read_stored(dir / out, "train"), va = read_stored(dir / out, "valid");
    Stored trl = read_stored(dir / out, "train_labels"), val = read_stored(dir / out, "valid_labels");
    std::vector<uint8_t> order = concat({trl.bytes, val.bytes});
    std::vector<uint8_t> all = concat({tr.bytes, va.bytes});
    EXPECT_EQ(va.dims[0], count / 4);
    std::set<int> seen(order.begin(), order.end());
    EXPECT_EQ(int(seen.size()), count) << "not a permutation";
    int parted = 0;
    for (int i = 0; i < count; ++i)
      for (int b = 0; b < row; ++b) parted += all[i * row + b] != order[i];
    EXPECT_EQ(parted, 0) << "labels parted from their images";
    return order;
  };
  std::vector<uint8_t> first = run("a.h5", 7), again = run("b.h5", 7), other = run("c.h5", 8);
  EXPECT_EQ(first, again) << "the same seed must give the same order";
  EXPECT_NE(first, other);
  EXPECT_NE(first, labels) << "not shuffled";
}

TEST(ConvertWav, EncodesMuLawAtTheChosenRate) {
  TempDir dir;
  // 16-bit stereo at 8 kHz, kept at 8 kHz: every byte must be the mu-law of
  // the channels' mean; and an 8-bit mono file after it.
  std::vector<int> stereo;
  std::vector<uint8_t> expected;
  std::mt19937 gen(12);
  for (int f = 0; f < 4000; ++f) {
    int l = int(gen() % 65536) - 32768, r = int(gen() % 65536) - 32768;
    stereo.push_back(l), stereo.push_back(r);
    expected.push_back(mulaw_encode((l / 32768.0f + r / 32768.0f) / 2));
  }
  std::vector<int> mono8;
  for (int f = 0; f < 1000; ++f) {
    mono8.push_back(int(gen() % 256));
    expected.push_back(mulaw_encode((mono8.back() - 128) / 128.0f));
  }
  write_bytes(dir / "a.wav", wav_bytes(8000, 2, 16, stereo));
  write_bytes(dir / "b.wav", wav_bytes(8000, 1, 8, mono8));
  ConvertOptions o = options_for("wav", dir / "out.h5");
  o.inputs = {dir / "a.wav", dir / "b.wav"};
  o.sample_rate = 8000;
  o.valid_fraction = 0.2;
  convert(o);
  EXPECT_EQ(concat({read_stored(dir / "out.h5", "train").bytes, read_stored(dir / "out.h5", "valid").bytes}),
            expected);
  H5Handle file = open_file(dir / "out.h5");
  EXPECT_EQ(read_int_attribute(file, format::kAttrSampleRate), 8000);
  expect_common_attributes(dir / "out.h5", format::kKindStream, "wav", o.inputs);
}

TEST(ConvertWav, ResamplesToTheChosenRate) {
  TempDir dir;
  const double pi = std::acos(-1.0);
  std::vector<int> samples;
  for (int i = 0; i < 44100; ++i) samples.push_back(int(20000 * std::sin(2 * pi * 300 * i / 44100.0)));
  write_bytes(dir / "a.wav", wav_bytes(44100, 1, 16, samples));
  ConvertOptions o = options_for("wav", dir / "out.h5");
  o.inputs = {dir / "a.wav"};
  o.sample_rate = 8000;
  convert(o);
  std::vector<uint8_t> out =
      concat({read_stored(dir / "out.h5", "train").bytes, read_stored(dir / "out.h5", "valid").bytes});
  ASSERT_EQ(out.size(), 8000u);
  // Decoded, the bytes follow the sine at 8 kHz (the box filter of ~5.5
  // input samples delays by half its width).
  double worst = 0, delay = (44100.0 / 8000 - 1) / 2 / 44100;
  for (int j = 0; j < 8000; ++j)
    worst = std::max(worst, std::fabs(mulaw_decode(out[j]) - 20000 / 32768.0 * std::sin(2 * pi * 300 * (j / 8000.0 + delay))));
  EXPECT_LT(worst, 0.03);
}

TEST(ConvertIdx, FashionMnistFromDebianGives60000And10000Images) {
  const std::string root = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(root + "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed (scripts/install-deps.sh installs it)";
  TempDir dir;
  ConvertOptions o = options_for("idx", dir / "fashion.h5");
  o.inputs = {root + "train-images-idx3-ubyte.gz"}, o.labels = {root + "train-labels-idx1-ubyte.gz"};
  o.valid_inputs = {root + "t10k-images-idx3-ubyte.gz"}, o.valid_labels = {root + "t10k-labels-idx1-ubyte.gz"};
  convert(o);
  OpenSplit train = open_split(dir / "fashion.h5", "train", 0, false);
  OpenSplit valid = open_split(dir / "fashion.h5", "valid", 0, false);
  EXPECT_TRUE(train.info.examples);
  EXPECT_EQ(train.info.items, 60000);
  EXPECT_EQ(valid.info.items, 10000);
  EXPECT_EQ(train.info.example_shape, (std::vector<int64_t>{28, 28, 1}));
  EXPECT_EQ(valid.info.item_bytes, 784);
  // Ten classes, each 6,000 times in train (as the dataset's README says).
  std::vector<uint8_t> labels = read_stored(dir / "fashion.h5", "train_labels").bytes;
  std::vector<int> per_class(256);
  for (uint8_t l : labels) ++per_class[l];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 6000) << "class " << c;
}
