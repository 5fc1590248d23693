// idx inputs: images (and labels) as an examples dataset, split into
// train / valid / test by separate inputs or by fractions after an optional
// seeded shuffle.

#include "core/check.h"
#include "io/convert_internal.h"
#include "io/dataset_format.h"
#include "io/hdf5_attributes.h"
#include "io/idx.h"
#include "io/progress.h"
#include "io/rng.h"
#include "io/sha256.h"

namespace st {

namespace {

// All examples (and labels) of one group of inputs, in order.
struct Examples {
  std::vector<int64_t> shape;
  int64_t count = 0;
  std::vector<uint8_t> data, labels;
};

Examples load_group(const SplitInputs& group, std::vector<std::string>& sources) {
  ST_CHECK(group.labels.empty() || group.labels.size() == group.inputs.size(),
           "give one labels file per image file (" + std::to_string(group.inputs.size()) +
               " image files, " + std::to_string(group.labels.size()) + " labels files)");
  Examples all;
  for (size_t i = 0; i < group.inputs.size(); ++i) {
    const std::string& path = group.inputs[i];
    IdxArray images = read_idx(path);
    ST_CHECK(images.dims.size() >= 2 && images.dims.size() <= 4,
             path + ": an IDX file of " + std::to_string(images.dims.size()) +
                 " dimensions; images need 2 to 4 (count, rows, cols, channels)");
    std::vector<int64_t> shape = idx_example_shape(images);
    if (all.shape.empty()) all.shape = shape;
    ST_CHECK(shape == all.shape, path + ": examples of another shape than " + group.inputs[0] + "'s");
    all.count += images.dims[0];
    all.data.insert(all.data.end(), images.data.begin(), images.data.end());
    sources.push_back(path);
    if (group.labels.empty()) continue;
    IdxArray labels = read_idx(group.labels[i]);
    ST_CHECK(labels.dims.size() == 1, group.labels[i] + ": a labels file must be 1-D");
    ST_CHECK(labels.dims[0] == images.dims[0],
             group.labels[i] + ": holds " + std::to_string(labels.dims[0]) + " labels for the " +
                 std::to_string(images.dims[0]) + " images of " + path);
    all.labels.insert(all.labels.end(), labels.data.begin(), labels.data.end());
    sources.push_back(group.labels[i]);
  }
  return all;
}

// Shuffles examples and labels alike (Fisher-Yates with the seeded Rng).
void shuffle_examples(Examples& all, uint64_t seed) {
  int64_t row = int64_t(all.data.size()) / all.count;
  Rng rng{seed};
  std::vector<uint8_t> swap(row);
  for (int64_t i = all.count - 1; i > 0; --i) {
    int64_t j = int64_t(rng.below(uint64_t(i + 1)));
    std::swap_ranges(all.data.begin() + i * row, all.data.begin() + (i + 1) * row,
                     all.data.begin() + j * row);
    if (!all.labels.empty()) std::swap(all.labels[i], all.labels[j]);
  }
}

void write_split(DatasetWriter& writer, const std::string& split, const Examples& all,
                 int64_t first, int64_t count, Progress& progress) {
  int64_t row = writer.example_bytes();
  writer.create_split(split, count, !all.labels.empty());
  // Pieces of about 1 MiB, so that progress moves on large files.
  int64_t step = std::max<int64_t>(1, format::kChunkBytes / row);
  for (int64_t at = 0; at < count; at += step) {
    int64_t n = std::min(step, count - at);
    writer.write(split, at, n, all.data.data() + (first + at) * row);
    progress.advance(n * row);
  }
  if (!all.labels.empty()) writer.write_labels(split, 0, count, all.labels.data() + first);
}

}  // namespace

void convert_examples(const ConvertOptions& o) {
  std::vector<SplitInputs> groups = split_inputs(o);
  std::vector<std::string> sources;
  std::vector<Examples> loaded;
  for (const auto& group : groups) loaded.push_back(load_group(group, sources));
  for (size_t g = 1; g < loaded.size(); ++g) {
    ST_CHECK(loaded[g].shape == loaded[0].shape,
             groups[g].inputs[0] + ": examples of another shape than " + o.inputs[0] + "'s");
    ST_CHECK(loaded[g].labels.empty() == loaded[0].labels.empty(),
             "labels given for some splits but not for others");
  }
  std::vector<std::string> sha256;
  for (const auto& path : sources) sha256.push_back(sha256_file(path));

  int64_t total_bytes = 0;
  for (const auto& all : loaded) total_bytes += int64_t(all.data.size());
  DatasetWriter writer(o.output, loaded[0].shape, o.deflate);
  Progress progress("st-convert " + o.output, total_bytes, stderr, o.quiet);
  if (groups[0].split.empty()) {
    Examples& all = loaded[0];
    if (o.shuffle && all.count > 1) shuffle_examples(all, o.seed);
    std::vector<int64_t> counts = fraction_counts(o, all.count);
    int64_t first = 0;
    for (int s = 0; s < 3; ++s) {
      if (counts[s] > 0) write_split(writer, format::kSplits[s], all, first, counts[s], progress);
      first += counts[s];
    }
  } else {
    for (size_t g = 0; g < groups.size(); ++g) {
      ST_CHECK(loaded[g].count > 0, o.output + ": split '" + groups[g].split + "' would be empty");
      write_split(writer, groups[g].split, loaded[g], 0, loaded[g].count, progress);
    }
  }
  write_common_attributes(writer, o, format::kKindExamples, sources, sha256);
  write_ints_attribute(writer.file(), format::kAttrExampleShape, loaded[0].shape);
  writer.commit();
  progress.finish();
}

}  // namespace st
