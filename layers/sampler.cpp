#include "layers/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/embedding.h"
#include "kernels/cpu/gelu.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/linear.h"
#include "kernels/dropout_hash.h"
#include "layers/attention.h"

namespace st {

// The key sets are those of kernels/attention_pattern.cpp; the test checks
// this against attention_keys() for every pattern, part and head.
int64_t last_query(const AttentionSpec& s, int64_t head, int64_t j) {
  const int64_t n = s.n, l = s.stride;
  if (s.pattern == Pattern::Dense) return n - 1;
  const int part = head_part(s, head);
  if (s.pattern == Pattern::Strided) {
    int64_t window = std::min(j + l - 1, n - 1);  // part 1: queries j .. j + l - 1
    int64_t column = j + l * ((n - 1 - j) / l);   // part 2: the last query of j's residue
    if (part == 1) return window;
    if (part == 2) return column;
    return std::max(window, column);
  }
  // Fixed: part 1 is the own block; part 2 the head's summary cells [lo, hi)
  // of every block, read by every later query.
  const int64_t slice = head % s.slices;
  const int64_t lo = l - (slice + 1) * s.summary, hi = l - slice * s.summary;
  const bool summary = j % l >= lo && j % l < hi;
  const int64_t block_end = j / l * l + l - 1;
  if (part == 1) return block_end;
  if (part == 2) return summary ? n - 1 : -1;
  return summary ? n - 1 : block_end;
}

void KeyCache::insert(int64_t position, int64_t last, const float* key, const float* value) {
  int32_t slot;
  if (!free_slots.empty()) {
    slot = free_slots.back();
    free_slots.pop_back();
  } else {
    slot = int32_t(keys.size() / dqk);
    keys.resize(keys.size() + dqk);
    values.resize(values.size() + dv);
  }
  std::copy(key, key + dqk, keys.begin() + int64_t(slot) * dqk);
  std::copy(value, value + dv, values.begin() + int64_t(slot) * dv);
  slot_of[position] = slot;
  expiring[last].push_back(position);
}

void KeyCache::drop_expired(int64_t query) {
  auto it = expiring.find(query);
  if (it == expiring.end()) return;
  for (int64_t position : it->second) {
    free_slots.push_back(slot_of.at(position));
    slot_of.erase(position);
  }
  expiring.erase(it);
}

Decoder::Decoder(const ModelConfig& config, const Tensor& params, int64_t batch)
    : config_(config), params_(params), batch_(batch) {
  int64_t total = 0;
  infos_ = stage_params(config_, whole_model(config_), &total);  // validates the config
  ST_CHECK(params.place == Place::Host && params.dtype == DType::F32 && params.numel() == total,
           "decoder: the weights must be one host fp32 buffer of " + std::to_string(total) +
               " elements, got " + dtype_name(params.dtype) + shape_string(params.shape) +
               " on the " + place_name(params.place));
  ST_CHECK(batch >= 1, "decoder: the batch must hold at least one sequence");
  embed_tables_ = {weight("embed.token.weight"), weight("embed.row.weight"),
                   weight("embed.col.weight")};
  if (config_.is_image()) embed_tables_.push_back(weight("embed.channel.weight"));
  head_ln_w_ = weight("head.ln.weight"), head_ln_b_ = weight("head.ln.bias");
  head_out_w_ = weight("head.out.weight");
  for (int64_t r = 0; r < config_.layers; ++r) {
    std::string b = "blocks." + std::to_string(r);
    blocks_.push_back(BlockWeights{
        weight(b + ".ln1.weight"), weight(b + ".ln1.bias"), weight(b + ".attn.qkv.weight"),
        weight(b + ".attn.qkv.bias"), weight(b + ".attn.proj.weight"),
        weight(b + ".attn.proj.bias"), weight(b + ".ln2.weight"), weight(b + ".ln2.bias"),
        weight(b + ".ff.fc1.weight"), weight(b + ".ff.fc1.bias"), weight(b + ".ff.fc2.weight"),
        weight(b + ".ff.fc2.bias"), attention_spec(config_, r)});
  }
  KeyCache empty;
  empty.dqk = config_.head_dim_qk(), empty.dv = config_.head_dim_v();
  caches_.assign(batch_ * config_.layers * config_.heads, empty);
  const int64_t d = config_.d_model, width = blocks_[0].spec.qkv_width();
  x_.resize(batch_ * d), normed_.resize(batch_ * d), y_.resize(batch_ * d), mid_.resize(batch_ * d);
  qkv_.resize(batch_ * width), att_.resize(batch_ * blocks_[0].spec.out_width());
  hidden_.resize(batch_ * config_.d_ff), activated_.resize(batch_ * config_.d_ff);
  mean_.resize(batch_), rstd_.resize(batch_);
}

const float* Decoder::weight(const std::string& name) const {
  for (const ParamInfo& p : infos_)
    if (p.name == name) return params_.ptr<float>() + p.offset;
  ST_FAIL("decoder: the model has no parameter '" + name + "'");
}

int64_t Decoder::cached_keys(int64_t b, int64_t r, int64_t h) const {
  return caches_.at((b * config_.layers + r) * config_.heads + h).size();
}

// The token row plus the position rows, as layers/embedding.cpp indexes them:
// (row i / l, column i % l) for text and audio, (row, column, channel) for images.
void Decoder::embed(const uint8_t* bytes) {
  std::vector<int64_t> dims = {config_.n / config_.stride, config_.stride};
  if (config_.is_image()) dims = {config_.image_rows, config_.image_cols, config_.image_channels};
  std::vector<std::vector<int32_t>> indices(1 + dims.size(), std::vector<int32_t>(batch_));
  for (int64_t b = 0; b < batch_; ++b) indices[0][b] = bytes[b];
  int64_t inner = config_.n;
  for (size_t k = 0; k < dims.size(); ++k) {
    inner /= dims[k];
    for (int64_t b = 0; b < batch_; ++b) indices[k + 1][b] = int32_t(position_ / inner % dims[k]);
  }
  std::vector<const int32_t*> index_ptrs;
  for (const auto& v : indices) index_ptrs.push_back(v.data());
  cpu::embedding_forward(x_.data(), index_ptrs, embed_tables_, batch_, config_.d_model);
}

void Decoder::layernorm(float* out, const float* in, const float* gamma, const float* beta,
                        int64_t cols) {
  cpu::layernorm_forward(out, mean_.data(), rstd_.data(), in, gamma, beta, batch_, cols);
}

// Caches this position's keys and values, then attends over the query's key
// set exactly as kernels/cpu/attention.cpp does (same order, same operations).
void Decoder::attend(const BlockWeights& block, int64_t r) {
  const AttentionSpec& s = block.spec;
  const int64_t i = position_, W = s.qkv_width(), dqk = s.head_dim_qk, dv = s.head_dim_v;
  const float scale = 1.0f / std::sqrt(float(dqk));
  std::vector<int64_t> keys;
  std::vector<float> scores;
  for (int64_t b = 0; b < batch_; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      KeyCache& cache = caches_[(b * config_.layers + r) * s.heads + h];
      const float* row = qkv_.data() + b * W;
      const float* q = row + h * dqk;
      int64_t last = last_query(s, h, i);
      if (last >= i)  // else no query, not even this one, reads it
        cache.insert(i, last, row + s.heads * dqk + h * dqk, row + 2 * s.heads * dqk + h * dv);
      float* o = att_.data() + b * s.out_width() + h * dv;
      std::fill(o, o + dv, 0.0f);
      attention_keys(s, h, i, keys);
      if (!keys.empty()) {
        scores.resize(keys.size());
        float max = -std::numeric_limits<float>::infinity();
        for (size_t x = 0; x < keys.size(); ++x) {
          auto found = cache.slot_of.find(keys[x]);
          ST_CHECK(found != cache.slot_of.end(),
                   "decoder: key " + std::to_string(keys[x]) + " of query " + std::to_string(i) +
                       " was dropped from the cache (a bug in last_query)");
          const float* k = cache.keys.data() + int64_t(found->second) * dqk;
          float dot = 0;
          for (int64_t e = 0; e < dqk; ++e) dot += q[e] * k[e];
          scores[x] = scale * dot;
          max = std::max(max, scores[x]);
        }
        float sum = 0;
        for (size_t x = 0; x < keys.size(); ++x) sum += std::exp(scores[x] - max);
        const float lse = max + std::log(sum);
        for (size_t x = 0; x < keys.size(); ++x) {
          float p = std::exp(scores[x] - lse);
          const float* v = cache.values.data() + int64_t(cache.slot_of.at(keys[x])) * dv;
          for (int64_t e = 0; e < dv; ++e) o[e] += p * v[e];
        }
      }
      cache.drop_expired(i);
    }
}

void Decoder::step(const uint8_t* bytes, float* logits) {
  ST_CHECK(position_ < config_.n, "decoder: the context of n = " + std::to_string(config_.n) +
                                      " positions is full");
  const int64_t d = config_.d_model, ff = config_.d_ff;
  embed(bytes);
  for (int64_t r = 0; r < config_.layers; ++r) {
    const BlockWeights& w = blocks_[r];
    const int64_t width = w.spec.qkv_width(), out = w.spec.out_width();
    // H + attn(norm1(H)), then + ff(norm2(.)); dropout is off when sampling.
    layernorm(normed_.data(), x_.data(), w.ln1_w, w.ln1_b, d);
    cpu::linear_forward(qkv_.data(), normed_.data(), w.qkv_w, w.qkv_b, batch_, d, width);
    attend(w, r);
    cpu::linear_forward(y_.data(), att_.data(), w.proj_w, w.proj_b, batch_, out, d);
    for (int64_t e = 0; e < batch_ * d; ++e) mid_[e] = x_[e] + y_[e];
    layernorm(normed_.data(), mid_.data(), w.ln2_w, w.ln2_b, d);
    cpu::linear_forward(hidden_.data(), normed_.data(), w.fc1_w, w.fc1_b, batch_, d, ff);
    cpu::gelu_forward(activated_.data(), hidden_.data(), batch_ * ff);
    cpu::linear_forward(y_.data(), activated_.data(), w.fc2_w, w.fc2_b, batch_, ff, d);
    for (int64_t e = 0; e < batch_ * d; ++e) x_[e] = mid_[e] + y_[e];
  }
  layernorm(normed_.data(), x_.data(), head_ln_w_, head_ln_b_, d);
  const float* no_bias = nullptr;
  cpu::linear_forward(logits, normed_.data(), head_out_w_, no_bias, batch_, d, int64_t(256));
  ++position_;
}

// One draw from softmax(logits / temperature), from a uniform in [0, 1).
static uint8_t draw(const float* logits, double temperature, double uniform) {
  double max = *std::max_element(logits, logits + 256), p[256], sum = 0;
  for (int x = 0; x < 256; ++x) sum += p[x] = std::exp((logits[x] - max) / temperature);
  double target = uniform * sum, cumulative = 0;
  for (int x = 0; x < 256; ++x)
    if ((cumulative += p[x]) > target) return uint8_t(x);
  return uint8_t(std::max_element(p, p + 256) - p);  // rounding left target at the very top
}

std::vector<std::vector<uint8_t>> sample(const ModelConfig& config, const Tensor& params,
                                         const SampleSpec& spec) {
  const int64_t k = int64_t(spec.context.size());
  ST_CHECK(k >= 1, "sample: the context needs at least one byte to start from");
  ST_CHECK(spec.length >= 1 && k + spec.length - 1 <= config.n,
           "sample: " + std::to_string(k) + " context bytes and " +
               std::to_string(spec.length) + " new ones do not fit the context of n = " +
               std::to_string(config.n) + " (at most n + 1 - context new bytes)");
  ST_CHECK(std::isfinite(spec.temperature) && spec.temperature > 0,
           "sample: the temperature must be a positive number");
  ST_CHECK(spec.count >= 1, "sample: the count must be at least 1");
  Decoder decoder(config, params, spec.count);
  std::vector<float> logits(spec.count * 256);
  std::vector<uint8_t> bytes(spec.count);
  std::vector<uint64_t> draws(spec.count, 0);  // counter-based: sample b's i-th uniform
  std::vector<std::vector<uint8_t>> samples(spec.count);
  for (int64_t i = 0; i < k + spec.length - 1; ++i) {
    for (int64_t b = 0; b < spec.count; ++b)
      bytes[b] = i < k ? spec.context[i] : samples[b].back();
    decoder.step(bytes.data(), logits.data());
    if (i < k - 1) continue;
    for (int64_t b = 0; b < spec.count; ++b) {
      uint64_t key = mix64(spec.seed ^ mix64(uint64_t(b) + 1));
      double uniform = double(mix64(key + draws[b]++) >> 11) * 0x1.0p-53;
      samples[b].push_back(draw(logits.data() + b * 256, spec.temperature, uniform));
    }
  }
  return samples;
}

}  // namespace st
