// The feed-forward layer: fc2(gelu(fc1(x))), GELU as x sigmoid(1.702 x).
#pragma once

#include "kernels/backend.h"
#include "layers/linear.h"

namespace st {

struct FeedForward {
  Linear fc1;  // [d_ff, d]
  Linear fc2;  // [d, d_ff]
};

struct FeedForwardActs {
  Tensor hidden, activated;  // fc1's output and its GELU
};

// y [T, d]; allocates acts.
void forward(Backend& b, const FeedForward& layer, FeedForwardActs& acts, Tensor& y,
             const Tensor& in);
// d_in is overwritten; parameter gradients accumulate.
void backward(Backend& b, FeedForward& layer, Tensor& d_in, const Tensor& d_y, const Tensor& in,
              const FeedForwardActs& acts);

}  // namespace st
