#include <gtest/gtest.h>

#include "runtime/lr_schedule.h"

using namespace st;

TEST(LrSchedule, WarmsUpLinearlyThenDecaysByCosine) {
  LrSchedule s{.peak = 1e-3, .warmup = 100, .total = 1100, .final_fraction = 0.1};
  EXPECT_DOUBLE_EQ(learning_rate(s, 1), 1e-5);
  EXPECT_DOUBLE_EQ(learning_rate(s, 50), 5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(s, 100), 1e-3);
  EXPECT_NEAR(learning_rate(s, 600), 1e-3 * (0.1 + 0.9 * 0.5), 1e-12);  // half way
  EXPECT_NEAR(learning_rate(s, 1100), 1e-4, 1e-12);
  EXPECT_NEAR(learning_rate(s, 5000), 1e-4, 1e-12);  // stays at the floor
  for (int64_t step = 101; step < 1100; ++step)
    ASSERT_LE(learning_rate(s, step + 1), learning_rate(s, step)) << step;
}

TEST(LrSchedule, NoWarmupStartsAtThePeak) {
  LrSchedule s{.peak = 2e-4, .warmup = 0, .total = 10, .final_fraction = 0.0};
  EXPECT_NEAR(learning_rate(s, 0), 2e-4, 1e-15);
  EXPECT_NEAR(learning_rate(s, 10), 0.0, 1e-15);
}
