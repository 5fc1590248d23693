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
  float* delta;       // backward: rowsum(d_out * out), written by the dQ kernel
  __half* d_qkv;
};

// Each launch covers one relation of the pattern for all heads.  With
// accumulate, it adds to what an earlier launch wrote (forward: merges the
// two partial softmaxes exactly; backward: adds the gradients); without, it
// overwrites every row of its tiles, with zeros / -inf where no pair is allowed.
void launch_forward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                    cudaStream_t stream);
void launch_backward_dq(Kind kind, bool accumulate, const Geometry& g, int batch,
                        const Pointers& p, cudaStream_t stream);
void launch_backward_dkdv(Kind kind, bool accumulate, const Geometry& g, int batch,
                          const Pointers& p, cudaStream_t stream);

}  // namespace st::cuda::attn
