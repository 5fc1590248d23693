#include "layers/linear.h"

namespace st {

void forward(Backend& b, const Linear& layer, Tensor& out, const Tensor& in) {
  b.linear_forward(out, in, layer.weight.value, layer.bias.value);
}

void backward(Backend& b, Linear& layer, Tensor& d_in, const Tensor& d_out, const Tensor& in) {
  b.linear_backward(d_in, layer.weight.grad, layer.bias.grad, d_out, in, layer.weight.value);
}

}  // namespace st
