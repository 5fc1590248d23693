// The CUDA attention kernels against the CPU reference (fp64) on fresh
// random fp16 inputs, through the CUDA backend.  Outputs, lse and gradients
// are poisoned with NaN before each run, so an element left unwritten fails.
//
// Tolerances (fp16 storage, fp32 accumulation, P and dS rounded to fp16 for
// the tensor cores): relative error ||gpu - ref|| / ||ref|| below 5e-3 for
// the output, 1e-2 for each of dQ, dK, dV; lse within 5e-3 absolute.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/cuda_check.h"
#include "tests/gpu_test.h"
#include "kernels/attention_pattern.h"
#include "kernels/backend.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention.cuh"

using namespace st;

namespace {

constexpr double kOutTol = 5e-3, kGradTol = 1e-2, kLseTol = 5e-3;

std::string describe(const AttentionSpec& s) {
  return std::string(pattern_name(s.pattern)) + "/" + part_name(s.part) +
         " n=" + std::to_string(s.n) + " l=" + std::to_string(s.stride) +
         " c=" + std::to_string(s.summary) + " v=" + std::to_string(s.slices) +
         " b=" + std::to_string(s.batch) + " h=" + std::to_string(s.heads) +
         " d=" + std::to_string(s.head_dim_qk) + "/" + std::to_string(s.head_dim_v) +
         (cuda::attention_uses_fused_kernels(s) ? " fused" : " generic");
}

AttentionSpec make_spec(Pattern p, AttentionPart part, int64_t n, int64_t l, int64_t c,
                        int64_t v, int64_t batch, int64_t heads, int64_t dqk, int64_t dv) {
  AttentionSpec s;
  s.pattern = p, s.part = part, s.n = n, s.stride = l, s.summary = c, s.slices = v;
  s.batch = batch, s.heads = heads, s.head_dim_qk = dqk, s.head_dim_v = dv;
  return s;
}

// Random values rounded to fp16: the host keeps exactly what the GPU reads.
struct HalfData {
  std::vector<double> host;
  Tensor device;
};

HalfData random_half(int64_t rows, int64_t cols, uint64_t seed, double scale) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-scale, scale);
  std::vector<__half> h(rows * cols);
  HalfData d;
  d.host.resize(h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    h[i] = __float2half(float(dist(gen)));
    d.host[i] = __half2float(h[i]);
  }
  d.device = Tensor::empty({rows, cols}, DType::F16, Place::Device);
  CUDA_CHECK(cudaMemcpy(d.device.data, h.data(), h.size() * sizeof(__half),
                        cudaMemcpyHostToDevice));
  return d;
}

Tensor poisoned(const Shape& shape, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype, Place::Device);
  CUDA_CHECK(cudaMemset(t.data, 0xFF, t.bytes()));  // NaN in fp16 and fp32
  return t;
}

std::vector<double> to_host(const Tensor& t) {
  std::vector<double> out(t.numel());
  if (t.dtype == DType::F16) {
    std::vector<__half> h(t.numel());
    CUDA_CHECK(cudaMemcpy(h.data(), t.data, t.bytes(), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < h.size(); ++i) out[i] = __half2float(h[i]);
  } else {
    std::vector<float> f(t.numel());
    CUDA_CHECK(cudaMemcpy(f.data(), t.data, t.bytes(), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < f.size(); ++i) out[i] = f[i];
  }
  return out;
}

// Accumulates ||a - b||^2 and ||b||^2, and counts NaNs in a.
struct ErrorNorm {
  double diff = 0, ref = 0;
  int64_t nans = 0;
  void add(double a, double b) {
    if (std::isnan(a)) ++nans;
    diff += (a - b) * (a - b), ref += b * b;
  }
  double relative() const { return nans ? INFINITY : std::sqrt(diff / ref); }
};

struct GpuRun {
  Tensor out, lse, d_qkv;
};

GpuRun run_gpu(Backend& gpu, const AttentionSpec& s, const HalfData& qkv,
               const HalfData& d_out) {
  GpuRun r;
  r.out = poisoned({s.batch * s.n, s.out_width()}, DType::F16);
  r.lse = poisoned({s.batch, s.heads, s.n}, DType::F32);
  r.d_qkv = poisoned({s.batch * s.n, s.qkv_width()}, DType::F16);
  gpu.attention_forward(r.out, r.lse, qkv.device, s);
  gpu.attention_backward(r.d_qkv, d_out.device, qkv.device, r.out, r.lse, s);
  gpu.synchronize();
  return r;
}

// Whole-tensor comparison with the fp64 CPU reference.
void check_full(Backend& gpu, const AttentionSpec& s, uint64_t seed) {
  SCOPED_TRACE(describe(s));
  HalfData qkv = random_half(s.batch * s.n, s.qkv_width(), seed, 2.0);
  HalfData d_out = random_half(s.batch * s.n, s.out_width(), seed + 1, 1.0);
  GpuRun r = run_gpu(gpu, s, qkv, d_out);

  std::vector<double> out(s.batch * s.n * s.out_width()), lse(s.batch * s.heads * s.n);
  std::vector<double> d_qkv(qkv.host.size());
  cpu::attention_forward(out.data(), lse.data(), qkv.host.data(), s);
  cpu::attention_backward(d_qkv.data(), d_out.host.data(), qkv.host.data(), out.data(),
                          lse.data(), s);

  std::vector<double> g_out = to_host(r.out), g_lse = to_host(r.lse), g_d = to_host(r.d_qkv);
  ErrorNorm e_out;
  for (size_t i = 0; i < out.size(); ++i) e_out.add(g_out[i], out[i]);
  EXPECT_LT(e_out.relative(), kOutTol) << "output";
  double lse_err = 0;
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(lse[i])) {  // an empty row: -inf, and its output exactly 0
      ASSERT_TRUE(std::isinf(g_lse[i]) && g_lse[i] < 0) << "lse of empty row " << i;
      int64_t b = i / (s.heads * s.n), h = i / s.n % s.heads, row = b * s.n + i % s.n;
      for (int64_t d = 0; d < s.head_dim_v; ++d)
        ASSERT_EQ(g_out[row * s.out_width() + h * s.head_dim_v + d], 0.0) << "empty row " << i;
    } else {
      ASSERT_FALSE(std::isnan(g_lse[i])) << "lse " << i;
      lse_err = std::max(lse_err, std::abs(g_lse[i] - lse[i]));
    }
  }
  EXPECT_LT(lse_err, kLseTol) << "lse";

  // dQ, dK, dV each on its own: a wrong part must not hide behind the others.
  const int64_t W = s.qkv_width(), q_end = s.heads * s.head_dim_qk, k_end = 2 * q_end;
  ErrorNorm e[3];
  for (int64_t i = 0; i < int64_t(d_qkv.size()); ++i) {
    int64_t col = i % W;
    e[col < q_end ? 0 : col < k_end ? 1 : 2].add(g_d[i], d_qkv[i]);
  }
  const char* names[3] = {"dQ", "dK", "dV"};
  for (int x = 0; x < 3; ++x) EXPECT_LT(e[x].relative(), kGradTol) << names[x];
}

std::vector<AttentionPart> all_parts(Pattern p) {
  if (p == Pattern::Dense) return {AttentionPart::Merged};
  return {AttentionPart::Merged, AttentionPart::Part1, AttentionPart::Part2,
          AttentionPart::SplitHeads};
}

// Contract membership, written from docs/attention-patterns.md (independent of
// attention_keys), for the sampled checks.
bool allowed(const AttentionSpec& s, int64_t h, int64_t i, int64_t j) {
  if (j > i) return false;
  if (s.pattern == Pattern::Dense) return true;
  int part = head_part(s, h);
  bool in1 = s.pattern == Pattern::Strided ? i - s.stride < j : j / s.stride == i / s.stride;
  bool in2;
  if (s.pattern == Pattern::Strided) {
    in2 = (i - j) % s.stride == 0;
  } else {
    int64_t slice = h % s.slices, cell = j % s.stride;
    in2 = cell >= s.stride - (slice + 1) * s.summary && cell < s.stride - slice * s.summary;
  }
  return (part != 2 && in1) || (part != 1 && in2);
}

}  // namespace

TEST(AttentionCuda, MatchesCpuOnEveryPatternModeAndHeadSize) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  uint64_t seed = 1000;
  for (int64_t d : {64, 128})
    for (Pattern p : {Pattern::Dense, Pattern::Strided, Pattern::Fixed})
      for (AttentionPart part : all_parts(p)) {
        // l = 128 as in the paper; a second stride exercises other tile shapes.
        check_full(*gpu, make_spec(p, part, 512, 128, 32, 2, 2, 4, d, d), seed += 2);
        if (p == Pattern::Strided) {
          check_full(*gpu, make_spec(p, part, 640, 16, 1, 1, 1, 2, d, d), seed += 2);
          // Columns of two tiles, the second partial (100 rows) and whole
          // (128): the short columns' kernels with d = 64.
          check_full(*gpu, make_spec(p, part, 1600, 16, 1, 1, 1, 2, d, d), seed += 2);
          check_full(*gpu, make_spec(p, part, 2048, 16, 1, 1, 1, 2, d, d), seed += 2);
        }
        if (p == Pattern::Fixed) {
          check_full(*gpu, make_spec(p, part, 384, 64, 8, 1, 1, 2, d, d), seed += 2);
          // A summary width that is not a power of two: cells by division.
          check_full(*gpu, make_spec(p, part, 768, 192, 48, 2, 1, 2, d, d), seed += 2);
        }
      }
}

TEST(AttentionCuda, OddShapesTakeACorrectPath) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  uint64_t seed = 5000;
  // The CPU test's small shapes: odd head sizes, strides below a tile.
  for (Pattern p : {Pattern::Dense, Pattern::Strided, Pattern::Fixed})
    for (AttentionPart part : all_parts(p))
      for (int64_t l : {4, 8})
        for (int64_t c : {1, 2, 4}) {
          if (l % c || (p != Pattern::Fixed && c > 1)) continue;
          int64_t v = p == Pattern::Fixed && 2 * c <= l ? 2 : 1;
          check_full(*gpu, make_spec(p, part, 24, l, c, v, 2, 4, 3, 5), seed += 2);
        }
  // Head size 32 (generic), a fixed stride that is not a multiple of 64
  // (generic), and lengths that are not multiples of a tile (fused).
  check_full(*gpu, make_spec(Pattern::Fixed, AttentionPart::Merged, 256, 32, 8, 2, 2, 4, 32, 32),
             seed += 2);
  check_full(*gpu, make_spec(Pattern::Fixed, AttentionPart::Part2, 288, 96, 16, 1, 1, 2, 64, 64),
             seed += 2);
  check_full(*gpu, make_spec(Pattern::Dense, AttentionPart::Merged, 1000, 1, 1, 1, 3, 2, 64, 64),
             seed += 2);
  check_full(*gpu,
             make_spec(Pattern::Strided, AttentionPart::Merged, 1000, 40, 1, 1, 2, 2, 128, 128),
             seed += 2);
  check_full(*gpu,
             make_spec(Pattern::Strided, AttentionPart::SplitHeads, 200, 200, 1, 1, 1, 2, 64, 64),
             seed += 2);
  // Small fused fixed cases (the sanitizer runs this test).
  check_full(*gpu, make_spec(Pattern::Fixed, AttentionPart::Merged, 256, 128, 32, 2, 1, 2, 64, 64),
             seed += 2);
  check_full(*gpu, make_spec(Pattern::Fixed, AttentionPart::Part2, 256, 64, 16, 1, 1, 2, 128, 128),
             seed += 2);
}

// More (sequence, head) pairs than a 16-bit grid dimension holds (65,600):
// the grids are one-dimensional, the pair inside the block index.
TEST(AttentionCuda, ManySequencesAndHeads) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  check_full(*gpu, make_spec(Pattern::Strided, AttentionPart::Merged, 16, 4, 1, 1, 32800, 2, 64, 64),
             7000);
}

// Large sizes: the output, lse and dQ of sampled rows, and dK, dV of sampled
// keys, from fp64 sums over exactly the allowed pairs.  A sampled key's
// gradient sums over every query that attends it; those queries' lse and
// output are the GPU's (their own check is the sampled-row one).
// One test per size (gtest_filter picks one, e.g. *LargeSizes*fixed_16384_d64_h8).
namespace {

struct Large {
  Pattern p;
  int64_t n, d, heads;
  uint64_t seed;
};

std::string large_name(const ::testing::TestParamInfo<Large>& info) {
  const Large& c = info.param;
  return std::string(pattern_name(c.p)) + "_" + std::to_string(c.n) + "_d" +
         std::to_string(c.d) + "_h" + std::to_string(c.heads);
}

// Dense n = 32768, d = 64 runs backward blocks of three warpgroups (two
// heads: 342 key tiles of 192, at least two per SM of an H100).  Fixed
// n = 65536 with 8 heads (the benchmark's shape) runs the summary keys in
// such blocks (688 key tiles of 192), which add to the own-block launch's
// dK and dV; with two heads they are blocks of two warpgroups.  Fixed
// n = 16384 with 8 heads (the benchmark's shape) runs them in halves
// (summary_halves) on an H100: its first tiles as two blocks each.
const Large kLargeSizes[] = {
    {Pattern::Dense, 4096, 64, 2, 9002},    {Pattern::Dense, 16384, 128, 2, 9004},
    {Pattern::Dense, 32768, 64, 2, 9006},   {Pattern::Strided, 4096, 64, 2, 9008},
    {Pattern::Strided, 16384, 128, 2, 9010}, {Pattern::Strided, 65536, 64, 2, 9012},
    {Pattern::Fixed, 4096, 128, 2, 9014},   {Pattern::Fixed, 16384, 64, 2, 9016},
    {Pattern::Fixed, 16384, 64, 8, 9018},   {Pattern::Fixed, 65536, 64, 2, 9020},
    {Pattern::Fixed, 65536, 64, 8, 9022}};

}  // namespace

class AttentionCudaLarge : public ::testing::TestWithParam<Large> {};

TEST_P(AttentionCudaLarge, LargeSizesMatchOnSampledRows) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  const Large& c = GetParam();
  const uint64_t seed = c.seed;
  AttentionSpec s =
      make_spec(c.p, AttentionPart::Merged, c.n, 128, 32, 2, 1, c.heads, c.d, c.d);
  SCOPED_TRACE(describe(s));
  HalfData qkv = random_half(s.n, s.qkv_width(), seed, 2.0);
  HalfData d_out = random_half(s.n, s.out_width(), seed + 1, 1.0);
  GpuRun r = run_gpu(*gpu, s, qkv, d_out);
  std::vector<double> g_out = to_host(r.out), g_lse = to_host(r.lse), g_d = to_host(r.d_qkv);

  const int64_t W = s.qkv_width(), O = s.out_width(), d = c.d, H = s.heads;
  const double scale = 1.0 / std::sqrt(double(d));
  auto q = [&](int64_t i, int64_t h) { return &qkv.host[i * W + h * d]; };
  auto k = [&](int64_t j, int64_t h) { return &qkv.host[j * W + (H + h) * d]; };
  auto v = [&](int64_t j, int64_t h) { return &qkv.host[j * W + (2 * H + h) * d]; };
  auto dot = [&](const double* a, const double* b) {
    double x = 0;
    for (int64_t t = 0; t < d; ++t) x += a[t] * b[t];
    return x;
  };
  std::mt19937_64 gen(seed);
  std::vector<int64_t> sample = {0, 127, 128, 4095, s.n - 1};
  for (int t = 0; t < 40; ++t) sample.push_back(int64_t(gen() % s.n));

  ErrorNorm e_out, e_dq, e_dk, e_dv;
  double lse_err = 0;
  std::vector<int64_t> keys;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i : sample) {
      if (i >= s.n) continue;
      attention_keys(s, h, i, keys);
      std::vector<double> sc(keys.size());
      double mx = -INFINITY, sum = 0;
      for (size_t x = 0; x < keys.size(); ++x)
        mx = std::max(mx, sc[x] = scale * dot(q(i, h), k(keys[x], h)));
      for (double x : sc) sum += std::exp(x - mx);
      double lse = mx + std::log(sum);
      lse_err = std::max(lse_err, std::abs(g_lse[h * s.n + i] - lse));
      std::vector<double> o(d, 0.0), dq(d, 0.0);
      for (size_t x = 0; x < keys.size(); ++x)
        for (int64_t t = 0; t < d; ++t) o[t] += std::exp(sc[x] - lse) * v(keys[x], h)[t];
      const double* dout = &d_out.host[i * O + h * d];
      double delta = 0;
      for (int64_t t = 0; t < d; ++t) delta += dout[t] * o[t];
      for (size_t x = 0; x < keys.size(); ++x) {
        double p = std::exp(sc[x] - lse), ds = p * (dot(dout, v(keys[x], h)) - delta);
        for (int64_t t = 0; t < d; ++t) dq[t] += scale * ds * k(keys[x], h)[t];
      }
      for (int64_t t = 0; t < d; ++t) {
        e_out.add(g_out[i * O + h * d + t], o[t]);
        e_dq.add(g_d[i * W + h * d + t], dq[t]);
      }
      // The sampled position as a key: every query that attends it.
      int64_t j = i;
      std::vector<double> dk(d, 0.0), dv(d, 0.0);
      for (int64_t qi = j; qi < s.n; ++qi) {
        if (!allowed(s, h, qi, j)) continue;
        const double* dout_q = &d_out.host[qi * O + h * d];
        double delta_q = 0;
        for (int64_t t = 0; t < d; ++t) delta_q += dout_q[t] * g_out[qi * O + h * d + t];
        double p = std::exp(scale * dot(q(qi, h), k(j, h)) - g_lse[h * s.n + qi]);
        double ds = p * (dot(dout_q, v(j, h)) - delta_q);
        for (int64_t t = 0; t < d; ++t) {
          dk[t] += scale * ds * q(qi, h)[t];
          dv[t] += p * dout_q[t];
        }
      }
      for (int64_t t = 0; t < d; ++t) {
        e_dk.add(g_d[j * W + (H + h) * d + t], dk[t]);
        e_dv.add(g_d[j * W + (2 * H + h) * d + t], dv[t]);
      }
    }
  EXPECT_LT(e_out.relative(), kOutTol) << "output";
  EXPECT_LT(lse_err, kLseTol) << "lse";
  EXPECT_LT(e_dq.relative(), kGradTol) << "dQ";
  EXPECT_LT(e_dk.relative(), kGradTol) << "dK";
  EXPECT_LT(e_dv.relative(), kGradTol) << "dV";
  // Every element written (the poison is NaN).
  for (const auto* t : {&g_out, &g_d})
    for (double x : *t) ASSERT_FALSE(std::isnan(x)) << "an element was not written";
}

INSTANTIATE_TEST_SUITE_P(AttentionCuda, AttentionCudaLarge, ::testing::ValuesIn(kLargeSizes),
                         large_name);

TEST(AttentionCuda, RefusesWrongDtypes) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  AttentionSpec s = make_spec(Pattern::Dense, AttentionPart::Merged, 64, 1, 1, 1, 1, 1, 64, 64);
  Tensor qkv = Tensor::empty({64, s.qkv_width()}, DType::F32, Place::Device);
  Tensor out = Tensor::empty({64, 64}, DType::F32, Place::Device);
  Tensor lse = Tensor::empty({1, 1, 64}, DType::F32, Place::Device);
  EXPECT_THROW(gpu->attention_forward(out, lse, qkv, s), Error);
}
