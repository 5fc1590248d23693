// IDX files, as MNIST and Fashion-MNIST ship them, gzip-compressed or not.
//
// The format: two zero bytes, a type code (0x08 for unsigned bytes, the only
// one a byte dataset can hold), the number of dimensions, then each dimension
// as a big-endian 32-bit count, then the data, row-major.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st {

struct IdxArray {
  std::vector<int64_t> dims;  // dims[0] counts the examples
  std::vector<uint8_t> data;  // product(dims) bytes
};

// Reads a whole IDX file (zlib reads plain files and gzip files alike).
// Throws st::Error naming the file for: a missing or unreadable file, a wrong
// magic number or type, a truncated or corrupt gzip stream, and data shorter
// or longer than the header says.
IdxArray read_idx(const std::string& path);

// The shape of one example: rows x cols x channels.  A 3-D file (count,
// rows, cols) holds one channel; a 4-D file names its channels; a 2-D file
// (count, features) is one row of features.
std::vector<int64_t> idx_example_shape(const IdxArray& array);

}  // namespace st
