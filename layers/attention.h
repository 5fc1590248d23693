// The factorized self-attention layer: a qkv projection, the backend's
// sparse attention, and the output projection W_p.
#pragma once

#include "kernels/backend.h"
#include "layers/config.h"
#include "layers/linear.h"

namespace st {

struct Attention {
  Linear qkv;   // [heads * (2 d_qk + d_v), d]
  Linear proj;  // [d, heads * d_v]
  AttentionSpec spec;  // batch is set per call from the input's rows
};

// The attention of residual block `block` (its part in interleaved mode:
// part 1 on even blocks, part 2 on odd ones).
AttentionSpec attention_spec(const ModelConfig& config, int64_t block);

struct AttentionActs {
  Tensor qkv, out, lse;  // projected queries/keys/values, attention output, row lse
};

// y [T, d] = proj(attention(qkv(in))); allocates acts.
void forward(Backend& b, const Attention& layer, AttentionActs& acts, Tensor& y,
             const Tensor& in);
// d_in is overwritten; parameter gradients accumulate.
void backward(Backend& b, Attention& layer, Tensor& d_in, const Tensor& d_y, const Tensor& in,
              const AttentionActs& acts);

}  // namespace st
