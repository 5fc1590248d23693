// The checkpoint file: named fp32 arrays and string attributes in HDF5.
// What goes in it (parameter names, optimizer moments, the step, the
// configuration, cursors) is the trainer's business: docs/checkpoint-format.md.
//
// Writing goes to "<path>.tmp", is flushed, then renamed over <path>: a kill
// at any moment leaves the previous checkpoint intact and no partial file
// under a checkpoint's name.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace st {

struct NamedArray {
  std::string name;  // HDF5 path inside the file, e.g. "params/blocks.3.attn.qkv.weight"
  std::vector<int64_t> shape;
  std::vector<float> values;
};

struct CheckpointData {
  std::map<std::string, std::string> attributes;  // on the root group
  std::vector<NamedArray> arrays;
};

// The format version written in the "checkpoint_format" attribute.
constexpr int64_t kCheckpointFormat = 1;

void write_checkpoint_file(const std::string& path, const CheckpointData& data);
// Reads every array directly inside the given groups (e.g. "params",
// "optimizer/m") and every root attribute.  Throws st::Error naming the file
// when it is not HDF5, not a checkpoint, or of an unknown format version.
CheckpointData read_checkpoint_file(const std::string& path,
                                    const std::vector<std::string>& groups);

}  // namespace st
