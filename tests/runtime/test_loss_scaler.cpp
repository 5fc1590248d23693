// Dynamic loss scaling: the scale's schedule, and a training step with an
// injected inf that must be skipped without touching the weights, on the CPU
// and on the CUDA backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "runtime/loss_scaler.h"
#include "tests/gpu_test.h"
#include "tests/random.h"

using namespace st;

TEST(LossScaler, StartsAt2To16AndDoublesAfter2000CleanSteps) {
  LossScaler s;
  EXPECT_EQ(s.scale, 65536.0f);
  for (int i = 0; i < 1999; ++i) ASSERT_TRUE(s.update(4.0).finite);
  EXPECT_EQ(s.scale, 65536.0f);
  GradCheck c = s.update(4.0);  // the 2000th clean step
  EXPECT_EQ(s.scale, 131072.0f);
  // That step's gradients were made at the old scale.
  EXPECT_EQ(c.unscale, 1.0f / 65536.0f);
  EXPECT_DOUBLE_EQ(c.grad_norm, 2.0 / 65536.0);
  EXPECT_EQ(s.clean_steps, 0);
  EXPECT_EQ(s.skipped_steps, 0);
}

TEST(LossScaler, HalvesOnInfOrNanAndRestartsTheCount) {
  LossScaler s;
  for (int i = 0; i < 1500; ++i) s.update(1.0);
  EXPECT_FALSE(s.update(INFINITY).finite);
  EXPECT_EQ(s.scale, 32768.0f);
  EXPECT_FALSE(s.update(NAN).finite);
  EXPECT_EQ(s.scale, 16384.0f);
  EXPECT_EQ(s.skipped_steps, 2);
  // 1500 clean steps before the overflow no longer count towards doubling.
  for (int i = 0; i < 1999; ++i) s.update(1.0);
  EXPECT_EQ(s.scale, 16384.0f);
  s.update(1.0);
  EXPECT_EQ(s.scale, 32768.0f);
}

TEST(LossScaler, RefusesToFallBelowTheMinimum) {
  LossScaler s;
  s.scale = 2.0f;
  s.update(INFINITY);
  EXPECT_EQ(s.scale, 1.0f);
  EXPECT_THROW(s.update(NAN), Error);
}

namespace {

// One optimizer step guarded by the scaler, as the training loop runs it.
bool guarded_step(Backend& b, LossScaler& scaler, Tensor& param, Tensor& m, Tensor& v,
                  Tensor& copy, const Tensor& grads, int64_t step) {
  GradCheck c = scaler.check(b, grads);
  if (!c.finite) return false;
  b.adam_update(param, m, v, copy, grads, {1e-3f, 0.9f, 0.95f, 1e-8f, 0.01f, c.unscale, step});
  return true;
}

Tensor host_copy(const Tensor& t) { return to_place(t, Place::Host); }

bool same_bits(const Tensor& a, const Tensor& b) {
  Tensor x = host_copy(a), y = host_copy(b);
  return x.bytes() == y.bytes() && std::memcmp(x.data, y.data, x.bytes()) == 0;
}

// A clean step moves the weights; then an inf (and then a NaN) injected into
// the flat gradient buffer skips the step, halves the scale, and leaves the
// master weights, the moments and the fp16 copy bit-identical.
void inject_overflow(Backend& b) {
  const int64_t n = 4099;
  auto on_backend = [&](const Tensor& host) { return to_place(host, b.place()); };
  Tensor h = Tensor::empty({n}, DType::F32, Place::Host);
  test::fill_uniform(h, 1);
  Tensor param = on_backend(h), m = b.empty({n}, DType::F32), v = b.empty({n}, DType::F32);
  b.fill(m, 0.0f), b.fill(v, 0.0f);
  Tensor copy = b.empty({n}, DType::F16);
  b.cast(copy, param);
  test::fill_uniform(h, 2, 65536.0);  // gradients at the loss scale
  Tensor grads = on_backend(h);

  LossScaler scaler;
  Tensor before = host_copy(param);
  ASSERT_TRUE(guarded_step(b, scaler, param, m, v, copy, grads, 1));
  ASSERT_FALSE(same_bits(param, before)) << "a clean step must change the weights";

  for (float bad : {INFINITY, NAN}) {
    h.ptr<float>()[n / 2] = bad;
    Tensor bad_grads = on_backend(h);
    Tensor p0 = host_copy(param), m0 = host_copy(m), v0 = host_copy(v), c0 = host_copy(copy);
    float scale = scaler.scale;
    int64_t skipped = scaler.skipped_steps;
    EXPECT_FALSE(guarded_step(b, scaler, param, m, v, copy, bad_grads, 2));
    EXPECT_EQ(scaler.scale, scale / 2);
    EXPECT_EQ(scaler.skipped_steps, skipped + 1);
    EXPECT_TRUE(same_bits(param, p0));
    EXPECT_TRUE(same_bits(m, m0));
    EXPECT_TRUE(same_bits(v, v0));
    EXPECT_TRUE(same_bits(copy, c0));
  }
}

}  // namespace

TEST(LossScaler, InjectedInfSkipsTheStepOnCpu) {
  auto cpu = make_backend("cpu");
  inject_overflow(*cpu);
}

TEST(LossScaler, InjectedInfSkipsTheStepOnCuda) {
  ST_REQUIRE_GPU();
  auto gpu = make_backend("cuda");
  inject_overflow(*gpu);
}
