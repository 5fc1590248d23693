// The generic (any head size, any stride) attention kernels; see
// attention_generic.cu.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/attention_pattern.h"
#include "kernels/cuda/attention_plan.cuh"

namespace st::cuda::attn {

constexpr int kGenericMaxHeadDim = 512;

void generic_forward(__half* out, float* lse, const __half* qkv, const Geometry& g,
                     const AttentionSpec& spec, cudaStream_t stream);

// dkv_scratch: fp32 [batch * n, heads * (dqk + dv)].
void generic_backward(__half* d_qkv, float* dkv_scratch, const __half* d_out,
                      const __half* qkv, const __half* out, const float* lse,
                      const Geometry& g, const AttentionSpec& spec, cudaStream_t stream);

}  // namespace st::cuda::attn
