// The Sparse Transformer, or the part of it that one pipeline stage holds.
//
// How to use it
// -------------
//   auto backend = make_backend("cpu");            // or "cuda": the model does not care
//   ModelConfig config = config_from_fields(...);  // or set the fields, then validate()
//   Model model(config, *backend, whole_model(config));   // fp32 activations
//
//   // One training step on one micro-batch (tokens, targets: int32 [batch, n]):
//   model.zero_grads();
//   double bits_per_byte = model.forward_backward(tokens, targets, step);
//   backend->adam_update(model.params, m, v, model.param_copy_for_update(), model.grads, args);
//
// Pipeline stages: a stage holds blocks [first_block, last_block), plus the
// embedding (first stage) and the head with the loss (last stage):
//   Model stage(config, backend, StageSpec{first, last, first == 0, last == config.layers});
//   Pass pass;  pass.step = <distinct for every micro-batch of every step>;
//   first stage:  Tensor act = stage.forward(pass, tokens);       // int32 [batch, n]
//   middle:       Tensor act = stage.forward(pass, act_in);       // [batch * n, d_model]
//   last stage:   double bpb = stage.forward_loss(pass, act_in, targets, grad_scale);
//   then, in reverse order of stages:
//   last stage:   Tensor d_in = stage.backward(pass, Tensor{});
//   middle:       Tensor d_in = stage.backward(pass, d_out);      // d_out not modified
//   first stage:  stage.backward(pass, d_out);                    // returns an empty Tensor
// A Pass holds one micro-batch's saved activations from its forward to its
// backward, so a stage can have several micro-batches in flight (1F1B):
// keep one Pass per in-flight micro-batch.  The gradient is that of
// grad_scale * (mean bits per byte of the micro-batch); with M micro-batches
// and loss scale S pass grad_scale = S / M.  Gradients accumulate across
// backward calls until zero_grads().
//
// Memory: all parameters of the stage live in ONE flat master buffer
// (`params`, fp32; fp64 when the activations are fp64, for gradient checks),
// their gradients in `grads` (same layout and dtype) and the forward pass
// reads `weights`, the activation-dtype copy (fp16 on CUDA; on the CPU it IS
// `params`).  So all-reduce, clipping (sum_squares, scale) and the optimizer
// are one call each on the flat buffers.  After changing `params` other than
// through adam_update's param_copy, call sync_weights().  param_infos() lists
// every named parameter (e.g. "blocks.3.attn.qkv.weight") with its offset
// and shape; param(name) and grad(name) are views.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "layers/block.h"
#include "layers/config.h"
#include "layers/embedding.h"
#include "layers/head.h"
#include "layers/params.h"

namespace st {

// One micro-batch's trip through a stage: set step (and training) before
// forward; forward fills the rest and backward consumes it.
struct Pass {
  uint64_t step = 0;     // selects the dropout masks; recomputation reuses it
  bool training = true;  // false: no dropout and no backward (evaluation)
  int64_t batch = 0;
  Tensor tokens;         // first stage
  std::vector<BlockActs> blocks;
  HeadActs head;         // last stage
  // Called by backward after each block's parameter gradients are complete,
  // with the block's index: lets the runtime start their all-reduce early.
  std::function<void(int64_t block)> after_block;
};

class Model {
 public:
  // activations: F32 (training on either backend; the CUDA backend may use
  // F16), or F64 on the CPU for gradient checks.
  Model(const ModelConfig& config, Backend& backend, const StageSpec& stage,
        DType activations = DType::F32);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const StageSpec& stage() const { return stage_; }
  Backend& backend() const { return backend_; }
  DType activation_dtype() const { return activations_; }
  // The activation passed between stages: [batch * n, d_model].
  Shape activation_shape(int64_t batch) const { return {batch * config_.n, config_.d_model}; }

  // Non-last stage: the output activation.
  Tensor forward(Pass& pass, const Tensor& input);
  // Last stage: the micro-batch's mean loss in bits per byte; keeps the
  // gradient of grad_scale * loss for backward when pass.training.
  double forward_loss(Pass& pass, const Tensor& input, const Tensor& targets,
                      float grad_scale = 1.0f);
  // d_output: the gradient of this stage's output (empty on the last stage).
  // Returns the gradient of its input activation (empty on the first stage).
  Tensor backward(Pass& pass, const Tensor& d_output);

  // The whole model on one micro-batch: forward, loss and backward.
  double forward_backward(const Tensor& tokens, const Tensor& targets, uint64_t step = 0);
  // The whole model's loss without dropout or gradients.
  double evaluate(const Tensor& tokens, const Tensor& targets);

  Tensor params, grads, weights;  // flat buffers, see the top of this file
  const std::vector<ParamInfo>& param_infos() const { return infos_; }
  Tensor param(const std::string& name) const;
  Tensor grad(const std::string& name) const;
  // `weights` when it is a separate copy, else empty: adam_update's param_copy.
  Tensor param_copy_for_update() const;
  void sync_weights();
  void zero_grads();

 private:
  const ParamInfo& info(const std::string& name) const;
  Param make_param(const std::string& name) const;
  Linear make_linear(const std::string& name, bool bias) const;
  LayerNorm make_layernorm(const std::string& name) const;
  Tensor run_blocks(Pass& pass, Tensor x);
  const std::vector<Tensor>& positions(int64_t batch);

  ModelConfig config_;
  Backend& backend_;
  StageSpec stage_;
  DType activations_;
  std::vector<ParamInfo> infos_;
  std::map<std::string, size_t> index_;  // name -> infos_ position

  Embedding embedding_;
  std::vector<Block> blocks_;
  Head head_;
  std::vector<Tensor> positions_;  // position indices for positions_batch_
  int64_t positions_batch_ = 0;
};

}  // namespace st
