// AdamW on fp32 master weights and moments, the formula of kernels/cpu/adam.h
// in fp32, in one pass that also writes the updated weights' copy (fp16 for
// the forward pass, or fp32) so that no separate cast reads them again.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

struct AdamHyper {
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  float correct1, correct2;  // 1 / (1 - beta^step), computed on the host in fp64
};

enum class CopyType { None, F16, F32 };

// grad is fp16 when grad_half, else fp32; copy is of copy_type (null for None).
void adam_update(float* param, float* m, float* v, void* copy, CopyType copy_type,
                 const void* grad, bool grad_half, int64_t count, const AdamHyper& h,
                 cudaStream_t stream);

}  // namespace st::cuda
