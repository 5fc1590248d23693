#include "core/tensor.h"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/pack.cuh"

namespace st::cuda {

namespace {

constexpr float kEps = 1e-5f;
constexpr int kWarps = 8;  // rows per block in the forward pass

// One warp per row.  Each lane owns the chunks lane*8 + 256*k, so its 16-byte
// loads are coalesced across the warp; the row is read three times (sum,
// variance, output), the second and third from cache.
template <class T>
__global__ void layernorm_forward_kernel(T* out, float* mean, float* rstd, const T* in,
                                         const T* gamma, const T* beta, int64_t rows, int C,
                                         bool vec) {
  int lane = threadIdx.x % 32;
  int64_t row = blockIdx.x * int64_t(kWarps) + threadIdx.x / 32;
  if (row >= rows) return;
  const T* x = in + row * C;
  float sum = 0;
  for (int c = lane * kChunk; c < C; c += 32 * kChunk) {
    float v[kChunk];
    load_chunk(v, x + c, C - c, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) sum += v[j];
  }
  float m = warp_sum(sum) / C;
  // Two-pass variance: no cancellation when |mean| >> std.
  float sq = 0;
  for (int c = lane * kChunk; c < C; c += 32 * kChunk) {
    float v[kChunk];
    load_chunk(v, x + c, C - c, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) sq += c + j < C ? (v[j] - m) * (v[j] - m) : 0.0f;
  }
  float r = rsqrtf(warp_sum(sq) / C + kEps);
  for (int c = lane * kChunk; c < C; c += 32 * kChunk) {
    float v[kChunk], g[kChunk], b[kChunk];
    load_chunk(v, x + c, C - c, vec);
    load_chunk(g, gamma + c, C - c, vec);
    load_chunk(b, beta + c, C - c, vec);
#pragma unroll
    for (int j = 0; j < kChunk; ++j) v[j] = (v[j] - m) * r * g[j] + b[j];
    store_chunk(out + row * C + c, v, C - c, vec);
  }
  if (lane == 0) mean[row] = m, rstd[row] = r;
}

// One warp per row, rows grid-strided.  Each warp sums d_gamma and d_beta
// for its lanes' columns in its own slice of shared memory (no two threads
// touch one address), the block then adds its warps in order and writes one
// partial row [2C] per block; layernorm_params_grad_kernel adds the blocks.
// The slice is stored element-major, column c at (c % 8) * chunks + c / 8, so
// that the 32 lanes, each adding element j of its own chunk, hit 32 banks.
template <class T>
__global__ void layernorm_backward_kernel(T* d_in, float* partial, const T* d_out, const T* in,
                                          const float* mean, const float* rstd, const T* gamma,
                                          int64_t rows, int C, bool vec) {
  extern __shared__ float shared[];  // [warps][2][8][chunks]
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const int chunks = (C + kChunk - 1) / kChunk, slice = 2 * kChunk * chunks;
  float* acc = shared + warp * slice;
  for (int i = lane; i < slice; i += 32) acc[i] = 0.0f;
  __syncwarp();
  for (int64_t row = blockIdx.x * int64_t(warps) + warp; row < rows;
       row += int64_t(gridDim.x) * warps) {
    const T *x = in + row * C, *dy = d_out + row * C;
    float m = mean[row], r = rstd[row];
    float sum_dn = 0, sum_dn_xhat = 0;  // dn = dy * gamma
    for (int c = lane * kChunk; c < C; c += 32 * kChunk) {
      float v[kChunk], d[kChunk], g[kChunk];
      load_chunk(v, x + c, C - c, vec);
      load_chunk(d, dy + c, C - c, vec);
      load_chunk(g, gamma + c, C - c, vec);
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {
        float xhat = (v[j] - m) * r;
        sum_dn += d[j] * g[j];
        sum_dn_xhat += d[j] * g[j] * xhat;
        float* a = acc + j * chunks + c / kChunk;
        if (c + j < C) a[0] += d[j] * xhat, a[kChunk * chunks] += d[j];
      }
    }
    float mean_dn = warp_sum(sum_dn) / C, mean_dn_xhat = warp_sum(sum_dn_xhat) / C;
    for (int c = lane * kChunk; c < C; c += 32 * kChunk) {
      float v[kChunk], d[kChunk], g[kChunk], di[kChunk];
      load_chunk(v, x + c, C - c, vec);
      load_chunk(d, dy + c, C - c, vec);
      load_chunk(g, gamma + c, C - c, vec);
      load_chunk(di, d_in + row * C + c, C - c, vec);
#pragma unroll
      for (int j = 0; j < kChunk; ++j) {
        float xhat = (v[j] - m) * r;
        di[j] += (d[j] * g[j] - mean_dn - xhat * mean_dn_xhat) * r;
      }
      store_chunk(d_in + row * C + c, di, C - c, vec);
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) {
    int col = c < C ? c : c - C, at = (c < C ? 0 : kChunk * chunks) + (col % kChunk) * chunks +
                                      col / kChunk;
    float s = 0;
    for (int w = 0; w < warps; ++w) s += shared[w * slice + at];
    partial[blockIdx.x * int64_t(2 * C) + c] = s;
  }
}

// d_gamma[c] += sum over blocks of partial[b][c], d_beta from partial[b][C + c].
// A block of 32 x 16 threads takes 32 columns: each row of threads reads 32
// consecutive floats of every 16th partial row, then the 16 sums are added in
// order (the same result every run).
constexpr int kSumRows = 16;
__global__ void layernorm_params_grad_kernel(void* d_gamma, void* d_beta, bool grad_half,
                                             const float* partial, int blocks, int C) {
  __shared__ float sums[kSumRows][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  float s = 0;
  if (c < 2 * C)
    for (int b = threadIdx.y; b < blocks; b += kSumRows) s += partial[int64_t(b) * 2 * C + c];
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= 2 * C) return;
  for (int y = 1; y < kSumRows; ++y) s += sums[y][threadIdx.x];
  void* grad = c < C ? d_gamma : d_beta;
  if (grad == nullptr) return;
  int i = c < C ? c : c - C;
  if (grad_half) {
    __half* g = static_cast<__half*>(grad) + i;
    *g = __float2half(__half2float(*g) + s);
  } else {
    static_cast<float*>(grad)[i] += s;
  }
}

bool all_aligned(int C, const void* a, const void* b, const void* c, const void* d) {
  return C % kChunk == 0 && aligned16(a) && aligned16(b) && aligned16(c) && aligned16(d);
}

}  // namespace

template <class T>
void layernorm_forward(T* out, float* mean, float* rstd, const T* in, const T* gamma,
                       const T* beta, int64_t rows, int channels, cudaStream_t stream) {
  if (rows == 0) return;
  bool vec = all_aligned(channels, out, in, gamma, beta);
  int blocks = int((rows + kWarps - 1) / kWarps);
  layernorm_forward_kernel<<<blocks, kWarps * 32, 0, stream>>>(out, mean, rstd, in, gamma,
                                                               beta, rows, channels, vec);
  CUDA_CHECK(cudaGetLastError());
}

template <class T>
void layernorm_backward(T* d_in, void* d_gamma, void* d_beta, bool grad_half, const T* d_out,
                        const T* in, const float* mean, const float* rstd, const T* gamma,
                        int64_t rows, int channels, cudaStream_t stream) {
  if (rows == 0) return;
  const int C = channels;
  // Each warp needs 2C floats (rounded up to whole chunks) of shared memory;
  // stay within the default 48 KB.
  const size_t slice_bytes = 2 * kChunk * size_t((C + kChunk - 1) / kChunk) * sizeof(float);
  int warps = int(48 * 1024 / slice_bytes);
  ST_CHECK(warps >= 1, "layernorm_backward: " + std::to_string(C) +
                           " channels need more shared memory than a block has");
  warps = warps < kWarps ? warps : kWarps;
  size_t smem = warps * slice_bytes;
  int per_sm = 0, device = 0, sms = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &per_sm, layernorm_backward_kernel<T>, warps * 32, smem));
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  int64_t wanted = (rows + warps - 1) / warps, cap = int64_t(sms) * (per_sm > 0 ? per_sm : 1);
  int blocks = int(wanted < cap ? wanted : cap);
  // Scratch from the caching allocator; freed here but reused only by work
  // queued after this on the same stream.
  Tensor partial = Tensor::empty({int64_t(blocks) * 2 * C}, DType::F32, Place::Device);
  bool vec = all_aligned(C, d_in, d_out, in, gamma);
  layernorm_backward_kernel<<<blocks, warps * 32, smem, stream>>>(
      d_in, partial.ptr<float>(), d_out, in, mean, rstd, gamma, rows, C, vec);
  CUDA_CHECK(cudaGetLastError());
  layernorm_params_grad_kernel<<<(2 * C + 31) / 32, dim3(32, kSumRows), 0, stream>>>(
      d_gamma, d_beta, grad_half, partial.ptr<float>(), blocks, C);
  CUDA_CHECK(cudaGetLastError());
}

template void layernorm_forward(float*, float*, float*, const float*, const float*,
                                const float*, int64_t, int, cudaStream_t);
template void layernorm_forward(__half*, float*, float*, const __half*, const __half*,
                                const __half*, int64_t, int, cudaStream_t);
template void layernorm_backward(float*, void*, void*, bool, const float*, const float*,
                                 const float*, const float*, const float*, int64_t, int,
                                 cudaStream_t);
template void layernorm_backward(__half*, void*, void*, bool, const __half*, const __half*,
                                 const float*, const float*, const __half*, int64_t, int,
                                 cudaStream_t);

}  // namespace st::cuda
