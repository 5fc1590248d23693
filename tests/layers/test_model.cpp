// The whole model and its pipeline stages on the CPU backend: gradients
// against finite differences (fp64), recomputation bit for bit, stages
// chained by hand against the whole, learning a byte stream, and a 16K
// context.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "layers/model.h"
#include "tests/layers/helpers.h"

using namespace st;
using namespace st::test;

namespace {

ModelConfig tiny(Pattern p, AttentionMode m) {
  ModelConfig c;
  c.layers = 2, c.d_model = 8, c.heads = 2, c.d_ff = 16, c.n = 16, c.stride = 4, c.summary = 2;
  c.pattern = p, c.mode = m, c.dropout = 0.1;
  validate(c);
  return c;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.data, b.data, a.bytes()) == 0;
}

std::string describe(const ModelConfig& c) {
  return std::string(pattern_name(c.pattern)) + "/" + mode_name(c.mode) + "/recompute " +
         recompute_name(c.recompute);
}

}  // namespace

TEST(Model, GradientsMatchFiniteDifferencesForEveryPatternAndMode) {
  auto cpu = make_cpu_backend();
  struct Case { Pattern p; AttentionMode m; Recompute r; };
  const Case cases[] = {
      {Pattern::Dense, AttentionMode::Merged, Recompute::None},
      {Pattern::Strided, AttentionMode::Merged, Recompute::Attention},
      {Pattern::Strided, AttentionMode::Interleaved, Recompute::Full},
      {Pattern::Strided, AttentionMode::SplitHeads, Recompute::None},
      {Pattern::Fixed, AttentionMode::Merged, Recompute::Full},
      {Pattern::Fixed, AttentionMode::Interleaved, Recompute::None},
      {Pattern::Fixed, AttentionMode::SplitHeads, Recompute::Attention},
  };
  uint64_t seed = 1;
  for (const Case& k : cases) {
    ModelConfig c = tiny(k.p, k.m);
    c.recompute = k.r;
    Model model(c, *cpu, whole_model(c), DType::F64);
    ASSERT_EQ(model.params.data, model.weights.data);  // fp64 on the CPU: one buffer
    randomise_params(model, seed += 100);
    Tensor tokens = random_bytes({2, c.n}, seed), targets = random_bytes({2, c.n}, seed + 1);
    model.zero_grads();
    double loss0 = model.forward_backward(tokens, targets, 7);
    auto loss = [&] {  // the same dropout masks (step 7), no gradient
      Pass pass;
      pass.step = 7;
      return model.forward_loss(pass, tokens, targets, 0.0f);
    };
    ASSERT_EQ(loss(), loss0) << describe(c);
    int nonzero = 0, checked = 0;
    for (const ParamInfo& p : model.param_infos()) {
      Tensor value = model.param(p.name), grad = model.grad(p.name);
      std::vector<int64_t> elements = spread(p.numel(), 5);
      if (p.name == "embed.token.weight")  // rows the tokens select
        for (int64_t t = 0; t < 4; ++t)
          elements.push_back(tokens.ptr<int32_t>()[t] * c.d_model + t);
      nonzero += check_gradient(describe(c) + " " + p.name, value, grad, loss, elements);
      checked += int(elements.size());
      if (HasFailure()) return;
    }
    EXPECT_GT(nonzero, checked / 2) << describe(c);
  }
}

TEST(Model, RecomputationGivesBitIdenticalGradients) {
  auto cpu = make_cpu_backend();
  for (Pattern p : {Pattern::Strided, Pattern::Fixed}) {
    ModelConfig c = tiny(p, AttentionMode::Interleaved);
    c.layers = 3, c.d_model = 16, c.n = 32, c.dropout = 0.2;
    Tensor tokens = random_bytes({3, c.n}, 1), targets = random_bytes({3, c.n}, 2);
    Tensor reference_grads;
    double reference_loss = 0;
    for (Recompute r : {Recompute::None, Recompute::Attention, Recompute::Full}) {
      c.recompute = r;
      Model model(c, *cpu, whole_model(c));
      randomise_params(model, 50);
      double loss = model.forward_backward(tokens, targets, 3);
      loss += model.forward_backward(tokens, targets, 4);  // accumulates a second micro-batch
      if (r == Recompute::None) {
        reference_grads = copy_of(model.grads);
        reference_loss = loss;
        EXPECT_GT(cpu->sum_squares(model.grads), 0.0);
        continue;
      }
      EXPECT_EQ(loss, reference_loss) << describe(c);
      EXPECT_TRUE(same_bits(model.grads, reference_grads)) << describe(c);
    }
  }
}

TEST(Model, DropoutChangesWithTheStepAndIsOffInEvaluation) {
  auto cpu = make_cpu_backend();
  ModelConfig c = tiny(Pattern::Fixed, AttentionMode::Merged);
  c.dropout = 0.3;
  Model model(c, *cpu, whole_model(c));
  randomise_params(model, 5);
  Tensor tokens = random_bytes({2, c.n}, 1), targets = random_bytes({2, c.n}, 2);
  auto train_loss = [&](uint64_t step) {
    Pass pass;
    pass.step = step;
    return model.forward_loss(pass, tokens, targets, 0.0f);
  };
  EXPECT_EQ(train_loss(1), train_loss(1));
  EXPECT_NE(train_loss(1), train_loss(2));
  double eval = model.evaluate(tokens, targets);
  c.dropout = 0;
  Model no_dropout(c, *cpu, whole_model(c));
  randomise_params(no_dropout, 5);
  EXPECT_EQ(eval, no_dropout.evaluate(tokens, targets));
  EXPECT_EQ(eval, [&] { Pass p; return no_dropout.forward_loss(p, tokens, targets, 0.0f); }());
}

TEST(Model, StagesChainedByHandMatchTheWholeModel) {
  auto cpu = make_cpu_backend();
  ModelConfig c = tiny(Pattern::Strided, AttentionMode::Interleaved);
  c.layers = 4, c.dropout = 0.1, c.recompute = Recompute::Full;
  Tensor tokens = random_bytes({2, c.n}, 1), targets = random_bytes({2, c.n}, 2);
  Model whole(c, *cpu, whole_model(c));
  randomise_params(whole, 9);  // by name below, so the stages get the same values
  double whole_loss = whole.forward_backward(tokens, targets, 11);

  Model s0(c, *cpu, StageSpec{0, 1, true, false});
  Model s1(c, *cpu, StageSpec{1, 3, false, false});
  Model s2(c, *cpu, StageSpec{3, 4, false, true});
  std::vector<Model*> stages = {&s0, &s1, &s2};
  for (Model* s : stages) {
    for (const ParamInfo& p : s->param_infos()) {
      Tensor dst = s->param(p.name);
      copy(dst, whole.param(p.name));
    }
    s->sync_weights();
  }
  // Two micro-batches in flight, as a 1F1B schedule would have them: the
  // first is step 11 (the whole model's), the second only adds gradient
  // that the whole model then adds too.
  Pass p0[2], p1[2], p2[2];
  double loss[2];
  for (int mb = 0; mb < 2; ++mb) {
    p0[mb].step = p1[mb].step = p2[mb].step = 11 + 10 * mb;
    Tensor a = s0.forward(p0[mb], tokens);
    EXPECT_EQ(a.shape, s0.activation_shape(2));
    Tensor b = s1.forward(p1[mb], a);
    loss[mb] = s2.forward_loss(p2[mb], b, targets, 1.0f);
  }
  EXPECT_EQ(loss[0], whole_loss);
  for (int mb = 0; mb < 2; ++mb) {
    Tensor d_b = s2.backward(p2[mb], Tensor{});
    Tensor d_b_before = copy_of(d_b);
    Tensor d_a = s1.backward(p1[mb], d_b);
    EXPECT_TRUE(same_bits(d_b, d_b_before)) << "backward modified its d_output";
    EXPECT_EQ(s0.backward(p0[mb], d_a).data, nullptr);
  }
  whole.forward_backward(tokens, targets, 21);
  size_t compared = 0;
  for (Model* s : stages)
    for (const ParamInfo& p : s->param_infos()) {
      EXPECT_TRUE(same_bits(s->grad(p.name), whole.grad(p.name))) << p.name;
      ++compared;
    }
  EXPECT_EQ(compared, whole.param_infos().size());
  EXPECT_GT(cpu->sum_squares(s0.grad("embed.col.weight")), 0.0);
}

TEST(Model, RefusesBadInputsWithAMessage) {
  auto cpu = make_cpu_backend();
  ModelConfig c = tiny(Pattern::Fixed, AttentionMode::Merged);
  Model whole(c, *cpu, whole_model(c));
  Model middle(c, *cpu, StageSpec{1, 2, false, false});
  Tensor short_tokens = random_bytes({c.n - 1}, 1), targets = random_bytes({c.n}, 2);
  Pass pass;
  EXPECT_THROW(whole.forward_loss(pass, short_tokens, targets), Error);
  Tensor tokens = random_bytes({c.n}, 1);
  EXPECT_THROW(whole.forward_loss(pass, tokens, random_bytes({c.n + 1}, 2)), Error);
  Tensor act64 = zeros64({c.n, c.d_model});
  EXPECT_THROW(middle.forward(pass, act64), Error);  // fp64 into an fp32 stage
  Pass fresh;
  EXPECT_THROW(middle.backward(fresh, Tensor{}), Error);  // no forward pass
  EXPECT_THROW(middle.forward_loss(pass, act64, targets), Error);  // no head here
  EXPECT_THROW(whole.param("blocks.9.ln1.weight"), Error);
}

TEST(Model, AdamOnAByteStreamDrivesTheLossWellBelowEightBits) {
  auto cpu = make_cpu_backend();
  ModelConfig c;
  c.layers = 2, c.d_model = 32, c.heads = 2, c.d_ff = 64, c.n = 32, c.stride = 8;
  c.pattern = Pattern::Fixed, c.summary = 2;
  validate(c);
  Model model(c, *cpu, whole_model(c));
  const std::string stream =
      "the quick brown fox jumps over the lazy dog. a stitch in time saves nine. "
      "all that glitters is not gold. the early bird catches the worm. ";
  const int64_t batch = 4;
  auto sample = [&](uint64_t seed, Tensor& tokens, Tensor& targets) {
    tokens = Tensor::empty({batch, c.n}, DType::I32, Place::Host);
    targets = Tensor::empty({batch, c.n}, DType::I32, Place::Host);
    for (int64_t b = 0; b < batch; ++b) {
      size_t start = mix64(seed * 97 + b) % stream.size();
      for (int64_t i = 0; i < c.n; ++i) {
        tokens.ptr<int32_t>()[b * c.n + i] = (unsigned char)stream[(start + i) % stream.size()];
        targets.ptr<int32_t>()[b * c.n + i] = (unsigned char)stream[(start + i + 1) % stream.size()];
      }
    }
  };
  Tensor m = cpu->empty(model.params.shape, model.params.dtype);
  Tensor v = cpu->empty(model.params.shape, model.params.dtype);
  cpu->fill(m, 0), cpu->fill(v, 0);
  Tensor tokens, targets, no_copy = model.param_copy_for_update();
  ASSERT_EQ(no_copy.data, nullptr);  // fp32 on the CPU: the forward pass reads params itself
  EXPECT_NEAR(model.evaluate((sample(0, tokens, targets), tokens), targets), 8.0, 1e-5);
  double first = 0, last = 0;
  for (int64_t step = 1; step <= 300; ++step) {
    sample(uint64_t(step), tokens, targets);
    model.zero_grads();
    double loss = model.forward_backward(tokens, targets, uint64_t(step));
    if (step == 1) first = loss;
    last = loss;
    Backend::AdamArgs args{3e-3f, 0.9f, 0.98f, 1e-8f, 0.0f, 1.0f, step};
    cpu->adam_update(model.params, m, v, no_copy, model.grads, args);
  }
  sample(1000, tokens, targets);  // windows not seen in this order
  double eval = model.evaluate(tokens, targets);
  std::printf("loss: first %.3f, last %.3f, evaluation %.3f bits per byte\n", first, last, eval);
  EXPECT_NEAR(first, 8.0, 1e-5);
  EXPECT_LT(last, 2.5);
  EXPECT_LT(eval, 2.5);
}

TEST(Model, TwoLayersAtContext16KRunOnTheCpuFollowingNnz) {
  auto cpu = make_cpu_backend();
  ModelConfig c;
  c.layers = 2, c.d_model = 16, c.heads = 2, c.d_ff = 32, c.n = 16384, c.stride = 128;
  c.pattern = Pattern::Fixed, c.summary = 8, c.recompute = Recompute::Full;
  validate(c);
  // The sparse cost: a small fraction of the causal triangle.
  AttentionSpec spec = attention_spec(c, 0);
  double causal = double(c.n) * double(c.n + 1) / 2;
  EXPECT_LT(double(attention_nnz(spec, 0)) / causal, 0.1);
  Model model(c, *cpu, whole_model(c));
  randomise_params(model, 3);
  Tensor tokens = random_bytes({1, c.n}, 1), targets = random_bytes({1, c.n}, 2);
  double loss = model.forward_backward(tokens, targets);
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_GT(loss, 4.0);  // random bytes: nothing to learn
  double norm = cpu->sum_squares(model.grads);
  EXPECT_TRUE(std::isfinite(norm));
  EXPECT_GT(cpu->sum_squares(model.grad("blocks.0.attn.qkv.weight")), 0.0);
}
