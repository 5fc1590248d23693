#include "layers/attention.h"

#include "layers/layernorm.h"

namespace st {

AttentionSpec attention_spec(const ModelConfig& c, int64_t block) {
  AttentionSpec s;
  s.pattern = c.pattern;
  switch (c.mode) {
    case AttentionMode::Merged: s.part = AttentionPart::Merged; break;
    case AttentionMode::SplitHeads: s.part = AttentionPart::SplitHeads; break;
    case AttentionMode::Interleaved:
      s.part = block % 2 == 0 ? AttentionPart::Part1 : AttentionPart::Part2;
      break;
  }
  s.n = c.n, s.stride = c.stride, s.summary = c.summary, s.slices = c.slices;
  s.heads = c.heads, s.head_dim_qk = c.head_dim_qk(), s.head_dim_v = c.head_dim_v();
  return s;
}

static AttentionSpec spec_for(const Attention& layer, const Tensor& in) {
  AttentionSpec s = layer.spec;
  ST_CHECK(in.dim(0) % s.n == 0, "attention: " + std::to_string(in.dim(0)) +
                                     " rows are not a whole number of sequences of n = " +
                                     std::to_string(s.n));
  s.batch = in.dim(0) / s.n;
  return s;
}

void forward(Backend& b, const Attention& layer, AttentionActs& acts, Tensor& y,
             const Tensor& in) {
  AttentionSpec s = spec_for(layer, in);
  const int64_t rows = in.dim(0);
  acts.qkv = b.empty({rows, s.qkv_width()}, in.dtype);
  acts.out = b.empty({rows, s.out_width()}, in.dtype);
  acts.lse = b.empty({s.batch, s.heads, s.n}, stats_dtype(in.dtype));
  forward(b, layer.qkv, acts.qkv, in);
  b.attention_forward(acts.out, acts.lse, acts.qkv, s);
  forward(b, layer.proj, y, acts.out);
}

void backward(Backend& b, Attention& layer, Tensor& d_in, const Tensor& d_y, const Tensor& in,
              const AttentionActs& acts) {
  AttentionSpec s = spec_for(layer, in);
  Tensor d_out = b.empty(acts.out.shape, in.dtype);
  backward(b, layer.proj, d_out, d_y, acts.out);
  Tensor d_qkv = b.empty(acts.qkv.shape, in.dtype);
  b.attention_backward(d_qkv, d_out, acts.qkv, acts.out, acts.lse, s);
  backward(b, layer.qkv, d_in, d_qkv, in);
}

}  // namespace st
