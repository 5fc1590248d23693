// Conversion of user files into a byte dataset file (st-convert's work; the
// program itself only parses options).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st {

struct ConvertOptions {
  std::string kind;    // "text" or "raw" (the same: bytes as they are), "idx", "wav"
  std::string output;  // the .h5 file; written as <output>.tmp, then renamed
  // Inputs.  With no valid_inputs, `inputs` are split into train / valid /
  // test by the fractions; otherwise each list makes its own split and the
  // fractions are not used.  Labels (idx only) pair with the image files.
  std::vector<std::string> inputs, labels;
  std::vector<std::string> valid_inputs, valid_labels;
  std::vector<std::string> test_inputs, test_labels;
  double valid_fraction = 0.05, test_fraction = 0;
  std::string separator;    // text/raw: bytes put between consecutive files
  int sample_rate = 16000;  // wav: the rate of the mu-law output
  bool shuffle = false;     // idx: shuffle the examples before a fraction split
  uint64_t seed = 1;        // for the shuffle
  int deflate = 0;          // 0: no compression; 1..9: deflate level
  bool quiet = false;       // no progress lines
};

// Converts; throws st::Error naming the file and the problem on bad input,
// in which case no output file is left behind and an existing one is kept.
void convert(const ConvertOptions& options);

// The options as recorded in the file's converter_options attribute.
std::string describe(const ConvertOptions& options);

// Interprets C escapes (\n \t \r \0 \\ \xHH) in a separator given on a
// command line.
std::string unescape(const std::string& text);

}  // namespace st
