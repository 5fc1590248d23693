// The incremental decoder against the full model: per-position logits equal
// the CPU Model's forward pass for every pattern and mode; the key/value
// cache holds exactly the keys that later queries read; and sampling honours
// its seed, count and temperature.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "layers/head.h"
#include "layers/model.h"
#include "layers/sampler.h"
#include "tests/layers/helpers.h"

using namespace st;
using namespace st::test;

namespace {

ModelConfig small(Pattern p, AttentionMode m) {
  ModelConfig c;
  c.layers = 3, c.d_model = 32, c.heads = 4, c.d_ff = 64, c.n = 64, c.stride = 8, c.summary = 2;
  c.pattern = p, c.mode = m, c.dropout = 0.3;  // the decoder never drops: evaluation mode
  validate(c);
  return c;
}

std::vector<ModelConfig> every_pattern_and_mode() {
  std::vector<ModelConfig> cases = {small(Pattern::Dense, AttentionMode::Merged)};
  for (Pattern p : {Pattern::Strided, Pattern::Fixed})
    for (AttentionMode m :
         {AttentionMode::Merged, AttentionMode::Interleaved, AttentionMode::SplitHeads})
      cases.push_back(small(p, m));
  ModelConfig sliced = small(Pattern::Fixed, AttentionMode::Merged);  // two summary slices
  sliced.slices = 2, sliced.half_qk = true;
  cases.push_back(sliced);
  ModelConfig image = small(Pattern::Fixed, AttentionMode::SplitHeads);  // three position tables
  image.image_rows = 4, image.image_cols = 8, image.image_channels = 2;
  cases.push_back(image);
  return cases;
}

std::string describe(const ModelConfig& c) {
  return std::string(pattern_name(c.pattern)) + "/" + mode_name(c.mode) +
         (c.slices > 1 ? "/slices" : "") + (c.is_image() ? "/image" : "");
}

// Moves every fp32 parameter off its initial value (the output weight starts
// at zero, which would make every logit zero).
void randomise(Model& model, uint64_t seed) {
  for (const ParamInfo& p : model.param_infos()) {
    Tensor v = model.param(p.name);
    Tensor noise = Tensor::empty(v.shape, DType::F32, Place::Host);
    fill_uniform(noise, seed++, 0.4);
    for (int64_t i = 0; i < v.numel(); ++i) v.ptr<float>()[i] += noise.ptr<float>()[i];
  }
  model.sync_weights();
}

// The full model's logits, [batch * n, 256]: the Model's forward pass through
// every block, then the head's layer norm and projection.
Tensor full_logits(Backend& cpu, Model& model, const Tensor& tokens) {
  Pass pass;
  pass.training = false;
  Tensor x = model.forward(pass, tokens);
  LayerNorm ln{Param{model.param("head.ln.weight"), {}}, Param{model.param("head.ln.bias"), {}}};
  LayerNormActs acts;
  forward(cpu, ln, acts, x);
  Linear out;
  out.weight = Param{model.param("head.out.weight"), {}};
  Tensor logits = cpu.empty({x.dim(0), 256}, DType::F32);
  forward(cpu, out, logits, acts.out);
  return logits;
}

double row_relative_error(const float* a, const float* b, int64_t count) {
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < count; ++i) diff += (a[i] - b[i]) * (a[i] - b[i]), ref += b[i] * b[i];
  return std::sqrt(diff / ref);
}

}  // namespace

TEST(Sampler, LogitsMatchTheFullForwardPassForEveryPatternAndMode) {
  auto cpu = make_cpu_backend();
  uint64_t seed = 11;
  for (const ModelConfig& c : every_pattern_and_mode()) {
    Model model(c, *cpu, whole_model(c));
    randomise(model, seed += 100);
    const int64_t batch = 2;
    Tensor tokens = random_bytes({batch, c.n}, seed);
    Tensor targets = random_bytes({batch, c.n}, seed + 1);
    Tensor expected = full_logits(*cpu, model, tokens);

    Decoder decoder(c, model.params, batch);
    std::vector<float> logits(batch * 256);
    std::vector<uint8_t> bytes(batch);
    double worst = 0, bits = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      for (int64_t b = 0; b < batch; ++b) bytes[b] = uint8_t(tokens.ptr<int32_t>()[b * c.n + i]);
      decoder.step(bytes.data(), logits.data());
      for (int64_t b = 0; b < batch; ++b) {
        const float* got = logits.data() + b * 256;
        worst = std::max(worst, row_relative_error(got, expected.ptr<float>() + (b * c.n + i) * 256, 256));
        // The loss the Model reports, from the decoder's logits.
        double max = *std::max_element(got, got + 256), sum = 0;
        for (int x = 0; x < 256; ++x) sum += std::exp(double(got[x]) - max);
        bits += (max + std::log(sum) - got[targets.ptr<int32_t>()[b * c.n + i]]) / std::log(2.0);
      }
    }
    EXPECT_LT(worst, 1e-4) << describe(c);
    double model_bits = model.evaluate(tokens, targets);
    EXPECT_NEAR(bits / double(batch * c.n), model_bits, 1e-4 * model_bits) << describe(c);
    EXPECT_THROW(decoder.step(bytes.data(), logits.data()), Error) << "past the context";
  }
}

// After query i, each head's cache must hold exactly the keys j <= i that
// some later query reads (by attention_keys, counted by brute force).
TEST(Sampler, CacheHoldsExactlyTheKeysLaterQueriesRead) {
  auto cpu = make_cpu_backend();
  for (const ModelConfig& c : every_pattern_and_mode()) {
    Model model(c, *cpu, whole_model(c));
    randomise(model, 5);
    // last[r][h][j]: the last query of block r, head h that reads key j.
    std::vector<std::vector<std::vector<int64_t>>> last(
        c.layers, std::vector<std::vector<int64_t>>(c.heads, std::vector<int64_t>(c.n, -1)));
    std::vector<int64_t> keys;
    for (int64_t r = 0; r < c.layers; ++r) {
      AttentionSpec s = attention_spec(c, r);
      for (int64_t h = 0; h < c.heads; ++h) {
        for (int64_t i = 0; i < c.n; ++i) {
          attention_keys(s, h, i, keys);
          for (int64_t j : keys) last[r][h][j] = i;
        }
        for (int64_t j = 0; j < c.n; ++j)
          ASSERT_EQ(last_query(s, h, j), last[r][h][j]) << describe(c) << " block " << r
                                                        << " head " << h << " key " << j;
      }
    }
    Decoder decoder(c, model.params, 1);
    std::vector<float> logits(256);
    int64_t largest = 0;
    for (int64_t i = 0; i < c.n; ++i) {
      uint8_t byte = uint8_t(i * 37);
      decoder.step(&byte, logits.data());
      for (int64_t r = 0; r < c.layers; ++r)
        for (int64_t h = 0; h < c.heads; ++h) {
          int64_t needed = 0;
          for (int64_t j = 0; j <= i; ++j) needed += last[r][h][j] > i;
          ASSERT_EQ(decoder.cached_keys(0, r, h), needed)
              << describe(c) << " block " << r << " head " << h << " after query " << i;
          largest = std::max(largest, needed);
          // What docs/sampling.md promises: strided part 1 keeps its window.
          if (c.pattern == Pattern::Strided && head_part(attention_spec(c, r), h) == 1) {
            EXPECT_LE(needed, c.stride - 1) << describe(c) << " block " << r << " head " << h;
          }
        }
    }
    // The fixed pattern keeps its block plus c cells per earlier block.
    if (c.pattern == Pattern::Fixed) {
      EXPECT_LE(largest, c.stride + c.n / c.stride * c.summary) << describe(c);
    }
    if (c.pattern == Pattern::Dense) {
      EXPECT_EQ(largest, c.n - 1) << "dense keeps everything";
    }
  }
}

TEST(Sampler, SamplesFollowSeedCountAndTemperature) {
  auto cpu = make_cpu_backend();
  ModelConfig c = small(Pattern::Fixed, AttentionMode::Merged);
  Model model(c, *cpu, whole_model(c));
  randomise(model, 77);
  SampleSpec spec;
  spec.context = {3, 1, 4};
  spec.length = c.n - 2;  // fills the context: the last byte is never fed
  spec.count = 3, spec.seed = 9;
  auto three = sample(c, model.params, spec);
  ASSERT_EQ(three.size(), 3u);
  for (const auto& s : three) EXPECT_EQ(int64_t(s.size()), spec.length);
  EXPECT_NE(three[0], three[1]) << "the samples of one call are independent";
  spec.count = 1;
  EXPECT_EQ(sample(c, model.params, spec)[0], three[0]) << "sample 0 does not depend on count";
  spec.seed = 10;
  EXPECT_NE(sample(c, model.params, spec)[0], three[0]) << "another seed, another sample";

  // A temperature near 0 picks the most likely byte at every step.
  spec.temperature = 1e-4;
  std::vector<uint8_t> coldest = sample(c, model.params, spec)[0];
  Decoder decoder(c, model.params, 1);
  std::vector<float> logits(256);
  std::vector<uint8_t> fed = spec.context, greedy;
  for (int64_t i = 0; i < int64_t(spec.context.size()) + spec.length - 1; ++i) {
    decoder.step(&fed[i], logits.data());
    if (i + 1 < int64_t(spec.context.size())) continue;
    greedy.push_back(uint8_t(std::max_element(logits.begin(), logits.end()) - logits.begin()));
    fed.push_back(greedy.back());
  }
  EXPECT_EQ(coldest, greedy);

  // At temperature T the first byte's frequencies follow softmax(logits / T);
  // larger output weights make a few bytes likely enough to count.
  Tensor out = model.param("head.out.weight");
  for (int64_t i = 0; i < out.numel(); ++i) out.ptr<float>()[i] *= 8;
  Decoder first(c, model.params, 1);
  uint8_t start = 3;
  first.step(&start, logits.data());
  for (double t : {0.5, 2.0}) {
    SampleSpec many;
    many.context = {start};
    many.length = 1, many.count = 4000, many.temperature = t, many.seed = 21;
    std::vector<int64_t> seen(256, 0);
    for (const auto& s : sample(c, model.params, many)) ++seen[s[0]];
    double max = *std::max_element(logits.begin(), logits.end()), z = 0;
    for (float x : logits) z += std::exp((x - max) / t);
    int checked = 0;
    for (int x = 0; x < 256; ++x) {
      double p = std::exp((logits[x] - max) / t) / z;
      double sigma = std::sqrt(p * (1 - p) / double(many.count));
      EXPECT_NEAR(double(seen[x]) / double(many.count), p, 5 * sigma + 1e-3) << "T " << t << " byte " << x;
      checked += p > 0.02;
    }
    EXPECT_GT(checked, 0) << "some bytes are likely enough to test";
  }
}

TEST(Sampler, RefusesImpossibleRequests) {
  auto cpu = make_cpu_backend();
  ModelConfig c = small(Pattern::Strided, AttentionMode::Merged);
  Model model(c, *cpu, whole_model(c));
  SampleSpec spec;
  spec.context = std::vector<uint8_t>(10, 1);
  spec.length = c.n - 8;  // one too many
  EXPECT_THROW(sample(c, model.params, spec), Error);
  spec.length = 4;
  spec.context.clear();
  EXPECT_THROW(sample(c, model.params, spec), Error);
  spec.context = {1};
  for (double t : {0.0, -1.0, std::nan("")}) {
    spec.temperature = t;
    EXPECT_THROW(sample(c, model.params, spec), Error) << "temperature " << t;
  }
  Tensor wrong = Tensor::empty({model.params.numel() - 1}, DType::F32, Place::Host);
  EXPECT_THROW(Decoder(c, wrong, 1), Error);
}
