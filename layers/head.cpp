#include "layers/head.h"

#include <cmath>

namespace st {

double forward_loss(Backend& b, const Head& head, HeadActs& acts, const Tensor& in,
                    const Tensor& targets, float grad_scale) {
  const int64_t rows = in.dim(0);
  ST_CHECK(targets.dtype == DType::I32 && targets.numel() == rows,
           "loss: targets must be int32 with one per token (" + std::to_string(rows) + ")");
  acts = HeadActs{};
  acts.in = in;
  forward(b, head.ln, acts.ln, in);
  Tensor logits = b.empty({rows, head.out.weight.value.dim(0)}, in.dtype);
  forward(b, head.out, logits, acts.ln.out);
  Tensor losses = b.empty({rows}, stats_dtype(in.dtype));
  // Bits, not nats: the gradient of the mean of loss / ln 2 over the rows.
  const double to_bits = 1.0 / std::log(2.0);
  if (grad_scale != 0.0f) acts.d_logits = logits;  // overwritten in place by the gradient
  b.softmax_cross_entropy(losses, acts.d_logits, logits, targets.reshape({rows}),
                          float(grad_scale * to_bits / double(rows)));
  Tensor host = to_place(losses, Place::Host);
  acts.losses = host;
  double sum = 0;
  for (int64_t t = 0; t < rows; ++t)
    sum += host.dtype == DType::F64 ? host.ptr<double>()[t] : double(host.ptr<float>()[t]);
  return sum / double(rows) * to_bits;
}

void backward(Backend& b, Head& head, HeadActs& acts, Tensor& d_in) {
  ST_CHECK(acts.d_logits.data, "loss backward without a gradient (forward_loss had grad_scale 0)");
  Tensor d_norm = b.empty(acts.in.shape, acts.in.dtype);
  backward(b, head.out, d_norm, acts.d_logits, acts.ln.out);
  b.fill(d_in, 0.0f);
  backward(b, head.ln, d_in, d_norm, acts.in, acts.ln);
  acts = HeadActs{};
}

}  // namespace st
