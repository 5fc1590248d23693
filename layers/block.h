// The residual block of the paper (pre-activation):
//   a = dropout(attn(norm1(H))),  b = dropout(ff(norm2(H + a))),  H' = H + a + b
// with recomputation: what the forward pass drops (config.h, Recompute), the
// backward pass recomputes with the same operations and the same dropout
// seeds, so the gradients are bit for bit those of a run that kept it all.
#pragma once

#include "kernels/backend.h"
#include "layers/attention.h"
#include "layers/config.h"
#include "layers/feedforward.h"
#include "layers/layernorm.h"

namespace st {

struct Block {
  int64_t index = 0;  // r: the block's number in the whole model
  LayerNorm ln1, ln2;
  Attention attn;
  FeedForward ff;
};

// What one forward pass of a block keeps; empty tensors were dropped.
struct BlockActs {
  Tensor in;                // H, always kept
  LayerNormActs ln1;        // attention sub-layer
  AttentionActs attn;
  Tensor mid;               // H + a
  LayerNormActs ln2;        // feed-forward sub-layer
  FeedForwardActs ff;
};

// Dropout of one forward pass of one block: the drop probability (0 when not
// training) and the two sites' seeds, from (seed, step, block, site).
struct BlockDropout {
  float p = 0;
  uint64_t attn_seed = 0, ff_seed = 0;
};
BlockDropout block_dropout(const ModelConfig& config, uint64_t step, int64_t block,
                           bool training);

// out = H'; acts keeps what `recompute` allows.
void forward(Backend& b, const Block& block, BlockActs& acts, Tensor& out, const Tensor& in,
             const BlockDropout& dropout, Recompute recompute);
// d_stream holds dL/dH' on entry and dL/dH on return (updated in place);
// parameter gradients accumulate.  Recomputes what acts lacks, then frees acts.
void backward(Backend& b, Block& block, BlockActs& acts, Tensor& d_stream,
              const BlockDropout& dropout);

}  // namespace st
