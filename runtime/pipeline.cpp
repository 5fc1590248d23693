#include "runtime/pipeline.h"

#include <chrono>
#include <cmath>
#include <limits>

#include "core/log.h"

namespace st {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The block a parameter belongs to; the head counts as beyond every block
// (its gradient is final first), the embedding as before them (final last).
int64_t unit_of(const std::string& name, int64_t head_unit) {
  if (name.rfind("blocks.", 0) == 0) return std::stoll(name.substr(7));
  if (name.rfind("head.", 0) == 0) return head_unit;
  return -1;
}

}  // namespace

StageSpec stage_spec(const Partition& partition, int stage) {
  return {partition.begin(stage), partition.end(stage), stage == 0,
          stage == partition.stages() - 1};
}

StageCosts estimate_costs(const ModelConfig& c) {
  // Keys per query: half the context when dense, about l + n / l when factorized.
  int64_t attended = c.pattern == Pattern::Dense ? c.n / 2 : c.stride + c.n / c.stride;
  return estimate_costs(int(c.d_model), int(attended), 256);
}

PipelineEngine::PipelineEngine(Model& model, const DistributedContext& ctx,
                               Communicator& pipeline, Communicator& data,
                               const EngineOptions& options)
    : model_(model), ctx_(ctx), pipeline_(pipeline), data_(data), options_(options) {
  ST_CHECK(pipeline.size() == ctx.pipeline && data.size() == ctx.data_parallel &&
               pipeline.rank() == ctx.stage && data.rank() == ctx.replica,
           "engine: the communicators do not match the rank's place in the grid");
  const StageSpec& spec = model.stage();
  ST_CHECK(spec.embedding == (ctx.stage == 0) && spec.head == (ctx.stage == ctx.pipeline - 1),
           "engine: stage " + std::to_string(ctx.stage) + " of " + std::to_string(ctx.pipeline) +
               " holds the wrong parts of the model (embedding/head)");
  ST_CHECK(options.micro_batch >= 1 && options.bucket_elements >= 1,
           "engine: micro_batch and bucket_elements must be positive");
  // fp16 on the wire halves the traffic between GPUs; the CPU keeps fp32 so
  // that a distributed run computes exactly what one process does.
  wire_dtype_ = model.backend().place() == Place::Device ? DType::F16 : model.activation_dtype();

  // Buckets: runs of parameters in the order their gradients become final
  // (head, last block ... first block, embedding), each a contiguous range of
  // the flat gradient buffer.
  const int64_t head_unit = spec.last_block;
  std::vector<int64_t> units;
  for (int64_t u = head_unit; u >= -1; --u) units.push_back(u);
  int64_t top = 0;  // the first unit of the last bucket
  for (int64_t u : units) {
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = -1;
    for (const ParamInfo& p : model.param_infos())
      if (unit_of(p.name, head_unit) == u)
        lo = std::min(lo, p.offset), hi = std::max(hi, p.offset + p.numel());
    if (hi < 0) continue;  // no parameters (e.g. no head on this stage)
    if (!buckets_.empty()) {
      Bucket& b = buckets_.back();
      int64_t begin = std::min(b.begin, lo), end = std::max(b.end, hi);
      // Merge when the union holds only this bucket's units and stays small.
      bool clean = true;
      for (const ParamInfo& p : model.param_infos()) {
        int64_t pu = unit_of(p.name, head_unit);
        if (p.offset < end && p.offset + p.numel() > begin && (pu < u || pu > top)) clean = false;
      }
      if (clean && end - begin <= options.bucket_elements) {
        b = {begin, end, u};
        continue;
      }
    }
    buckets_.push_back({lo, hi, u});
    top = u;
  }
}

Tensor PipelineEngine::receive(int peer) {
  Backend& backend = model_.backend();
  Shape shape = model_.activation_shape(options_.micro_batch);
  Tensor wire = backend.empty(shape, wire_dtype_);
  double start = now_s();
  pipeline_.recv(wire, peer);
  figures_.wait_s += now_s() - start;
  if (wire_dtype_ == model_.activation_dtype()) return wire;
  Tensor activation = backend.empty(shape, model_.activation_dtype());
  backend.cast(activation, wire);
  return activation;
}

void PipelineEngine::send(const Tensor& activation, int peer) {
  Backend& backend = model_.backend();
  Tensor wire = activation;
  if (activation.dtype != wire_dtype_) {
    wire = backend.empty(activation.shape, wire_dtype_);
    backend.cast(wire, activation);
  }
  backend.synchronize();
  pipeline_.send(wire, peer);
}

void PipelineEngine::forward(int micro, const MicroBatch& batch, double& loss_sum) {
  const StageSpec& spec = model_.stage();
  Tensor input = spec.embedding ? batch.tokens : receive(ctx_.stage - 1);
  auto pass = std::make_unique<Pass>();
  int64_t m = int64_t(passes_.size());
  // Distinct per micro-batch of the global batch, as in a one-process run
  // of the same global batch split into m * D micro-batches.
  pass->step = step_ * m * ctx_.data_parallel + ctx_.replica * m + micro;
  double start = now_s();
  Tensor output;
  if (spec.head) {
    loss_sum += model_.forward_loss(*pass, input, batch.targets, grad_scale_);
  } else {
    output = model_.forward(*pass, input);
  }
  model_.backend().synchronize();
  figures_.compute_s += now_s() - start;
  passes_[micro] = std::move(pass);
  if (!spec.head) send(output, ctx_.stage + 1);
}

void PipelineEngine::backward(int micro, bool last) {
  const StageSpec& spec = model_.stage();
  Tensor d_output = spec.head ? Tensor{} : receive(ctx_.stage + 1);
  Pass& pass = *passes_[micro];
  bool reduce = last && ctx_.data_parallel > 1;
  if (reduce) pass.after_block = [this](int64_t block) { launch_final_buckets(block); };
  double start = now_s();
  Tensor d_input = model_.backward(pass, d_output);
  model_.backend().synchronize();
  figures_.compute_s += now_s() - start;
  passes_[micro].reset();  // the micro-batch's activations go back to the allocator
  if (!spec.embedding) send(d_input, ctx_.stage - 1);
  if (reduce) launch_final_buckets(-1);
}

// Starts the all-reduce of every bucket whose blocks the last backward has
// passed (block -1: all of them).
void PipelineEngine::launch_final_buckets(int64_t block) {
  if (launched_ == buckets_.size() || buckets_[launched_].last_block < block) return;
  model_.backend().synchronize();  // the gradients must be written before they travel
  for (; launched_ < buckets_.size() && buckets_[launched_].last_block >= block; ++launched_) {
    Tensor view = model_.grads.rows(buckets_[launched_].begin, buckets_[launched_].end);
    data_.start_all_reduce_sum(view);
    if (block >= 0) ++figures_.early_buckets;
  }
}

StepResult PipelineEngine::train_step(const std::vector<MicroBatch>& micro_batches,
                                      float loss_scale) {
  const int m = int(micro_batches.size());
  ST_CHECK(m >= 1, "engine: a step needs at least one micro-batch");
  Backend& backend = model_.backend();
  grad_scale_ = loss_scale / float(m * ctx_.data_parallel);
  figures_ = StepFigures{};
  launched_ = 0;
  passes_.clear();
  passes_.resize(m);
  model_.zero_grads();

  double start = now_s(), loss_sum = 0;
  for (const PipelineOp& op : pipeline_schedule(options_.schedule, ctx_.pipeline, ctx_.stage, m)) {
    if (op.forward)
      forward(op.micro, micro_batches[op.micro], loss_sum);
    else
      backward(op.micro, op.micro == m - 1);
  }
  double flush_start = now_s();
  pipeline_.flush_sends();
  double end = now_s();
  figures_.wait_s += end - flush_start;
  figures_.step_s = end - start;
  data_.wait_all_reduces();
  figures_.reduce_s = now_s() - end;
  figures_.bubble = figures_.step_s > 0 ? 1 - figures_.compute_s / figures_.step_s : 0;
  figures_.ideal_bubble = ideal_bubble_fraction(ctx_.pipeline, m);

  // One all-reduce over each group gives every rank the same loss and norm:
  // the pipeline sums the stages (the loss lives on the last), the data
  // group then sums the replicas (whose gradients are already identical).
  Tensor host = Tensor::empty({2}, DType::F64, Place::Host);
  host.ptr<double>()[0] = model_.stage().head ? loss_sum / m : 0.0;
  host.ptr<double>()[1] = backend.sum_squares(model_.grads);
  Tensor totals = to_place(host, backend.place());
  pipeline_.all_reduce_sum(totals);
  data_.all_reduce_sum(totals);
  host = to_place(totals, Place::Host);

  StepResult result;
  result.loss = host.ptr<double>()[0] / ctx_.data_parallel;
  double squares = host.ptr<double>()[1] / ctx_.data_parallel;
  result.grad_norm = std::sqrt(squares);
  result.skipped = !std::isfinite(result.loss) || !std::isfinite(squares);
  result.figures = figures_;
  ++step_;
  return result;
}

void log_figures(const StepResult& r, const DistributedContext& ctx) {
  if (ctx.replica != 0) return;
  const StepFigures& f = r.figures;
  log_all("stage %d: step %.1f ms, compute %.1f ms, waiting %.1f ms, all-reduce wait %.1f ms, "
          "bubble %.1f%% (ideal %.1f%%)",
          ctx.stage, 1e3 * f.step_s, 1e3 * f.compute_s, 1e3 * f.wait_s, 1e3 * f.reduce_s,
          100 * f.bubble, 100 * f.ideal_bubble);
}

}  // namespace st
