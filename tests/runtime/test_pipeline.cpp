// The distributed runtime against one process, under mpirun -np 4 on the CPU
// backend with the MPI communicator.  The four ranks run several grids at
// once (each a sub-communicator): 4x1, 2x2, 2x1 beside 1x2, 3x1 beside 1x1,
// each for m in {1, 3, 8}; every grid trains 5 steps of SGD and must give
// the loss of every step and the final weights of a one-process run on the
// same global batch, within 1e-5 relative (fp32).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "comm/communicator.h"
#include "comm/context.h"
#include "core/mpi_check.h"
#include "runtime/pipeline.h"
#include "tests/gpu_test.h"

using namespace st;

namespace {

constexpr int kSteps = 5;
constexpr int64_t kMicroBatch = 2;  // sequences per micro-batch

ModelConfig tiny_config() {
  ModelConfig c;
  c.layers = 5;  // not divisible by 3 (nor by 2 or 4)
  c.d_model = 16;
  c.heads = 2;
  c.d_ff = 32;
  c.n = 32;
  c.stride = 8;
  c.seed = 7;
  validate(c);
  return c;
}

Backend& cpu() {
  static std::unique_ptr<Backend> backend = make_cpu_backend();
  return *backend;
}

Backend& gpu() {
  static std::unique_ptr<Backend> backend = make_cuda_backend();
  return *backend;
}

// Where and how a run computes.
struct RunSetup {
  Backend* backend;
  DType activations;
  const char* communicator;  // "mpi" or "nccl"
  // Static loss scale: fp16 gradients of a mean over many tokens would
  // otherwise fall below fp16's range.
  float loss_scale = 1;
};
const RunSetup kCpu{&cpu(), DType::F32, "mpi"};

// Global batch of one step: sequences random bytes; rows of micro-batch j of
// replica r are [(r * m + j) * kMicroBatch, ...).
struct Batch {
  Tensor tokens, targets;
};
Batch global_batch(int step, int64_t sequences, int64_t n) {
  Batch b{Tensor::empty({sequences, n}, DType::I32, Place::Host),
          Tensor::empty({sequences, n}, DType::I32, Place::Host)};
  std::mt19937 gen(1000 + step);
  for (int64_t i = 0; i < sequences * n; ++i) {
    b.tokens.ptr<int32_t>()[i] = int32_t(gen() % 256);
    b.targets.ptr<int32_t>()[i] = int32_t(gen() % 256);
  }
  return b;
}


struct Trained {
  std::vector<double> losses;
  std::map<std::string, Tensor> weights;  // host copies, by parameter name
  std::vector<StepResult> results;
  size_t peak_bytes = 0;  // host allocator peak during the last step
  size_t buckets = 0;
};

// Plain SGD through the backend: params -= lr * grads.  (Adam would turn the
// rounding noise of gradients that are zero in exact arithmetic, such as the
// key biases', into full-size steps, so that no two summation orders agree.)
void sgd(Model& model, float loss_scale) {
  model.backend().scale(model.grads, -0.5f / loss_scale);
  model.backend().add(model.params, model.params, model.grads);
  model.sync_weights();
}

std::map<std::string, Tensor> weights_of(const Model& model) {
  std::map<std::string, Tensor> w;
  for (const ParamInfo& p : model.param_infos()) w[p.name] = to_place(model.param(p.name), Place::Host);
  return w;
}

// The one-process run: the whole global batch as one batch.
Trained reference(int micro_batches, const RunSetup& setup) {
  ModelConfig config = tiny_config();
  Model model(config, *setup.backend, whole_model(config), setup.activations);
  Place place = setup.backend->place();
  Trained run;
  for (int step = 0; step < kSteps; ++step) {
    Batch b = global_batch(step, micro_batches * kMicroBatch, config.n);
    model.zero_grads();
    Pass pass;
    pass.step = step;
    run.losses.push_back(model.forward_loss(pass, to_place(b.tokens, place),
                                            to_place(b.targets, place), setup.loss_scale));
    model.backward(pass, Tensor{});
    sgd(model, setup.loss_scale);
  }
  run.weights = weights_of(model);
  return run;
}

// One grid on the ranks of `world`.
Trained distributed(MPI_Comm world, int P, int D, int m, ScheduleKind schedule,
                    int64_t bucket_elements = 1 << 20, const RunSetup& setup = kCpu) {
  ModelConfig config = tiny_config();
  GpuUse gpu_use = setup.backend->place() == Place::Host ? GpuUse::None
                   : std::string(setup.communicator) == "nccl" ? GpuUse::Exclusive
                                                                : GpuUse::Shared;
  DistributedContext ctx = make_context(P, D, gpu_use, world);
  Partition part = partition_blocks(int(config.layers), P, estimate_costs(config));
  Model model(config, *setup.backend, stage_spec(part, ctx.stage), setup.activations);
  Place place = setup.backend->place();
  auto pipe = make_communicator(setup.communicator, ctx.pipeline_comm);
  auto data = make_communicator(setup.communicator, ctx.data_comm);
  PipelineEngine engine(model, ctx, *pipe, *data, {schedule, kMicroBatch, bucket_elements});
  Trained run;
  for (int step = 0; step < kSteps; ++step) {
    Batch b = global_batch(step, int64_t(m) * D * kMicroBatch, config.n);
    std::vector<MicroBatch> micro;
    for (int j = 0; j < m; ++j) {
      int64_t row = (int64_t(ctx.replica) * m + j) * kMicroBatch;
      micro.push_back({to_place(b.tokens.rows(row, row + kMicroBatch), place),
                       to_place(b.targets.rows(row, row + kMicroBatch), place)});
    }
    Allocator::host().reset_peak();
    StepResult r = engine.train_step(micro, setup.loss_scale);
    run.peak_bytes = Allocator::host().peak();
    run.results.push_back(r);
    run.losses.push_back(r.loss);
    if (!r.skipped) sgd(model, setup.loss_scale);
  }
  run.weights = weights_of(model);
  run.buckets = engine.buckets().size();
  free_context(ctx);
  return run;
}

double rel_error(const Tensor& a, const Tensor& b) {
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    double x = a.ptr<float>()[i], y = b.ptr<float>()[i];
    diff += (x - y) * (x - y), ref += y * y;
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

// tolerance: 1e-5 in fp32; fp16 activations round each to 1e-3 relative.
void expect_matches_reference(const Trained& run, int P, int D, int m,
                              const RunSetup& setup = kCpu, double tolerance = 1e-5) {
  Trained ref = reference(m * D, setup);
  std::string grid = std::to_string(P) + "x" + std::to_string(D) + " m=" + std::to_string(m);
  double worst_loss = 0, worst_weight = 0;
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(run.losses[s], ref.losses[s], tolerance * std::abs(ref.losses[s]))
        << grid << " step " << s;
    worst_loss = std::max(worst_loss, std::abs(run.losses[s] / ref.losses[s] - 1));
  }
  EXPECT_FALSE(run.weights.empty());
  for (const auto& [name, w] : run.weights) {
    double e = rel_error(w, ref.weights.at(name));
    EXPECT_LT(e, tolerance) << grid << " parameter " << name;
    worst_weight = std::max(worst_weight, e);
  }
  std::printf("%s on %s: worst relative error %.1e (loss), %.1e (weights)\n", grid.c_str(),
              setup.backend->name(), worst_loss, worst_weight);
  // Weights really moved: the comparison is not of initial values.
  Model fresh(tiny_config(), cpu(), whole_model(tiny_config()));
  double moved = 0, size = 0;
  for (const auto& [name, w] : run.weights) {
    Tensor w0 = to_place(fresh.param(name), Place::Host);
    for (int64_t i = 0; i < w.numel(); ++i) {
      double d = w.ptr<float>()[i] - w0.ptr<float>()[i];
      moved += d * d, size += double(w0.ptr<float>()[i]) * w0.ptr<float>()[i];
    }
  }
  EXPECT_GT(std::sqrt(moved / size), 1e-3) << grid;
  for (const StepResult& r : run.results) {
    EXPECT_FALSE(r.skipped);
    EXPECT_GT(r.figures.compute_s, 0);
    EXPECT_GE(r.figures.step_s, r.figures.compute_s);
    EXPECT_DOUBLE_EQ(r.figures.ideal_bubble, ideal_bubble_fraction(P, m));
  }
}

int world_rank() {
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  return rank;
}

// The ranks with the same color form a sub-world (MPI_UNDEFINED: none).
MPI_Comm sub_world(int color) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, color, world_rank(), &comm));
  if (comm != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  return comm;
}

}  // namespace

TEST(Pipeline, FourStagesMatchOneProcess) {
  for (int m : {1, 3, 8}) {
    Trained run = distributed(MPI_COMM_WORLD, 4, 1, m, ScheduleKind::OneFOneB);
    expect_matches_reference(run, 4, 1, m);
  }
}

TEST(Pipeline, TwoByTwoMatchesOneProcessWithSmallBuckets) {
  for (int m : {1, 3, 8}) {
    // Small buckets: several all-reduces per stage, started during backward.
    Trained run = distributed(MPI_COMM_WORLD, 2, 2, m, ScheduleKind::OneFOneB, 2000);
    EXPECT_GT(run.buckets, 2u);
    // Every stage holds at least two blocks: a bucket starts before the end.
    for (const StepResult& r : run.results) EXPECT_GT(r.figures.early_buckets, 0);
    expect_matches_reference(run, 2, 2, m);
  }
}

TEST(Pipeline, TwoByOneBesideOneByTwo) {
  MPI_Comm half = sub_world(world_rank() / 2);
  bool pipeline = world_rank() < 2;
  for (int m : {1, 3, 8}) {
    Trained run = distributed(half, pipeline ? 2 : 1, pipeline ? 1 : 2, m, ScheduleKind::OneFOneB);
    expect_matches_reference(run, pipeline ? 2 : 1, pipeline ? 1 : 2, m);
  }
  MPI_CHECK(MPI_Comm_free(&half));
}

TEST(Pipeline, ThreeStagesOfFiveBlocksBesideOneProcess) {
  MPI_Comm part = sub_world(world_rank() < 3 ? 0 : 1);
  int P = world_rank() < 3 ? 3 : 1;
  for (int m : {1, 3, 8}) {
    Trained run = distributed(part, P, 1, m, ScheduleKind::OneFOneB);
    expect_matches_reference(run, P, 1, m);
  }
  MPI_CHECK(MPI_Comm_free(&part));
}

TEST(Pipeline, GPipeEqualsOneFOneBAndHoldsMoreActivations) {
  const int m = 8;
  Trained one = distributed(MPI_COMM_WORLD, 4, 1, m, ScheduleKind::OneFOneB);
  Trained all = distributed(MPI_COMM_WORLD, 4, 1, m, ScheduleKind::GPipe);
  for (int s = 0; s < kSteps; ++s) EXPECT_EQ(one.losses[s], all.losses[s]) << "step " << s;
  for (const auto& [name, w] : one.weights)
    EXPECT_EQ(rel_error(w, all.weights.at(name)), 0.0) << name;
  // Stage s holds 4 - s micro-batches' activations under 1F1B, 8 under GPipe.
  EXPECT_LT(one.peak_bytes, all.peak_bytes) << "rank " << world_rank();
}

TEST(Pipeline, InfOrNanAnywhereSkipsTheStepEverywhere) {
  ModelConfig config = tiny_config();
  DistributedContext ctx = make_context(2, 2, GpuUse::None);
  Partition part = partition_blocks(int(config.layers), 2, estimate_costs(config));
  Model model(config, cpu(), stage_spec(part, ctx.stage));
  auto pipe = make_mpi_communicator(ctx.pipeline_comm);
  auto data = make_mpi_communicator(ctx.data_comm);
  PipelineEngine engine(model, ctx, *pipe, *data, {ScheduleKind::OneFOneB, kMicroBatch, 1 << 20});
  Batch b = global_batch(0, 2 * 2 * kMicroBatch, config.n);
  std::vector<MicroBatch> micro;
  for (int j = 0; j < 2; ++j) {
    int64_t row = (int64_t(ctx.replica) * 2 + j) * kMicroBatch;
    micro.push_back({b.tokens.rows(row, row + kMicroBatch), b.targets.rows(row, row + kMicroBatch)});
  }
  StepResult clean = engine.train_step(micro);
  EXPECT_FALSE(clean.skipped);
  EXPECT_TRUE(std::isfinite(clean.grad_norm) && clean.grad_norm > 0);
  // One weight of stage 1 on replica 1 only becomes NaN.
  if (ctx.stage == 1 && ctx.replica == 1) {
    model.params.ptr<float>()[0] = std::nanf("");
    model.sync_weights();
  }
  StepResult poisoned = engine.train_step(micro);
  EXPECT_TRUE(poisoned.skipped) << "rank " << ctx.world_rank;
  free_context(ctx);
}

// ---- on the GPU host -------------------------------------------------------

const double kHalfTolerance = 1e-2;

TEST(Gpu, TwoStagesSharingOneGpuOverMpi) {
  ST_REQUIRE_GPU();
  RunSetup setup{&gpu(), DType::F16, "mpi", 1024};
  for (int m : {1, 3}) {
    Trained run = distributed(MPI_COMM_WORLD, 2, 1, m, ScheduleKind::OneFOneB, 1 << 20, setup);
    expect_matches_reference(run, 2, 1, m, setup, kHalfTolerance);
  }
}

TEST(Gpu, TwoReplicasSharingOneGpuOverMpi) {
  ST_REQUIRE_GPU();
  RunSetup setup{&gpu(), DType::F16, "mpi", 1024};
  for (int m : {1, 3}) {
    Trained run = distributed(MPI_COMM_WORLD, 1, 2, m, ScheduleKind::OneFOneB, 2000, setup);
    expect_matches_reference(run, 1, 2, m, setup, kHalfTolerance);
  }
}

TEST(Gpu, NcclOnOneRank) {
  ST_REQUIRE_GPU();
  MPI_Comm alone = sub_world(world_rank() == 0 ? 0 : MPI_UNDEFINED);
  if (alone == MPI_COMM_NULL) return;
  RunSetup setup{&gpu(), DType::F16, "nccl", 1024};
  Trained run = distributed(alone, 1, 1, 3, ScheduleKind::OneFOneB, 1 << 20, setup);
  expect_matches_reference(run, 1, 1, 3, setup, kHalfTolerance);
  MPI_CHECK(MPI_Comm_free(&alone));
}
