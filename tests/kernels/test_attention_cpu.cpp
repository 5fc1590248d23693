// The CPU reference attention against the contract: masks built here, from
// the formulas of docs/attention-patterns.md and independently of
// kernels/attention_pattern.cpp, drive a dense masked attention in fp64.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/backend.h"
#include "kernels/cpu/attention.h"

using namespace st;

namespace {

// Part 1 / part 2 membership exactly as the contract's table states it.
bool in_part1(const AttentionSpec& s, int64_t i, int64_t j) {
  if (j > i) return false;
  if (s.pattern == Pattern::Dense) return true;
  if (s.pattern == Pattern::Strided) return i - s.stride < j;
  return j / s.stride == i / s.stride;
}

bool in_part2(const AttentionSpec& s, int64_t h, int64_t i, int64_t j) {
  if (j > i || s.pattern == Pattern::Dense) return false;
  if (s.pattern == Pattern::Strided) return (i - j) % s.stride == 0;
  int64_t slice = h % s.slices, cell = j % s.stride;
  return cell >= s.stride - (slice + 1) * s.summary && cell < s.stride - slice * s.summary;
}

bool allowed(const AttentionSpec& s, int64_t h, int64_t i, int64_t j) {
  if (s.pattern == Pattern::Dense) return j <= i;
  bool use1 = true, use2 = true;
  if (s.part == AttentionPart::Part1) use2 = false;
  if (s.part == AttentionPart::Part2) use1 = false;
  if (s.part == AttentionPart::SplitHeads) (h < s.heads / 2 ? use2 : use1) = false;
  return (use1 && in_part1(s, i, j)) || (use2 && in_part2(s, h, i, j));
}

// Dense attention with an explicit mask, fp64.
void masked_attention(std::vector<double>& out, const std::vector<double>& qkv,
                      const AttentionSpec& s) {
  int64_t W = s.qkv_width(), O = s.out_width(), dqk = s.head_dim_qk, dv = s.head_dim_v;
  out.assign(s.batch * s.n * O, 0.0);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.n; ++i) {
        std::vector<double> w(s.n, 0.0);
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < s.n; ++j) {
          if (!allowed(s, h, i, j)) continue;
          double dot = 0;
          for (int64_t d = 0; d < dqk; ++d)
            dot += qkv[(b * s.n + i) * W + h * dqk + d] *
                   qkv[(b * s.n + j) * W + s.heads * dqk + h * dqk + d];
          w[j] = dot / std::sqrt(double(dqk));
          max = std::max(max, w[j]);
        }
        if (max == -INFINITY) continue;  // empty row: output stays zero
        for (int64_t j = 0; j < s.n; ++j)
          if (allowed(s, h, i, j)) sum += (w[j] = std::exp(w[j] - max));
          else w[j] = 0;
        for (int64_t j = 0; j < s.n; ++j)
          for (int64_t d = 0; d < dv; ++d)
            out[(b * s.n + i) * O + h * dv + d] +=
                w[j] / sum * qkv[(b * s.n + j) * W + 2 * s.heads * dqk + h * dv + d];
      }
}

std::vector<double> random_vector(size_t size, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-1.5, 1.5);
  std::vector<double> v(size);
  for (double& x : v) x = dist(gen);
  return v;
}

std::vector<AttentionSpec> specs() {
  std::vector<AttentionSpec> all;
  for (Pattern p : {Pattern::Dense, Pattern::Strided, Pattern::Fixed})
    for (AttentionPart part : {AttentionPart::Merged, AttentionPart::Part1, AttentionPart::Part2,
                               AttentionPart::SplitHeads})
      for (int64_t l : {1, 4, 8})
        for (int64_t c : {1, 2, 4}) {
          if (c > l || l % c) continue;
          for (int64_t v : {1, 2}) {
            if (v * c > l || (p != Pattern::Fixed && (c > 1 || v > 1))) continue;
            AttentionSpec s;
            s.pattern = p, s.part = part, s.batch = 2, s.n = 24, s.stride = l, s.summary = c;
            s.slices = v, s.heads = 4, s.head_dim_qk = 3, s.head_dim_v = 5;
            all.push_back(s);
          }
        }
  return all;
}

std::string describe(const AttentionSpec& s) {
  return std::string(pattern_name(s.pattern)) + "/" + part_name(s.part) +
         " l=" + std::to_string(s.stride) + " c=" + std::to_string(s.summary) +
         " v=" + std::to_string(s.slices);
}

}  // namespace

TEST(AttentionPattern, WorkedExamplesOfTheContract) {
  AttentionSpec s;
  s.n = 12, s.stride = 4, s.heads = 1, s.head_dim_qk = s.head_dim_v = 1;
  std::vector<int64_t> keys;
  s.pattern = Pattern::Strided;
  attention_keys(s, 0, 9, keys);
  EXPECT_EQ(keys, (std::vector<int64_t>{1, 5, 6, 7, 8, 9}));
  s.part = AttentionPart::Part2;
  attention_keys(s, 0, 9, keys);
  EXPECT_EQ(keys, (std::vector<int64_t>{1, 5, 9}));
  s.pattern = Pattern::Fixed, s.summary = 1, s.part = AttentionPart::Merged;
  attention_keys(s, 0, 9, keys);
  EXPECT_EQ(keys, (std::vector<int64_t>{3, 7, 8, 9}));
  s.part = AttentionPart::Part2;
  attention_keys(s, 0, 2, keys);
  EXPECT_TRUE(keys.empty());  // the first block has no summary yet
}

TEST(AttentionPattern, NnzMatchesTheContractsCounts) {
  AttentionSpec s;
  s.n = 16384, s.stride = 128, s.summary = 32, s.heads = 1, s.head_dim_qk = s.head_dim_v = 64;
  s.pattern = Pattern::Fixed;
  EXPECT_EQ(attention_nnz(s, 0), 34349056);
  s.pattern = Pattern::Strided;
  EXPECT_EQ(attention_nnz(s, 0), 3129408);
}

TEST(AttentionPattern, KeysMatchIndependentMaskForEverySpec) {
  ASSERT_GT(specs().size(), 60u);
  std::vector<int64_t> keys;
  for (const AttentionSpec& s : specs())
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.n; ++i) {
        attention_keys(s, h, i, keys);
        std::vector<int64_t> expect;
        for (int64_t j = 0; j < s.n; ++j)
          if (allowed(s, h, i, j)) expect.push_back(j);
        ASSERT_EQ(keys, expect) << describe(s) << " head " << h << " query " << i;
      }
}

TEST(AttentionCpu, SparseEqualsDenseMaskedAttention) {
  uint64_t seed = 1;
  for (const AttentionSpec& s : specs()) {
    std::vector<double> qkv = random_vector(s.batch * s.n * s.qkv_width(), seed++);
    std::vector<double> expect, out(s.batch * s.n * s.out_width(), NAN);
    std::vector<double> lse(s.batch * s.heads * s.n, NAN);
    masked_attention(expect, qkv, s);
    cpu::attention_forward(out.data(), lse.data(), qkv.data(), s);
    for (size_t x = 0; x < out.size(); ++x) {
      ASSERT_FALSE(std::isnan(out[x])) << describe(s);
      ASSERT_NEAR(out[x], expect[x], 1e-12) << describe(s) << " element " << x;
    }
  }
}

TEST(AttentionCpu, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 100;
  for (const AttentionSpec& base : specs()) {
    if (base.stride != 4) continue;  // one stride keeps the test quick
    AttentionSpec s = base;
    s.batch = 1, s.n = 12;
    std::vector<double> qkv = random_vector(s.n * s.qkv_width(), seed++);
    std::vector<double> w = random_vector(s.n * s.out_width(), seed++);  // loss = sum(w * out)
    std::vector<double> out(s.n * s.out_width()), lse(s.heads * s.n), grad(qkv.size());
    cpu::attention_forward(out.data(), lse.data(), qkv.data(), s);
    cpu::attention_backward(grad.data(), w.data(), qkv.data(), out.data(), lse.data(), s);
    auto loss = [&](const std::vector<double>& x) {
      std::vector<double> o(out.size()), l(lse.size());
      cpu::attention_forward(o.data(), l.data(), x.data(), s);
      double sum = 0;
      for (size_t k = 0; k < o.size(); ++k) sum += w[k] * o[k];
      return sum;
    };
    for (size_t x = 0; x < qkv.size(); x += 7) {
      std::vector<double> plus = qkv, minus = qkv;
      plus[x] += 1e-6, minus[x] -= 1e-6;
      double numeric = (loss(plus) - loss(minus)) / 2e-6;
      ASSERT_NEAR(grad[x], numeric, 1e-6 * (1 + std::abs(numeric))) << describe(s) << " " << x;
    }
  }
}

TEST(AttentionCpu, SpecValidationNamesTheRule) {
  AttentionSpec s;
  s.pattern = Pattern::Fixed, s.n = 20, s.stride = 8, s.summary = 3, s.heads = 3;
  s.head_dim_qk = s.head_dim_v = 4;
  try {
    validate(s);
    FAIL() << "n = 20 with l = 8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of the stride"), std::string::npos);
  }
  s.n = 24;
  EXPECT_THROW(validate(s), Error);  // c = 3 does not divide l = 8
  s.summary = 4, s.part = AttentionPart::SplitHeads;
  EXPECT_THROW(validate(s), Error);  // odd heads
  s.heads = 4;
  EXPECT_NO_THROW(validate(s));
}
