// Fused attention backward, in two kernels that each own their outputs, so
// nothing needs atomics and the result is deterministic:
//  - dQ: query-major like the forward; recomputes P from the saved lse,
//    dS = P (dO V^T - delta), dQ = scale dS K; also writes delta = rowsum(dO O).
//  - dK/dV: key-major; for each tile of queries that attends the keys,
//    dV += P^T dO and dK += scale dS^T Q.
// Recomputing P in both costs 7 tile products per tile pair instead of 5.
#include <cmath>

#include "core/cuda_check.h"
#include "kernels/cuda/attention_fused.cuh"
#include "kernels/cuda/attention_mma.cuh"

namespace st::cuda::attn {

namespace {

struct BwdArgs {
  Geometry g;
  Pointers p;
  int kind;
  bool accumulate;
};

// lse in base 2; an empty row (-inf) becomes +inf so that its P is 0, not NaN.
__device__ inline float lse_base2(float lse) {
  return lse == -INFINITY ? INFINITY : lse * float(M_LOG2E);
}

template <int D>
__global__ void __launch_bounds__(kThreads) dq_kernel(BwdArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int S = kStride<D>;
  __half* sq = reinterpret_cast<__half*>(smem);
  __half* sdo = sq + kTile * S;
  __half* sk = sdo + kTile * S;     // two buffers
  __half* sv = sk + 2 * kTile * S;  // two buffers
  float* sdelta = reinterpret_cast<float*>(sv + 2 * kTile * S);
  const Geometry& g = a.g;
  const int b = blockIdx.y / g.heads, h = blockIdx.y % g.heads;
  const Plan plan = query_plan(Kind(a.kind), g, blockIdx.x, h);
  if (a.accumulate && plan.nseg == 0) return;

  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const __half* kbase = base + (g.heads + h) * D;
  const __half* vbase = base + (2 * g.heads + h) * D;
  const int64_t orow = int64_t(b) * g.n * g.out_width + h * D;
  const int ntiles = inner_tiles(plan);
  auto load_kv = [&](int t) {
    InnerTile it = inner_tile(plan, t);
    const Seg s = pick(plan, it.seg);
    load_tile<D>(sk + (t % 2) * kTile * S, kbase, g.qkv_width, s, g, it.e0);
    load_tile<D>(sv + (t % 2) * kTile * S, vbase, g.qkv_width, s, g, it.e0);
  };
  load_tile<D>(sq, base + h * D, g.qkv_width, plan.rows, g, 0);
  load_tile<D>(sdo, a.p.d_out + orow, g.out_width, plan.rows, g, 0);
  if (ntiles > 0) load_kv(0);
  cp_async_commit();

  // delta of each query row: two threads a row, half the columns each.
  {
    int r = threadIdx.x / 2, half = threadIdx.x % 2;
    float d = 0;
    if (r < plan.rows.count) {
      int64_t off = orow + int64_t(seg_pos(plan.rows, g, r)) * g.out_width + half * (D / 2);
#pragma unroll
      for (int c = 0; c < D / 2; c += 8) {
        uint4 x = *reinterpret_cast<const uint4*>(a.p.d_out + off + c);
        uint4 y = *reinterpret_cast<const uint4*>(a.p.out + off + c);
        const __half2* x2 = reinterpret_cast<const __half2*>(&x);
        const __half2* y2 = reinterpret_cast<const __half2*>(&y);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          float2 fx = __half22float2(x2[k]), fy = __half22float2(y2[k]);
          d += fx.x * fy.x + fx.y * fy.y;
        }
      }
    }
    d += __shfl_xor_sync(0xffffffff, d, 1);
    if (half == 0) {
      sdelta[r] = d;
      if (!a.accumulate && r < plan.rows.count)
        a.p.delta[(int64_t(b) * g.heads + h) * g.n + seg_pos(plan.rows, g, r)] = d;
    }
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  const int qpos[2] = {seg_pos(plan.rows, g, row[0]), seg_pos(plan.rows, g, row[1])};
  const int imin = seg_pos(plan.rows, g, 0), imax = seg_pos(plan.rows, g, plan.rows.count - 1);
  float lse2[2], delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r)
    lse2[r] = row[r] < plan.rows.count
                  ? lse_base2(a.p.lse[(int64_t(b) * g.heads + h) * g.n + qpos[r]])
                  : INFINITY;

  float dq[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0;
  uint32_t qf[D / 16][4];

  for (int t = 0; t < ntiles; ++t) {
    if (t + 1 < ntiles) load_kv(t + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) load_a<D>(qf[kk], sq, warp * 16, kk);
#pragma unroll
      for (int r = 0; r < 2; ++r) delta[r] = sdelta[row[r]];
    }
    const __half* k_tile = sk + (t % 2) * kTile * S;
    const __half* v_tile = sv + (t % 2) * kTile * S;

    float s[kTile / 8][4], dp[kTile / 8][4];
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = dp[j][e] = 0;
    gemm_abt<D>(s, qf, k_tile);
    InnerTile it = inner_tile(plan, t);
    const Seg seg = pick(plan, it.seg);
    int valid = min(kTile, seg.count - it.e0);
    bool full = valid == kTile &&
                all_allowed(seg.rel, imin, imax, seg_pos(seg, g, it.e0),
                            seg_pos(seg, g, it.e0 + kTile - 1), g.l);
    if (!full) apply_mask(s, seg, g, it.e0, qpos, false);
    gemm_abt_smem<D>(dp, sdo, warp * 16, v_tile);
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float p = fast_exp2(s[j][e] * g.scale_log2 - lse2[e / 2]);
        s[j][e] = p * (dp[j][e] - delta[e / 2]);  // dS
      }
    uint32_t dsf[kTile / 16][4];
    pack_a(dsf, s);
    gemm_pb<D>(dq, dsf, k_tile);
    __syncthreads();
  }
  cp_async_wait<0>();

  const float scale = g.scale_log2 * float(M_LN2);
  const int t4 = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= plan.rows.count) continue;
    __half* dst_row = a.p.d_qkv + (int64_t(b) * g.n + qpos[r]) * g.qkv_width + h * D;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      __half2* dst = reinterpret_cast<__half2*>(dst_row + 8 * j + 2 * t4);
      float2 v = make_float2(dq[j][2 * r] * scale, dq[j][2 * r + 1] * scale);
      if (a.accumulate) {
        float2 prev = __half22float2(*dst);
        v.x += prev.x, v.y += prev.y;
      }
      *dst = __floats2half2_rn(v.x, v.y);
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) dkdv_kernel(BwdArgs a) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int S = kStride<D>;
  __half* sk = reinterpret_cast<__half*>(smem);
  __half* sv = sk + kTile * S;
  __half* sq = sv + kTile * S;       // two buffers
  __half* sdo = sq + 2 * kTile * S;  // two buffers
  float* slse = reinterpret_cast<float*>(sdo + 2 * kTile * S);  // two buffers
  float* sdelta = slse + 2 * kTile;                              // two buffers
  const Geometry& g = a.g;
  const int b = blockIdx.y / g.heads, h = blockIdx.y % g.heads;
  const Plan plan = key_plan(Kind(a.kind), g, blockIdx.x, h);
  if (a.accumulate && plan.nseg == 0) return;

  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const int64_t orow = int64_t(b) * g.n * g.out_width + h * D;
  const int64_t stat = (int64_t(b) * g.heads + h) * g.n;
  const int ntiles = inner_tiles(plan);
  auto load_q = [&](int t) {
    InnerTile it = inner_tile(plan, t);
    const Seg s = pick(plan, it.seg);
    int buf = t % 2;
    load_tile<D>(sq + buf * kTile * S, base + h * D, g.qkv_width, s, g, it.e0);
    load_tile<D>(sdo + buf * kTile * S, a.p.d_out + orow, g.out_width, s, g, it.e0);
    if (threadIdx.x < kTile) {
      int e = threadIdx.x;
      bool ok = e < s.count - it.e0;
      int pos = ok ? seg_pos(s, g, it.e0 + e) : 0;
      cp_async4(slse + buf * kTile + e, a.p.lse + stat + pos, ok);
      cp_async4(sdelta + buf * kTile + e, a.p.delta + stat + pos, ok);
    }
  };
  load_tile<D>(sk, base + (g.heads + h) * D, g.qkv_width, plan.rows, g, 0);
  load_tile<D>(sv, base + (2 * g.heads + h) * D, g.qkv_width, plan.rows, g, 0);
  if (ntiles > 0) load_q(0);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, t4 = lane % 4;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  const int kpos[2] = {seg_pos(plan.rows, g, row[0]), seg_pos(plan.rows, g, row[1])};
  const int jmin = seg_pos(plan.rows, g, 0), jmax = seg_pos(plan.rows, g, plan.rows.count - 1);

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[j][e] = dv[j][e] = 0;

  for (int t = 0; t < ntiles; ++t) {
    if (t + 1 < ntiles) load_q(t + 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int buf = t % 2;
    const __half* q_tile = sq + buf * kTile * S;
    const __half* do_tile = sdo + buf * kTile * S;

    float s[kTile / 8][4];  // S^T: rows keys, columns queries
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0;
    gemm_abt_smem<D>(s, sk, warp * 16, q_tile);
    InnerTile it = inner_tile(plan, t);
    const Seg seg = pick(plan, it.seg);
    int valid = min(kTile, seg.count - it.e0);
    bool full = valid == kTile &&
                all_allowed(seg.rel, seg_pos(seg, g, it.e0), seg_pos(seg, g, it.e0 + kTile - 1),
                            jmin, jmax, g.l);
    if (!full) apply_mask(s, seg, g, it.e0, kpos, true);
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[j][e] = fast_exp2(s[j][e] * g.scale_log2 -
                            lse_base2(slse[buf * kTile + 8 * j + 2 * t4 + e % 2]));  // P^T
    uint32_t pf[kTile / 16][4];  // P^T in fp16, also used for dS^T: frees registers
    pack_a(pf, s);
    gemm_pb<D>(dv, pf, do_tile);

    float dp[kTile / 8][4];  // dP^T = V dO^T
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j) dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0;
    gemm_abt_smem<D>(dp, sv, warp * 16, do_tile);
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; e += 2) {
        const __half2* p2 = reinterpret_cast<const __half2*>(&pf[j / 2][(j % 2) * 2 + e / 2]);
        float2 p = __half22float2(*p2);
        const float* d = sdelta + buf * kTile + 8 * j + 2 * t4;
        dp[j][e] = p.x * (dp[j][e] - d[0]);  // dS^T
        dp[j][e + 1] = p.y * (dp[j][e + 1] - d[1]);
      }
    pack_a(pf, dp);
    gemm_pb<D>(dk, pf, q_tile);
    __syncthreads();
  }
  cp_async_wait<0>();

  const float scale = g.scale_log2 * float(M_LN2);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= plan.rows.count) continue;
    __half* dst_row = a.p.d_qkv + (int64_t(b) * g.n + kpos[r]) * g.qkv_width;
#pragma unroll
    for (int which = 0; which < 2; ++which) {
      __half* dst0 = dst_row + ((1 + which) * g.heads + h) * D;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        __half2* dst = reinterpret_cast<__half2*>(dst0 + 8 * j + 2 * t4);
        float2 v = which == 0 ? make_float2(dk[j][2 * r] * scale, dk[j][2 * r + 1] * scale)
                              : make_float2(dv[j][2 * r], dv[j][2 * r + 1]);
        if (a.accumulate) {
          float2 prev = __half22float2(*dst);
          v.x += prev.x, v.y += prev.y;
        }
        *dst = __floats2half2_rn(v.x, v.y);
      }
    }
  }
}

template <int D>
void launch_dq(const BwdArgs& a, int batch, cudaStream_t stream) {
  size_t smem = 6 * kTile * kStride<D> * sizeof(__half) + kTile * sizeof(float);
  static bool ready = [&] {
    CUDA_CHECK(cudaFuncSetAttribute(dq_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    int(smem)));
    return true;
  }();
  (void)ready;
  dim3 grid(grid_tiles(Kind(a.kind), a.g), batch * a.g.heads);
  dq_kernel<D><<<grid, kThreads, smem, stream>>>(a);
  CUDA_CHECK(cudaGetLastError());
}

template <int D>
void launch_dkdv(const BwdArgs& a, int batch, cudaStream_t stream) {
  size_t smem = 6 * kTile * kStride<D> * sizeof(__half) + 4 * kTile * sizeof(float);
  static bool ready = [&] {
    CUDA_CHECK(cudaFuncSetAttribute(dkdv_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    return true;
  }();
  (void)ready;
  dim3 grid(grid_tiles(Kind(a.kind), a.g), batch * a.g.heads);
  dkdv_kernel<D><<<grid, kThreads, smem, stream>>>(a);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_backward_dq(Kind kind, bool accumulate, const Geometry& g, int batch,
                        const Pointers& p, cudaStream_t stream) {
  BwdArgs a{g, p, kind, accumulate};
  if (g.d == 64)
    launch_dq<64>(a, batch, stream);
  else
    launch_dq<128>(a, batch, stream);
}

void launch_backward_dkdv(Kind kind, bool accumulate, const Geometry& g, int batch,
                          const Pointers& p, cudaStream_t stream) {
  BwdArgs a{g, p, kind, accumulate};
  if (g.d == 64)
    launch_dkdv<64>(a, batch, stream);
  else
    launch_dkdv<128>(a, batch, stream);
}

}  // namespace st::cuda::attn
