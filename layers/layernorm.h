// Layer norm over the model dimension, on any backend.
#pragma once

#include "kernels/backend.h"
#include "layers/params.h"

namespace st {

struct LayerNorm {
  Param weight, bias;  // gamma, beta: [d]
};

// What the backward pass needs besides the input.
struct LayerNormActs {
  Tensor out, mean, rstd;
};

// The dtype of the statistics: fp32, fp64 for fp64 activations.
DType stats_dtype(DType activations);

// Allocates acts (out, mean, rstd) and normalises `in` into acts.out.
void forward(Backend& b, const LayerNorm& layer, LayerNormActs& acts, const Tensor& in);
// d_in += the gradient through the norm; gamma and beta gradients accumulate.
void backward(Backend& b, LayerNorm& layer, Tensor& d_in, const Tensor& d_out, const Tensor& in,
              const LayerNormActs& acts);

}  // namespace st
