// Names and constants of the dataset layout (docs/dataset-format.md), shared
// by the writer and the reader so that the two cannot drift apart.
#pragma once

#include <cstdint>

namespace st::format {

// Raised whenever the layout changes in a way an older reader cannot read.
constexpr int kVersion = 1;
constexpr const char* kConverterVersion = "st-convert 1.0";

// Splits, as datasets at the root of the file.  Labels of an examples
// dataset go to "<split>_labels".
constexpr const char* kSplits[] = {"train", "valid", "test"};
constexpr const char* kLabelsSuffix = "_labels";

// Chunks hold about this many bytes: large enough that HDF5's per-chunk
// bookkeeping is negligible, small enough that a random window of 16 KiB
// read from a deflated file inflates little beyond it.
constexpr int64_t kChunkBytes = 1 << 20;

// Root attributes.
constexpr const char* kAttrFormatVersion = "format_version";
constexpr const char* kAttrKind = "kind";  // "stream" or "examples"
constexpr const char* kAttrExampleShape = "example_shape";
constexpr const char* kAttrInputKind = "input_kind";
constexpr const char* kAttrSourceNames = "source_names";
constexpr const char* kAttrSourceSha256 = "source_sha256";
constexpr const char* kAttrConverterVersion = "converter_version";
constexpr const char* kAttrConverterOptions = "converter_options";
constexpr const char* kAttrSampleRate = "sample_rate";
constexpr const char* kAttrEncoding = "encoding";
// Attributes of each split dataset.
constexpr const char* kAttrByteCount = "byte_count";
constexpr const char* kAttrExampleCount = "example_count";

constexpr const char* kKindStream = "stream";
constexpr const char* kKindExamples = "examples";

}  // namespace st::format
