// The sum of squares of a tensor in fp64, in one pass: the gradient norm,
// and (being inf or NaN when any element is) the overflow check of dynamic
// loss scaling.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace st::cuda {

// data is fp16 when half, else fp32.  Waits for the stream and returns the
// sum to the host.
double sum_squares(const void* data, bool half, int64_t count, cudaStream_t stream);

}  // namespace st::cuda
