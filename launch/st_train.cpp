// st-train: trains a Sparse Transformer on an HDF5 byte dataset, on one
// process or under mpirun with pipeline and data parallelism.
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

#include "comm/context.h"
#include "core/check.h"
#include "core/log.h"
#include "runtime/trainer.h"

namespace po = boost::program_options;

static const char* kUsage = R"(Usage: st-train --data FILE.h5 [--config FILE.ini] [options]
       mpirun -np P*D st-train --pipeline P --data-parallel D ... [options]

Trains a Sparse Transformer on a byte dataset written by st-convert, printing
one progress line per step and evaluating the valid split every --eval-every
steps and at the end.  Every option below may also be given in an INI file
(--config; "name = value" lines, '#' comments); the command line wins.  The
resolved configuration is printed at the start and stored in every
checkpoint.  Checkpoints (docs/checkpoint-format.md) go to --checkpoint-dir
every --checkpoint-every steps; --resume continues from the newest one, under
any pipeline x data-parallel layout.

Examples:
  st-train --config configs/fashion-mnist.ini --data fashion.h5 --checkpoint-dir run
  mpirun -np 8 st-train --config configs/enwik8.ini --data enwik8.h5 --device cuda \
      --pipeline 4 --data-parallel 2 --micro-batches 8 --checkpoint-dir run --resume

Exit codes: 0 done, 2 bad options or configuration, 1 an error while running.
)";

// Help for each model field, by its config_fields() name.
static const std::map<std::string, std::string> kModelHelp = {
    {"layers", "residual blocks N"},
    {"d_model", "width of the residual stream"},
    {"heads", "attention heads"},
    {"d_ff", "feed-forward width"},
    {"half_qk", "queries and keys of half the head size"},
    {"n", "context length in bytes (an image's bytes for images)"},
    {"pattern", "attention pattern: dense | strided | fixed"},
    {"stride", "the pattern's stride l"},
    {"summary", "fixed pattern: summary width c"},
    {"slices", "fixed pattern: distinct summary slices v"},
    {"mode", "how the two parts combine: merged | interleaved | split-heads"},
    {"dropout", "dropout rate"},
    {"image_rows", "images: rows (0 for text and audio)"},
    {"image_cols", "images: columns"},
    {"image_channels", "images: channels"},
    {"recompute", "what the backward pass recomputes: none | attention | full"},
    {"seed", "seed of the initialisation and the dropout masks"},
};

static std::string dashed(std::string name) {
  for (char& c : name)
    if (c == '_') c = '-';
  return name;
}

// Every option, as strings: the model's fields (dashed) and the trainer's.
static std::vector<po::options_description> option_groups(const st::TrainOptions& defaults) {
  std::vector<po::options_description> groups;
  groups.emplace_back("model");
  for (const auto& [name, value] : st::config_fields(defaults.model)) {
    auto help = kModelHelp.find(name);
    ST_CHECK(help != kModelHelp.end(), "st-train: no help for the model field " + name);
    groups.back().add_options()(dashed(name).c_str(), po::value<std::string>()->default_value(value),
                                help->second.c_str());
  }
  std::map<std::string, std::string> values;
  for (const auto& [name, value] : st::option_values(defaults)) values[name] = value;
  for (const char* group : {"data", "optimisation", "schedule and parallelism", "checkpoints",
                            "evaluation", "logging"}) {
    groups.emplace_back(group);
    for (const st::OptionSpec& spec : st::train_option_specs()) {
      if (std::string(spec.group) != group) continue;
      auto value = po::value<std::string>()->default_value(values[spec.name]);
      if (values[spec.name] == "false") value->implicit_value("true");  // a flag
      groups.back().add_options()(spec.name, value, spec.help);
    }
  }
  return groups;
}

// An option given twice on the command line takes its last value, as in
// most tools (so a script can append an override).
static po::parsed_options last_occurrences(po::parsed_options parsed) {
  std::vector<po::option> kept;
  for (auto it = parsed.options.rbegin(); it != parsed.options.rend(); ++it) {
    bool seen = std::any_of(kept.begin(), kept.end(),
                            [&](const po::option& o) { return o.string_key == it->string_key; });
    if (!seen) kept.insert(kept.begin(), *it);
  }
  parsed.options = kept;
  return parsed;
}

// Fills o from the command line and the INI file; returns an exit code, or
// -1 to go on and train.
static int parse(int argc, char** argv, st::TrainOptions& o) {
  const bool rank0 = st::log_rank() == 0;
  po::options_description general("general");
  general.add_options()
    ("help,h", "print this help and exit")
    ("config", po::value<std::string>(), "INI file of options (the command line wins)")
    ("check", "print the resolved configuration, check it (and the dataset, if given) and exit");
  po::options_description all;
  all.add(general);
  for (const po::options_description& group : option_groups(o)) all.add(group);
  po::variables_map vm;
  try {
    po::store(last_occurrences(po::parse_command_line(argc, argv, all)), vm);
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      std::FILE* probe = std::fopen(path.c_str(), "r");
      if (!probe) throw po::error("cannot read the configuration file '" + path + "'");
      std::fclose(probe);
      po::store(po::parse_config_file<char>(path.c_str(), all), vm);
    }
    po::notify(vm);
  } catch (const po::error& e) {
    if (rank0) std::fprintf(stderr, "st-train: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    if (rank0) std::cout << kUsage << "\n" << all << "\n";
    return 0;
  }
  try {
    for (const auto& [name, value] : st::config_fields(o.model))
      st::set_field(o.model, name, vm[dashed(name)].as<std::string>());
    for (const st::OptionSpec& spec : st::train_option_specs())
      st::set_option(o, spec.name, vm[spec.name].as<std::string>());
    if (vm.count("check")) {
      if (rank0) std::printf("%s\n", st::describe(o).c_str());
      st::TrainOptions checked = o;  // everything but the dataset, which --check may omit
      if (checked.data.empty()) checked.data = "(none)";
      st::validate(checked);
      if (!o.data.empty()) {
        st::check_dataset_fits(o.model, o.data, o.train_split);
        st::check_dataset_fits(o.model, o.data, o.valid_split);
      }
      if (rank0) std::printf("the configuration is valid\n");
      return 0;
    }
    st::validate(o);
  } catch (const std::exception& e) {
    if (rank0) std::fprintf(stderr, "st-train: error: %s\n", e.what());
    return 2;
  }
  return -1;
}

int main(int argc, char** argv) {
  st::MpiSession mpi(&argc, &argv);
  st::TrainOptions options;
  int rc = parse(argc, argv, options);
  if (rc >= 0) return rc;
  return st::run_or_abort([&] { return st::train(options); });
}
