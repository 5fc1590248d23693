// The CUDA backend's model operations against the CPU backend's, at odd sizes.
//
// Inputs are fresh random values rounded to fp16 on the host, so that both
// backends see exactly the same numbers; outputs are poisoned with NaN
// beforehand (an element a kernel forgets to write fails the comparison);
// "+=" outputs start from random values on both sides.
//
// Tolerances, as relative error ||gpu - cpu|| / ||cpu||:
// - kHalf = 2e-3 for fp16 outputs.  The GPU computes in fp32 from the same
//   inputs and rounds each output once to fp16 (relative 2^-11 = 4.9e-4 at
//   worst, about 3e-4 in the norm); 2e-3 leaves room for fp32 sums taken in
//   another order, while a wrong index or a missed term costs O(1).
// - kGrad = 1e-4 for fp32 parameter gradients and statistics computed from
//   fp16 inputs: products of fp16 values are exact in fp32, only the order of
//   the fp32 sums differs (about 1e-6), far below one fp16 rounding.
// - kFull = 1e-5 for the fp32 activation path: fp32 arithmetic throughout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/cuda_check.h"
#include "kernels/dropout_hash.h"
#include "tests/gpu_test.h"
#include "tests/random.h"

using namespace st;

namespace {

constexpr double kHalf = 2e-3, kGrad = 1e-4, kFull = 1e-5;

double tolerance(DType dtype) { return dtype == DType::F16 ? kHalf : kFull; }

struct CudaOps : ::testing::Test {
  std::unique_ptr<Backend> cpu, gpu;

  void SetUp() override {
    ST_REQUIRE_GPU();
    cpu = make_cpu_backend();
    gpu = make_cuda_backend();
  }

  // Host fp32, uniform in [offset - scale, offset + scale], rounded to fp16.
  Tensor random(Shape shape, uint64_t seed, double scale = 1.0, double offset = 0.0) {
    Tensor t = Tensor::empty(shape, DType::F32, Place::Host);
    test::fill_uniform(t, seed, scale);
    for (int64_t i = 0; i < t.numel(); ++i) t.ptr<float>()[i] += float(offset);
    Tensor half = cpu->empty(shape, DType::F16);
    cpu->cast(half, t);
    cpu->cast(t, half);
    return t;
  }

  Tensor indices(int64_t rows, int32_t limit, uint64_t seed) {
    Tensor t = Tensor::empty({rows}, DType::I32, Place::Host);
    for (int64_t i = 0; i < rows; ++i) t.ptr<int32_t>()[i] = int32_t(mix64(seed + i) % limit);
    return t;
  }

  // A host fp32 tensor on the device in the given dtype.
  Tensor up(const Tensor& host, DType dtype) {
    Tensor f32 = to_place(host, Place::Device);
    if (dtype == DType::F32) return f32;
    Tensor t = gpu->empty(host.shape, dtype);
    gpu->cast(t, f32);
    return t;
  }

  // A device fp16/fp32 tensor as host fp32.
  Tensor down(const Tensor& dev) {
    Tensor f32 = gpu->empty(dev.shape, DType::F32);
    gpu->cast(f32, dev);
    return to_place(f32, Place::Host);
  }

  // NaN in fp16 and fp32 alike.
  Tensor poisoned(Shape shape, DType dtype) {
    Tensor t = gpu->empty(shape, dtype);
    CUDA_CHECK(cudaMemset(t.data, 0xFF, t.bytes()));
    return t;
  }

  Tensor clone(const Tensor& host) { return to_place(host, Place::Host); }
};

double rel(const Tensor& got, const Tensor& want) { return test::relative_error(got, want); }

Tensor none;

const DType kTypes[] = {DType::F16, DType::F32};

}  // namespace

TEST_F(CudaOps, LinearForwardAndBackward) {
  struct Case { int64_t rows, k, n; bool bias; };
  for (Case c : {Case{37, 72, 216, true}, Case{37, 45, 51, true}, Case{37, 45, 51, false}}) {
    for (DType dt : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " k=" + std::to_string(c.k) +
                   " n=" + std::to_string(c.n) + (c.bias ? " bias" : ""));
      Tensor in = random({c.rows, c.k}, 1), w = random({c.n, c.k}, 2), b = random({c.n}, 3);
      Tensor d_out = random({c.rows, c.n}, 4);
      Tensor dw = random({c.n, c.k}, 5), db = random({c.n}, 6);
      Tensor out = cpu->empty({c.rows, c.n}, DType::F32), d_in = cpu->empty(in.shape, DType::F32);
      Tensor dw_ref = clone(dw), db_ref = clone(db);
      Tensor bias = c.bias ? b : none, d_bias = c.bias ? db_ref : none;
      cpu->linear_forward(out, in, w, bias);
      cpu->linear_backward(d_in, dw_ref, d_bias, d_out, in, w);

      Tensor g_in = up(in, dt), g_w = up(w, dt), g_b = c.bias ? up(b, dt) : none;
      Tensor g_out = poisoned(out.shape, dt), g_d_in = poisoned(in.shape, dt);
      Tensor g_dw = up(dw, DType::F32), g_db = c.bias ? up(db, DType::F32) : none;
      gpu->linear_forward(g_out, g_in, g_w, g_b);
      gpu->linear_backward(g_d_in, g_dw, g_db, up(d_out, dt), g_in, g_w);
      EXPECT_LT(rel(down(g_out), out), tolerance(dt));
      EXPECT_LT(rel(down(g_d_in), d_in), tolerance(dt));
      EXPECT_LT(rel(down(g_dw), dw_ref), dt == DType::F16 ? kGrad : kFull);
      if (c.bias) {
        EXPECT_LT(rel(down(g_db), db_ref), dt == DType::F16 ? kGrad : kFull);
      }
    }
  }
}

TEST_F(CudaOps, LinearGradientsMayBeFp16) {
  const int64_t rows = 37, k = 72, n = 40;
  Tensor in = random({rows, k}, 7), w = random({n, k}, 8), d_out = random({rows, n}, 9);
  Tensor dw = random({n, k}, 10), db = random({n}, 11);
  Tensor dw_ref = clone(dw), db_ref = clone(db);
  cpu->linear_backward(none, dw_ref, db_ref, d_out, in, w);
  Tensor g_dw = up(dw, DType::F16), g_db = up(db, DType::F16);
  gpu->linear_backward(none, g_dw, g_db, up(d_out, DType::F16), up(in, DType::F16),
                       up(w, DType::F16));
  EXPECT_LT(rel(down(g_dw), dw_ref), kHalf);
  EXPECT_LT(rel(down(g_db), db_ref), kHalf);
}

TEST_F(CudaOps, LayerNormForwardAndBackward) {
  // 72: 16-byte chunks; 37: element by element; 520: several chunks per lane.
  for (int64_t C : {72, 37, 520}) {
    for (DType dt : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " C=" + std::to_string(C));
      const int64_t rows = 37;
      // A mean far from zero: the variance must not come from E[x^2] - E[x]^2.
      Tensor in = random({rows, C}, 20, 1.0, 3.0), gamma = random({C}, 21, 1.0, 1.0);
      Tensor beta = random({C}, 22), d_out = random({rows, C}, 23), d_in = random({rows, C}, 24);
      Tensor dg = random({C}, 25), dbeta = random({C}, 26);
      Tensor out = cpu->empty({rows, C}, DType::F32);
      Tensor mean = cpu->empty({rows}, DType::F32), rstd = cpu->empty({rows}, DType::F32);
      Tensor d_in_ref = clone(d_in), dg_ref = clone(dg), db_ref = clone(dbeta);
      cpu->layernorm_forward(out, mean, rstd, in, gamma, beta);
      cpu->layernorm_backward(d_in_ref, dg_ref, db_ref, d_out, in, mean, rstd, gamma);

      Tensor g_in = up(in, dt), g_gamma = up(gamma, dt), g_out = poisoned({rows, C}, dt);
      Tensor g_mean = poisoned({rows}, DType::F32), g_rstd = poisoned({rows}, DType::F32);
      gpu->layernorm_forward(g_out, g_mean, g_rstd, g_in, g_gamma, up(beta, dt));
      EXPECT_LT(rel(down(g_out), out), tolerance(dt));
      EXPECT_LT(rel(down(g_mean), mean), kFull);
      EXPECT_LT(rel(down(g_rstd), rstd), dt == DType::F16 ? kGrad : kFull);

      // The backward from the CPU's statistics, so that only it is compared.
      Tensor g_d_in = up(d_in, dt), g_dg = up(dg, DType::F32), g_db = up(dbeta, DType::F32);
      gpu->layernorm_backward(g_d_in, g_dg, g_db, up(d_out, dt), g_in, up(mean, DType::F32),
                              up(rstd, DType::F32), g_gamma);
      EXPECT_LT(rel(down(g_d_in), d_in_ref), tolerance(dt));
      EXPECT_LT(rel(down(g_dg), dg_ref), dt == DType::F16 ? kGrad : kFull);
      EXPECT_LT(rel(down(g_db), db_ref), dt == DType::F16 ? kGrad : kFull);
    }
  }
}

TEST_F(CudaOps, GeluForwardAndBackward) {
  // The row slice starts 289 elements in: not 16-byte aligned, the scalar path.
  for (int64_t first : {0, 1}) {
    for (DType dt : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " first row " + std::to_string(first));
      Tensor in = random({37, 289}, 30, 4.0), d_out = random({37, 289}, 31);
      Tensor out = cpu->empty(in.shape, DType::F32), d_in = cpu->empty(in.shape, DType::F32);
      Tensor in_rows = in.rows(first, 37), d_out_rows = d_out.rows(first, 37);
      Tensor out_rows = out.rows(first, 37), d_in_rows = d_in.rows(first, 37);
      cpu->gelu_forward(out_rows, in_rows);
      cpu->gelu_backward(d_in_rows, d_out_rows, in_rows);

      Tensor g_in = up(in, dt), g_out = poisoned(in.shape, dt), g_d_in = poisoned(in.shape, dt);
      Tensor g_d_out = up(d_out, dt);
      Tensor g_out_rows = g_out.rows(first, 37), g_d_in_rows = g_d_in.rows(first, 37);
      gpu->gelu_forward(g_out_rows, g_in.rows(first, 37));
      gpu->gelu_backward(g_d_in_rows, g_d_out.rows(first, 37), g_in.rows(first, 37));
      EXPECT_LT(rel(down(g_out_rows), out_rows), tolerance(dt));
      EXPECT_LT(rel(down(g_d_in_rows), d_in_rows), tolerance(dt));
    }
  }
}

TEST_F(CudaOps, DropoutResidualUsesTheCpuMask) {
  const Shape shape = {37, 101};
  const uint64_t seed = dropout_seed(7, 3, 2, 1);
  for (float p : {0.0f, 0.1f, 0.5f}) {
    for (DType dt : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " p=" + std::to_string(p));
      // |in| >= 0.5: a kept element is never zero, so zeros mark dropped ones.
      Tensor in = random(shape, 40, 0.25, 0.75), residual = random(shape, 41);
      Tensor out = cpu->empty(shape, DType::F32), d_in = cpu->empty(shape, DType::F32);
      cpu->dropout_residual(out, residual, in, p, seed);
      cpu->dropout_backward(d_in, in, p, seed);

      // out aliases residual, as in the model's residual stream.
      Tensor g_stream = up(residual, dt), g_d_in = poisoned(shape, dt);
      gpu->dropout_residual(g_stream, g_stream, up(in, dt), p, seed);
      gpu->dropout_backward(g_d_in, up(in, dt), p, seed);
      EXPECT_LT(rel(down(g_stream), out), tolerance(dt));
      Tensor got = down(g_d_in);
      EXPECT_LT(rel(got, d_in), tolerance(dt));
      int64_t dropped = 0;
      for (int64_t i = 0; i < got.numel(); ++i) {
        bool gpu_kept = got.ptr<float>()[i] != 0.0f;
        ASSERT_EQ(gpu_kept, d_in.ptr<float>()[i] != 0.0f) << "element " << i;
        ASSERT_EQ(gpu_kept, p == 0.0f || dropout_keep(seed, uint64_t(i), p)) << "element " << i;
        dropped += !gpu_kept;
      }
      // The mask drops about p of the elements (3737 of them: within 5 sigma).
      EXPECT_NEAR(double(dropped) / got.numel(), p, 5 * std::sqrt(p * (1 - p) / got.numel()) + 1e-9);
    }
  }
}

TEST_F(CudaOps, EmbeddingForwardAndScatterAdd) {
  const int64_t rows = 37;
  const int64_t vocab[] = {256, 19, 5};  // 5: every row is hit many times
  for (int64_t C : {72, 37}) {
    for (DType dt : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " C=" + std::to_string(C));
      std::vector<Tensor> tables, idx, d_tables, d_ref, g_tables, g_idx, g_d;
      for (int k = 0; k < 3; ++k) {
        tables.push_back(random({vocab[k], C}, 50 + k));
        idx.push_back(indices(rows, int32_t(vocab[k]), 60 + 100 * k));
        d_tables.push_back(random({vocab[k], C}, 70 + k));
        d_ref.push_back(clone(d_tables[k]));
        g_tables.push_back(up(tables[k], dt));
        g_idx.push_back(to_place(idx[k], Place::Device));
        g_d.push_back(up(d_tables[k], DType::F32));
      }
      Tensor d_out = random({rows, C}, 80), out = cpu->empty({rows, C}, DType::F32);
      cpu->embedding_forward(out, idx, tables);
      cpu->embedding_backward(d_ref, d_out, idx);
      Tensor g_out = poisoned({rows, C}, dt);
      gpu->embedding_forward(g_out, g_idx, g_tables);
      gpu->embedding_backward(g_d, up(d_out, dt), g_idx);
      EXPECT_LT(rel(down(g_out), out), tolerance(dt));
      for (int k = 0; k < 3; ++k)
        EXPECT_LT(rel(down(g_d[k]), d_ref[k]), dt == DType::F16 ? kGrad : kFull) << "table " << k;
    }
  }
}

TEST_F(CudaOps, SoftmaxCrossEntropy) {
  const int64_t rows = 37;
  const float d_scale = 65536.0f / rows;  // the loss scale over the tokens
  for (int64_t V : {256, 37}) {
    for (DType dt : kTypes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " V=" + std::to_string(V));
      Tensor logits = random({rows, V}, 90, 6.0), targets = indices(rows, int32_t(V), 91);
      Tensor losses = cpu->empty({rows}, DType::F32), d_logits = cpu->empty({rows, V}, DType::F32);
      cpu->softmax_cross_entropy(losses, d_logits, logits, targets, d_scale);
      // The gradient overwrites the logits in place, as the model does.
      Tensor g_logits = up(logits, dt), g_losses = poisoned({rows}, DType::F32);
      gpu->softmax_cross_entropy(g_losses, g_logits, g_logits, to_place(targets, Place::Device),
                                 d_scale);
      EXPECT_LT(rel(down(g_losses), losses), dt == DType::F16 ? kGrad : kFull);
      EXPECT_LT(rel(down(g_logits), d_logits), tolerance(dt));
    }
  }
}

TEST_F(CudaOps, AdamWritesMasterAndFp16CopyInOnePass) {
  const int64_t n = 1001;
  for (DType grad_type : kTypes) {
    for (int64_t step : {1, 7}) {
      SCOPED_TRACE(std::string("grad ") + dtype_name(grad_type) + " step " + std::to_string(step));
      Tensor param = random({n}, 100), m = random({n}, 101, 0.1), v = random({n}, 102, 0.01, 0.01);
      Tensor grad = random({n}, 103, 2.0);
      Backend::AdamArgs args = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.01f, 1.0f / 1024, step};
      Tensor p_ref = clone(param), m_ref = clone(m), v_ref = clone(v);
      cpu->adam_update(p_ref, m_ref, v_ref, none, grad, args);

      Tensor g_p = up(param, DType::F32), g_m = up(m, DType::F32), g_v = up(v, DType::F32);
      Tensor g_copy = poisoned({n}, DType::F16);
      gpu->adam_update(g_p, g_m, g_v, g_copy, up(grad, grad_type), args);
      EXPECT_LT(rel(down(g_p), p_ref), 1e-6);
      EXPECT_LT(rel(down(g_m), m_ref), 1e-6);
      EXPECT_LT(rel(down(g_v), v_ref), 1e-6);
      // The copy is exactly the master weights rounded to fp16.
      Tensor cast = gpu->empty({n}, DType::F16);
      gpu->cast(cast, g_p);
      Tensor a = to_place(g_copy, Place::Host), b = to_place(cast, Place::Host);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes()), 0);
      // And the update moved every weight (the test is not vacuous).
      Tensor got = down(g_p);
      for (int64_t i = 0; i < n; ++i) ASSERT_NE(got.ptr<float>()[i], param.ptr<float>()[i]);
    }
  }
}

TEST_F(CudaOps, SumSquaresExposesInfAndNan) {
  const int64_t n = 100003;
  for (DType dt : kTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random({n}, 110);
    double want = cpu->sum_squares(x);
    Tensor g = up(x, dt);
    EXPECT_NEAR(gpu->sum_squares(g), want, 1e-9 * want);  // fp64 sums of exact squares
    // Unaligned: one element in.
    EXPECT_NEAR(gpu->sum_squares(g.rows(1, n)), want - double(x.ptr<float>()[0]) * x.ptr<float>()[0],
                1e-9 * want);
    for (float bad : {INFINITY, NAN}) {
      Tensor y = clone(x);
      y.ptr<float>()[n - 2] = bad;
      double s = gpu->sum_squares(up(y, dt));
      EXPECT_TRUE(std::isnan(bad) ? std::isnan(s) : std::isinf(s)) << s;
    }
  }
}

TEST_F(CudaOps, ScaleAndFill) {
  for (DType dt : kTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random({37, 73}, 120), want = clone(x);
    cpu->scale(want, 0.375f);
    Tensor g = up(x, dt);
    gpu->scale(g, 0.375f);
    EXPECT_LT(rel(down(g), want), tolerance(dt));
    Tensor f = poisoned({37, 73}, dt);
    gpu->fill(f, -2.5f);
    Tensor got = down(f);
    for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(got.ptr<float>()[i], -2.5f);
  }
}

TEST_F(CudaOps, RefusesMismatchedInput) {
  Tensor a = gpu->empty({37, 72}, DType::F16), b = gpu->empty({37, 71}, DType::F16);
  EXPECT_THROW(gpu->gelu_forward(b, a), Error);
  Tensor w = gpu->empty({40, 71}, DType::F16), out = gpu->empty({37, 40}, DType::F16);
  EXPECT_THROW(gpu->linear_forward(out, a, w, none), Error);
  Tensor host = cpu->empty({37, 72}, DType::F32);
  EXPECT_THROW(gpu->gelu_forward(a, host), Error);
  EXPECT_THROW(gpu->gelu_forward(host, a), Error);
  EXPECT_THROW(gpu->dropout_backward(a, a, 1.0f, 1), Error);
}
