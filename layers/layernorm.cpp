#include "layers/layernorm.h"

namespace st {

DType stats_dtype(DType activations) {
  return activations == DType::F64 ? DType::F64 : DType::F32;
}

void forward(Backend& b, const LayerNorm& layer, LayerNormActs& acts, const Tensor& in) {
  acts.out = b.empty(in.shape, in.dtype);
  acts.mean = b.empty({in.dim(0)}, stats_dtype(in.dtype));
  acts.rstd = b.empty({in.dim(0)}, stats_dtype(in.dtype));
  b.layernorm_forward(acts.out, acts.mean, acts.rstd, in, layer.weight.value, layer.bias.value);
}

void backward(Backend& b, LayerNorm& layer, Tensor& d_in, const Tensor& d_out, const Tensor& in,
              const LayerNormActs& acts) {
  b.layernorm_backward(d_in, layer.weight.grad, layer.bias.grad, d_out, in, acts.mean,
                       acts.rstd, layer.weight.value);
}

}  // namespace st
