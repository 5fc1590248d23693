// Parameters: one named tensor's value (the activation-dtype copy the
// forward pass reads) and its gradient, both views into a stage's flat
// buffers; and the layout that places every named parameter in those
// buffers, with its initialisation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "layers/config.h"

namespace st {

struct Param {
  Tensor value;  // activation dtype (fp32/fp64 on the CPU, fp16 on CUDA)
  Tensor grad;   // master dtype (fp32, fp64 in gradient checks); "+=" by backward
};

enum class Init { Normal, Zeros, Ones };

struct ParamInfo {
  std::string name;   // e.g. "blocks.3.attn.qkv.weight"
  Shape shape;
  int64_t offset = 0; // in elements, into the flat buffers
  Init init = Init::Zeros;
  double std = 0;     // for Init::Normal
  int64_t numel() const;
};

// Which part of the model a pipeline stage holds: residual blocks
// [first_block, last_block), plus the embedding on the first stage and the
// output head with the loss on the last.
struct StageSpec {
  int64_t first_block = 0, last_block = 0;
  bool embedding = false, head = false;
};
StageSpec whole_model(const ModelConfig& config);

// Every parameter of the stage, in a fixed order, offsets aligned to 64
// elements (the gaps are zero and stay zero) so that every view suits
// vector loads.  Sets *total to the flat buffers' element count.
std::vector<ParamInfo> stage_params(const ModelConfig& config, const StageSpec& stage,
                                    int64_t* total);

// Writes every parameter's initial values into host buffer `flat` (fp32 or
// fp64, zero elsewhere).  Each parameter draws from its own counter-based
// generator seeded by (seed, name): any partition of the model into stages
// initialises exactly as the whole model.
void init_params(Tensor& flat, const std::vector<ParamInfo>& params, uint64_t seed);

// The view of one parameter inside a flat buffer.
Tensor param_view(const Tensor& flat, const ParamInfo& info);

}  // namespace st
