// Each layer on the CPU backend in fp64: the attention layer against dense
// attention with an explicit mask built here from the formulas of
// docs/attention-patterns.md, and every layer's backward against central
// finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "layers/attention.h"
#include "layers/block.h"
#include "layers/embedding.h"
#include "layers/feedforward.h"
#include "layers/head.h"
#include "layers/layernorm.h"
#include "tests/layers/helpers.h"

using namespace st;
using namespace st::test;

namespace {

// ---- the contract, written out independently of kernels/ ------------------
bool in_part1(const ModelConfig& c, int64_t i, int64_t j) {
  if (c.pattern == Pattern::Strided) return j <= i && i - j < c.stride;
  return j <= i && j / c.stride == i / c.stride;  // fixed: same block
}

bool in_part2(const ModelConfig& c, int64_t h, int64_t i, int64_t j) {
  if (j > i) return false;
  if (c.pattern == Pattern::Strided) return (i - j) % c.stride == 0;
  int64_t s = h % c.slices, cell = j % c.stride;
  return c.stride - (s + 1) * c.summary <= cell && cell < c.stride - s * c.summary;
}

bool allowed(const ModelConfig& c, int64_t block, int64_t h, int64_t i, int64_t j) {
  if (c.pattern == Pattern::Dense) return j <= i;
  switch (c.mode) {
    case AttentionMode::Merged: return in_part1(c, i, j) || in_part2(c, h, i, j);
    case AttentionMode::Interleaved:
      return block % 2 == 0 ? in_part1(c, i, j) : in_part2(c, h, i, j);
    case AttentionMode::SplitHeads:
      return h < c.heads / 2 ? in_part1(c, i, j) : in_part2(c, h, i, j);
  }
  return false;
}

// y = in W^T + bias, by the definition.
Tensor dense_linear(const Tensor& in, const Param& w, const Param& b) {
  int64_t rows = in.dim(0), k = in.dim(1), n = w.value.dim(0);
  Tensor out = zeros64({rows, n});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < n; ++o) {
      double s = b.value.ptr<double>()[o];
      for (int64_t x = 0; x < k; ++x)
        s += in.ptr<double>()[r * k + x] * w.value.ptr<double>()[o * k + x];
      out.ptr<double>()[r * n + o] = s;
    }
  return out;
}

// The attention layer as dense masked attention; counts the empty rows.
Tensor dense_attention_layer(const ModelConfig& c, int64_t block, const Attention& layer,
                             const Tensor& in, int64_t* empty_rows) {
  const int64_t H = c.heads, dqk = c.head_dim_qk(), dv = c.head_dim_v(), n = c.n;
  const int64_t batch = in.dim(0) / n, W = H * (2 * dqk + dv);
  Tensor qkv = dense_linear(in, layer.qkv.weight, layer.qkv.bias);
  Tensor att = zeros64({batch * n, H * dv});
  const double* x = qkv.ptr<double>();
  *empty_rows = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> score(n, -INFINITY);
        double max = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          if (!allowed(c, block, h, i, j)) continue;
          double s = 0;
          for (int64_t d = 0; d < dqk; ++d)
            s += x[(b * n + i) * W + h * dqk + d] * x[(b * n + j) * W + H * dqk + h * dqk + d];
          score[j] = s / std::sqrt(double(dqk));
          max = std::max(max, score[j]);
        }
        if (max == -INFINITY) {
          ++*empty_rows;
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < n; ++j) sum += std::exp(score[j] - max);
        for (int64_t j = 0; j < n; ++j) {
          double p = std::exp(score[j] - max) / sum;
          for (int64_t d = 0; d < dv; ++d)
            att.ptr<double>()[(b * n + i) * H * dv + h * dv + d] +=
                p * x[(b * n + j) * W + 2 * H * dqk + h * dv + d];
        }
      }
  return dense_linear(att, layer.proj.weight, layer.proj.bias);
}

Attention random_attention(const ModelConfig& c, int64_t block, uint64_t seed) {
  const int64_t d = c.d_model, W = c.heads * (2 * c.head_dim_qk() + c.head_dim_v());
  Attention a;
  a.qkv = Linear{random_param({W, d}, seed), random_param({W}, seed + 1)};
  a.proj = Linear{random_param({d, c.heads * c.head_dim_v()}, seed + 2), random_param({d}, seed + 3)};
  a.spec = attention_spec(c, block);
  return a;
}

std::string describe(const ModelConfig& c, int64_t block) {
  return std::string(pattern_name(c.pattern)) + "/" + mode_name(c.mode) + " block " +
         std::to_string(block) + " n=" + std::to_string(c.n) + " l=" + std::to_string(c.stride) +
         " c=" + std::to_string(c.summary) + " v=" + std::to_string(c.slices) +
         " heads=" + std::to_string(c.heads) + (c.half_qk ? " half_qk" : "");
}

std::vector<ModelConfig> attention_configs() {
  struct Shape5 { int64_t n, l, c, v, heads; };
  std::vector<ModelConfig> all;
  for (Shape5 s : {Shape5{24, 4, 1, 1, 2}, Shape5{32, 8, 2, 2, 4}, Shape5{16, 4, 2, 2, 2},
                   Shape5{12, 3, 1, 3, 4}})
    for (Pattern p : {Pattern::Dense, Pattern::Strided, Pattern::Fixed})
      for (AttentionMode m :
           {AttentionMode::Merged, AttentionMode::Interleaved, AttentionMode::SplitHeads})
        for (bool half : {false, true}) {
          if (p == Pattern::Dense && m != AttentionMode::Merged) continue;
          ModelConfig c;
          c.pattern = p, c.mode = m, c.half_qk = half;
          c.n = s.n, c.stride = s.l, c.summary = s.c, c.slices = s.v, c.heads = s.heads;
          c.d_model = 4 * s.heads;
          validate(c);
          all.push_back(c);
        }
  return all;
}

}  // namespace

TEST(AttentionLayer, SparseEqualsDenseMaskedAttention) {
  auto cpu = make_cpu_backend();
  uint64_t seed = 1;
  int64_t total_empty = 0;
  ASSERT_GT(attention_configs().size(), 50u);
  for (const ModelConfig& c : attention_configs())
    for (int64_t block : {0, 1}) {
      Attention layer = random_attention(c, block, seed);
      Tensor in = random64({2 * c.n, c.d_model}, seed + 10);
      seed += 20;
      Tensor y = random64({2 * c.n, c.d_model}, seed);  // poison
      AttentionActs acts;
      forward(*cpu, layer, acts, y, in);
      int64_t empty_rows = 0;
      Tensor expect = dense_attention_layer(c, block, layer, in, &empty_rows);
      total_empty += empty_rows;
      for (int64_t i = 0; i < y.numel(); ++i) {
        ASSERT_FALSE(std::isnan(y.ptr<double>()[i])) << describe(c, block);
        ASSERT_NEAR(y.ptr<double>()[i], expect.ptr<double>()[i], 1e-11)
            << describe(c, block) << " element " << i;
      }
    }
  // Part 2 of fixed has no keys in the first block: those rows were covered.
  EXPECT_GT(total_empty, 0);
}

TEST(AttentionLayer, BackwardMatchesFiniteDifferences) {
  auto cpu = make_cpu_backend();
  uint64_t seed = 500;
  for (const ModelConfig& c : attention_configs()) {
    if (c.n != 16 || c.pattern == Pattern::Dense) continue;  // one shape keeps it quick
    for (int64_t block : {0, 1}) {
      if (block == 1 && c.mode != AttentionMode::Interleaved) continue;
      Attention layer = random_attention(c, block, seed);
      Tensor in = random64({2 * c.n, c.d_model}, seed + 10), w = random64({2 * c.n, c.d_model}, seed + 11);
      seed += 20;
      AttentionActs acts;
      Tensor y = zeros64(in.shape), d_in = random64(in.shape, 3);  // poison: overwritten
      forward(*cpu, layer, acts, y, in);
      backward(*cpu, layer, d_in, w, in, acts);
      auto loss = [&] {
        AttentionActs a;
        forward(*cpu, layer, a, y, in);
        return weighted_sum(w, y);
      };
      std::string what = describe(c, block);
      EXPECT_GT(check_gradient(what + " d_in", in, d_in, loss, spread(in.numel(), 40)), 10);
      check_gradient(what + " qkv.weight", layer.qkv.weight.value, layer.qkv.weight.grad, loss,
                     spread(layer.qkv.weight.value.numel(), 40));
      check_gradient(what + " qkv.bias", layer.qkv.bias.value, layer.qkv.bias.grad, loss);
      check_gradient(what + " proj.weight", layer.proj.weight.value, layer.proj.weight.grad,
                     loss, spread(layer.proj.weight.value.numel(), 30));
      check_gradient(what + " proj.bias", layer.proj.bias.value, layer.proj.bias.grad, loss);
    }
  }
}

TEST(Layers, LayerNormBackwardMatchesFiniteDifferences) {
  auto cpu = make_cpu_backend();
  LayerNorm ln{random_param({12}, 1, 0.5, 1.0), random_param({12}, 2)};
  Tensor in = random64({10, 12}, 3, 2.0), w = random64({10, 12}, 4);
  LayerNormActs acts;
  forward(*cpu, ln, acts, in);
  Tensor d_in = zeros64(in.shape);
  backward(*cpu, ln, d_in, w, in, acts);
  auto loss = [&] {
    LayerNormActs a;
    forward(*cpu, ln, a, in);
    return weighted_sum(w, a.out);
  };
  EXPECT_GT(check_gradient("d_in", in, d_in, loss), 60);
  EXPECT_GT(check_gradient("weight", ln.weight.value, ln.weight.grad, loss), 6);
  EXPECT_GT(check_gradient("bias", ln.bias.value, ln.bias.grad, loss), 6);
}

TEST(Layers, FeedForwardBackwardMatchesFiniteDifferences) {
  auto cpu = make_cpu_backend();
  FeedForward ff{Linear{random_param({20, 8}, 1), random_param({20}, 2)},
                 Linear{random_param({8, 20}, 3), random_param({8}, 4)}};
  Tensor in = random64({6, 8}, 5, 2.0), w = random64({6, 8}, 6), y = zeros64({6, 8});
  FeedForwardActs acts;
  forward(*cpu, ff, acts, y, in);
  Tensor d_in = random64(in.shape, 7);  // poison: overwritten
  backward(*cpu, ff, d_in, w, in, acts);
  auto loss = [&] {
    FeedForwardActs a;
    forward(*cpu, ff, a, y, in);
    return weighted_sum(w, y);
  };
  EXPECT_GT(check_gradient("d_in", in, d_in, loss), 40);
  EXPECT_GT(check_gradient("fc1.weight", ff.fc1.weight.value, ff.fc1.weight.grad, loss), 100);
  EXPECT_GT(check_gradient("fc1.bias", ff.fc1.bias.value, ff.fc1.bias.grad, loss), 15);
  EXPECT_GT(check_gradient("fc2.weight", ff.fc2.weight.value, ff.fc2.weight.grad, loss), 100);
  EXPECT_GT(check_gradient("fc2.bias", ff.fc2.bias.value, ff.fc2.bias.grad, loss), 6);
}

TEST(Layers, EmbeddingBackwardMatchesFiniteDifferencesForTextAndImages) {
  auto cpu = make_cpu_backend();
  for (bool image : {false, true}) {
    ModelConfig c;
    c.d_model = 6, c.n = 12, c.stride = 4;
    if (image) c.image_rows = 2, c.image_cols = 3, c.image_channels = 2;
    validate(c);
    const int64_t batch = 2;
    std::vector<Tensor> positions = position_indices(*cpu, c, batch);
    ASSERT_EQ(positions.size(), image ? 3u : 2u);
    // Position 7 of an example: text row 7/4 = 1, column 7%4 = 3; image
    // (row, col, channel) = (1, 0, 1) in a 2 x 3 x 2 example.
    std::vector<int32_t> expect7 = image ? std::vector<int32_t>{1, 0, 1} : std::vector<int32_t>{1, 3};
    for (size_t k = 0; k < positions.size(); ++k) {
      EXPECT_EQ(positions[k].ptr<int32_t>()[7], expect7[k]);
      EXPECT_EQ(positions[k].ptr<int32_t>()[c.n + 7], expect7[k]);  // second example
    }
    Embedding e;
    e.token = random_param({256, c.d_model}, 1);
    std::vector<int64_t> sizes = image ? std::vector<int64_t>{2, 3, 2} : std::vector<int64_t>{3, 4};
    for (size_t k = 0; k < sizes.size(); ++k) e.position.push_back(random_param({sizes[k], c.d_model}, 2 + k));
    Tensor tokens = random_bytes({batch, c.n}, 9);
    tokens.ptr<int32_t>()[5] = tokens.ptr<int32_t>()[0];  // a row used twice
    Tensor out = zeros64({batch * c.n, c.d_model}), w = random64(out.shape, 10);
    backward(*cpu, e, w, tokens, positions);
    auto loss = [&] {
      forward(*cpu, e, out, tokens, positions);
      return weighted_sum(w, out);
    };
    std::vector<int64_t> used;  // elements of the rows the tokens select
    for (int64_t t = 0; t < 8; ++t) used.push_back(tokens.ptr<int32_t>()[t] * c.d_model + t % c.d_model);
    used.push_back(tokens.ptr<int32_t>()[0] * c.d_model);  // the row used twice
    EXPECT_GT(check_gradient("token", e.token.value, e.token.grad, loss, used), 6);
    for (size_t k = 0; k < sizes.size(); ++k)
      EXPECT_GT(check_gradient("position " + std::to_string(k), e.position[k].value,
                               e.position[k].grad, loss),
                int(sizes[k] * c.d_model / 2));
  }
}

TEST(Layers, HeadLossIsBitsPerByteAndDifferentiates) {
  auto cpu = make_cpu_backend();
  Head head{LayerNorm{random_param({8}, 1, 0.5, 1.0), random_param({8}, 2)},
            Linear{random_param({256, 8}, 3), Param{}}};
  Tensor in = random64({6, 8}, 4, 2.0), targets = random_bytes({6}, 5);
  HeadActs acts;
  const float grad_scale = 3.0f;
  double loss0 = forward_loss(*cpu, head, acts, in, targets, grad_scale);
  // With zero logits every byte costs exactly 8 bits.
  {
    Head zero{head.ln, Linear{Param{zeros64({256, 8}), zeros64({256, 8})}, Param{}}};
    HeadActs a;
    EXPECT_NEAR(forward_loss(*cpu, zero, a, in, targets, 0.0f), 8.0, 1e-12);
  }
  Tensor d_in = random64(in.shape, 6);  // poison: overwritten
  backward(*cpu, head, acts, d_in);
  auto loss = [&] {
    HeadActs a;
    return grad_scale * forward_loss(*cpu, head, a, in, targets, 0.0f);
  };
  EXPECT_NEAR(loss(), grad_scale * loss0, 1e-12);
  EXPECT_GT(check_gradient("d_in", in, d_in, loss), 30);
  EXPECT_GT(check_gradient("ln.weight", head.ln.weight.value, head.ln.weight.grad, loss), 5);
  EXPECT_GT(check_gradient("ln.bias", head.ln.bias.value, head.ln.bias.grad, loss), 5);
  check_gradient("out.weight", head.out.weight.value, head.out.weight.grad, loss,
                 spread(256 * 8, 100));
  // The target rows of the output weight carry gradient.
  std::vector<int64_t> target_rows;
  for (int64_t t = 0; t < 6; ++t) target_rows.push_back(targets.ptr<int32_t>()[t] * 8 + t);
  EXPECT_GT(check_gradient("out.weight rows", head.out.weight.value, head.out.weight.grad, loss,
                           target_rows), 4);
}

TEST(Layers, BlockBackwardMatchesFiniteDifferencesInEveryRecomputeMode) {
  auto cpu = make_cpu_backend();
  ModelConfig c;
  c.d_model = 8, c.heads = 2, c.d_ff = 12, c.n = 16, c.stride = 4, c.summary = 2;
  c.mode = AttentionMode::Interleaved, c.dropout = 0.2;
  validate(c);
  uint64_t seed = 1;
  for (Recompute rc : {Recompute::None, Recompute::Attention, Recompute::Full}) {
    Block block;
    block.index = 1;  // odd: part 2 in interleaved mode
    block.ln1 = LayerNorm{random_param({8}, seed++, 0.5, 1.0), random_param({8}, seed++)};
    block.ln2 = LayerNorm{random_param({8}, seed++, 0.5, 1.0), random_param({8}, seed++)};
    block.attn = random_attention(c, block.index, seed++);
    block.ff = FeedForward{Linear{random_param({12, 8}, seed++), random_param({12}, seed++)},
                           Linear{random_param({8, 12}, seed++), random_param({8}, seed++)}};
    BlockDropout dropout = block_dropout(c, 5, block.index, true);
    Tensor in = random64({2 * c.n, 8}, seed++), w = random64(in.shape, seed++);
    Tensor out = zeros64(in.shape);
    BlockActs acts;
    forward(*cpu, block, acts, out, in, dropout, rc);
    EXPECT_EQ(acts.attn.qkv.data != nullptr, rc == Recompute::None) << recompute_name(rc);
    EXPECT_EQ(acts.ff.hidden.data != nullptr, rc != Recompute::Full) << recompute_name(rc);
    Tensor d_stream = copy_of(w);
    backward(*cpu, block, acts, d_stream, dropout);
    auto loss = [&] {
      BlockActs a;
      forward(*cpu, block, a, out, in, dropout, Recompute::None);
      return weighted_sum(w, out);
    };
    std::string what = recompute_name(rc);
    EXPECT_GT(check_gradient(what + " d_in", in, d_stream, loss, spread(in.numel(), 60)), 40);
    for (Param* p : {&block.ln1.weight, &block.ln1.bias, &block.attn.qkv.weight,
                     &block.attn.qkv.bias, &block.attn.proj.weight, &block.attn.proj.bias,
                     &block.ln2.weight, &block.ln2.bias, &block.ff.fc1.weight,
                     &block.ff.fc1.bias, &block.ff.fc2.weight, &block.ff.fc2.bias})
      EXPECT_GT(check_gradient(what + " parameter", p->value, p->grad, loss,
                               spread(p->value.numel(), 20)), 0);
  }
}
