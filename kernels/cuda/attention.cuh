// Factorized attention on CUDA: fp16 in and out, fp32 accumulation and
// softmax statistics, lse in fp32.  Layouts and masks: kernels/attention_pattern.h;
// how the kernels work: docs/attention-kernels.md.
//
// Head sizes 64 and 128 (dqk == dv) take the fused tensor-core kernels
// (for the fixed pattern also l % 64 == 0); every other spec the CPU
// reference accepts takes a simple correct row-per-warp kernel.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/attention_pattern.h"

namespace st::cuda {

// out [batch*n, heads*dv] and lse [batch, heads, n] are overwritten; a row
// with no keys gets out = 0 and lse = -inf.
void attention_forward(__half* out, float* lse, const __half* qkv, const AttentionSpec& spec,
                       cudaStream_t stream);

// d_qkv [batch*n, qkv_width] is overwritten; out and lse are the forward's.
// Scratch comes from the device's caching allocator.  The fused kernels sum
// dQ with fp32 atomics, so dQ is not bit-reproducible from run to run.
void attention_backward(__half* d_qkv, const __half* d_out, const __half* qkv,
                        const __half* out, const float* lse, const AttentionSpec& spec,
                        cudaStream_t stream);

// Whether a spec takes the fused kernels (else the generic one).
bool attention_uses_fused_kernels(const AttentionSpec& spec);

}  // namespace st::cuda
