// A fully connected layer, out = in weight^T + bias, on any backend.
#pragma once

#include "kernels/backend.h"
#include "layers/params.h"

namespace st {

struct Linear {
  Param weight;  // [out, in]
  Param bias;    // [out]; empty (value.data == nullptr) when the layer has none
};

void forward(Backend& b, const Linear& layer, Tensor& out, const Tensor& in);
// d_in is overwritten (skipped if empty); weight and bias gradients accumulate.
void backward(Backend& b, Linear& layer, Tensor& d_in, const Tensor& d_out, const Tensor& in);

}  // namespace st
