// st-eval: bits per byte (bits per dim for images) of a checkpoint's model
// on one whole split of a dataset.
#include <boost/program_options.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "comm/context.h"
#include "core/check.h"
#include "core/log.h"
#include "runtime/checkpoint.h"
#include "runtime/pipeline.h"
#include "runtime/trainer.h"

namespace po = boost::program_options;

static const char* kUsage = R"(Usage: st-eval CHECKPOINT.h5 DATASET.h5 [--split test] [options]

Evaluates the model of a checkpoint written by st-train on every target of
one split of a dataset written by st-convert, each scored once, and prints
its bits per byte (bits per dim for images).  One process, the whole model.

Exit codes: 0 done, 2 bad options, 1 an unreadable checkpoint or dataset, or
a dataset that does not fit the model.
)";

int main(int argc, char** argv) {
  st::MpiSession mpi(&argc, &argv);
  std::string checkpoint, dataset, split, device;
  int64_t batch = 8, max_batches = 0;
  po::options_description options("Options");
  options.add_options()
    ("help,h", "print this help and exit")
    ("checkpoint", po::value(&checkpoint), "the checkpoint (also the first positional argument)")
    ("data", po::value(&dataset), "the dataset (also the second positional argument)")
    ("split", po::value(&split)->default_value("test"), "the split to evaluate")
    ("device", po::value(&device)->default_value("cpu"), "cpu | cuda")
    ("batch", po::value(&batch)->default_value(8), "sequences per batch")
    ("max-batches", po::value(&max_batches)->default_value(0),
     "evaluate only the first batches (0: the whole split)");
  po::positional_options_description positional;
  positional.add("checkpoint", 1).add("data", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "st-eval: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << options << "\n";
    return 0;
  }
  if (checkpoint.empty() || dataset.empty() || batch < 1 || max_batches < 0) {
    std::fprintf(stderr, "st-eval: give a checkpoint and a dataset, --batch >= 1 and "
                         "--max-batches >= 0 (see --help)\n");
    return 2;
  }
  try {
    st::LoadedCheckpoint c = st::load_checkpoint(checkpoint);
    st::ModelConfig config = st::checkpoint_model_config(c.data, checkpoint);
    st::check_dataset_fits(config, dataset, split);
    st::DistributedContext ctx = st::make_context(
        1, 1, device == "cuda" ? st::GpuUse::Exclusive : st::GpuUse::None);
    auto backend = st::make_backend(device);
    st::Model model(config, *backend, st::whole_model(config),
                    device == "cuda" ? st::DType::F16 : st::DType::F32);
    st::Tensor no_m, no_v;
    st::restore_stage(c.data, model, no_m, no_v);
    auto pipe = st::make_communicator("mpi", ctx.pipeline_comm);
    auto data = st::make_communicator("mpi", ctx.data_comm);
    auto step = c.data.attributes.find("step");
    st::EvalResult r = st::evaluate(model, ctx, *pipe, *data, {dataset, split, batch, max_batches});
    std::printf("%s: %.4f %s over %lld targets (checkpoint %s, step %s)\n", split.c_str(), r.bits,
                config.is_image() ? "bits per dim" : "bits per byte",
                static_cast<long long>(r.targets), checkpoint.c_str(),
                step == c.data.attributes.end() ? "?" : step->second.c_str());
    pipe.reset();
    data.reset();
    st::free_context(ctx);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "st-eval: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
