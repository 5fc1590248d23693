// The pipeline engine: one training step of one rank's stage, under a
// pipeline schedule, with data-parallel gradient all-reduce.
//
// How the trainer uses it (every rank runs the same code):
//
//   MpiSession mpi(&argc, &argv);
//   run_or_abort([&] {
//     DistributedContext ctx = make_context(P, D, GpuUse::Exclusive);  // or None / Shared
//     Partition part = partition_blocks(config.layers, P, estimate_costs(config));
//     log("%s", describe(part, estimate_costs(config)).c_str());
//     Model model(config, *backend, stage_spec(part, ctx.stage), activations);
//     auto pipe = make_communicator("nccl", ctx.pipeline_comm);    // or "mpi"
//     auto data = make_communicator("nccl", ctx.data_comm);
//     PipelineEngine engine(model, ctx, *pipe, *data, options);
//     for (step ...) {
//       // m micro-batches of this replica (tokens and targets int32
//       // [micro_batch, n] on the backend's device; only the first stage
//       // reads tokens and only the last reads targets).
//       StepResult r = engine.train_step(micro_batches, loss_scale);
//       if (!r.skipped) backend->adam_update(model.params, m, v, ..., model.grads, args);
//       log_figures(r, ctx);
//     }
//   });
//
// After train_step, model.grads holds on every rank the gradient of
// loss_scale * (mean loss over the global batch: m micro-batches x D
// replicas) for the rank's stage; loss is that global mean (bits per byte)
// and grad_norm the gradient's global L2 norm over all stages, on every rank.
// skipped is set on every rank alike when any gradient or loss anywhere is
// inf or NaN: every rank then skips the same optimizer step.
//
// Between stages travel the stage outputs [micro_batch * n, d_model] and
// their gradients, as fp16 on the GPU (fp32 on the CPU).  A stage keeps a
// micro-batch's activations (its Pass) only from its forward to its
// backward: under 1F1B at most P - stage of them, under GPipe all m.
// Gradient buckets (runs of consecutive blocks' gradients, about
// bucket_elements each) are all-reduced across replicas as soon as the last
// micro-batch's backward has passed their blocks, while the rest of the
// backward runs.
#pragma once

#include <vector>

#include "comm/communicator.h"
#include "comm/context.h"
#include "layers/model.h"
#include "runtime/partition.h"
#include "runtime/schedule.h"

namespace st {

struct MicroBatch {
  Tensor tokens, targets;  // int32 [micro_batch, n]
};

struct EngineOptions {
  ScheduleKind schedule = ScheduleKind::OneFOneB;
  int64_t micro_batch = 1;            // sequences per micro-batch
  int64_t bucket_elements = 1 << 22;  // gradient all-reduce bucket size
};

// What one step of one stage measured.
struct StepFigures {
  double step_s = 0;       // the schedule's wall time on this stage
  double compute_s = 0;    // forward and backward passes
  double wait_s = 0;       // waiting for neighbours' activations and gradients
  double reduce_s = 0;     // waiting for the gradient all-reduce after the schedule
  int early_buckets = 0;   // gradient buckets started while the backward still ran
  double bubble = 0;       // measured: 1 - compute / step
  double ideal_bubble = 0; // the schedule's (P - 1) / (m + P - 1)
};

struct StepResult {
  double loss = 0;       // global mean, bits per byte
  double grad_norm = 0;  // global L2 norm of the (loss-scaled) gradient
  bool skipped = false;  // inf or NaN somewhere: skip the optimizer step
  StepFigures figures;
};

// The StageSpec of one stage of a partition.
StageSpec stage_spec(const Partition& partition, int stage);
// The cost model from the model's configuration.
StageCosts estimate_costs(const ModelConfig& config);

class PipelineEngine {
 public:
  PipelineEngine(Model& model, const DistributedContext& ctx, Communicator& pipeline,
                 Communicator& data, const EngineOptions& options);

  StepResult train_step(const std::vector<MicroBatch>& micro_batches, float loss_scale = 1.0f);
  // Steps already taken, which key the dropout masks: a resumed run sets it
  // so that its masks continue the uninterrupted run's sequence.
  void set_step(uint64_t step) { step_ = step; }

  // The gradient buckets, as [begin, end) element ranges of model.grads, in
  // the order they become final.
  struct Bucket {
    int64_t begin, end;
    int64_t last_block;  // final once the backward has passed this block
  };
  const std::vector<Bucket>& buckets() const { return buckets_; }

 private:
  void forward(int micro, const MicroBatch& batch, double& loss_sum);
  void backward(int micro, bool last);
  void launch_final_buckets(int64_t block);
  Tensor receive(int peer);
  void send(const Tensor& activation, int peer);

  Model& model_;
  DistributedContext ctx_;
  Communicator& pipeline_;
  Communicator& data_;
  EngineOptions options_;
  DType wire_dtype_;
  std::vector<Bucket> buckets_;
  size_t launched_ = 0;                  // buckets started this step
  std::vector<std::unique_ptr<Pass>> passes_;  // per micro-batch, while in flight
  uint64_t step_ = 0;
  float grad_scale_ = 1;
  StepFigures figures_;
};

// One line per stage of replica 0: compute, wait, bubble against the ideal.
void log_figures(const StepResult& result, const DistributedContext& ctx);

}  // namespace st
