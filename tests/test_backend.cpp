// The backend interface: CPU against a plain reference, CUDA against CPU.
#include <gtest/gtest.h>

#include "core/cuda_check.h"
#include "gpu_test.h"
#include "kernels/backend.h"
#include "random.h"

using namespace st;

// c = op(a) op(b) by the definition, in double.
static Tensor naive_matmul(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  int64_t n = tb ? b.dim(0) : b.dim(1);
  Tensor c = Tensor::empty({m, n}, DType::F32, Place::Host);
  const float *A = a.ptr<float>(), *B = b.ptr<float>();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p)
        s += double(ta ? A[p * m + i] : A[i * k + p]) * (tb ? B[j * k + p] : B[p * n + j]);
      c.ptr<float>()[i * n + j] = float(s);
    }
  return c;
}

static Tensor random_tensor(Shape shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::F32, Place::Host);
  test::fill_uniform(t, seed);
  return t;
}

TEST(CpuBackend, MatmulMatchesDefinitionForEveryTransposeAtOddSizes) {
  auto cpu = make_backend("cpu");
  const int64_t m = 37, n = 23, k = 51;
  for (int t = 0; t < 4; ++t) {
    bool ta = t & 1, tb = t & 2;
    Tensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, 10 + t);
    Tensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, 20 + t);
    Tensor c = random_tensor({m, n}, 30 + t);  // poison: beta = 0 must ignore it
    cpu->matmul(c, a, ta, b, tb);
    EXPECT_LT(test::relative_error(c, naive_matmul(a, ta, b, tb)), 1e-6) << "case " << t;
  }
}

TEST(CpuBackend, MatmulAccumulatesWithBeta) {
  auto cpu = make_backend("cpu");
  Tensor a = random_tensor({5, 3}, 1), b = random_tensor({3, 4}, 2), c = random_tensor({5, 4}, 3);
  Tensor expect = naive_matmul(a, false, b, false);
  for (int64_t i = 0; i < expect.numel(); ++i)
    expect.ptr<float>()[i] = 2 * expect.ptr<float>()[i] + 0.5f * c.ptr<float>()[i];
  cpu->matmul(c, a, false, b, false, 2.0f, 0.5f);
  EXPECT_LT(test::relative_error(c, expect), 1e-6);
}

TEST(CpuBackend, RefusesMismatchedShapes) {
  auto cpu = make_backend("cpu");
  Tensor a = random_tensor({5, 3}, 1), b = random_tensor({4, 4}, 2), c = random_tensor({5, 4}, 3);
  EXPECT_THROW(cpu->matmul(c, a, false, b, false), Error);
  EXPECT_THROW(make_backend("tpu"), Error);
}

TEST(CpuBackend, AddAndCastRoundTrip) {
  auto cpu = make_backend("cpu");
  Tensor a = random_tensor({101}, 4), b = random_tensor({101}, 5);
  Tensor sum = cpu->empty({101}, DType::F32);
  cpu->add(sum, a, b);
  for (int i = 0; i < 101; ++i) ASSERT_EQ(sum.ptr<float>()[i], a.ptr<float>()[i] + b.ptr<float>()[i]);
  Tensor half = cpu->empty({101}, DType::F16), back = cpu->empty({101}, DType::F32);
  cpu->cast(half, a);
  cpu->cast(back, half);
  EXPECT_LT(test::relative_error(back, a), 1e-3);  // fp16 keeps 11 significant bits
  EXPECT_GT(test::relative_error(back, a), 0.0);   // and does round
}

TEST(CudaBackend, MatmulAgreesWithCpuAtOddSizesInFp32AndFp16) {
  ST_REQUIRE_GPU();
  auto cpu = make_backend("cpu");
  auto gpu = make_backend("cuda");
  const int64_t m = 129, n = 67, k = 255;
  for (DType dtype : {DType::F32, DType::F16}) {
    for (int t = 0; t < 4; ++t) {
      bool ta = t & 1, tb = t & 2;
      Tensor a = random_tensor(ta ? Shape{k, m} : Shape{m, k}, 40 + t);
      Tensor b = random_tensor(tb ? Shape{n, k} : Shape{k, n}, 50 + t);
      Tensor expect = cpu->empty({m, n}, DType::F32);
      cpu->matmul(expect, a, ta, b, tb);
      // Inputs in the GPU's storage type; the output poisoned beforehand.
      Tensor da = gpu->empty(a.shape, dtype), db = gpu->empty(b.shape, dtype);
      Tensor dc = gpu->empty({m, n}, dtype), poison = gpu->empty({m, n}, DType::F32);
      Tensor a32 = to_place(a, Place::Device), b32 = to_place(b, Place::Device);
      gpu->cast(da, a32);
      gpu->cast(db, b32);
      CUDA_CHECK(cudaMemset(dc.data, 0xFF, dc.bytes()));  // NaN in both fp16 and fp32
      gpu->matmul(dc, da, ta, db, tb);
      gpu->cast(poison, dc);
      Tensor got = to_place(poison, Place::Host);
      // fp16 inputs round to 11 bits (relative 2^-11 each); fp32 accumulates.
      double tol = dtype == DType::F16 ? 2e-3 : 1e-5;
      EXPECT_LT(test::relative_error(got, expect), tol)
          << dtype_name(dtype) << " case " << t;
    }
  }
}

TEST(CudaBackend, AddAndCastAgreeWithCpu) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  Tensor a = random_tensor({1001}, 6), b = random_tensor({1001}, 7);
  Tensor da = to_place(a, Place::Device), db = to_place(b, Place::Device);
  Tensor dsum = gpu->empty({1001}, DType::F32);
  gpu->add(dsum, da, db);
  Tensor sum = to_place(dsum, Place::Host);
  for (int i = 0; i < 1001; ++i) ASSERT_EQ(sum.ptr<float>()[i], a.ptr<float>()[i] + b.ptr<float>()[i]);
  Tensor dh = gpu->empty({1001}, DType::F16), dback = gpu->empty({1001}, DType::F32);
  gpu->cast(dh, da);
  gpu->cast(dback, dh);
  auto cpu = make_backend("cpu");
  Tensor h = cpu->empty({1001}, DType::F16), back = cpu->empty({1001}, DType::F32);
  cpu->cast(h, a);
  cpu->cast(back, h);
  Tensor got = to_place(dback, Place::Host);
  for (int i = 0; i < 1001; ++i) ASSERT_EQ(got.ptr<float>()[i], back.ptr<float>()[i]);
}
