#include "runtime/schedule.h"

#include <algorithm>

#include "core/check.h"

namespace st {

ScheduleKind parse_schedule(const std::string& name) {
  if (name == "1f1b") return ScheduleKind::OneFOneB;
  if (name == "gpipe") return ScheduleKind::GPipe;
  ST_FAIL("unknown pipeline schedule '" + name + "' (expected 1f1b or gpipe)");
}

const char* schedule_name(ScheduleKind kind) {
  return kind == ScheduleKind::OneFOneB ? "1f1b" : "gpipe";
}

int warmup_forwards(int stages, int stage, int micro_batches) {
  return std::min(stages - stage - 1, micro_batches);
}

std::vector<PipelineOp> pipeline_schedule(ScheduleKind kind, int stages, int stage,
                                          int micro_batches) {
  ST_CHECK(stages >= 1 && 0 <= stage && stage < stages && micro_batches >= 1,
           "bad pipeline: stage " + std::to_string(stage) + " of " + std::to_string(stages) +
               " with " + std::to_string(micro_batches) + " micro-batches");
  int m = micro_batches;
  std::vector<PipelineOp> ops;
  // GPipe is 1F1B with every forward in the warm-up.
  int warmup = kind == ScheduleKind::GPipe ? m : warmup_forwards(stages, stage, m);
  for (int i = 0; i < warmup; ++i) ops.push_back({true, i});
  for (int i = 0; i < m - warmup; ++i) {
    ops.push_back({true, warmup + i});
    ops.push_back({false, i});
  }
  for (int i = m - warmup; i < m; ++i) ops.push_back({false, i});
  return ops;
}

int peak_in_flight(const std::vector<PipelineOp>& ops) {
  int live = 0, peak = 0;
  for (const PipelineOp& op : ops) {
    live += op.forward ? 1 : -1;
    peak = std::max(peak, live);
  }
  return peak;
}

double ideal_bubble_fraction(int stages, int micro_batches) {
  return double(stages - 1) / double(micro_batches + stages - 1);
}

}  // namespace st
