// The generic attention path: any head sizes (up to 512), any stride.  One
// warp per query row walks the row's keys one at a time (scalar fp32, the
// lanes splitting the head dimension), so its cost follows nnz like the CPU
// reference's; it exists for correctness, not speed.  The backward adds
// dK and dV with fp32 atomics into scratch, then converts.
#include <cmath>

#include "core/cuda_check.h"
#include "kernels/cuda/attention_generic.cuh"
#include "kernels/cuda/attention_plan.cuh"

namespace st::cuda::attn {

namespace {

constexpr int kPerLane = kGenericMaxHeadDim / 32;
constexpr int kWarps = 4;

struct GenArgs {
  Geometry g;
  int batch, dqk, dv;
  float scale;
  const __half* qkv;
  const __half* out;
  const __half* d_out;
  const float* lse;
  __half* out_w;
  float* lse_w;
  __half* d_qkv;
  float* dkv;  // [batch * n, heads * (dqk + dv)] fp32 scratch
};

// The keys of query i of head h as at most two runs of positions.
__device__ int row_keys(const Geometry& g, int h, int i, Seg* segs) {
  int part = head_part(g, h), count = 0;
  if (g.pattern == 0) {
    segs[count++] = run(0, 1, i + 1, kLE);
  } else if (g.pattern == 1) {
    int s = max(0, i - g.l + 1);
    if (part != 2) segs[count++] = run(s, 1, i - s + 1, kLE);
    if (part != 1) segs[count++] = run(i % g.l, g.l, part == 2 ? i / g.l + 1 : i / g.l, kLE);
  } else {
    int block = i / g.l, lo = g.l - (h % g.slices + 1) * g.c;
    if (part != 2) segs[count++] = run(block * g.l, 1, i - block * g.l + 1, kLE);
    if (part != 1) {
      int own = part == 2 ? min(g.c, max(0, i % g.l - lo + 1)) : 0;
      segs[count++] = summary_cells(g, h, 0, block * g.c + own, kLE);
    }
  }
  return count;
}

__device__ inline float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffff, x, o);
  return x;
}

// x[k] = row[lane + 32 k] as fp32, 0 past dim.
__device__ inline void load_row(float* x, const __half* row, int dim) {
  int lane = threadIdx.x % 32;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k)
    x[k] = lane + 32 * k < dim ? __half2float(row[lane + 32 * k]) : 0.f;
}

__device__ inline float dot_row(const float* x, const __half* row, int dim) {
  int lane = threadIdx.x % 32;
  float s = 0;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k)
    if (lane + 32 * k < dim) s += x[k] * __half2float(row[lane + 32 * k]);
  return warp_sum(s);
}

// This warp's query row: position i of head h in sequence b, that
// sequence's qkv rows, and the columns where head h's K and V start.
struct WarpRow {
  int i, h, b;
  const __half* base;
  int64_t k_off, v_off;
};
__device__ inline bool warp_row(const GenArgs& a, WarpRow& r) {
  const Geometry& g = a.g;
  int64_t w = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32;
  if (w >= int64_t(a.batch) * g.heads * g.n) return false;
  r.i = int(w % g.n), r.h = int(w / g.n % g.heads), r.b = int(w / g.n / g.heads);
  r.base = a.qkv + int64_t(r.b) * g.n * g.qkv_width;
  r.k_off = int64_t(g.heads) * a.dqk + r.h * a.dqk;
  r.v_off = 2 * int64_t(g.heads) * a.dqk + r.h * a.dv;
  return true;
}

__global__ void generic_forward(GenArgs a) {
  const Geometry& g = a.g;
  WarpRow r;
  if (!warp_row(a, r)) return;
  const auto [i, h, b, base, k_off, v_off] = r;
  int lane = threadIdx.x % 32;
  float q[kPerLane], o[kPerLane] = {};
  load_row(q, base + i * g.qkv_width + h * a.dqk, a.dqk);
  float m = -INFINITY, sum = 0;
  Seg segs[2];
  int nseg = row_keys(g, h, i, segs);
  for (int s = 0; s < nseg; ++s)
    for (int e = 0; e < segs[s].count; ++e) {
      const __half* key_row = base + int64_t(seg_pos(segs[s], g, e)) * g.qkv_width;
      float score = dot_row(q, key_row + k_off, a.dqk) * a.scale;
      float m_new = fmaxf(m, score), corr = expf(m - m_new), p = expf(score - m_new);
      sum = sum * corr + p;
      m = m_new;
#pragma unroll
      for (int k = 0; k < kPerLane; ++k)
        if (lane + 32 * k < a.dv)
          o[k] = o[k] * corr + p * __half2float(key_row[v_off + lane + 32 * k]);
    }
  __half* out = a.out_w + (int64_t(b) * g.n + i) * g.out_width + h * a.dv;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k)
    if (lane + 32 * k < a.dv) out[lane + 32 * k] = __float2half(sum > 0 ? o[k] / sum : 0.f);
  if (lane == 0)
    a.lse_w[(int64_t(b) * g.heads + h) * g.n + i] = sum > 0 ? m + logf(sum) : -INFINITY;
}

__global__ void generic_backward(GenArgs a) {
  const Geometry& g = a.g;
  WarpRow r;
  if (!warp_row(a, r)) return;
  const auto [i, h, b, base, k_off, v_off] = r;
  int lane = threadIdx.x % 32;
  const int64_t o_row = (int64_t(b) * g.n + i) * g.out_width + h * a.dv;
  const int64_t dkv_width = int64_t(g.heads) * (a.dqk + a.dv);
  float q[kPerLane], d_o[kPerLane], dq[kPerLane] = {};
  load_row(q, base + i * g.qkv_width + h * a.dqk, a.dqk);
  load_row(d_o, a.d_out + o_row, a.dv);
  float delta = dot_row(d_o, a.out + o_row, a.dv);
  float lse = a.lse[(int64_t(b) * g.heads + h) * g.n + i];
  Seg segs[2];
  int nseg = row_keys(g, h, i, segs);
  for (int s = 0; s < nseg; ++s)
    for (int e = 0; e < segs[s].count; ++e) {
      int j = seg_pos(segs[s], g, e);
      const __half* key_row = base + int64_t(j) * g.qkv_width;
      float p = expf(dot_row(q, key_row + k_off, a.dqk) * a.scale - lse);
      float ds = p * (dot_row(d_o, key_row + v_off, a.dv) - delta) * a.scale;
      float* dkv = a.dkv + (int64_t(b) * g.n + j) * dkv_width;
#pragma unroll
      for (int k = 0; k < kPerLane; ++k) {
        int d = lane + 32 * k;
        if (d < a.dqk) {
          dq[k] += ds * __half2float(key_row[k_off + d]);
          atomicAdd(dkv + h * a.dqk + d, ds * q[k]);
        }
        if (d < a.dv) atomicAdd(dkv + g.heads * a.dqk + h * a.dv + d, p * d_o[k]);
      }
    }
  __half* dq_row = a.d_qkv + (int64_t(b) * g.n + i) * g.qkv_width + h * a.dqk;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k)
    if (lane + 32 * k < a.dqk) dq_row[lane + 32 * k] = __float2half(dq[k]);
}

// d_qkv's k and v columns from the fp32 scratch.
__global__ void convert_dkv(__half* d_qkv, const float* dkv, int64_t rows, int64_t q_width,
                            int64_t dkv_width) {
  int64_t total = rows * dkv_width;
  for (int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; x < total;
       x += int64_t(gridDim.x) * blockDim.x) {
    int64_t r = x / dkv_width, c = x % dkv_width;
    d_qkv[r * (q_width + dkv_width) + q_width + c] = __float2half(dkv[x]);
  }
}

GenArgs make_args(const Geometry& g, const AttentionSpec& spec) {
  GenArgs a{};
  a.g = g;
  a.batch = int(spec.batch), a.dqk = int(spec.head_dim_qk), a.dv = int(spec.head_dim_v);
  a.scale = 1.0f / std::sqrt(float(spec.head_dim_qk));
  return a;
}

unsigned warp_blocks(const AttentionSpec& s) {
  return unsigned((s.batch * s.heads * s.n + kWarps - 1) / kWarps);
}

}  // namespace

void generic_forward(__half* out, float* lse, const __half* qkv, const Geometry& g,
                     const AttentionSpec& spec, cudaStream_t stream) {
  GenArgs a = make_args(g, spec);
  a.qkv = qkv, a.out_w = out, a.lse_w = lse;
  generic_forward<<<warp_blocks(spec), kWarps * 32, 0, stream>>>(a);
  CUDA_CHECK(cudaGetLastError());
}

void generic_backward(__half* d_qkv, float* dkv_scratch, const __half* d_out,
                      const __half* qkv, const __half* out, const float* lse,
                      const Geometry& g, const AttentionSpec& spec, cudaStream_t stream) {
  GenArgs a = make_args(g, spec);
  a.qkv = qkv, a.out = out, a.d_out = d_out, a.lse = lse, a.d_qkv = d_qkv, a.dkv = dkv_scratch;
  int64_t rows = spec.batch * spec.n, dkv_width = spec.heads * (spec.head_dim_qk + spec.head_dim_v);
  CUDA_CHECK(cudaMemsetAsync(dkv_scratch, 0, sizeof(float) * rows * dkv_width, stream));
  generic_backward<<<warp_blocks(spec), kWarps * 32, 0, stream>>>(a);
  CUDA_CHECK(cudaGetLastError());
  int64_t blocks = (rows * dkv_width + 255) / 256;
  convert_dkv<<<unsigned(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(
      d_qkv, dkv_scratch, rows, spec.heads * spec.head_dim_qk, dkv_width);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace st::cuda::attn
