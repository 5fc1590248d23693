// The model configuration (validation, string fields) and the parameters'
// names, layout and initialisation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "layers/config.h"
#include "layers/model.h"
#include "layers/params.h"

using namespace st;

namespace {

// The validation message of c, or "" when it is accepted.
std::string refusal(const ModelConfig& c) {
  try {
    validate(c);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

void expect_refused(const ModelConfig& c, std::vector<std::string> words) {
  std::string message = refusal(c);
  ASSERT_FALSE(message.empty()) << "accepted, expected a message naming " << words[0];
  for (const std::string& w : words) EXPECT_NE(message.find(w), std::string::npos) << message;
}

}  // namespace

TEST(ModelConfig, DefaultsAreValid) { EXPECT_EQ(refusal(ModelConfig{}), ""); }

TEST(ModelConfig, RefusesEveryImpossibleCombinationNamingTheFields) {
  ModelConfig c;
  c.n = 60, c.stride = 8;
  expect_refused(c, {"n (60)", "multiple of the stride l (8)"});
  c = ModelConfig{}, c.summary = 3;
  expect_refused(c, {"summary width c (3)", "divide the stride l (8)"});
  c = ModelConfig{}, c.summary = 16;
  expect_refused(c, {"summary width c (16)"});
  c = ModelConfig{}, c.slices = 5;  // 5 * 2 > 8
  expect_refused(c, {"slices v (5)", "summary c (2)", "stride l (8)"});
  c = ModelConfig{}, c.heads = 3;
  expect_refused(c, {"heads (3)", "d_model (64)"});
  c = ModelConfig{}, c.d_model = 60, c.heads = 3, c.mode = AttentionMode::SplitHeads;
  expect_refused(c, {"split-heads", "even number of heads"});
  c = ModelConfig{}, c.d_model = 6, c.heads = 2, c.half_qk = true;
  expect_refused(c, {"half_qk", "even head size", "(3)"});
  c = ModelConfig{}, c.pattern = Pattern::Dense, c.mode = AttentionMode::Interleaved;
  expect_refused(c, {"mode interleaved", "pattern dense"});
  c = ModelConfig{}, c.dropout = 1.0;
  expect_refused(c, {"dropout"});
  c = ModelConfig{}, c.image_rows = 4, c.image_cols = 4;
  expect_refused(c, {"image_rows, image_cols and image_channels"});
  c = ModelConfig{}, c.image_rows = 4, c.image_cols = 4, c.image_channels = 3;
  expect_refused(c, {"(4 x 4 x 3)", "n (64)"});
  c = ModelConfig{}, c.layers = 0;
  expect_refused(c, {"layers (0)"});
  c = ModelConfig{}, c.d_ff = 0;
  expect_refused(c, {"d_ff"});
  // Accepted neighbours of the refused ones.
  c = ModelConfig{}, c.image_rows = 4, c.image_cols = 4, c.image_channels = 4;
  EXPECT_EQ(refusal(c), "");
  c = ModelConfig{}, c.heads = 4, c.mode = AttentionMode::SplitHeads, c.slices = 4;
  EXPECT_EQ(refusal(c), "");
}

TEST(ModelConfig, FieldsRoundTripThroughStrings) {
  ModelConfig c;
  c.layers = 5, c.d_model = 48, c.heads = 4, c.d_ff = 96, c.half_qk = true, c.n = 96;
  c.pattern = Pattern::Strided, c.stride = 12, c.mode = AttentionMode::Interleaved;
  c.dropout = 0.1, c.recompute = Recompute::Attention, c.seed = 12345678901234ULL;
  validate(c);
  auto fields = config_fields(c);
  ModelConfig back = config_from_fields(fields);
  EXPECT_EQ(config_fields(back), fields);
  EXPECT_EQ(back.dropout, 0.1);
  EXPECT_EQ(back.seed, 12345678901234ULL);
  EXPECT_EQ(back.mode, AttentionMode::Interleaved);
  EXPECT_EQ(back.recompute, Recompute::Attention);
  ASSERT_EQ(fields.size(), 17u);
  EXPECT_EQ(fields[0], (std::pair<std::string, std::string>{"layers", "5"}));
}

TEST(ModelConfig, BadFieldsAreNamed) {
  ModelConfig c;
  auto message = [&](const std::string& name, const std::string& value) -> std::string {
    try {
      set_field(c, name, value);
      return "";
    } catch (const Error& e) {
      return e.what();
    }
  };
  EXPECT_NE(message("heads", "4x").find("heads = '4x' is not an integer"), std::string::npos);
  EXPECT_NE(message("colour", "red").find("unknown field 'colour'"), std::string::npos);
  EXPECT_NE(message("pattern", "sparse").find("dense, strided or fixed"), std::string::npos);
  EXPECT_NE(message("mode", "mixed").find("split-heads"), std::string::npos);
  EXPECT_NE(message("half_qk", "yes").find("true or false"), std::string::npos);
  EXPECT_NE(message("seed", "-1").find("seed"), std::string::npos);
  EXPECT_NE(message("dropout", "").find("dropout"), std::string::npos);
  EXPECT_THROW(config_from_fields({{"n", "63"}}), Error);  // validated as a whole
}

TEST(Params, NamesShapesAndAlignedOffsets) {
  ModelConfig c;
  c.layers = 4, c.d_model = 16, c.heads = 2, c.d_ff = 40, c.half_qk = true, c.n = 32;
  int64_t total = 0;
  auto infos = stage_params(c, whole_model(c), &total);
  std::map<std::string, Shape> shapes;
  int64_t end = 0;
  for (const ParamInfo& p : infos) {
    EXPECT_EQ(p.offset % 64, 0) << p.name;
    EXPECT_GE(p.offset, end) << p.name << " overlaps the previous parameter";
    end = p.offset + p.numel();
    shapes[p.name] = p.shape;
  }
  EXPECT_LE(end, total);
  EXPECT_EQ(infos.size(), 3u + 4 * 12 + 3);
  EXPECT_EQ(shapes["embed.token.weight"], (Shape{256, 16}));
  EXPECT_EQ(shapes["embed.row.weight"], (Shape{4, 16}));
  EXPECT_EQ(shapes["embed.col.weight"], (Shape{8, 16}));
  EXPECT_EQ(shapes["blocks.3.attn.qkv.weight"], (Shape{2 * (2 * 4 + 8), 16}));  // half-size q, k
  EXPECT_EQ(shapes["blocks.3.attn.proj.weight"], (Shape{16, 16}));
  EXPECT_EQ(shapes["blocks.0.ff.fc1.weight"], (Shape{40, 16}));
  EXPECT_EQ(shapes["blocks.0.ff.fc2.bias"], (Shape{16}));
  EXPECT_EQ(shapes["head.out.weight"], (Shape{256, 16}));
  EXPECT_EQ(shapes.count("head.out.bias"), 0u);
  EXPECT_THROW(stage_params(c, StageSpec{1, 3, true, false}, &total), Error);  // embedding not at 0
  EXPECT_THROW(stage_params(c, StageSpec{2, 5, false, false}, &total), Error);
}

TEST(Params, InitialisationFollowsThePaper) {
  ModelConfig c;
  c.layers = 8, c.d_model = 64, c.d_ff = 256, c.n = 64;
  auto cpu = make_cpu_backend();
  Model model(c, *cpu, whole_model(c));
  auto stddev = [&](const std::string& name) {
    Tensor t = model.param(name);
    double s = 0;
    for (int64_t i = 0; i < t.numel(); ++i) s += double(t.ptr<float>()[i]) * t.ptr<float>()[i];
    return std::sqrt(s / double(t.numel()));
  };
  const double d = 64, tol = 0.05;  // relative, for thousands of draws
  EXPECT_NEAR(stddev("embed.token.weight") / (0.125 / std::sqrt(d)), 1.0, tol);
  EXPECT_NEAR(stddev("embed.row.weight") / (0.125 / std::sqrt(2 * d)), 1.0, 0.15);
  EXPECT_NEAR(stddev("blocks.2.attn.qkv.weight") / (0.125 / std::sqrt(d)), 1.0, tol);
  EXPECT_NEAR(stddev("blocks.2.attn.proj.weight") / (0.125 / std::sqrt(d) / 4.0), 1.0, tol);
  EXPECT_NEAR(stddev("blocks.2.ff.fc2.weight") / (0.125 / std::sqrt(256.0) / 4.0), 1.0, tol);
  EXPECT_EQ(stddev("blocks.2.ff.fc1.bias"), 0.0);
  EXPECT_EQ(stddev("head.out.weight"), 0.0);
  Tensor gamma = model.param("blocks.5.ln2.weight");
  for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(gamma.ptr<float>()[i], 1.0f);
  // Different parameters draw different values.
  EXPECT_NE(model.param("blocks.0.attn.qkv.weight").ptr<float>()[0],
            model.param("blocks.1.attn.qkv.weight").ptr<float>()[0]);
}

TEST(Params, AnyPartitionInitialisesLikeTheWholeModel) {
  ModelConfig c;
  c.layers = 4, c.d_model = 16, c.n = 32, c.d_ff = 32;
  auto cpu = make_cpu_backend();
  Model whole(c, *cpu, whole_model(c));
  Model first(c, *cpu, StageSpec{0, 1, true, false});
  Model middle(c, *cpu, StageSpec{1, 3, false, false});
  Model last(c, *cpu, StageSpec{3, 4, false, true});
  size_t covered = 0;
  for (Model* stage : {&first, &middle, &last})
    for (const ParamInfo& p : stage->param_infos()) {
      Tensor a = stage->param(p.name), b = whole.param(p.name);
      ASSERT_EQ(std::memcmp(a.data, b.data, a.bytes()), 0) << p.name;
      ++covered;
    }
  EXPECT_EQ(covered, whole.param_infos().size());
  c.seed = 2;
  Model reseeded(c, *cpu, whole_model(c));
  EXPECT_NE(reseeded.param("blocks.0.attn.qkv.weight").ptr<float>()[3],
            whole.param("blocks.0.attn.qkv.weight").ptr<float>()[3]);
}
