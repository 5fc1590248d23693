#include "layers/embedding.h"

namespace st {

std::vector<Tensor> position_indices(Backend& b, const ModelConfig& c, int64_t batch) {
  // Coordinates of position i, slowest first.
  std::vector<int64_t> dims = {c.n / c.stride, c.stride};
  if (c.is_image()) dims = {c.image_rows, c.image_cols, c.image_channels};
  std::vector<Tensor> result;
  int64_t inner = c.n;  // positions per step of the current coordinate
  for (int64_t dim : dims) {
    inner /= dim;
    Tensor host = Tensor::empty({batch * c.n}, DType::I32, Place::Host);
    for (int64_t t = 0; t < batch * c.n; ++t)
      host.ptr<int32_t>()[t] = int32_t((t % c.n) / inner % dim);
    result.push_back(to_place(host, b.place()));
  }
  return result;
}

void forward(Backend& b, const Embedding& layer, Tensor& out, const Tensor& tokens,
             const std::vector<Tensor>& positions) {
  std::vector<Tensor> indices = {tokens.reshape({tokens.numel()})};
  std::vector<Tensor> tables = {layer.token.value};
  for (size_t k = 0; k < positions.size(); ++k) {
    indices.push_back(positions[k]);
    tables.push_back(layer.position[k].value);
  }
  b.embedding_forward(out, indices, tables);
}

void backward(Backend& b, Embedding& layer, const Tensor& d_out, const Tensor& tokens,
              const std::vector<Tensor>& positions) {
  std::vector<Tensor> indices = {tokens.reshape({tokens.numel()})};
  std::vector<Tensor> grads = {layer.token.grad};
  for (size_t k = 0; k < positions.size(); ++k) {
    indices.push_back(positions[k]);
    grads.push_back(layer.position[k].grad);
  }
  b.embedding_backward(grads, d_out, indices);
}

}  // namespace st
