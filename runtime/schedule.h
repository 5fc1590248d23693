// The order in which one pipeline stage runs its micro-batches' forward and
// backward passes (pure functions, so the arithmetic is unit-tested alone).
//
// 1F1B (PipeDream-Flush, as Megatron-LM schedules it): stage s of P first runs
// min(P - s - 1, m) warm-up forwards, then alternates one forward and one
// backward, then drains the remaining backwards.  A stage then holds at most
// P - s micro-batches' activations, where GPipe (every forward, then every
// backward) holds all m.  Both run the same arithmetic: gradients are summed
// over the same micro-batches, so they give the same result.  The idle time
// of either is the bubble, (P - 1) / (m + P - 1) of the step.
#pragma once

#include <string>
#include <vector>

namespace st {

enum class ScheduleKind { OneFOneB, GPipe };

// "1f1b" or "gpipe"; anything else is refused with a message.
ScheduleKind parse_schedule(const std::string& name);
const char* schedule_name(ScheduleKind kind);

struct PipelineOp {
  bool forward;  // else backward
  int micro;     // micro-batch index
  bool operator==(const PipelineOp&) const = default;
};

// Forwards that stage runs before its first backward under 1F1B.
int warmup_forwards(int stages, int stage, int micro_batches);
// The whole step of one stage, in order.
std::vector<PipelineOp> pipeline_schedule(ScheduleKind kind, int stages, int stage,
                                          int micro_batches);
// Most micro-batches forwarded but not yet backwarded at any point: how many
// micro-batches' activations the stage must hold.
int peak_in_flight(const std::vector<PipelineOp>& ops);
// The schedule's idle fraction with equal stages and free communication.
double ideal_bubble_fraction(int stages, int micro_batches);

}  // namespace st
