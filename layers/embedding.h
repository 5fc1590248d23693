// The input embedding: h0 = x W_e + sum over k of o_k W_k (paper section
// 5.3).  Text and audio have two position tables (row i / l and column
// i % l of a matrix of width l); images three (row, column and channel of
// an example of shape [rows, cols, channels]).
#pragma once

#include <vector>

#include "kernels/backend.h"
#include "layers/config.h"
#include "layers/params.h"

namespace st {

struct Embedding {
  Param token;               // [256, d]
  std::vector<Param> position;  // row, col (, channel)
};

// The position-table indices of every token of `batch` examples, int32
// [batch * n] each, on the backend.
std::vector<Tensor> position_indices(Backend& b, const ModelConfig& config, int64_t batch);

// out [batch * n, d] = token rows + position rows.  tokens: int32, batch * n.
void forward(Backend& b, const Embedding& layer, Tensor& out, const Tensor& tokens,
             const std::vector<Tensor>& positions);
// Table gradients accumulate (scatter-add).
void backward(Backend& b, Embedding& layer, const Tensor& d_out, const Tensor& tokens,
              const std::vector<Tensor>& positions);

}  // namespace st
