#include "layers/params.h"

#include <cmath>

#include "kernels/dropout_hash.h"

namespace st {

int64_t ParamInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StageSpec whole_model(const ModelConfig& config) {
  return StageSpec{0, config.layers, true, true};
}

namespace {

constexpr int64_t kAlign = 64;

struct Layout {
  std::vector<ParamInfo> params;
  int64_t total = 0;

  void add(std::string name, Shape shape, Init init, double std = 0) {
    ParamInfo p{std::move(name), std::move(shape), total, init, std};
    total += (p.numel() + kAlign - 1) / kAlign * kAlign;
    params.push_back(std::move(p));
  }
  // A weight [out, in] drawn N(0, 0.125 / sqrt(in) * extra), its bias zero.
  void linear(const std::string& name, int64_t out, int64_t in, bool bias, double extra = 1) {
    add(name + ".weight", {out, in}, Init::Normal, 0.125 / std::sqrt(double(in)) * extra);
    if (bias) add(name + ".bias", {out}, Init::Zeros);
  }
  void layernorm(const std::string& name, int64_t d) {
    add(name + ".weight", {d}, Init::Ones);
    add(name + ".bias", {d}, Init::Zeros);
  }
};

}  // namespace

std::vector<ParamInfo> stage_params(const ModelConfig& c, const StageSpec& stage,
                                    int64_t* total) {
  validate(c);
  ST_CHECK(0 <= stage.first_block && stage.first_block <= stage.last_block &&
               stage.last_block <= c.layers,
           "stage: blocks [" + std::to_string(stage.first_block) + ", " +
               std::to_string(stage.last_block) + ") are not within the model's " +
               std::to_string(c.layers) + " layers");
  ST_CHECK(!stage.embedding || stage.first_block == 0,
           "stage: the embedding belongs to the stage that starts at block 0");
  ST_CHECK(!stage.head || stage.last_block == c.layers,
           "stage: the output head belongs to the stage that ends at the last block");
  const int64_t d = c.d_model;
  Layout layout;
  if (stage.embedding) {
    // Paper section 6: tokens N(0, 0.125/sqrt(d)), each of the n_emb
    // position tables N(0, 0.125/sqrt(d n_emb)).
    layout.add("embed.token.weight", {256, d}, Init::Normal, 0.125 / std::sqrt(double(d)));
    if (c.is_image()) {
      double std = 0.125 / std::sqrt(3.0 * d);
      layout.add("embed.row.weight", {c.image_rows, d}, Init::Normal, std);
      layout.add("embed.col.weight", {c.image_cols, d}, Init::Normal, std);
      layout.add("embed.channel.weight", {c.image_channels, d}, Init::Normal, std);
    } else {
      double std = 0.125 / std::sqrt(2.0 * d);
      layout.add("embed.row.weight", {c.n / c.stride, d}, Init::Normal, std);
      layout.add("embed.col.weight", {c.stride, d}, Init::Normal, std);
    }
  }
  // The residual branches' last matrices get an extra 1/sqrt(2N), so that
  // the residual stream's variance does not grow with depth.
  const double residual_scale = 1.0 / std::sqrt(2.0 * c.layers);
  const int64_t qkv_width = c.heads * (2 * c.head_dim_qk() + c.head_dim_v());
  for (int64_t r = stage.first_block; r < stage.last_block; ++r) {
    std::string b = "blocks." + std::to_string(r);
    layout.layernorm(b + ".ln1", d);
    layout.linear(b + ".attn.qkv", qkv_width, d, true);
    layout.linear(b + ".attn.proj", d, c.heads * c.head_dim_v(), true, residual_scale);
    layout.layernorm(b + ".ln2", d);
    layout.linear(b + ".ff.fc1", c.d_ff, d, true);
    layout.linear(b + ".ff.fc2", d, c.d_ff, true, residual_scale);
  }
  if (stage.head) {
    layout.layernorm("head.ln", d);
    layout.add("head.out.weight", {256, d}, Init::Zeros);  // the paper: output logits start at 0
  }
  *total = layout.total;
  return layout.params;
}

// 64-bit FNV-1a: a stable hash of a parameter's name.
static uint64_t hash_name(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001b3ULL;
  return h;
}

// The i-th standard normal of a generator keyed by `key` (Box-Muller on two
// counter-based uniforms): the same on every machine and compiler.
static double normal_at(uint64_t key, uint64_t i) {
  double u1 = (double(mix64(key + 2 * i) >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
  double u2 = double(mix64(key + 2 * i + 1) >> 11) * 0x1.0p-53;      // [0, 1)
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

void init_params(Tensor& flat, const std::vector<ParamInfo>& params, uint64_t seed) {
  ST_CHECK(flat.place == Place::Host && (flat.dtype == DType::F32 || flat.dtype == DType::F64),
           "init_params fills a host fp32 or fp64 buffer");
  auto set = [&](int64_t i, double x) {
    if (flat.dtype == DType::F32) flat.ptr<float>()[i] = float(x);
    else flat.ptr<double>()[i] = x;
  };
  for (int64_t i = 0; i < flat.numel(); ++i) set(i, 0.0);
  for (const ParamInfo& p : params) {
    uint64_t key = mix64(seed ^ mix64(hash_name(p.name)));
    for (int64_t i = 0; i < p.numel(); ++i) {
      double x = p.init == Init::Normal ? p.std * normal_at(key, i) : 0.0;
      set(p.offset + i, p.init == Init::Ones ? 1.0 : x);
    }
  }
}

Tensor param_view(const Tensor& flat, const ParamInfo& info) {
  Tensor all = flat.reshape({flat.numel()});
  return all.rows(info.offset, info.offset + info.numel()).reshape(info.shape);
}

}  // namespace st
