// The pipeline's arithmetic, as pure functions: schedules and partitions.
#include <gtest/gtest.h>

#include <set>

#include "core/check.h"
#include "runtime/partition.h"
#include "runtime/schedule.h"

using namespace st;

TEST(Schedule, OneFOneBOnFourStagesOfEightMicroBatches) {
  using Op = PipelineOp;
  // Stage 1 of 4: two warm-up forwards, then alternate, then drain.
  std::vector<Op> want = {{true, 0},  {true, 1},  {true, 2},  {false, 0}, {true, 3},  {false, 1},
                          {true, 4},  {false, 2}, {true, 5},  {false, 3}, {true, 6},  {false, 4},
                          {true, 7},  {false, 5}, {false, 6}, {false, 7}};
  EXPECT_EQ(pipeline_schedule(ScheduleKind::OneFOneB, 4, 1, 8), want);
  // The last stage has no warm-up: F0 B0 F1 B1 ...
  std::vector<Op> last = pipeline_schedule(ScheduleKind::OneFOneB, 4, 3, 3);
  EXPECT_EQ(last, (std::vector<Op>{{true, 0}, {false, 0}, {true, 1}, {false, 1}, {true, 2}, {false, 2}}));
}

TEST(Schedule, EveryMicroBatchOnceForwardThenBackward) {
  for (ScheduleKind kind : {ScheduleKind::OneFOneB, ScheduleKind::GPipe})
    for (int p = 1; p <= 5; ++p)
      for (int s = 0; s < p; ++s)
        for (int m : {1, 2, 3, 8}) {
          std::vector<PipelineOp> ops = pipeline_schedule(kind, p, s, m);
          ASSERT_EQ(int(ops.size()), 2 * m);
          std::set<int> forwarded, backwarded;
          for (const PipelineOp& op : ops) {
            if (op.forward) {
              EXPECT_TRUE(forwarded.insert(op.micro).second);
            } else {
              EXPECT_TRUE(forwarded.count(op.micro)) << "backward before forward";
              EXPECT_TRUE(backwarded.insert(op.micro).second);
            }
          }
          EXPECT_EQ(int(backwarded.size()), m);
          // Micro-batches pass in order both ways, as neighbours expect.
          int next_f = 0, next_b = 0;
          for (const PipelineOp& op : ops) EXPECT_EQ(op.micro, op.forward ? next_f++ : next_b++);
        }
}

TEST(Schedule, InFlightMicroBatches) {
  EXPECT_EQ(warmup_forwards(4, 0, 8), 3);
  EXPECT_EQ(warmup_forwards(4, 3, 8), 0);
  EXPECT_EQ(warmup_forwards(4, 0, 2), 2);  // fewer micro-batches than stages
  for (int m : {1, 3, 8}) {
    for (int s = 0; s < 4; ++s) {
      EXPECT_EQ(peak_in_flight(pipeline_schedule(ScheduleKind::OneFOneB, 4, s, m)),
                std::min(4 - s, m));
      EXPECT_EQ(peak_in_flight(pipeline_schedule(ScheduleKind::GPipe, 4, s, m)), m);
    }
  }
}

TEST(Schedule, IdealBubbleAndNames) {
  EXPECT_DOUBLE_EQ(ideal_bubble_fraction(1, 8), 0.0);
  EXPECT_DOUBLE_EQ(ideal_bubble_fraction(4, 8), 3.0 / 11.0);
  EXPECT_DOUBLE_EQ(ideal_bubble_fraction(2, 1), 0.5);
  EXPECT_EQ(parse_schedule("gpipe"), ScheduleKind::GPipe);
  EXPECT_EQ(parse_schedule("1f1b"), ScheduleKind::OneFOneB);
  EXPECT_THROW(parse_schedule("interleaved"), Error);
  EXPECT_THROW(pipeline_schedule(ScheduleKind::OneFOneB, 2, 2, 4), Error);
}

TEST(Partition, EqualBlocksSplitEvenly) {
  Partition p = partition_blocks(8, 4, {0, 1, 0});
  EXPECT_EQ(p.first, (std::vector<int>{0, 2, 4, 6, 8}));
  EXPECT_EQ(p.stages(), 4);
  EXPECT_EQ(p.blocks(), 8);
}

TEST(Partition, HeavyHeadGetsFewerBlocks) {
  // The head costs two blocks: the last stage takes fewer blocks.
  Partition p = partition_blocks(10, 3, {0, 1, 2});
  EXPECT_EQ(p.first, (std::vector<int>{0, 4, 8, 10}));
  // 5 blocks on 3 stages: no split is even, the worst stage holds 2.
  Partition q = partition_blocks(5, 3, {0, 1, 0});
  double worst = 0;
  for (int s = 0; s < 3; ++s) {
    EXPECT_GE(q.end(s) - q.begin(s), 1);
    worst = std::max(worst, stage_cost(q, s, {0, 1, 0}));
  }
  EXPECT_EQ(worst, 2.0);
  EXPECT_NE(describe(q, {0, 1, 0}).find("stage 2: blocks [3, 5) + head and loss"),
            std::string::npos)
      << describe(q, {0, 1, 0});
}

TEST(Partition, OptimalAgainstBruteForce) {
  StageCosts costs = estimate_costs(64, 128, 256);
  for (int blocks = 3; blocks <= 9; ++blocks) {
    Partition p = partition_blocks(blocks, 3, costs);
    double best = 1e300;
    for (int a = 1; a < blocks; ++a)
      for (int b = a + 1; b < blocks; ++b) {
        Partition t{{0, a, b, blocks}};
        double w = 0;
        for (int s = 0; s < 3; ++s) w = std::max(w, stage_cost(t, s, costs));
        best = std::min(best, w);
      }
    double got = 0;
    for (int s = 0; s < 3; ++s) got = std::max(got, stage_cost(p, s, costs));
    EXPECT_DOUBLE_EQ(got, best) << blocks << " blocks";
  }
}

TEST(Partition, MoreStagesThanBlocksIsRefused) {
  try {
    partition_blocks(4, 6, {});
    FAIL() << "6 stages of 4 blocks accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot split 4 blocks into 6 pipeline stages"),
              std::string::npos);
  }
}
