// Which kernel launches each pattern needs (docs/attention-kernels.md).
// Launches on one stream run in order, so a launch that accumulates sees
// everything the earlier ones wrote.
#include "kernels/cuda/attention.cuh"

#include <cmath>

#include "core/cuda_check.h"
#include "core/tensor.h"
#include "kernels/cuda/attention_fused.cuh"
#include "kernels/cuda/attention_generic.cuh"

namespace st::cuda {

using namespace attn;

Geometry attn::geometry(const AttentionSpec& s) {
  validate(s);
  ST_CHECK(s.n < (int64_t(1) << 30), "attention: n must be below 2^30 on CUDA");
  // Grids are one-dimensional, below 2^31 blocks: the largest has a block
  // per 4 query rows (the generic path), or per strided column of few rows.
  ST_CHECK(s.batch * s.heads * s.n < (int64_t(1) << 31),
           "attention: batch * heads * n must be below 2^31 on CUDA");
  Geometry g{};
  g.n = int(s.n), g.heads = int(s.heads);
  g.l = s.pattern == Pattern::Dense ? 1 : int(s.stride);
  g.c = int(s.summary), g.slices = int(s.slices);
  g.c_shift = summary_shift(g.c);
  g.pattern = int(s.pattern), g.part = int(s.part);
  g.qkv_width = s.qkv_width(), g.out_width = s.out_width();
  g.d = int(s.head_dim_qk);
  g.scale_log2 = float(M_LOG2E / std::sqrt(double(s.head_dim_qk)));
  return g;
}

namespace {

bool strided_uses(const AttentionSpec& s, int part) {
  return s.part != (part == 1 ? AttentionPart::Part2 : AttentionPart::Part1);
}

}  // namespace

std::vector<Launch> attn::forward_launches(const AttentionSpec& s) {
  if (s.pattern == Pattern::Dense) return {{kDense, false}};
  if (s.pattern == Pattern::Fixed) return {{kFixedQuery, false}};
  // The column part first; the band then merges its softmax into it.
  std::vector<Launch> launches;
  bool column = strided_uses(s, 2), band = strided_uses(s, 1);
  if (column) launches.push_back({kStridedColumn, false});
  if (band) launches.push_back({kStridedBand, column});
  return launches;
}

std::vector<Launch> attn::backward_launches(const AttentionSpec& s) {
  if (s.pattern == Pattern::Dense) return {{kDense, false}};
  if (s.pattern == Pattern::Fixed) {
    // The block part for every key (zeros for part-2 heads), then the
    // summary keys add what later blocks' queries give them.
    if (s.part == AttentionPart::Part1) return {{kFixedBlock, false}};
    return {{kFixedBlock, false}, {kFixedSummary, true}};
  }
  return forward_launches(s);  // strided: column, then band adding to it
}

bool attention_uses_fused_kernels(const AttentionSpec& s) {
  return s.head_dim_qk == s.head_dim_v && (s.head_dim_qk == 64 || s.head_dim_qk == 128) &&
         (s.pattern != Pattern::Fixed || s.stride % kTile == 0);
}

void attention_forward(__half* out, float* lse, const __half* qkv, const AttentionSpec& s,
                       cudaStream_t stream) {
  Geometry g = geometry(s);
  if (!attention_uses_fused_kernels(s)) {
    ST_CHECK(s.head_dim_qk <= kGenericMaxHeadDim && s.head_dim_v <= kGenericMaxHeadDim,
             "attention: CUDA head sizes above 512 are not supported");
    generic_forward(out, lse, qkv, g, s, stream);
    return;
  }
  Pointers p{};
  p.qkv = qkv, p.out_w = out, p.lse_w = lse;
  for (const Launch& l : forward_launches(s))
    launch_forward(l.kind, l.accumulate, g, int(s.batch), p, stream);
}

void attention_backward(__half* d_qkv, const __half* d_out, const __half* qkv,
                        const __half* out, const float* lse, const AttentionSpec& s,
                        cudaStream_t stream) {
  Geometry g = geometry(s);
  // Scratch from the caching allocator; the stream orders its later reuse.
  if (!attention_uses_fused_kernels(s)) {
    ST_CHECK(s.head_dim_qk <= kGenericMaxHeadDim && s.head_dim_v <= kGenericMaxHeadDim,
             "attention: CUDA head sizes above 512 are not supported");
    Tensor dkv = Tensor::empty({s.batch * s.n, s.heads * (s.head_dim_qk + s.head_dim_v)},
                               DType::F32, Place::Device);
    generic_backward(d_qkv, dkv.ptr<float>(), d_out, qkv, out, lse, g, s, stream);
    return;
  }
  Tensor delta = Tensor::empty({s.batch, s.heads, s.n}, DType::F32, Place::Device);
  Tensor lse2 = Tensor::empty({s.batch, s.heads, s.n}, DType::F32, Place::Device);
  int batch = int(s.batch);
  const std::vector<Launch> launches = backward_launches(s);
  bool adds_to_dq = false;
  for (const Launch& l : launches) adds_to_dq |= !owns_dq(l.kind, g, batch);
  // The fp32 dQ accumulator, where some launch adds to it.
  Tensor dq_acc;
  if (adds_to_dq)
    dq_acc = Tensor::empty({s.batch, s.heads, s.n, s.head_dim_qk}, DType::F32, Place::Device);
  Pointers p{};
  p.qkv = qkv, p.out = out, p.d_out = d_out, p.lse = lse, p.delta = delta.ptr<float>();
  p.lse2 = lse2.ptr<float>();
  p.dq_acc = adds_to_dq ? dq_acc.ptr<float>() : nullptr, p.d_qkv = d_qkv;
  // A first launch that owns its dQ, where later ones add to dq_acc, stores
  // every row of it (the fixed pattern's blocks: owns_dq): nothing to zero.
  const bool zero_dq = adds_to_dq && !owns_dq(launches.front().kind, g, batch);
  launch_backward_prologue(g, batch, p, zero_dq, stream);
  for (const Launch& l : launches) {
    bool split = l.kind == kFixedSummary && summary_chunks(g, batch) > 1;
    Tensor dkv_acc;
    if (split) {
      dkv_acc = Tensor::empty({int64_t(summary_grads_floats(g, batch))}, DType::F32,
                              Place::Device);
      p.dkv_acc = dkv_acc.ptr<float>();
      CUDA_CHECK(cudaMemsetAsync(p.dkv_acc, 0, dkv_acc.bytes(), stream));
    }
    launch_backward(l.kind, l.accumulate, g, batch, p, stream);
    if (split) launch_add_summary_grads(g, batch, p, stream);
    p.dkv_acc = nullptr;  // freed with dkv_acc: the stream orders its reuse
  }
  const Launch& last = launches.back();
  if (!owns_dq(last.kind, g, batch) || !writes_final_dq(last.kind, g))
    launch_backward_epilogue(g, batch, p, stream);
}

}  // namespace st::cuda
