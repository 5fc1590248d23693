// Opening one split of a dataset file for reading, with every check a
// trainer needs before it spends hours on the data: the file is HDF5, its
// format version is known, the split exists, holds unsigned bytes of the
// right rank, and is at least one context window long.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/hdf5_handle.h"

namespace st {

struct SplitInfo {
  std::string path, split;
  bool examples = false;              // an examples dataset, else a stream
  int64_t items = 0;                  // bytes of a stream, or examples
  int64_t item_bytes = 1;             // 1 for a stream, else one example's bytes
  std::vector<int64_t> example_shape; // examples only
  int64_t chunk_items = 0;            // items per HDF5 chunk
  bool compressed = false;            // chunks pass through a filter (deflate)
};

struct OpenSplit {
  H5Handle file, dataset;
  SplitInfo info;
};

// Opens and validates.  window: the bytes one training item of a stream
// needs (n + 1); the split must hold at least that many (ignored, pass 0,
// for an examples dataset).  random_access: sizes HDF5's chunk cache for
// scattered reads (no cache for uncompressed chunks, so that a 16 KiB window
// reads 16 KiB, not its whole 1 MiB chunk) rather than for reads in order
// (a cache holding the chunks one item spans).
// Throws st::Error whose message names the file and the problem.
OpenSplit open_split(const std::string& path, const std::string& split, int64_t window,
                     bool random_access);

// The split datasets a file holds ("train", "valid", "test" that exist).
std::vector<std::string> list_splits(hid_t file);

}  // namespace st
