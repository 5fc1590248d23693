#include "layers/model.h"

namespace st {

static DType master_dtype(DType activations) {
  return activations == DType::F64 ? DType::F64 : DType::F32;
}

Model::Model(const ModelConfig& config, Backend& backend, const StageSpec& stage,
             DType activations)
    : config_(config), backend_(backend), stage_(stage), activations_(activations) {
  ST_CHECK(activations == DType::F32 || activations == DType::F64 || activations == DType::F16,
           std::string("model: activations must be fp32, fp64 or fp16, not ") +
               dtype_name(activations));
  int64_t total = 0;
  infos_ = stage_params(config_, stage_, &total);  // validates config and stage
  for (size_t i = 0; i < infos_.size(); ++i) index_[infos_[i].name] = i;

  const DType master = master_dtype(activations);
  Tensor host = Tensor::empty({total}, master, Place::Host);
  init_params(host, infos_, config_.seed);
  params = to_place(host, backend_.place());
  grads = backend_.empty({total}, master);
  zero_grads();
  weights = activations == master ? params : backend_.empty({total}, activations);
  sync_weights();

  if (stage_.embedding) {
    embedding_.token = make_param("embed.token.weight");
    embedding_.position.push_back(make_param("embed.row.weight"));
    embedding_.position.push_back(make_param("embed.col.weight"));
    if (config_.is_image()) embedding_.position.push_back(make_param("embed.channel.weight"));
  }
  for (int64_t r = stage_.first_block; r < stage_.last_block; ++r) {
    std::string name = "blocks." + std::to_string(r);
    Block block;
    block.index = r;
    block.ln1 = make_layernorm(name + ".ln1");
    block.attn.qkv = make_linear(name + ".attn.qkv", true);
    block.attn.proj = make_linear(name + ".attn.proj", true);
    block.attn.spec = attention_spec(config_, r);
    block.ln2 = make_layernorm(name + ".ln2");
    block.ff.fc1 = make_linear(name + ".ff.fc1", true);
    block.ff.fc2 = make_linear(name + ".ff.fc2", true);
    blocks_.push_back(std::move(block));
  }
  if (stage_.head) {
    head_.ln = make_layernorm("head.ln");
    head_.out = make_linear("head.out", false);
  }
}

const ParamInfo& Model::info(const std::string& name) const {
  auto it = index_.find(name);
  ST_CHECK(it != index_.end(), "model: this stage has no parameter '" + name + "'");
  return infos_[it->second];
}

Param Model::make_param(const std::string& name) const {
  const ParamInfo& p = info(name);
  return Param{param_view(weights, p), param_view(grads, p)};
}

Linear Model::make_linear(const std::string& name, bool bias) const {
  Linear layer;
  layer.weight = make_param(name + ".weight");
  if (bias) layer.bias = make_param(name + ".bias");
  return layer;
}

LayerNorm Model::make_layernorm(const std::string& name) const {
  return LayerNorm{make_param(name + ".weight"), make_param(name + ".bias")};
}

Tensor Model::param(const std::string& name) const { return param_view(params, info(name)); }
Tensor Model::grad(const std::string& name) const { return param_view(grads, info(name)); }

Tensor Model::param_copy_for_update() const {
  return weights.data == params.data ? Tensor{} : weights;
}

void Model::sync_weights() {
  if (weights.data != params.data) backend_.cast(weights, params);
}

void Model::zero_grads() { backend_.fill(grads, 0.0f); }

const std::vector<Tensor>& Model::positions(int64_t batch) {
  if (batch != positions_batch_) {
    positions_ = position_indices(backend_, config_, batch);
    positions_batch_ = batch;
  }
  return positions_;
}

Tensor Model::run_blocks(Pass& pass, Tensor x) {
  pass.blocks.assign(blocks_.size(), BlockActs{});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Tensor out = backend_.empty(x.shape, x.dtype);
    BlockDropout dropout = block_dropout(config_, pass.step, blocks_[i].index, pass.training);
    Recompute recompute = pass.training ? config_.recompute : Recompute::Full;
    st::forward(backend_, blocks_[i], pass.blocks[i], out, x, dropout, recompute);
    if (!pass.training) pass.blocks[i] = BlockActs{};  // nothing to keep for a backward
    x = out;
  }
  return x;
}

Tensor Model::forward(Pass& pass, const Tensor& input) {
  Tensor x;
  if (stage_.embedding) {
    ST_CHECK(input.dtype == DType::I32 && input.numel() > 0 && input.numel() % config_.n == 0,
             "model: the first stage takes int32 tokens, batch x n (n = " +
                 std::to_string(config_.n) + "), got " + dtype_name(input.dtype) +
                 shape_string(input.shape));
    ST_CHECK(input.place == backend_.place(), "model: tokens are not on the backend's device");
    pass.batch = input.numel() / config_.n;
    pass.tokens = input;
    x = backend_.empty(activation_shape(pass.batch), activations_);
    st::forward(backend_, embedding_, x, input, positions(pass.batch));
  } else {
    ST_CHECK(input.dtype == activations_ && input.rank() == 2 &&
                 input.dim(1) == config_.d_model && input.dim(0) > 0 &&
                 input.dim(0) % config_.n == 0,
             std::string("model: a stage takes ") + dtype_name(activations_) +
                 " activations [batch * n, d_model], got " + dtype_name(input.dtype) +
                 shape_string(input.shape));
    pass.batch = input.dim(0) / config_.n;
    x = input;
  }
  return run_blocks(pass, x);
}

double Model::forward_loss(Pass& pass, const Tensor& input, const Tensor& targets,
                           float grad_scale) {
  ST_CHECK(stage_.head, "model: forward_loss on a stage without the output head");
  ST_CHECK(targets.place == backend_.place(), "model: targets are not on the backend's device");
  Tensor x = forward(pass, input);
  return st::forward_loss(backend_, head_, pass.head, x, targets,
                          pass.training ? grad_scale : 0.0f);
}

Tensor Model::backward(Pass& pass, const Tensor& d_output) {
  ST_CHECK(pass.training, "model: backward of an evaluation pass");
  ST_CHECK(pass.blocks.size() == blocks_.size(), "model: backward without a forward pass");
  Tensor d_stream = backend_.empty(activation_shape(pass.batch), activations_);
  if (stage_.head) {
    st::backward(backend_, head_, pass.head, d_stream);
  } else {
    ST_CHECK(d_output.shape == d_stream.shape && d_output.dtype == activations_,
             "model: d_output must be " + std::string(dtype_name(activations_)) +
                 shape_string(d_stream.shape) + ", got " + dtype_name(d_output.dtype) +
                 shape_string(d_output.shape));
    backend_.cast(d_stream, d_output);  // a copy: the caller's buffer stays intact
  }
  for (size_t i = blocks_.size(); i-- > 0;) {
    BlockDropout dropout = block_dropout(config_, pass.step, blocks_[i].index, true);
    st::backward(backend_, blocks_[i], pass.blocks[i], d_stream, dropout);
    if (pass.after_block) pass.after_block(blocks_[i].index);
  }
  pass.blocks.clear();
  if (!stage_.embedding) return d_stream;
  st::backward(backend_, embedding_, d_stream, pass.tokens, positions(pass.batch));
  pass.tokens = Tensor{};
  return Tensor{};
}

double Model::forward_backward(const Tensor& tokens, const Tensor& targets, uint64_t step) {
  ST_CHECK(stage_.embedding && stage_.head, "model: forward_backward needs the whole model");
  Pass pass;
  pass.step = step;
  double loss = forward_loss(pass, tokens, targets, 1.0f);
  backward(pass, Tensor{});
  return loss;
}

double Model::evaluate(const Tensor& tokens, const Tensor& targets) {
  ST_CHECK(stage_.embedding && stage_.head, "model: evaluate needs the whole model");
  Pass pass;
  pass.training = false;
  return forward_loss(pass, tokens, targets);
}

}  // namespace st
