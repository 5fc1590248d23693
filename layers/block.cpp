#include "layers/block.h"

#include "kernels/dropout_hash.h"

namespace st {

BlockDropout block_dropout(const ModelConfig& config, uint64_t step, int64_t block,
                           bool training) {
  BlockDropout d;
  d.p = training ? float(config.dropout) : 0.0f;
  d.attn_seed = dropout_seed(config.seed, step, uint64_t(block), 0);
  d.ff_seed = dropout_seed(config.seed, step, uint64_t(block), 1);
  return d;
}

// The two sub-layers, shared by the forward pass and recomputation so that
// both run exactly the same operations.
static void attention_sublayer(Backend& b, const Block& block, BlockActs& acts, Tensor& y) {
  forward(b, block.ln1, acts.ln1, acts.in);
  forward(b, block.attn, acts.attn, y, acts.ln1.out);
}

static void feedforward_sublayer(Backend& b, const Block& block, BlockActs& acts, Tensor& y) {
  forward(b, block.ln2, acts.ln2, acts.mid);
  forward(b, block.ff, acts.ff, y, acts.ln2.out);
}

void forward(Backend& b, const Block& block, BlockActs& acts, Tensor& out, const Tensor& in,
             const BlockDropout& dropout, Recompute recompute) {
  acts = BlockActs{};
  acts.in = in;
  Tensor y = b.empty(in.shape, in.dtype);
  attention_sublayer(b, block, acts, y);
  acts.mid = b.empty(in.shape, in.dtype);
  b.dropout_residual(acts.mid, in, y, dropout.p, dropout.attn_seed);
  feedforward_sublayer(b, block, acts, y);
  b.dropout_residual(out, acts.mid, y, dropout.p, dropout.ff_seed);
  if (recompute != Recompute::None) acts.ln1 = {}, acts.attn = {};
  if (recompute == Recompute::Full) acts.mid = {}, acts.ln2 = {}, acts.ff = {};
}

void backward(Backend& b, Block& block, BlockActs& acts, Tensor& d_stream,
              const BlockDropout& dropout) {
  const Tensor& in = acts.in;
  if (!acts.attn.qkv.data || !acts.mid.data) {
    Tensor y = b.empty(in.shape, in.dtype);
    attention_sublayer(b, block, acts, y);
    if (!acts.mid.data) {
      acts.mid = b.empty(in.shape, in.dtype);
      b.dropout_residual(acts.mid, in, y, dropout.p, dropout.attn_seed);
    }
  }
  if (!acts.ff.hidden.data) {
    Tensor y = b.empty(in.shape, in.dtype);
    feedforward_sublayer(b, block, acts, y);
  }
  // H' = mid + dropout(ff(norm2(mid))): mid's gradient is the stream's plus
  // the path through the feed-forward sub-layer.
  Tensor d_y = b.empty(in.shape, in.dtype), d_norm = b.empty(in.shape, in.dtype);
  b.dropout_backward(d_y, d_stream, dropout.p, dropout.ff_seed);
  backward(b, block.ff, d_norm, d_y, acts.ln2.out, acts.ff);
  backward(b, block.ln2, d_stream, d_norm, acts.mid, acts.ln2);
  // mid = H + dropout(attn(norm1(H))): likewise for H.
  b.dropout_backward(d_y, d_stream, dropout.p, dropout.attn_seed);
  backward(b, block.attn, d_norm, d_y, acts.ln1.out, acts.attn);
  backward(b, block.ln1, d_stream, d_norm, in, acts.ln1);
  acts = BlockActs{};
}

}  // namespace st
