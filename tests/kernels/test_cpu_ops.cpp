// The CPU backend's model operations: forward passes against plain
// definitions written here, backward passes against central finite
// differences in fp64, and the checks that refuse bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "kernels/backend.h"
#include "kernels/dropout_hash.h"
#include "tests/random.h"

using namespace st;

namespace {

Tensor random64(Shape shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, DType::F64, Place::Host);
  test::fill_uniform(t, seed, scale);
  return t;
}

Tensor random32(Shape shape, uint64_t seed, double scale = 1.0) {
  Tensor t = Tensor::empty(shape, DType::F32, Place::Host);
  test::fill_uniform(t, seed, scale);
  return t;
}

Tensor indices(Shape shape, int32_t limit, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::I32, Place::Host);
  uint64_t state = seed;
  for (int64_t i = 0; i < t.numel(); ++i) t.ptr<int32_t>()[i] = int32_t(mix64(state++) % limit);
  return t;
}

double* d(const Tensor& t) { return t.ptr<double>(); }

// sum(w * y): a scalar loss whose gradient with respect to y is w.
double weighted_sum(const Tensor& w, const Tensor& y) {
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += d(w)[i] * d(y)[i];
  return s;
}

// Compares analytic, the gradient of loss() with respect to x, with central
// differences, element by element: |a - n| <= tol (1 + |n|).
void expect_gradient(const char* what, Tensor& x, const Tensor& analytic,
                     const std::function<double()>& loss, double tol = 1e-7) {
  ASSERT_EQ(x.numel(), analytic.numel()) << what;
  const double h = 1e-6;
  for (int64_t i = 0; i < x.numel(); ++i) {
    double saved = d(x)[i];
    d(x)[i] = saved + h;
    double plus = loss();
    d(x)[i] = saved - h;
    double minus = loss();
    d(x)[i] = saved;
    double numeric = (plus - minus) / (2 * h);
    ASSERT_NEAR(d(analytic)[i], numeric, tol * (1 + std::abs(numeric)))
        << what << " element " << i;
  }
}

Tensor zeros64(Shape shape) {
  Tensor t = Tensor::empty(shape, DType::F64, Place::Host);
  for (int64_t i = 0; i < t.numel(); ++i) d(t)[i] = 0;
  return t;
}

Tensor none;  // "not wanted"

}  // namespace

TEST(CpuOps, LinearForwardMatchesDefinition) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 13, k = 7, n = 5;
  Tensor in = random64({rows, k}, 1), w = random64({n, k}, 2), b = random64({n}, 3);
  Tensor out = random64({rows, n}, 4);  // poison
  cpu->linear_forward(out, in, w, b);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) {
      double s = d(b)[c];
      for (int64_t x = 0; x < k; ++x) s += d(in)[r * k + x] * d(w)[c * k + x];
      ASSERT_NEAR(d(out)[r * n + c], s, 1e-12);
    }
  cpu->linear_forward(out, in, w, none);  // without bias
  EXPECT_NEAR(d(out)[0], d(in)[0] * d(w)[0] + d(in)[1] * d(w)[1] + d(in)[2] * d(w)[2] +
                             d(in)[3] * d(w)[3] + d(in)[4] * d(w)[4] + d(in)[5] * d(w)[5] +
                             d(in)[6] * d(w)[6],
              1e-12);
}

TEST(CpuOps, LinearBackwardMatchesFiniteDifferencesAndAccumulates) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 6, k = 5, n = 4;
  Tensor in = random64({rows, k}, 1), w = random64({n, k}, 2), b = random64({n}, 3);
  Tensor wt = random64({rows, n}, 4), out = zeros64({rows, n});
  auto loss = [&] {
    cpu->linear_forward(out, in, w, b);
    return weighted_sum(wt, out);
  };
  Tensor d_in = random64({rows, k}, 5);  // poison: overwritten
  Tensor prior_w = random64({n, k}, 6), prior_b = random64({n}, 7);
  Tensor d_w = random64({n, k}, 6), d_b = random64({n}, 7);  // same values: accumulated onto
  cpu->linear_backward(d_in, d_w, d_b, wt, in, w);
  for (int64_t i = 0; i < d_w.numel(); ++i) d(d_w)[i] -= d(prior_w)[i];
  for (int64_t i = 0; i < d_b.numel(); ++i) d(d_b)[i] -= d(prior_b)[i];
  expect_gradient("d_in", in, d_in, loss);
  expect_gradient("d_weight", w, d_w, loss);
  expect_gradient("d_bias", b, d_b, loss);
  Tensor d_w2 = zeros64({n, k});
  cpu->linear_backward(none, d_w2, none, wt, in, w);  // d_in and d_bias not wanted
  for (int64_t i = 0; i < d_w.numel(); ++i) ASSERT_NEAR(d(d_w2)[i], d(d_w)[i], 1e-12);
}

TEST(CpuOps, LinearFp32AgreesWithFp64) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 70, k = 33, n = 65;  // odd sizes and more than one column strip
  Tensor in = random32({rows, k}, 1), w = random32({n, k}, 2), b = random32({n}, 3);
  Tensor in64 = Tensor::empty(in.shape, DType::F64, Place::Host), w64 = in64, b64 = in64;
  w64 = Tensor::empty(w.shape, DType::F64, Place::Host);
  b64 = Tensor::empty(b.shape, DType::F64, Place::Host);
  cpu->cast(in64, in), cpu->cast(w64, w), cpu->cast(b64, b);
  Tensor out = random32({rows, n}, 4), out64 = random64({rows, n}, 4), back = random32({rows, n}, 5);
  cpu->linear_forward(out, in, w, b);
  cpu->linear_forward(out64, in64, w64, b64);
  cpu->cast(back, out64);
  EXPECT_LT(test::relative_error(out, back), 1e-6);
  Tensor d_b = Tensor::empty({n}, DType::F32, Place::Host), d_w = random32({n, k}, 6);
  cpu->fill(d_b, 0), cpu->fill(d_w, 0);
  cpu->linear_backward(none, d_w, d_b, out, in, w);
  for (int64_t c = 0; c < n; ++c) {
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += out.ptr<float>()[r * n + c];
    ASSERT_NEAR(d_b.ptr<float>()[c], s, 1e-4 * (1 + std::abs(s)));
  }
}

TEST(CpuOps, LayerNormForwardNormalisesEachRow) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 9, cols = 70;
  Tensor in = random64({rows, cols}, 1, 3.0), g = random64({cols}, 2), b = random64({cols}, 3);
  for (int64_t i = 0; i < in.numel(); ++i) d(in)[i] += 100.0;  // a large mean
  Tensor out = random64({rows, cols}, 4), mean = random64({rows}, 5), rstd = random64({rows}, 6);
  cpu->layernorm_forward(out, mean, rstd, in, g, b);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < cols; ++c) m += d(in)[r * cols + c] / cols;
    for (int64_t c = 0; c < cols; ++c) v += std::pow(d(in)[r * cols + c] - m, 2) / cols;
    ASSERT_NEAR(d(mean)[r], m, 1e-12);
    ASSERT_NEAR(d(rstd)[r], 1 / std::sqrt(v + 1e-5), 1e-12);
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_NEAR(d(out)[r * cols + c],
                  (d(in)[r * cols + c] - m) / std::sqrt(v + 1e-5) * d(g)[c] + d(b)[c], 1e-10);
  }
}

TEST(CpuOps, LayerNormBackwardMatchesFiniteDifferencesAndAccumulates) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 5, cols = 6;
  Tensor in = random64({rows, cols}, 1, 2.0), g = random64({cols}, 2), b = random64({cols}, 3);
  Tensor wt = random64({rows, cols}, 4);
  Tensor out = zeros64({rows, cols}), mean = zeros64({rows}), rstd = zeros64({rows});
  auto loss = [&] {
    cpu->layernorm_forward(out, mean, rstd, in, g, b);
    return weighted_sum(wt, out);
  };
  loss();
  Tensor d_in = random64({rows, cols}, 7), prior = random64({rows, cols}, 7);
  Tensor d_g = random64({cols}, 8), prior_g = random64({cols}, 8);
  Tensor d_b = random64({cols}, 9), prior_b = random64({cols}, 9);
  cpu->layernorm_backward(d_in, d_g, d_b, wt, in, mean, rstd, g);
  for (int64_t i = 0; i < d_in.numel(); ++i) d(d_in)[i] -= d(prior)[i];
  for (int64_t i = 0; i < cols; ++i) d(d_g)[i] -= d(prior_g)[i], d(d_b)[i] -= d(prior_b)[i];
  expect_gradient("d_in", in, d_in, loss);
  expect_gradient("d_gamma", g, d_g, loss);
  expect_gradient("d_beta", b, d_b, loss);
}

TEST(CpuOps, GeluIsXTimesSigmoidAndDifferentiates) {
  auto cpu = make_cpu_backend();
  Tensor in = random64({40}, 1, 4.0), out = random64({40}, 2), wt = random64({40}, 3);
  cpu->gelu_forward(out, in);
  for (int64_t i = 0; i < 40; ++i)
    ASSERT_NEAR(d(out)[i], d(in)[i] / (1 + std::exp(-1.702 * d(in)[i])), 1e-14);
  Tensor d_in = random64({40}, 4);  // poison: overwritten
  cpu->gelu_backward(d_in, wt, in);
  expect_gradient("gelu", in, d_in, [&] {
    cpu->gelu_forward(out, in);
    return weighted_sum(wt, out);
  });
}

TEST(CpuOps, DropoutUsesTheSharedMaskAndRate) {
  auto cpu = make_cpu_backend();
  const int64_t count = 20000;
  const float p = 0.25f;
  const uint64_t seed = dropout_seed(7, 3, 2, 1);
  Tensor in = random64({count}, 1), res = random64({count}, 2), out = random64({count}, 3);
  cpu->dropout_residual(out, res, in, p, seed);
  int64_t dropped = 0;
  for (int64_t i = 0; i < count; ++i) {
    bool keep = dropout_keep(seed, i, p);
    dropped += !keep;
    double expect = d(res)[i] + (keep ? d(in)[i] / (1 - double(p)) : 0.0);
    ASSERT_NEAR(d(out)[i], expect, 1e-12) << i;
  }
  EXPECT_NEAR(double(dropped) / count, p, 0.02);
  // Backward: the same mask and scale; p = 0 is a copy; out may alias residual.
  Tensor d_in = random64({count}, 4);
  cpu->dropout_backward(d_in, in, p, seed);
  for (int64_t i = 0; i < count; ++i)
    ASSERT_EQ(d(d_in)[i], dropout_keep(seed, i, p) ? d(in)[i] * (1 / (1 - double(p))) : 0.0);
  cpu->dropout_backward(d_in, in, 0.0f, seed);
  for (int64_t i = 0; i < count; ++i) ASSERT_EQ(d(d_in)[i], d(in)[i]);
  Tensor res_copy = random64({count}, 2);
  cpu->dropout_residual(res, res, in, 0.0f, seed);
  for (int64_t i = 0; i < count; ++i) ASSERT_EQ(d(res)[i], d(res_copy)[i] + d(in)[i]);
  EXPECT_THROW(cpu->dropout_residual(out, res, in, 1.0f, seed), Error);
}

TEST(CpuOps, EmbeddingSumsTablesAndScattersGradients) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 30, cols = 20;
  std::vector<Tensor> tables = {random64({7, cols}, 1), random64({3, cols}, 2)};
  std::vector<Tensor> idx = {indices({rows}, 7, 3), indices({rows}, 3, 4)};
  Tensor out = random64({rows, cols}, 5), wt = random64({rows, cols}, 6);
  cpu->embedding_forward(out, idx, tables);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t c = 0; c < cols; ++c)
      ASSERT_NEAR(d(out)[t * cols + c],
                  d(tables[0])[idx[0].ptr<int32_t>()[t] * cols + c] +
                      d(tables[1])[idx[1].ptr<int32_t>()[t] * cols + c],
                  1e-14);
  std::vector<Tensor> grads = {zeros64({7, cols}), zeros64({3, cols})};
  cpu->embedding_backward(grads, wt, idx);
  auto loss = [&] {
    cpu->embedding_forward(out, idx, tables);
    return weighted_sum(wt, out);
  };
  expect_gradient("table 0", tables[0], grads[0], loss);
  expect_gradient("table 1", tables[1], grads[1], loss);
  idx[1].ptr<int32_t>()[5] = 3;  // one past the table
  try {
    cpu->embedding_forward(out, idx, tables);
    FAIL() << "an index outside the table was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside [0, 3)"), std::string::npos) << e.what();
  }
}

TEST(CpuOps, CrossEntropyMatchesDefinitionAndDifferentiates) {
  auto cpu = make_cpu_backend();
  const int64_t rows = 6, classes = 11;
  Tensor logits = random64({rows, classes}, 1, 3.0), targets = indices({rows}, classes, 2);
  Tensor losses = random64({rows}, 3), d_logits = random64({rows, classes}, 4);
  const float d_scale = 0.75f;
  cpu->softmax_cross_entropy(losses, d_logits, logits, targets, d_scale);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(d(logits)[r * classes + c]);
    double p = std::exp(d(logits)[r * classes + targets.ptr<int32_t>()[r]]) / sum;
    ASSERT_NEAR(d(losses)[r], -std::log(p), 1e-12);
  }
  Tensor no_grad;
  auto loss = [&] {
    cpu->softmax_cross_entropy(losses, no_grad, logits, targets, 1.0f);
    double s = 0;
    for (int64_t r = 0; r < rows; ++r) s += d_scale * d(losses)[r];
    return s;
  };
  expect_gradient("d_logits", logits, d_logits, loss);
  cpu->softmax_cross_entropy(losses, no_grad, logits, targets, 1.0f);  // unperturbed again
  // In place: d_logits may be the logits themselves.
  Tensor in_place = random64({rows, classes}, 1, 3.0), losses2 = zeros64({rows});
  cpu->softmax_cross_entropy(losses2, in_place, in_place, targets, d_scale);
  for (int64_t i = 0; i < rows; ++i) ASSERT_EQ(d(losses2)[i], d(losses)[i]);
  for (int64_t i = 0; i < in_place.numel(); ++i) ASSERT_EQ(d(in_place)[i], d(d_logits)[i]);
  targets.ptr<int32_t>()[2] = -1;
  EXPECT_THROW(cpu->softmax_cross_entropy(losses, d_logits, logits, targets, 1.0f), Error);
}

TEST(CpuOps, AdamFollowsTheAdamWFormulaAndWritesTheCopy) {
  auto cpu = make_cpu_backend();
  const int64_t count = 1000;
  Tensor p = random32({count}, 1), m = random32({count}, 2, 0.1), v = random32({count}, 3, 0.1);
  for (int64_t i = 0; i < count; ++i) v.ptr<float>()[i] = std::abs(v.ptr<float>()[i]);
  Tensor g = random32({count}, 4), copy = Tensor::empty({count}, DType::F16, Place::Host);
  Tensor p0 = random32({count}, 1), m0 = random32({count}, 2, 0.1), v0 = random32({count}, 3, 0.1);
  Backend::AdamArgs a{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 3};
  cpu->adam_update(p, m, v, copy, g, a);
  for (int64_t i = 0; i < count; ++i) {
    double gi = 0.5 * g.ptr<float>()[i], pi = p0.ptr<float>()[i];
    double mi = 0.9 * m0.ptr<float>()[i] + 0.1 * gi;
    double vi = 0.95 * std::abs(v0.ptr<float>()[i]) + 0.05 * gi * gi;
    double mhat = mi / (1 - std::pow(0.9, 3)), vhat = vi / (1 - std::pow(0.95, 3));
    double expect = pi - 1e-2 * (mhat / (std::sqrt(vhat) + 1e-8) + 0.1 * pi);
    ASSERT_NEAR(m.ptr<float>()[i], mi, 1e-6);
    ASSERT_NEAR(v.ptr<float>()[i], vi, 1e-6);
    ASSERT_NEAR(p.ptr<float>()[i], expect, 2e-6 * (1 + std::abs(expect)));
    ASSERT_EQ(__half2float(copy.ptr<__half>()[i]), __half2float(__float2half(p.ptr<float>()[i])));
  }
  Tensor no_copy;
  Tensor bad = random32({count - 1}, 5);
  EXPECT_THROW(cpu->adam_update(p, m, v, no_copy, bad, a), Error);
}

TEST(CpuOps, SumSquaresScaleAndFill) {
  auto cpu = make_cpu_backend();
  for (int64_t count : {1, 255, 10007}) {
    Tensor t = random32({count}, uint64_t(count));
    double expect = 0;
    for (int64_t i = 0; i < count; ++i) expect += double(t.ptr<float>()[i]) * t.ptr<float>()[i];
    EXPECT_NEAR(cpu->sum_squares(t), expect, 1e-12 * expect);
    cpu->scale(t, -2.0f);
    EXPECT_NEAR(cpu->sum_squares(t), 4 * expect, 1e-11 * expect);
    t.ptr<float>()[count / 2] = INFINITY;  // the overflow check of loss scaling
    EXPECT_TRUE(std::isinf(cpu->sum_squares(t)));
    t.ptr<float>()[0] = NAN;
    EXPECT_TRUE(std::isnan(cpu->sum_squares(t)));
    cpu->fill(t, 0.5f);
    for (int64_t i = 0; i < count; ++i) ASSERT_EQ(t.ptr<float>()[i], 0.5f);
  }
  Tensor t64 = random64({100}, 9);
  cpu->fill(t64, 3.0f);
  EXPECT_DOUBLE_EQ(cpu->sum_squares(t64), 900.0);
}

TEST(CpuOps, RefusesMixedDtypesAndWrongShapes) {
  auto cpu = make_cpu_backend();
  Tensor in = random32({4, 3}, 1), w = random64({5, 3}, 2), out = random32({4, 5}, 3);
  try {
    cpu->linear_forward(out, in, w, none);
    FAIL() << "mixed dtypes were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mix fp32 and fp64"), std::string::npos) << e.what();
  }
  Tensor w32 = random32({5, 4}, 2);
  EXPECT_THROW(cpu->linear_forward(out, in, w32, none), Error);
  Tensor half = Tensor::empty({4}, DType::F16, Place::Host);
  EXPECT_THROW(cpu->fill(half, 1.0f), Error);
}
