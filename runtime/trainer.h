// The training loop of st-train: options, the loop itself (data, pipeline
// engine, loss scaling, clipping, Adam, schedule), evaluation, progress and
// metrics, checkpoints and resumption.
//
//   TrainOptions o;                          // defaults
//   set_option(o, "steps", "1000");          // from the command line / INI file
//   set_field(o.model, "layers", "4");       // the model's fields
//   validate(o);                             // every combination rule
//   int rc = train(o);                       // inside MpiSession + run_or_abort
//
// Data -> tokens.  A stream window of n + 1 bytes gives tokens = bytes
// [0, n) and targets = bytes [1, n + 1).  An example (an image) of n bytes
// gives targets = its n bytes and tokens = a 0 byte followed by its first
// n - 1 bytes: every byte of the image is predicted, the first from the
// position embedding alone.  A sampler continues the same way.
//
// Every rank reads the same global batch (global_batch rows) with one reader
// and takes its replica's rows: global micro-batch j = replica * m + micro
// holds rows [j * micro_batch, (j + 1) * micro_batch).  So one cursor (and one
// dropout step counter) describes every rank of every layout, and a run
// resumed under another P x D continues the same sequence of batches.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "comm/context.h"
#include "io/batch_reader.h"
#include "layers/config.h"
#include "layers/model.h"

namespace st {

struct TrainOptions {
  ModelConfig model;
  // data
  std::string data, train_split = "train", valid_split = "valid";
  uint64_t data_seed = 1;
  // optimisation
  double lr = 3.5e-4, beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double weight_decay = 0.01, clip = 1.0;
  double loss_scale = 65536;  // initial dynamic loss scale (CUDA; the CPU uses 1)
  int64_t loss_scale_growth = 2000;
  // schedule and parallelism
  int64_t steps = 100000, warmup = 5000;
  double final_lr_fraction = 0.0;
  int64_t global_batch = 16, micro_batches = 1;
  int64_t pipeline = 1, data_parallel = 1;
  std::string schedule = "1f1b", device = "cpu";
  double max_minutes = 0;  // 0: no wall-clock bound
  // checkpoints
  std::string checkpoint_dir;  // empty: no checkpoints
  int64_t checkpoint_every = 1000, keep = 3;
  bool resume = false;
  // evaluation
  int64_t eval_every = 1000;  // 0: only at the end
  int64_t eval_batches = 0;   // batches of the periodic evaluations; 0: the whole split
  int64_t eval_batch = 8;     // sequences per evaluation batch (per replica)
  // logging
  std::string metrics;        // JSON lines; empty: none
  double peak_tflops = 0;     // for the FLOP utilisation; 0: 989 on CUDA, none on the CPU
};

// One training option's name (as on the command line and in INI files),
// its group in --help and its help text.
struct OptionSpec {
  const char* name;
  const char* group;
  const char* help;
};
// Every training option (the model's fields come from config_fields).
const std::vector<OptionSpec>& train_option_specs();
// Every training option's value as a string, in train_option_specs() order;
// set_option reads them back exactly.
std::vector<std::pair<std::string, std::string>> option_values(const TrainOptions& o);
// Sets one option from its string form; an unknown name or a malformed
// value throws naming it.
void set_option(TrainOptions& o, const std::string& name, const std::string& value);
// Throws naming the options of the first invalid combination.
void validate(const TrainOptions& o);
// The resolved configuration, one "name = value" line each (model fields too).
std::string describe(const TrainOptions& o);

// Runs the whole job on this rank; returns the exit code.
int train(const TrainOptions& o);

// Useful FLOPs per token of a training step (forward and backward, no
// recomputation): 6 x the matrix products' parameters, plus 3 x the forward
// attention's 2 (d_qk + d_v) per allowed (query, key) pair.
double train_flops_per_token(const ModelConfig& config);

// Evaluation of one split: bits per byte (per dim for images) over every
// target it holds, each scored once.
struct EvalResult {
  double bits = 0;
  int64_t targets = 0;
};
struct EvalSetup {
  std::string path, split;
  int64_t batch = 8;        // sequences per batch on each replica
  int64_t max_batches = 0;  // per replica; 0: the whole split
};
// Every rank of the job calls it with its stage of the model; each replica
// reads its share of the split in order, stages pass activations along the
// pipeline; the result is the same on every rank.
EvalResult evaluate(Model& model, const DistributedContext& ctx, Communicator& pipeline,
                    Communicator& data, const EvalSetup& setup);

// Checks that the split's items fit the model: a stream long enough for one
// window, examples of exactly n bytes (of the model's image shape).
void check_dataset_fits(const ModelConfig& config, const std::string& path,
                        const std::string& split);

}  // namespace st
