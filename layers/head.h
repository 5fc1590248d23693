// The output head of the last stage: a final layer norm, the projection to
// 256 logits (no bias), and softmax cross-entropy reported in bits per byte.
#pragma once

#include "kernels/backend.h"
#include "layers/layernorm.h"
#include "layers/linear.h"

namespace st {

struct Head {
  LayerNorm ln;
  Linear out;  // [256, d], no bias
};

struct HeadActs {
  Tensor in;
  LayerNormActs ln;
  Tensor d_logits;  // empty when no gradient was asked for
  Tensor losses;    // host, each row's loss in nats (evaluation skips rows' scored prefixes)
};

// The mean loss over the rows of `in` in bits per byte.  With grad_scale
// != 0 it also keeps the gradient of grad_scale * (that mean) with respect
// to the logits, for backward.  targets: int32, one per row.
double forward_loss(Backend& b, const Head& head, HeadActs& acts, const Tensor& in,
                    const Tensor& targets, float grad_scale);
// d_in is overwritten with the loss's gradient with respect to in;
// parameter gradients accumulate; frees acts.
void backward(Backend& b, Head& head, HeadActs& acts, Tensor& d_in);

}  // namespace st
