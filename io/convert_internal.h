// Pieces shared by the stream (text, raw, wav) and examples (idx) converters.
#pragma once

#include <string>
#include <vector>

#include "io/convert.h"
#include "io/dataset_writer.h"

namespace st {

// One split's inputs (and labels), in order.
struct SplitInputs {
  std::string split;
  std::vector<std::string> inputs, labels;
};

// The splits made from separate inputs (train, valid, test), or one entry
// named "" holding every input when the fractions split them.
std::vector<SplitInputs> split_inputs(const ConvertOptions& options);

// Counts of [train, valid, test] for `total` items split by the fractions;
// throws when train or valid would be empty.
std::vector<int64_t> fraction_counts(const ConvertOptions& options, int64_t total);

// Writes the root attributes every file has (format version, kind, sources
// with their SHA-256, converter version and options).
void write_common_attributes(DatasetWriter& writer, const ConvertOptions& options,
                             const char* kind, const std::vector<std::string>& sources,
                             const std::vector<std::string>& sha256);

void convert_stream(const ConvertOptions& options);
void convert_examples(const ConvertOptions& options);

}  // namespace st
