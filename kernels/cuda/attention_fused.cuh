// Launchers of the fused attention kernels (head sizes 64 and 128), used by
// kernels/cuda/attention.cu, which decides which launches a pattern needs.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/attention_plan.cuh"

namespace st::cuda::attn {

struct Pointers {
  const __half* qkv;
  const __half* out;  // backward: the forward's output
  const __half* d_out;
  const float* lse;   // backward
  __half* out_w;      // forward: written
  float* lse_w;       // forward: written
  float* delta;       // backward: rowsum(d_out * out) [batch, heads, n], by the prologue
  float* lse2;        // backward: lse in base 2, +inf for rows with no key, by the prologue
  float* dq_acc;      // backward: fp32 dQ / scale [batch * n, heads * d], zeroed by the prologue
  __half* d_qkv;
};

// Each launch covers one relation of the pattern for all heads.  With
// accumulate, it adds to what an earlier launch wrote (forward: merges the
// two partial softmaxes exactly; backward: adds dK and dV); without, it
// overwrites every row of its tiles, with zeros / -inf where no pair is
// allowed.  The backward's key-major launches all add their dQ to dq_acc.
void launch_forward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                    cudaStream_t stream);
// Backward: the prologue, then launch_backward for each relation, then the
// epilogue, which writes d_qkv's Q columns from dq_acc.
void launch_backward_prologue(const Geometry& g, int batch, const Pointers& p,
                              cudaStream_t stream);
void launch_backward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                     cudaStream_t stream);
void launch_backward_epilogue(const Geometry& g, int batch, const Pointers& p,
                              cudaStream_t stream);

}  // namespace st::cuda::attn
