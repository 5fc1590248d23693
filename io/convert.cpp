#include "io/convert.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "io/convert_internal.h"
#include "io/dataset_format.h"
#include "io/hdf5_attributes.h"

namespace st {

std::string unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    char c = text[++i];
    if (c == 'n') out += '\n';
    else if (c == 't') out += '\t';
    else if (c == 'r') out += '\r';
    else if (c == '0') out += '\0';
    else if (c == 'x' && i + 2 < text.size() && std::isxdigit(text[i + 1]) &&
             std::isxdigit(text[i + 2])) {
      out += char(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else out += c;  // "\\" and anything else: the character itself
  }
  return out;
}

std::string describe(const ConvertOptions& o) {
  std::ostringstream text;
  text << "kind=" << o.kind;
  if (o.valid_inputs.empty())
    text << " valid_fraction=" << o.valid_fraction << " test_fraction=" << o.test_fraction;
  else
    text << " split_by=inputs";
  if (o.kind == "idx") text << " shuffle=" << (o.shuffle ? "yes" : "no") << " seed=" << o.seed;
  if (o.kind == "wav") text << " sample_rate=" << o.sample_rate;
  if (o.kind == "text" || o.kind == "raw") {
    text << " separator_hex=";
    for (unsigned char c : o.separator) text << std::hex << int(c >> 4) << int(c & 15) << std::dec;
  }
  text << " deflate=" << o.deflate;
  return text.str();
}

std::vector<SplitInputs> split_inputs(const ConvertOptions& o) {
  if (o.valid_inputs.empty()) return {{"", o.inputs, o.labels}};
  std::vector<SplitInputs> splits = {{"train", o.inputs, o.labels},
                                     {"valid", o.valid_inputs, o.valid_labels}};
  if (!o.test_inputs.empty()) splits.push_back({"test", o.test_inputs, o.test_labels});
  return splits;
}

std::vector<int64_t> fraction_counts(const ConvertOptions& o, int64_t total) {
  int64_t valid = int64_t(std::floor(double(total) * o.valid_fraction));
  int64_t test = int64_t(std::floor(double(total) * o.test_fraction));
  int64_t train = total - valid - test;
  ST_CHECK(valid > 0 && train > 0 && (o.test_fraction == 0 || test > 0),
           o.output + ": the input (" + std::to_string(total) +
               " items) is too small for the fractions: a split would be empty");
  return {train, valid, test};
}

void write_common_attributes(DatasetWriter& writer, const ConvertOptions& o, const char* kind,
                             const std::vector<std::string>& sources,
                             const std::vector<std::string>& sha256) {
  write_int_attribute(writer.file(), format::kAttrFormatVersion, format::kVersion);
  write_string_attribute(writer.file(), format::kAttrKind, kind);
  write_string_attribute(writer.file(), format::kAttrInputKind, o.kind);
  write_strings_attribute(writer.file(), format::kAttrSourceNames, sources);
  write_strings_attribute(writer.file(), format::kAttrSourceSha256, sha256);
  write_string_attribute(writer.file(), format::kAttrConverterVersion, format::kConverterVersion);
  write_string_attribute(writer.file(), format::kAttrConverterOptions, describe(o));
}

// Checks what can be checked before reading any data, so that a mistake in
// the options fails at once rather than after an hour of hashing.
static void check_options(const ConvertOptions& o) {
  ST_CHECK(o.kind == "text" || o.kind == "raw" || o.kind == "idx" || o.kind == "wav",
           "unknown kind '" + o.kind + "' (text, raw, idx or wav)");
  ST_CHECK(!o.output.empty(), "no output file given");
  ST_CHECK(!o.inputs.empty(), "no input files given");
  ST_CHECK(o.test_inputs.empty() || !o.valid_inputs.empty(),
           "test inputs given without valid inputs: give both, or split by fractions");
  if (o.valid_inputs.empty())
    ST_CHECK(o.valid_fraction > 0 && o.test_fraction >= 0 && o.valid_fraction + o.test_fraction < 1,
             "fractions must satisfy 0 < valid, 0 <= test, valid + test < 1");
  ST_CHECK(o.sample_rate > 0, "the sample rate must be positive");
  if (o.kind != "idx")
    ST_CHECK(o.labels.empty() && o.valid_labels.empty() && o.test_labels.empty(),
             "labels are for idx inputs only");
  std::filesystem::path folder = std::filesystem::path(o.output).parent_path();
  if (folder.empty()) folder = ".";
  ST_CHECK(std::filesystem::is_directory(folder),
           o.output + ": the output folder '" + folder.string() + "' does not exist");
  for (const auto& split : split_inputs(o))
    for (const auto& list : {split.inputs, split.labels})
      for (const auto& path : list) {
        std::ifstream probe(path, std::ios::binary);
        ST_CHECK(probe.good(), path + ": cannot open: " + std::strerror(errno));
        ST_CHECK(!std::filesystem::is_directory(path), path + ": is a folder, not a file");
        std::error_code same_error;
        ST_CHECK(!std::filesystem::equivalent(path, o.output, same_error),
                 path + ": is also the output file");
      }
}

void convert(const ConvertOptions& options) {
  check_options(options);
  if (options.kind == "idx")
    convert_examples(options);
  else
    convert_stream(options);
}

}  // namespace st
