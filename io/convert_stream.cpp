// text, raw and wav inputs: one byte stream, cut into train / valid / test.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/check.h"
#include "io/convert_internal.h"
#include "io/dataset_format.h"
#include "io/hdf5_attributes.h"
#include "io/mulaw.h"
#include "io/progress.h"
#include "io/sha256.h"
#include "io/wav.h"

namespace st {

namespace {

// Takes the stream's bytes in order and writes them, 1 MiB at a time, into
// the split datasets that follow one another along the stream.
class SplitSink {
 public:
  SplitSink(DatasetWriter& writer, std::vector<std::pair<std::string, int64_t>> segments,
            Progress& progress)
      : writer_(writer), segments_(std::move(segments)), progress_(progress) {}

  void append(const uint8_t* data, int64_t count) {
    while (count > 0) {
      int64_t take = std::min<int64_t>(count, format::kChunkBytes - int64_t(buffer_.size()));
      buffer_.insert(buffer_.end(), data, data + take);
      data += take, count -= take;
      if (int64_t(buffer_.size()) == format::kChunkBytes) flush();
    }
  }

  void flush() {
    int64_t begin = offset_, end = offset_ + int64_t(buffer_.size());
    int64_t segment_start = 0;
    for (const auto& [split, length] : segments_) {
      int64_t lo = std::max(begin, segment_start), hi = std::min(end, segment_start + length);
      if (lo < hi) writer_.write(split, lo - segment_start, hi - lo, buffer_.data() + (lo - begin));
      segment_start += length;
    }
    progress_.advance(end - begin);
    offset_ = end;
    buffer_.clear();
  }

 private:
  DatasetWriter& writer_;
  std::vector<std::pair<std::string, int64_t>> segments_;
  Progress& progress_;
  std::vector<uint8_t> buffer_;
  int64_t offset_ = 0;  // stream position of buffer_[0]
};

// The bytes one input contributes to the stream.
int64_t stream_length(const ConvertOptions& o, const std::string& path) {
  if (o.kind == "wav") {
    WavAudio audio = read_wav(path);  // a full parse: bad files fail before any writing
    return resampled_length(int64_t(audio.mono.size()), audio.sample_rate, o.sample_rate);
  }
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  ST_CHECK(!error, path + ": cannot read its size: " + error.message());
  return int64_t(size);
}

// Appends one file's bytes as they are, hashing them on the way.
std::string append_file(const std::string& path, int64_t expected, SplitSink& sink) {
  FILE* file = std::fopen(path.c_str(), "rb");
  ST_CHECK(file != nullptr, path + ": cannot open: " + std::strerror(errno));
  Sha256 hash;
  std::vector<uint8_t> block(format::kChunkBytes);
  int64_t total = 0;
  size_t got;
  while ((got = std::fread(block.data(), 1, block.size(), file)) > 0) {
    hash.update(block.data(), got);
    sink.append(block.data(), int64_t(got));
    total += int64_t(got);
  }
  bool failed = std::ferror(file);
  std::fclose(file);
  ST_CHECK(!failed, path + ": read error");
  ST_CHECK(total == expected, path + ": changed while being converted (" + std::to_string(expected) +
                                  " bytes expected, " + std::to_string(total) + " read)");
  return hash.hex();
}

// Appends one WAV file as 8-bit mu-law at the chosen rate.
std::string append_wav(const ConvertOptions& o, const std::string& path, SplitSink& sink) {
  std::string sha = sha256_file(path);
  WavAudio audio = read_wav(path);
  std::vector<float> samples = resample(audio.mono, audio.sample_rate, o.sample_rate);
  std::vector<uint8_t> bytes(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) bytes[i] = mulaw_encode(samples[i]);
  sink.append(bytes.data(), int64_t(bytes.size()));
  return sha;
}

}  // namespace

void convert_stream(const ConvertOptions& o) {
  std::vector<SplitInputs> groups = split_inputs(o);
  const std::string separator = o.kind == "wav" ? "" : o.separator;
  // First pass: every input's length, so that the splits can be sized.
  std::vector<std::vector<int64_t>> lengths;
  std::vector<std::pair<std::string, int64_t>> segments;
  for (const auto& group : groups) {
    int64_t total = 0;
    lengths.emplace_back();
    for (size_t i = 0; i < group.inputs.size(); ++i) {
      lengths.back().push_back(stream_length(o, group.inputs[i]));
      total += lengths.back().back() + (i > 0 ? int64_t(separator.size()) : 0);
    }
    if (!group.split.empty()) {
      ST_CHECK(total > 0, o.output + ": split '" + group.split + "' would be empty (its inputs hold no bytes)");
      segments.emplace_back(group.split, total);
      continue;
    }
    std::vector<int64_t> counts = fraction_counts(o, total);
    for (int s = 0; s < 3; ++s)
      if (counts[s] > 0) segments.emplace_back(format::kSplits[s], counts[s]);
  }
  int64_t grand_total = 0;
  for (const auto& segment : segments) grand_total += segment.second;

  DatasetWriter writer(o.output, {}, o.deflate);
  for (const auto& [split, length] : segments) writer.create_split(split, length, false);
  Progress progress("st-convert " + o.output, grand_total, stderr, o.quiet);
  SplitSink sink(writer, segments, progress);
  std::vector<std::string> sources, sha256;
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < groups[g].inputs.size(); ++i) {
      const std::string& path = groups[g].inputs[i];
      if (i > 0) sink.append(reinterpret_cast<const uint8_t*>(separator.data()), int64_t(separator.size()));
      sources.push_back(path);
      sha256.push_back(o.kind == "wav" ? append_wav(o, path, sink) : append_file(path, lengths[g][i], sink));
    }
  sink.flush();
  write_common_attributes(writer, o, format::kKindStream, sources, sha256);
  if (o.kind == "wav") {
    write_int_attribute(writer.file(), format::kAttrSampleRate, o.sample_rate);
    write_string_attribute(writer.file(), format::kAttrEncoding, "mu-law 8-bit, mu=255, monotonic (WaveNet)");
  }
  writer.commit();
  progress.finish();
}

}  // namespace st
