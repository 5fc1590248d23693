// Training checkpoints: assembling one file from every pipeline stage, and
// restoring a rank's stage from one, under any pipeline x data-parallel
// layout.  The layout of the file is docs/checkpoint-format.md; the bytes
// are written by io/checkpoint_file (temporary name, flush, rename).
//
//   // every rank of replica 0 calls it (the others return at once):
//   save_checkpoint(dir, keep, step, model, m, v, partition, ctx, attributes);
//   // every rank, when resuming:
//   std::optional<LoadedCheckpoint> c = load_newest_checkpoint(dir);
//   check_compatible(config, c->data.attributes, c->path);
//   restore_stage(c->data, model, m, v);
//
// Files are named DIR/step-00001000.h5; the newest `keep` are kept.  Every
// rank reads the whole file and picks its stage's tensors by name, which is
// what lets a run continue under another layout.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "comm/context.h"
#include "io/checkpoint_file.h"
#include "layers/model.h"
#include "runtime/partition.h"

namespace st {

// Attribute names (all values are strings).
constexpr const char* kModelPrefix = "model.";  // + each config_fields() name
constexpr const char* kTrainPrefix = "train.";  // + each training option's name

std::string checkpoint_name(int64_t step);  // "step-00001000.h5"

// Gathers params, Adam's m and v of every stage of replica 0 on world rank 0,
// which writes DIR/step-<step>.h5 with `attributes` plus the model's
// configuration, then deletes all but the newest `keep` checkpoints.  Other
// replicas do nothing.  A failed write throws (the older files stay).
// Returns the path written (on world rank 0; empty elsewhere).
std::string save_checkpoint(const std::string& dir, int keep, int64_t step, const Model& model,
                            const Tensor& m, const Tensor& v, const Partition& partition,
                            const DistributedContext& ctx,
                            const std::map<std::string, std::string>& attributes);

// The complete checkpoints in dir, newest first (a ".tmp" left by a kill is
// not one).
std::vector<std::string> list_checkpoints(const std::string& dir);

struct LoadedCheckpoint {
  std::string path;
  CheckpointData data;  // params/, optimizer/m/, optimizer/v/ and the attributes
};

// Reads one checkpoint with its tensors.
LoadedCheckpoint load_checkpoint(const std::string& path);
// The newest checkpoint in dir that reads; one that does not is skipped with
// a warning naming it and the problem.  None when dir holds no readable one.
std::optional<LoadedCheckpoint> load_newest_checkpoint(const std::string& dir);

// The model configuration a checkpoint was written with.
ModelConfig checkpoint_model_config(const CheckpointData& data, const std::string& path);
// Throws, naming every differing field with both values, when the
// checkpoint's model has another shape than `config` (fields that do not
// change the parameters, such as dropout, may differ: they are returned, as
// "name: checkpoint -> now" lines, for the caller to report).
std::vector<std::string> check_compatible(const ModelConfig& config, const CheckpointData& data,
                                          const std::string& path);

// Copies the stage's parameters (and, when m and v are not empty, Adam's
// moments) out of the checkpoint by name into the model's flat buffers;
// calls model.sync_weights().  A missing tensor or another shape throws.
void restore_stage(const CheckpointData& data, Model& model, Tensor& m, Tensor& v);

}  // namespace st
