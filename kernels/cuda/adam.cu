#include "kernels/cuda/adam.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void adam_kernel(float* param, float* m, float* v, void* copy, CopyType copy_type,
                            const void* grad, bool grad_half, int64_t count, AdamHyper h,
                            bool vec) {
  for_each_chunk(count, [&](int64_t i, int valid) {
    float p[kChunk], mm[kChunk], vv[kChunk], g[kChunk];
    load_chunk(p, param + i, valid, vec);
    load_chunk(mm, m + i, valid, vec);
    load_chunk(vv, v + i, valid, vec);
    if (grad_half)
      load_chunk(g, static_cast<const __half*>(grad) + i, valid, vec);
    else
      load_chunk(g, static_cast<const float*>(grad) + i, valid, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) {
      float gs = g[j] * h.grad_scale;
      mm[j] = h.beta1 * mm[j] + (1.0f - h.beta1) * gs;
      vv[j] = h.beta2 * vv[j] + (1.0f - h.beta2) * gs * gs;
      float update = (mm[j] * h.correct1) / (sqrtf(vv[j] * h.correct2) + h.eps);
      p[j] -= h.lr * (update + h.weight_decay * p[j]);
    }
    store_chunk(param + i, p, valid, vec);
    store_chunk(m + i, mm, valid, vec);
    store_chunk(v + i, vv, valid, vec);
    if (copy_type == CopyType::F16)
      store_chunk(static_cast<__half*>(copy) + i, p, valid, vec);
    else if (copy_type == CopyType::F32)
      store_chunk(static_cast<float*>(copy) + i, p, valid, vec);
  });
}

}  // namespace

void adam_update(float* param, float* m, float* v, void* copy, CopyType copy_type,
                 const void* grad, bool grad_half, int64_t count, const AdamHyper& h,
                 cudaStream_t stream) {
  if (count == 0) return;
  bool vec = aligned16(param) && aligned16(m) && aligned16(v) && aligned16(grad) &&
             (copy_type == CopyType::None || aligned16(copy));
  adam_kernel<<<chunk_grid(count, kThreads), kThreads, 0, stream>>>(
      param, m, v, copy, copy_type, grad, grad_half, count, h, vec);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace st::cuda
