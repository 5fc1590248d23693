#include "runtime/trainer.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>

#include "core/log.h"
#include "core/mpi_check.h"
#include "core/text.h"
#include "layers/attention.h"
#include "runtime/checkpoint.h"
#include "runtime/loss_scaler.h"
#include "runtime/lr_schedule.h"
#include "runtime/pipeline.h"

namespace st {

// ---- options --------------------------------------------------------------

namespace {

int64_t parse_int(const std::string& name, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(value.c_str(), &end, 10);
  ST_CHECK(!value.empty() && *end == '\0' && errno == 0,
           "--" + name + " = '" + value + "' is not an integer");
  return x;
}

double parse_double(const std::string& name, const std::string& value) {
  errno = 0;
  char* end = nullptr;
  double x = std::strtod(value.c_str(), &end);
  ST_CHECK(!value.empty() && *end == '\0' && errno == 0 && std::isfinite(x),
           "--" + name + " = '" + value + "' is not a number");
  return x;
}

bool parse_bool(const std::string& name, const std::string& value) {
  if (value == "true" || value == "1" || value == "yes") return true;
  if (value == "false" || value == "0" || value == "no") return false;
  ST_FAIL("--" + name + " = '" + value + "' is not true or false");
}

// One option: how to read and write it on TrainOptions.
struct Field {
  OptionSpec spec;
  std::function<std::string(const TrainOptions&)> get;
  std::function<void(TrainOptions&, const std::string&)> set;
};

Field text(const char* name, const char* group, std::string TrainOptions::*member,
           const char* help) {
  return {{name, group, help}, [=](const TrainOptions& o) { return o.*member; },
          [=](TrainOptions& o, const std::string& v) { o.*member = v; }};
}

Field integer(const char* name, const char* group, int64_t TrainOptions::*member,
              const char* help) {
  return {{name, group, help}, [=](const TrainOptions& o) { return std::to_string(o.*member); },
          [=](TrainOptions& o, const std::string& v) { o.*member = parse_int(name, v); }};
}

Field seed(const char* name, const char* group, uint64_t TrainOptions::*member,
           const char* help) {
  return {{name, group, help}, [=](const TrainOptions& o) { return std::to_string(o.*member); },
          [=](TrainOptions& o, const std::string& v) {
            ST_CHECK(!v.empty() && v[0] != '-', "--" + std::string(name) + " = '" + v +
                                                    "' is not a non-negative integer");
            o.*member = uint64_t(parse_int(name, v));
          }};
}

Field number(const char* name, const char* group, double TrainOptions::*member,
             const char* help) {
  return {{name, group, help}, [=](const TrainOptions& o) { return format_double(o.*member); },
          [=](TrainOptions& o, const std::string& v) { o.*member = parse_double(name, v); }};
}

Field flag(const char* name, const char* group, bool TrainOptions::*member, const char* help) {
  return {{name, group, help}, [=](const TrainOptions& o) { return o.*member ? "true" : "false"; },
          [=](TrainOptions& o, const std::string& v) { o.*member = parse_bool(name, v); }};
}

const std::vector<Field>& fields() {
  using O = TrainOptions;
  static const std::vector<Field> table = {
      text("data", "data", &O::data, "the HDF5 byte dataset (st-convert's output; required)"),
      text("train-split", "data", &O::train_split, "the split to train on"),
      text("valid-split", "data", &O::valid_split, "the split evaluated during and after training"),
      seed("data-seed", "data", &O::data_seed, "seed of the training data's order"),
      number("lr", "optimisation", &O::lr, "peak learning rate of Adam"),
      number("beta1", "optimisation", &O::beta1, "Adam's first-moment decay"),
      number("beta2", "optimisation", &O::beta2, "Adam's second-moment decay"),
      number("adam-eps", "optimisation", &O::adam_eps, "Adam's epsilon"),
      number("weight-decay", "optimisation", &O::weight_decay,
             "decoupled weight decay (AdamW) of the matrices only: not biases, layer-norm gains "
             "or embeddings"),
      number("clip", "optimisation", &O::clip, "clip the gradient to this global L2 norm; 0: no clipping"),
      number("loss-scale", "optimisation", &O::loss_scale,
             "initial dynamic loss scale on CUDA (fp16 activations); the CPU computes in fp32 "
             "and uses 1"),
      integer("loss-scale-growth", "optimisation", &O::loss_scale_growth,
              "clean steps before the loss scale doubles"),
      integer("steps", "schedule and parallelism", &O::steps, "optimizer steps in all"),
      integer("warmup", "schedule and parallelism", &O::warmup,
              "steps of linear learning-rate warm-up, then cosine decay to the end"),
      number("final-lr-fraction", "schedule and parallelism", &O::final_lr_fraction,
             "the learning rate at the last step, as a fraction of the peak"),
      integer("global-batch", "schedule and parallelism", &O::global_batch,
              "sequences per optimizer step over all replicas"),
      integer("micro-batches", "schedule and parallelism", &O::micro_batches,
              "micro-batches per replica and step (gradient accumulation; pipeline depth)"),
      integer("pipeline", "schedule and parallelism", &O::pipeline, "pipeline stages P"),
      integer("data-parallel", "schedule and parallelism", &O::data_parallel,
              "data-parallel replicas D (mpirun -np P x D)"),
      text("schedule", "schedule and parallelism", &O::schedule, "pipeline schedule: 1f1b | gpipe"),
      text("device", "schedule and parallelism", &O::device, "cpu | cuda"),
      number("max-minutes", "schedule and parallelism", &O::max_minutes,
             "wall-clock bound on training: then evaluate, checkpoint and exit; 0: none"),
      text("checkpoint-dir", "checkpoints", &O::checkpoint_dir,
           "folder of the checkpoints (must exist); empty: none written"),
      integer("checkpoint-every", "checkpoints", &O::checkpoint_every, "steps between checkpoints"),
      integer("keep", "checkpoints", &O::keep, "the newest checkpoints kept"),
      flag("resume", "checkpoints", &O::resume,
           "continue from the newest readable checkpoint in --checkpoint-dir (start afresh when "
           "there is none)"),
      integer("eval-every", "evaluation", &O::eval_every,
              "steps between evaluations of the valid split; 0: only at the end"),
      integer("eval-batches", "evaluation", &O::eval_batches,
              "batches per replica of the periodic evaluations; 0: the whole split (the final "
              "evaluation always reads it all)"),
      integer("eval-batch", "evaluation", &O::eval_batch, "sequences per evaluation batch and replica"),
      text("metrics", "logging", &O::metrics, "JSON-lines metrics file (appended to when resuming)"),
      number("peak-tflops", "logging", &O::peak_tflops,
             "the device's peak for the FLOP utilisation; 0: 989 (H100/H200 SXM dense fp16) on "
             "CUDA, none on the CPU"),
  };
  return table;
}

}  // namespace

const std::vector<OptionSpec>& train_option_specs() {
  static const std::vector<OptionSpec> specs = [] {
    std::vector<OptionSpec> s;
    for (const Field& f : fields()) s.push_back(f.spec);
    return s;
  }();
  return specs;
}

std::vector<std::pair<std::string, std::string>> option_values(const TrainOptions& o) {
  std::vector<std::pair<std::string, std::string>> values;
  for (const Field& f : fields()) values.push_back({f.spec.name, f.get(o)});
  return values;
}

void set_option(TrainOptions& o, const std::string& name, const std::string& value) {
  for (const Field& f : fields())
    if (name == f.spec.name) return f.set(o, value);
  ST_FAIL("unknown option '" + name + "'");
}


void validate(const TrainOptions& o) {
  auto n = [](int64_t x) { return std::to_string(x); };
  validate(o.model);
  ST_CHECK(!o.data.empty(), "--data is required: the dataset file to train on");
  ST_CHECK(o.steps >= 1, "--steps (" + n(o.steps) + ") must be at least 1");
  ST_CHECK(o.warmup >= 0 && o.warmup <= o.steps,
                  "--warmup (" + n(o.warmup) + ") must be between 0 and --steps (" + n(o.steps) + ")");
  ST_CHECK(o.lr > 0, "--lr must be positive");
  ST_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1,
                  "--beta1 and --beta2 must be in [0, 1)");
  ST_CHECK(o.adam_eps > 0, "--adam-eps must be positive");
  ST_CHECK(o.weight_decay >= 0 && o.clip >= 0, "--weight-decay and --clip must not be negative");
  ST_CHECK(o.final_lr_fraction >= 0 && o.final_lr_fraction <= 1,
                  "--final-lr-fraction must be in [0, 1]");
  ST_CHECK(o.loss_scale >= 1 && o.loss_scale_growth >= 1,
                  "--loss-scale must be at least 1 and --loss-scale-growth positive");
  ST_CHECK(o.pipeline >= 1 && o.data_parallel >= 1 && o.micro_batches >= 1 && o.global_batch >= 1,
                  "--pipeline, --data-parallel, --micro-batches and --global-batch must be at least 1");
  ST_CHECK(o.global_batch % (o.micro_batches * o.data_parallel) == 0,
                  "--global-batch (" + n(o.global_batch) + ") must be a multiple of --micro-batches (" +
                      n(o.micro_batches) + ") x --data-parallel (" + n(o.data_parallel) + ")");
  ST_CHECK(o.pipeline <= o.model.layers, "--pipeline " + n(o.pipeline) + " needs at least " +
                                                    n(o.pipeline) + " layers (--layers is " +
                                                    n(o.model.layers) + ")");
  ST_CHECK(o.device == "cpu" || o.device == "cuda",
                  "--device '" + o.device + "' (expected cpu or cuda)");
  parse_schedule(o.schedule);
  ST_CHECK(o.max_minutes >= 0, "--max-minutes must not be negative");
  ST_CHECK(o.checkpoint_every >= 1 && o.keep >= 1,
                  "--checkpoint-every and --keep must be at least 1");
  ST_CHECK(!o.resume || !o.checkpoint_dir.empty(), "--resume needs --checkpoint-dir");
  ST_CHECK(o.checkpoint_dir.empty() || std::filesystem::is_directory(o.checkpoint_dir),
                  "--checkpoint-dir '" + o.checkpoint_dir + "' is not an existing folder");
  ST_CHECK(o.eval_every >= 0 && o.eval_batches >= 0 && o.eval_batch >= 1,
                  "--eval-every and --eval-batches must not be negative, --eval-batch at least 1");
  ST_CHECK(o.peak_tflops >= 0, "--peak-tflops must not be negative");
}

static std::string dashed(std::string name) {
  std::replace(name.begin(), name.end(), '_', '-');
  return name;
}

std::string describe(const TrainOptions& o) {
  std::string text = "configuration:";
  for (const auto& [name, value] : config_fields(o.model)) text += "\n  " + dashed(name) + " = " + value;
  for (const auto& [name, value] : option_values(o)) text += "\n  " + name + " = " + value;
  return text;
}

// ---- data -----------------------------------------------------------------

namespace {

// A split's layout, checked against the model.
SplitInfo fitting_split(const ModelConfig& c, const std::string& path, const std::string& split) {
  SplitInfo info = open_split(path, split, c.n + 1, false).info;
  if (!info.examples) return info;
  std::string shape;
  for (int64_t d : info.example_shape) {
    if (!shape.empty()) shape += "x";
    shape += std::to_string(d);
  }
  ST_CHECK(info.item_bytes == c.n, path + ": split '" + split + "' holds examples of " +
                                       std::to_string(info.item_bytes) + " bytes (" + shape +
                                       "), which do not fit the model's context n = " +
                                       std::to_string(c.n));
  if (c.is_image()) {
    std::vector<int64_t> want = {c.image_rows, c.image_cols, c.image_channels};
    std::vector<int64_t> have = info.example_shape;
    if (have.size() == 2) have.push_back(1);
    ST_CHECK(have == want, path + ": split '" + split + "' holds images of " + shape +
                               ", the model's position embeddings are " +
                               std::to_string(c.image_rows) + "x" + std::to_string(c.image_cols) +
                               "x" + std::to_string(c.image_channels));
  }
  return info;
}

// Rows [first, first + rows) of a batch as int32 tokens and targets on the
// backend's device (see the top of trainer.h).
MicroBatch to_micro_batch(const Tensor& bytes, int64_t first, int64_t rows, int64_t n,
                          bool examples, Place place) {
  Tensor tokens = Tensor::empty({rows, n}, DType::I32, Place::Host);
  Tensor targets = Tensor::empty({rows, n}, DType::I32, Place::Host);
  const int64_t width = bytes.dim(1);
  const uint8_t* in = bytes.ptr<uint8_t>();
  int32_t* tok = tokens.ptr<int32_t>();
  int32_t* tgt = targets.ptr<int32_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = in + (first + r) * width;
    for (int64_t i = 0; i < n; ++i) {
      if (examples) {
        tok[r * n + i] = i == 0 ? 0 : row[i - 1];
        tgt[r * n + i] = row[i];
      } else {
        tok[r * n + i] = row[i];
        tgt[r * n + i] = row[i + 1];
      }
    }
  }
  return {to_place(tokens, place), to_place(targets, place)};
}

}  // namespace

void check_dataset_fits(const ModelConfig& config, const std::string& path,
                        const std::string& split) {
  fitting_split(config, path, split);
}

// ---- figures --------------------------------------------------------------

double train_flops_per_token(const ModelConfig& c) {
  const int64_t d = c.d_model, qkv = c.heads * (2 * c.head_dim_qk() + c.head_dim_v());
  const int64_t out = c.heads * c.head_dim_v();
  double matmul = double(c.layers) * double(d * qkv + out * d + 2 * d * c.d_ff) + 256.0 * d;
  // Allowed pairs per query, from up to 4096 evenly spaced queries (a
  // million-byte context would otherwise take seconds to count).
  auto pairs_per_query = [&](const AttentionSpec& s, int64_t head) {
    const int64_t step = std::max<int64_t>(1, s.n / 4096);
    std::vector<int64_t> keys;
    double total = 0;
    int64_t queries = 0;
    for (int64_t i = 0; i < s.n; i += step, ++queries) {
      attention_keys(s, head, i, keys);
      total += double(keys.size());
    }
    return total / double(queries);
  };
  double attention = 0;  // forward FLOPs per token over all blocks
  for (int64_t parity = 0; parity < std::min<int64_t>(2, c.layers); ++parity) {
    AttentionSpec s = attention_spec(c, parity);
    double per_block = 0;
    for (int64_t h = 0; h < c.heads; ++h)
      per_block += pairs_per_query(s, h) * 2.0 * double(c.head_dim_qk() + c.head_dim_v());
    int64_t blocks = (c.layers - parity + 1) / 2;  // blocks of this parity
    attention += per_block * double(blocks);
  }
  return 6.0 * matmul + 3.0 * attention;
}

// ---- evaluation -----------------------------------------------------------

EvalResult evaluate(Model& model, const DistributedContext& ctx, Communicator& pipeline,
                    Communicator& data, const EvalSetup& setup) {
  const ModelConfig& c = model.config();
  Backend& backend = model.backend();
  const StageSpec& stage = model.stage();
  const bool examples = fitting_split(c, setup.path, setup.split).examples;
  ReaderConfig rc;
  rc.path = setup.path, rc.split = setup.split, rc.window = examples ? 0 : c.n + 1;
  rc.batch = setup.batch, rc.rank = ctx.replica, rc.ranks = ctx.data_parallel;
  rc.order = Order::OnePass, rc.prefetch = 2;
  BatchReader reader(rc);
  double nats = 0;
  int64_t targets = 0, done = 0;
  Batch batch;
  while ((setup.max_batches == 0 || done < setup.max_batches) && reader.next(batch)) {
    ++done;
    const int64_t rows = batch.bytes.dim(0);
    MicroBatch mb = to_micro_batch(batch.bytes, 0, rows, c.n, examples, backend.place());
    Pass pass;
    pass.training = false;
    Tensor input = mb.tokens;
    if (!stage.embedding) {
      input = backend.empty(model.activation_shape(rows), model.activation_dtype());
      pipeline.recv(input, ctx.stage - 1);
    }
    if (!stage.head) {
      Tensor output = model.forward(pass, input);
      backend.synchronize();
      pipeline.send(output, ctx.stage + 1);
      pipeline.flush_sends();
      continue;
    }
    model.forward_loss(pass, input, mb.targets);
    const Tensor& losses = pass.head.losses;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = batch.scored[r]; i < c.n; ++i, ++targets)
        nats += losses.dtype == DType::F64 ? losses.ptr<double>()[r * c.n + i]
                                           : double(losses.ptr<float>()[r * c.n + i]);
  }
  Tensor host = Tensor::empty({2}, DType::F64, Place::Host);
  host.ptr<double>()[0] = nats;
  host.ptr<double>()[1] = double(targets);
  Tensor totals = to_place(host, backend.place());
  pipeline.all_reduce_sum(totals);
  data.all_reduce_sum(totals);
  host = to_place(totals, Place::Host);
  EvalResult result;
  result.targets = int64_t(host.ptr<double>()[1]);
  ST_CHECK(result.targets > 0, setup.path + ": split '" + setup.split + "' gave nothing to evaluate");
  result.bits = host.ptr<double>()[0] / host.ptr<double>()[1] / std::log(2.0);
  return result;
}

// ---- the training loop ------------------------------------------------------

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string duration(double seconds) {
  int64_t s = int64_t(std::max(0.0, seconds));
  char text[32];
  std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return text;
}

// Runs of consecutive parameters with the same weight decay: a matrix (a
// linear layer's weight) decays, biases, layer-norm gains and embedding
// tables do not, as GPT-2 and most Transformer training do.
struct DecayRun {
  int64_t begin, end;
  bool decay;
};

std::vector<DecayRun> decay_runs(const std::vector<ParamInfo>& infos, int64_t total) {
  std::vector<DecayRun> runs;
  for (const ParamInfo& p : infos) {
    bool decay = p.shape.size() == 2 && p.name.rfind("embed.", 0) != 0;
    if (!runs.empty() && runs.back().decay == decay)
      runs.back().end = p.offset + p.numel();
    else
      runs.push_back({runs.empty() ? 0 : runs.back().end, p.offset + p.numel(), decay});
  }
  if (!runs.empty()) runs.back().end = total;  // the aligned tail: zeros that stay zero
  return runs;
}

struct Trainer {
  const TrainOptions& o;
  DistributedContext ctx;
  std::unique_ptr<Backend> backend;
  Partition partition;
  std::unique_ptr<Model> model;
  Tensor m, v;
  std::unique_ptr<Communicator> pipe, data;
  std::unique_ptr<PipelineEngine> engine;
  std::unique_ptr<BatchReader> reader;
  bool examples = false;
  LossScaler scaler;
  LrSchedule schedule;
  std::vector<DecayRun> runs;
  int64_t step = 0, updates = 0, last_saved = -1;
  double flops_per_token = 0, peak_flops = 0;
  double start_s = 0, train_s = 0;  // wall time of the steps this process ran
  int64_t steps_run = 0;
  FILE* metrics = nullptr;

  explicit Trainer(const TrainOptions& options) : o(options) {}
  ~Trainer() {
    if (metrics) std::fclose(metrics);
    free_context(ctx);
  }

  void setup();
  void resume();
  std::map<std::string, std::string> state_attributes() const;
  void train_step();
  void report(const StepResult& r, bool applied, double lr, double seconds);
  void run_eval(bool final);
  void save();
  bool time_is_up();
  void metric(const std::string& json);
};

void Trainer::setup() {
  const bool cuda = o.device == "cuda";
  ctx = make_context(int(o.pipeline), int(o.data_parallel), cuda ? GpuUse::Exclusive : GpuUse::None);
  log("%s", describe(o).c_str());
  examples = fitting_split(o.model, o.data, o.train_split).examples;
  fitting_split(o.model, o.data, o.valid_split);
  backend = make_backend(o.device);
  StageCosts costs = estimate_costs(o.model);
  partition = partition_blocks(int(o.model.layers), int(o.pipeline), costs);
  if (o.pipeline > 1) log("%s", describe(partition, costs).c_str());
  model = std::make_unique<Model>(o.model, *backend, stage_spec(partition, ctx.stage),
                                  cuda ? DType::F16 : DType::F32);
  m = backend->empty(model->params.shape, DType::F32);
  v = backend->empty(model->params.shape, DType::F32);
  backend->fill(m, 0.0f);
  backend->fill(v, 0.0f);
  pipe = make_communicator(cuda ? "nccl" : "mpi", ctx.pipeline_comm);
  data = make_communicator(cuda ? "nccl" : "mpi", ctx.data_comm);
  EngineOptions eo;
  eo.schedule = parse_schedule(o.schedule);
  eo.micro_batch = o.global_batch / (o.micro_batches * o.data_parallel);
  engine = std::make_unique<PipelineEngine>(*model, ctx, *pipe, *data, eo);
  // The CPU computes in fp32: no scaling, and inf or NaN there is divergence.
  scaler.scale = cuda ? float(o.loss_scale) : 1.0f;
  scaler.growth_interval = cuda ? o.loss_scale_growth : std::numeric_limits<int64_t>::max();
  schedule = {o.lr, o.warmup, o.steps, o.final_lr_fraction};
  runs = decay_runs(model->param_infos(), model->params.numel());
  flops_per_token = train_flops_per_token(o.model);
  peak_flops = 1e12 * (o.peak_tflops > 0 ? o.peak_tflops : cuda ? 989.0 : 0.0);

  ReaderConfig rc;
  rc.path = o.data, rc.split = o.train_split, rc.window = examples ? 0 : o.model.n + 1;
  rc.batch = o.global_batch, rc.seed = o.data_seed;
  reader = std::make_unique<BatchReader>(rc);
  if (o.resume) resume();
  // A fresh run starts a fresh metrics file; a resumed one continues it.
  if (!o.metrics.empty() && ctx.world_rank == 0) {
    metrics = std::fopen(o.metrics.c_str(), step > 0 ? "a" : "w");
    ST_CHECK(metrics, "cannot write the metrics file " + o.metrics);
  }
}

std::string attr(const CheckpointData& data, const std::string& name, const std::string& path) {
  auto it = data.attributes.find(name);
  ST_CHECK(it != data.attributes.end(), path + ": the checkpoint has no attribute '" + name + "'");
  return it->second;
}

void Trainer::resume() {
  std::optional<LoadedCheckpoint> c = load_newest_checkpoint(o.checkpoint_dir);
  if (!c) {
    // Starting afresh would write over (and prune) checkpoints a person may
    // still want to rescue, so unreadable ones stop the run.
    size_t found = list_checkpoints(o.checkpoint_dir).size();
    ST_CHECK(found == 0, "--resume: none of the " + std::to_string(found) + " checkpoints in " +
                             o.checkpoint_dir + " reads (see the warnings above); move them "
                             "away to start afresh");
    log("resume: no checkpoint in %s: starting at step 0", o.checkpoint_dir.c_str());
    return;
  }
  const std::string& path = c->path;
  for (const std::string& line : check_compatible(o.model, c->data, path))
    log("resume: note: %s", line.c_str());
  const std::string batch = attr(c->data, std::string(kTrainPrefix) + "global-batch", path);
  ST_CHECK(batch == std::to_string(o.global_batch),
           path + ": the checkpoint was trained with --global-batch " + batch + ", now " +
               std::to_string(o.global_batch) + ": its data position does not carry over");
  restore_stage(c->data, *model, m, v);
  step = parse_int("step", attr(c->data, "step", path));
  updates = parse_int("updates", attr(c->data, "optimizer.updates", path));
  if (o.device == "cuda" && attr(c->data, std::string(kTrainPrefix) + "device", path) == "cuda") {
    scaler.scale = float(parse_double("loss_scale", attr(c->data, "loss_scale", path)));
    scaler.clean_steps = parse_int("clean", attr(c->data, "loss_scale.clean_steps", path));
  }
  scaler.skipped_steps = parse_int("skipped", attr(c->data, "loss_scale.skipped_steps", path));
  Cursor cursor;
  cursor.epoch = parse_int("epoch", attr(c->data, "data.cursor.epoch", path));
  cursor.position = parse_int("position", attr(c->data, "data.cursor.position", path));
  cursor.seed = uint64_t(parse_int("seed", attr(c->data, "data.cursor.seed", path)));
  try {
    reader->restore(cursor);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what() + " (was --data-seed or the dataset changed?)");
  }
  engine->set_step(uint64_t(step));
  last_saved = step;
  log("resume: continuing from %s at step %lld (written by a %s x %s layout)", path.c_str(),
      static_cast<long long>(step),
      attr(c->data, std::string(kTrainPrefix) + "pipeline", path).c_str(),
      attr(c->data, std::string(kTrainPrefix) + "data-parallel", path).c_str());
}

std::map<std::string, std::string> Trainer::state_attributes() const {
  std::map<std::string, std::string> a;
  for (const auto& [name, value] : option_values(o)) a[kTrainPrefix + name] = value;
  a["step"] = std::to_string(step);
  a["optimizer.updates"] = std::to_string(updates);
  a["loss_scale"] = format_double(scaler.scale);
  a["loss_scale.clean_steps"] = std::to_string(scaler.clean_steps);
  a["loss_scale.skipped_steps"] = std::to_string(scaler.skipped_steps);
  a["lr"] = format_double(learning_rate(schedule, std::max<int64_t>(step, 1)));
  a["lr.peak"] = format_double(schedule.peak);
  a["lr.warmup"] = std::to_string(schedule.warmup);
  a["lr.total"] = std::to_string(schedule.total);
  a["lr.final_fraction"] = format_double(schedule.final_fraction);
  Cursor cursor = reader->cursor();  // the same on every rank: see trainer.h
  a["data.cursor.epoch"] = std::to_string(cursor.epoch);
  a["data.cursor.position"] = std::to_string(cursor.position);
  a["data.cursor.seed"] = std::to_string(cursor.seed);
  a["rng.dropout_seed"] = std::to_string(o.model.seed);
  a["rng.dropout_step"] = std::to_string(step);
  return a;
}

void Trainer::train_step() {
  double start = now_s();
  Batch batch;
  ST_CHECK(reader->next(batch), "the training reader ended");
  const int64_t m_count = o.micro_batches, rows = o.global_batch / (m_count * o.data_parallel);
  std::vector<MicroBatch> micro;
  for (int64_t j = 0; j < m_count; ++j)
    micro.push_back(to_micro_batch(batch.bytes, (ctx.replica * m_count + j) * rows, rows,
                                   o.model.n, examples, backend->place()));
  StepResult r = engine->train_step(micro, scaler.scale);
  ++step;
  double squares = r.skipped ? std::numeric_limits<double>::infinity() : r.grad_norm * r.grad_norm;
  GradCheck check = scaler.update(squares);
  double lr = learning_rate(schedule, step);
  if (check.finite) {
    ++updates;
    double clip = o.clip > 0 && check.grad_norm > o.clip ? o.clip / check.grad_norm : 1.0;
    Tensor copy_all = model->param_copy_for_update();
    for (const DecayRun& run : runs) {
      Tensor p = model->params.rows(run.begin, run.end), mr = m.rows(run.begin, run.end);
      Tensor vr = v.rows(run.begin, run.end), g = model->grads.rows(run.begin, run.end);
      Tensor copy = copy_all.data ? copy_all.rows(run.begin, run.end) : Tensor{};
      Backend::AdamArgs args{float(lr), float(o.beta1), float(o.beta2), float(o.adam_eps),
                             run.decay ? float(o.weight_decay) : 0.0f,
                             float(check.unscale * clip), updates};
      backend->adam_update(p, mr, vr, copy, g, args);
    }
  }
  backend->synchronize();
  double seconds = now_s() - start;
  train_s += seconds;
  ++steps_run;
  r.grad_norm = check.grad_norm;
  report(r, check.finite, lr, seconds);
  // Per-stage figures (compute, waiting for neighbours, bubble beside the
  // schedule's ideal) matter only when there are stages or replicas.
  if (o.pipeline > 1 || o.data_parallel > 1) log_figures(r, ctx);
}

void Trainer::metric(const std::string& json) {
  if (!metrics) return;
  std::fprintf(metrics, "%s\n", json.c_str());
  std::fflush(metrics);
}

void Trainer::report(const StepResult& r, bool applied, double lr, double seconds) {
  if (ctx.world_rank != 0) return;
  const double tokens_per_s = double(o.global_batch * o.model.n) / seconds;
  const double mfu = peak_flops > 0 ? flops_per_token * tokens_per_s / peak_flops : -1;
  const Allocator& allocator = backend->place() == Place::Device ? Allocator::device() : Allocator::host();
  const double peak_gib = double(allocator.peak()) / double(1 << 30);
  double left = double(o.steps - step) * train_s / double(steps_run);
  if (o.max_minutes > 0) left = std::min(left, o.max_minutes * 60 - (now_s() - start_s));
  char mfu_text[32] = "-";
  if (mfu >= 0) std::snprintf(mfu_text, sizeof mfu_text, "%.1f%%", 100 * mfu);
  log("step %lld/%lld | loss %.4f bits | lr %.3e | scale %g | grad norm %.3f | %.0f tok/s | "
      "MFU %s | peak mem %.2f GiB | left %s%s",
      static_cast<long long>(step), static_cast<long long>(o.steps), r.loss, lr,
      double(scaler.scale), r.grad_norm, tokens_per_s, mfu_text, peak_gib, duration(left).c_str(),
      applied ? "" : " | skipped: inf/NaN gradients");
  char json[512];
  std::snprintf(json, sizeof json,
                "{\"kind\": \"train\", \"step\": %lld, \"loss_bits\": %.6f, \"lr\": %.6e, "
                "\"loss_scale\": %g, \"grad_norm\": %.6f, \"tokens_per_s\": %.1f, \"mfu\": %s, "
                "\"peak_mem_bytes\": %zu, \"step_s\": %.6f, \"skipped\": %s}",
                static_cast<long long>(step), r.loss, lr, double(scaler.scale), r.grad_norm,
                tokens_per_s, mfu >= 0 ? std::to_string(mfu).c_str() : "null", allocator.peak(),
                seconds, applied ? "false" : "true");
  metric(json);
}

void Trainer::run_eval(bool final) {
  EvalSetup setup{o.data, o.valid_split, o.eval_batch, final ? 0 : o.eval_batches};
  double start = now_s();
  EvalResult e = evaluate(*model, ctx, *pipe, *data, setup);
  const char* unit = o.model.is_image() ? "bits per dim" : "bits per byte";
  log("%s %s at step %lld: %.4f %s over %lld targets (%.1f s)", o.valid_split.c_str(),
      final || o.eval_batches == 0 ? "(whole split)" : "(part)", static_cast<long long>(step),
      e.bits, unit, static_cast<long long>(e.targets), now_s() - start);
  char json[256];
  std::snprintf(json, sizeof json,
                "{\"kind\": \"eval\", \"step\": %lld, \"split\": \"%s\", \"bits\": %.6f, "
                "\"targets\": %lld, \"final\": %s}",
                static_cast<long long>(step), o.valid_split.c_str(), e.bits,
                static_cast<long long>(e.targets), final ? "true" : "false");
  if (ctx.world_rank == 0) metric(json);
}

void Trainer::save() {
  if (o.checkpoint_dir.empty() || last_saved == step) return;
  double start = now_s();
  std::string path = save_checkpoint(o.checkpoint_dir, int(o.keep), step, *model, m, v, partition,
                                     ctx, state_attributes());
  last_saved = step;
  log("checkpoint: wrote %s (%.1f s)", path.c_str(), now_s() - start);
}

// The same answer on every rank: world rank 0's clock decides.
bool Trainer::time_is_up() {
  if (o.max_minutes <= 0) return false;
  int up = now_s() - start_s >= o.max_minutes * 60 ? 1 : 0;
  MPI_CHECK(MPI_Bcast(&up, 1, MPI_INT, 0, MPI_COMM_WORLD));
  return up != 0;
}

}  // namespace

int train(const TrainOptions& o) {
  validate(o);
  Trainer t(o);
  t.start_s = now_s();
  t.setup();
  if (t.step >= o.steps) {
    log("the checkpoint is at step %lld: --steps %lld are done", static_cast<long long>(t.step),
        static_cast<long long>(o.steps));
    return 0;
  }
  while (t.step < o.steps) {
    t.train_step();
    bool last = t.step == o.steps;
    if (o.eval_every > 0 && t.step % o.eval_every == 0 && !last) t.run_eval(false);
    if (t.step % o.checkpoint_every == 0) t.save();
    if (!last && t.time_is_up()) {
      log("--max-minutes %g reached at step %lld", o.max_minutes, static_cast<long long>(t.step));
      break;
    }
  }
  t.run_eval(true);
  t.save();
  return 0;
}

}  // namespace st
