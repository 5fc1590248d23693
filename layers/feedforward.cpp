#include "layers/feedforward.h"

namespace st {

void forward(Backend& b, const FeedForward& layer, FeedForwardActs& acts, Tensor& y,
             const Tensor& in) {
  const Shape hidden{in.dim(0), layer.fc1.weight.value.dim(0)};
  acts.hidden = b.empty(hidden, in.dtype);
  acts.activated = b.empty(hidden, in.dtype);
  forward(b, layer.fc1, acts.hidden, in);
  b.gelu_forward(acts.activated, acts.hidden);
  forward(b, layer.fc2, y, acts.activated);
}

void backward(Backend& b, FeedForward& layer, Tensor& d_in, const Tensor& d_y, const Tensor& in,
              const FeedForwardActs& acts) {
  Tensor d_activated = b.empty(acts.activated.shape, in.dtype);
  backward(b, layer.fc2, d_activated, d_y, acts.activated);
  Tensor d_hidden = b.empty(acts.hidden.shape, in.dtype);
  b.gelu_backward(d_hidden, d_activated, acts.hidden);
  backward(b, layer.fc1, d_in, d_hidden, in);
}

}  // namespace st
