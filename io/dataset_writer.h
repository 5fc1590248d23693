// Writes a byte dataset file (docs/dataset-format.md) safely: everything goes
// to "<path>.tmp", which replaces <path> only in commit().  An error or an
// early exit removes the temporary file, so an existing dataset at <path> is
// never left half-overwritten.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/hdf5_handle.h"

namespace st {

class DatasetWriter {
 public:
  // A stream file when example_shape is empty, else an examples file whose
  // examples hold product(example_shape) bytes.  deflate: 0 (off) to 9.
  // Throws st::Error when the output's folder does not exist.
  DatasetWriter(const std::string& path, std::vector<int64_t> example_shape, int deflate);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // Creates a split of `count` bytes (stream) or examples, with its byte
  // count attribute (and a labels dataset of `count` bytes if asked).
  void create_split(const std::string& split, int64_t count, bool with_labels);
  // Writes items [first, first + count) of a split (bytes or examples).
  void write(const std::string& split, int64_t first, int64_t count, const uint8_t* data);
  void write_labels(const std::string& split, int64_t first, int64_t count, const uint8_t* labels);

  // The file, for the root attributes.
  hid_t file() const { return file_; }
  int64_t example_bytes() const { return example_bytes_; }

  // Closes the file, flushes it to disk and renames it to its final name.
  void commit();

 private:
  H5Handle create_dataset(const std::string& name, int rank, const hsize_t* dims, int64_t row_bytes);
  void write_rows(hid_t dataset, int rank, int64_t first, int64_t count, int64_t row_bytes,
                  const uint8_t* data);
  void close_all();

  std::string path_, temp_path_;
  std::vector<int64_t> example_shape_;
  int64_t example_bytes_ = 0;  // 0 for a stream
  int deflate_;
  H5Handle file_;
  std::map<std::string, H5Handle> datasets_;
  bool committed_ = false;
};

}  // namespace st
