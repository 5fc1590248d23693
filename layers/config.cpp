#include "layers/config.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/check.h"
#include "core/text.h"

namespace st {

const char* mode_name(AttentionMode mode) {
  switch (mode) {
    case AttentionMode::Merged: return "merged";
    case AttentionMode::Interleaved: return "interleaved";
    case AttentionMode::SplitHeads: return "split-heads";
  }
  return "?";
}

const char* recompute_name(Recompute recompute) {
  switch (recompute) {
    case Recompute::None: return "none";
    case Recompute::Attention: return "attention";
    case Recompute::Full: return "full";
  }
  return "?";
}

static std::string str(int64_t x) { return std::to_string(x); }

#define ST_CONFIG_CHECK(cond, msg) ST_CHECK(cond, "model configuration: " + std::string(msg))

void validate(const ModelConfig& c) {
  ST_CONFIG_CHECK(c.layers >= 1, "layers (" + str(c.layers) + ") must be at least 1");
  ST_CONFIG_CHECK(c.d_model >= 1, "d_model (" + str(c.d_model) + ") must be positive");
  ST_CONFIG_CHECK(c.heads >= 1, "heads (" + str(c.heads) + ") must be positive");
  ST_CONFIG_CHECK(c.d_ff >= 1, "d_ff (" + str(c.d_ff) + ") must be positive");
  ST_CONFIG_CHECK(c.n >= 1, "n (" + str(c.n) + ") must be positive");
  ST_CONFIG_CHECK(c.d_model % c.heads == 0, "heads (" + str(c.heads) + ") must divide d_model (" +
                                                str(c.d_model) + ")");
  ST_CONFIG_CHECK(!c.half_qk || c.head_dim_v() % 2 == 0,
                  "half_qk needs an even head size d_model / heads (" + str(c.head_dim_v()) + ")");
  ST_CONFIG_CHECK(c.stride >= 1, "stride l (" + str(c.stride) + ") must be positive");
  ST_CONFIG_CHECK(c.n % c.stride == 0, "n (" + str(c.n) + ") must be a multiple of the stride l (" +
                                           str(c.stride) + ")");
  if (c.pattern == Pattern::Fixed) {
    ST_CONFIG_CHECK(c.summary >= 1 && c.summary <= c.stride && c.stride % c.summary == 0,
                    "the summary width c (" + str(c.summary) + ") must divide the stride l (" +
                        str(c.stride) + ")");
    ST_CONFIG_CHECK(c.slices >= 1 && c.slices * c.summary <= c.stride,
                    "slices v (" + str(c.slices) + ") times summary c (" + str(c.summary) +
                        ") must not exceed the stride l (" + str(c.stride) + ")");
  }
  ST_CONFIG_CHECK(c.pattern != Pattern::Dense || c.mode == AttentionMode::Merged,
                  std::string("mode ") + mode_name(c.mode) +
                      " combines the two parts of a factorized pattern; pattern dense has one "
                      "part (use mode merged)");
  ST_CONFIG_CHECK(c.mode != AttentionMode::SplitHeads || c.heads % 2 == 0,
                  "mode split-heads needs an even number of heads (heads = " + str(c.heads) + ")");
  ST_CONFIG_CHECK(c.dropout >= 0.0 && c.dropout < 1.0,
                  "dropout (" + std::to_string(c.dropout) + ") must be in [0, 1)");
  bool none = c.image_rows == 0 && c.image_cols == 0 && c.image_channels == 0;
  bool all = c.image_rows > 0 && c.image_cols > 0 && c.image_channels > 0;
  ST_CONFIG_CHECK(none || all, "image_rows, image_cols and image_channels must be all zero (text, "
                               "audio) or all positive (images)");
  ST_CONFIG_CHECK(none || c.image_rows * c.image_cols * c.image_channels == c.n,
                  "image_rows x image_cols x image_channels (" + str(c.image_rows) + " x " +
                      str(c.image_cols) + " x " + str(c.image_channels) + ") must equal n (" +
                      str(c.n) + ")");
}

std::vector<std::pair<std::string, std::string>> config_fields(const ModelConfig& c) {
  std::string dropout = format_double(c.dropout);  // round-trips exactly
  return {{"layers", str(c.layers)},
          {"d_model", str(c.d_model)},
          {"heads", str(c.heads)},
          {"d_ff", str(c.d_ff)},
          {"half_qk", c.half_qk ? "true" : "false"},
          {"n", str(c.n)},
          {"pattern", pattern_name(c.pattern)},
          {"stride", str(c.stride)},
          {"summary", str(c.summary)},
          {"slices", str(c.slices)},
          {"mode", mode_name(c.mode)},
          {"dropout", dropout},
          {"image_rows", str(c.image_rows)},
          {"image_cols", str(c.image_cols)},
          {"image_channels", str(c.image_channels)},
          {"recompute", recompute_name(c.recompute)},
          {"seed", std::to_string(c.seed)}};
}

static int64_t parse_int(const std::string& name, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(value.c_str(), &end, 10);
  ST_CHECK(!value.empty() && *end == '\0' && errno == 0,
           "model configuration: " + name + " = '" + value + "' is not an integer");
  return x;
}

static uint64_t parse_uint(const std::string& name, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  unsigned long long x = std::strtoull(value.c_str(), &end, 10);
  ST_CHECK(!value.empty() && value[0] != '-' && *end == '\0' && errno == 0,
           "model configuration: " + name + " = '" + value + "' is not a non-negative integer");
  return x;
}

static double parse_double(const std::string& name, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(value.c_str(), &end);
  ST_CHECK(!value.empty() && *end == '\0' && errno == 0,
           "model configuration: " + name + " = '" + value + "' is not a number");
  return x;
}

static bool parse_bool(const std::string& name, const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  ST_FAIL("model configuration: " + name + " = '" + value + "' is not true or false");
}

static Pattern parse_pattern(const std::string& value) {
  for (Pattern p : {Pattern::Dense, Pattern::Strided, Pattern::Fixed})
    if (value == pattern_name(p)) return p;
  ST_FAIL("model configuration: pattern = '" + value + "' (expected dense, strided or fixed)");
}

static AttentionMode parse_mode(const std::string& value) {
  for (AttentionMode m :
       {AttentionMode::Merged, AttentionMode::Interleaved, AttentionMode::SplitHeads})
    if (value == mode_name(m)) return m;
  ST_FAIL("model configuration: mode = '" + value +
          "' (expected merged, interleaved or split-heads)");
}

static Recompute parse_recompute(const std::string& value) {
  for (Recompute r : {Recompute::None, Recompute::Attention, Recompute::Full})
    if (value == recompute_name(r)) return r;
  ST_FAIL("model configuration: recompute = '" + value +
          "' (expected none, attention or full)");
}

void set_field(ModelConfig& c, const std::string& name, const std::string& value) {
  if (name == "layers") c.layers = parse_int(name, value);
  else if (name == "d_model") c.d_model = parse_int(name, value);
  else if (name == "heads") c.heads = parse_int(name, value);
  else if (name == "d_ff") c.d_ff = parse_int(name, value);
  else if (name == "half_qk") c.half_qk = parse_bool(name, value);
  else if (name == "n") c.n = parse_int(name, value);
  else if (name == "pattern") c.pattern = parse_pattern(value);
  else if (name == "stride") c.stride = parse_int(name, value);
  else if (name == "summary") c.summary = parse_int(name, value);
  else if (name == "slices") c.slices = parse_int(name, value);
  else if (name == "mode") c.mode = parse_mode(value);
  else if (name == "dropout") c.dropout = parse_double(name, value);
  else if (name == "image_rows") c.image_rows = parse_int(name, value);
  else if (name == "image_cols") c.image_cols = parse_int(name, value);
  else if (name == "image_channels") c.image_channels = parse_int(name, value);
  else if (name == "recompute") c.recompute = parse_recompute(value);
  else if (name == "seed") c.seed = parse_uint(name, value);
  else ST_FAIL("model configuration: unknown field '" + name + "'");
}

ModelConfig config_from_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  ModelConfig config;
  for (const auto& [name, value] : fields) set_field(config, name, value);
  validate(config);
  return config;
}

}  // namespace st
