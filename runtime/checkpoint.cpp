#include "runtime/checkpoint.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <filesystem>

#include "core/log.h"
#include "core/mpi_check.h"
#include "runtime/pipeline.h"

namespace st {

namespace fs = std::filesystem;

static const char* kGroups[] = {"params", "optimizer/m", "optimizer/v"};

std::string checkpoint_name(int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step-%08lld.h5", static_cast<long long>(step));
  return name;
}

// The step of a checkpoint's file name, or -1 when the name is not one.
static int64_t step_of(const std::string& name) {
  const std::string prefix = "step-", suffix = ".h5";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return -1;
  std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    int64_t step = step_of(entry.path().filename().string());
    if (step >= 0 && entry.is_regular_file()) found.push_back({step, entry.path().string()});
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> paths;
  for (auto& [step, path] : found) paths.push_back(path);
  return paths;
}

// One stage's flat buffers on the host (fp32).
struct HostStage {
  Tensor params, m, v;
};

static void send_floats(const Tensor& t, int peer, MPI_Comm comm) {
  ST_CHECK(t.numel() <= INT_MAX, "checkpoint: a stage of more than 2^31 parameters");
  MPI_CHECK(MPI_Send(t.data, int(t.numel()), MPI_FLOAT, peer, 0, comm));
}

static Tensor receive_floats(int64_t count, int peer, MPI_Comm comm) {
  Tensor t = Tensor::empty({count}, DType::F32, Place::Host);
  MPI_CHECK(MPI_Recv(t.data, int(count), MPI_FLOAT, peer, 0, comm, MPI_STATUS_IGNORE));
  return t;
}

static void add_arrays(CheckpointData& data, const std::vector<ParamInfo>& infos,
                       const HostStage& stage) {
  const Tensor* sources[] = {&stage.params, &stage.m, &stage.v};
  for (int g = 0; g < 3; ++g) {
    const float* flat = sources[g]->ptr<float>();
    for (const ParamInfo& p : infos)
      data.arrays.push_back({std::string(kGroups[g]) + "/" + p.name, p.shape,
                             std::vector<float>(flat + p.offset, flat + p.offset + p.numel())});
  }
}

std::string save_checkpoint(const std::string& dir, int keep, int64_t step, const Model& model,
                            const Tensor& m, const Tensor& v, const Partition& partition,
                            const DistributedContext& ctx,
                            const std::map<std::string, std::string>& attributes) {
  if (ctx.replica != 0) return "";  // replicas hold the same tensors as replica 0
  model.backend().synchronize();
  HostStage mine{to_place(model.params, Place::Host), to_place(m, Place::Host),
                 to_place(v, Place::Host)};
  if (ctx.stage != 0) {
    for (const Tensor* t : {&mine.params, &mine.m, &mine.v}) send_floats(*t, 0, ctx.pipeline_comm);
    return "";
  }
  CheckpointData data;
  data.attributes = attributes;
  for (const auto& [name, value] : config_fields(model.config()))
    data.attributes[kModelPrefix + name] = value;
  add_arrays(data, model.param_infos(), mine);
  for (int s = 1; s < ctx.pipeline; ++s) {
    int64_t total = 0;
    std::vector<ParamInfo> infos = stage_params(model.config(), stage_spec(partition, s), &total);
    HostStage theirs;
    theirs.params = receive_floats(total, s, ctx.pipeline_comm);
    theirs.m = receive_floats(total, s, ctx.pipeline_comm);
    theirs.v = receive_floats(total, s, ctx.pipeline_comm);
    add_arrays(data, infos, theirs);
  }
  std::string path = (fs::path(dir) / checkpoint_name(step)).string();
  write_checkpoint_file(path, data);
  // Only once the new file is complete do the oldest go.
  std::vector<std::string> all = list_checkpoints(dir);
  for (size_t i = size_t(std::max(keep, 1)); i < all.size(); ++i) {
    std::error_code error;
    if (!fs::remove(all[i], error))
      log("warning: could not remove the old checkpoint %s: %s", all[i].c_str(),
          error.message().c_str());
  }
  return path;
}

LoadedCheckpoint load_checkpoint(const std::string& path) {
  return {path, read_checkpoint_file(path, {kGroups[0], kGroups[1], kGroups[2]})};
}

std::optional<LoadedCheckpoint> load_newest_checkpoint(const std::string& dir) {
  for (const std::string& path : list_checkpoints(dir)) {
    try {
      return load_checkpoint(path);
    } catch (const Error& e) {
      log("warning: skipping a checkpoint that does not read: %s", e.what());
    }
  }
  return std::nullopt;
}

static std::string attribute(const CheckpointData& data, const std::string& name,
                             const std::string& path) {
  auto it = data.attributes.find(name);
  ST_CHECK(it != data.attributes.end(), path + ": the checkpoint has no attribute '" + name + "'");
  return it->second;
}

ModelConfig checkpoint_model_config(const CheckpointData& data, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> fields;
  for (const auto& [name, value] : config_fields(ModelConfig{}))
    fields.push_back({name, attribute(data, kModelPrefix + name, path)});
  try {
    return config_from_fields(fields);
  } catch (const Error& e) {
    throw Error(path + ": the checkpoint's model configuration is invalid: " + e.what());
  }
}

std::vector<std::string> check_compatible(const ModelConfig& config, const CheckpointData& data,
                                          const std::string& path) {
  // These change neither the parameters nor the function they compute.
  const std::vector<std::string> free = {"dropout", "recompute", "seed"};
  std::vector<std::string> differing, tolerated;
  for (const auto& [name, value] : config_fields(config)) {
    std::string saved = attribute(data, kModelPrefix + name, path);
    if (saved == value) continue;
    std::string line = name + ": checkpoint " + saved + ", now " + value;
    bool is_free = std::find(free.begin(), free.end(), name) != free.end();
    (is_free ? tolerated : differing).push_back(line);
  }
  if (!differing.empty()) {
    std::string message = path + ": the checkpoint holds another model; differing fields:";
    for (const std::string& line : differing) message += "\n  " + line;
    ST_FAIL(message);
  }
  return tolerated;
}

void restore_stage(const CheckpointData& data, Model& model, Tensor& m, Tensor& v) {
  std::map<std::string, const NamedArray*> by_name;
  for (const NamedArray& a : data.arrays) by_name[a.name] = &a;
  Tensor* targets[] = {&model.params, &m, &v};
  for (int g = 0; g < 3; ++g) {
    if (!targets[g]->data) continue;
    Tensor host = Tensor::empty({model.params.numel()}, DType::F32, Place::Host);
    std::fill(host.ptr<float>(), host.ptr<float>() + host.numel(), 0.0f);
    for (const ParamInfo& p : model.param_infos()) {
      std::string name = std::string(kGroups[g]) + "/" + p.name;
      auto it = by_name.find(name);
      ST_CHECK(it != by_name.end(), "the checkpoint has no tensor '" + name + "'");
      ST_CHECK(it->second->shape == p.shape, "the checkpoint's '" + name + "' is " +
                                                 shape_string(it->second->shape) +
                                                 ", the model's " + shape_string(p.shape));
      std::copy(it->second->values.begin(), it->second->values.end(),
                host.ptr<float>() + p.offset);
    }
    copy(*targets[g], host);
  }
  model.sync_weights();
}

}  // namespace st
