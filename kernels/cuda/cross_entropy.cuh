// Softmax cross-entropy over the last dimension (256 byte classes in the
// model), one warp per row, all in fp32: the logits are read once for the
// statistics and once more (from cache) for the gradient, never stored in
// fp32.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

// losses[t] = -ln softmax(logits[t])[targets[t]] (skipped when null);
// d_logits = (softmax - onehot) * d_scale (skipped when null; may alias
// logits).  A target outside [0, classes) stops the kernel with a message.
template <class T>
void softmax_cross_entropy(float* losses, T* d_logits, const T* logits, const int32_t* targets,
                           int64_t rows, int classes, float d_scale, cudaStream_t stream);

}  // namespace st::cuda
