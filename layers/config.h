// The model's configuration: its shape, attention pattern, dropout and
// recomputation, with validation and a (name, value) string form that the
// trainer puts on the command line, in INI files and in checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/attention_pattern.h"

namespace st {

// How the two parts of a factorized pattern combine (paper section 4.3).
enum class AttentionMode { Merged, Interleaved, SplitHeads };

// What the forward pass keeps for the backward pass:
//   none      every activation;
//   attention all but the attention sub-layer's (norm, qkv, attention output,
//             lse), which the backward pass recomputes from the block input;
//   full      only each residual block's input: the backward pass recomputes
//             the whole block before differentiating it.
enum class Recompute { None, Attention, Full };

struct ModelConfig {
  int64_t layers = 2;      // residual blocks, N
  int64_t d_model = 64;
  int64_t heads = 2;
  int64_t d_ff = 256;      // feed-forward width
  bool half_qk = false;    // queries and keys of half the head size
  int64_t n = 64;          // context length (bytes per example)
  Pattern pattern = Pattern::Fixed;
  int64_t stride = 8;      // l
  int64_t summary = 2;     // c (fixed pattern; ignored by the others)
  int64_t slices = 1;      // v: distinct summary slices (fixed pattern; ignored by the others)
  AttentionMode mode = AttentionMode::Merged;
  double dropout = 0.0;
  // Position embeddings: all zero for text and audio (row i / l and column
  // i % l), else an image of rows x cols x channels = n bytes.
  int64_t image_rows = 0, image_cols = 0, image_channels = 0;
  Recompute recompute = Recompute::None;
  uint64_t seed = 1;       // initialisation and dropout masks

  int64_t head_dim_v() const { return d_model / heads; }
  int64_t head_dim_qk() const { return half_qk ? head_dim_v() / 2 : head_dim_v(); }
  bool is_image() const { return image_rows > 0; }
};

// Throws st::Error naming the fields and the rule of the first violation.
void validate(const ModelConfig& config);

// Every field as (name, value) strings, in a fixed order; set_field and
// config_from_fields read them back exactly.
std::vector<std::pair<std::string, std::string>> config_fields(const ModelConfig& config);
// Sets one field from its string form; an unknown name or a malformed value
// throws naming it.  Does not validate the whole (fields arrive one by one).
void set_field(ModelConfig& config, const std::string& name, const std::string& value);
// Defaults overridden by the given fields, then validated.
ModelConfig config_from_fields(const std::vector<std::pair<std::string, std::string>>& fields);

const char* mode_name(AttentionMode mode);
const char* recompute_name(Recompute recompute);

}  // namespace st
