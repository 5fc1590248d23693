// Fused attention backward in one key-major pass (FlashAttention-2 style):
// a thread block of one to three warpgroups owns 64 keys per warpgroup, and
// for each tile of 64 queries that attends them, recomputes P^T from the
// saved lse, then
//   dV += P^T dO,  dS^T = P^T (V dO^T - delta),  dK += scale dS^T Q,
//   dQ += scale dS K  (fp32 reductions into a scratch accumulator),
// 5 tile products per tile pair.  Warpgroups share the query tiles, so dQ's
// reductions (the L2's throughput for them bounds long passes) come once per
// 128 or 192 keys, not per 64.  dK and dV have one owner each, except in split
// launches (kSplitTiles); dQ rows get contributions from every key tile that
// their queries attend, in no fixed order, so dQ can differ from run to run
// by fp32 rounding.  Two row-wise kernels frame the pass: before, delta =
// rowsum(dO O), lse in base 2 and a zeroed dQ accumulator; after, dQ scaled
// and rounded to fp16 into d_qkv.  The strided pattern's one-warpgroup
// blocks need neither the additions nor the epilogue: each writes its own
// queries' dQ whole (own_dq_pass).  So do the fixed pattern's blocks, into
// every row of the accumulator, which the summary keys then add to: it
// needs no zeroing.
#include <algorithm>
#include <cmath>

#include "core/cuda_check.h"
#include "kernels/cuda/attention_fused.cuh"
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/chain.cuh"

namespace st::cuda::attn {

namespace {

struct BwdArgs {
  Geometry g;
  Pointers p;
  int kind;
  bool accumulate;
  int pairs;   // batch * heads
  int chunks;  // > 1: split, dK and dV added to dkv_acc (kFixedSummary only)
  bool own_dq;  // owns_dq: the blocks write their queries' dQ whole (one warpgroup)
  int halves;   // > 0: kFixedSummary in halves (summary_items), ItemOrder
  int slots;    // blocks in flight: SMs times blocks per SM
};

// The order of a launch in halves (SummaryItems::order): a kernel parameter
// of its own, read by a block index (__grid_constant__: no local copy).
struct ItemOrder {
  uint16_t item[kMaxSummaryItems];
};

// lse in base 2; an empty row (-inf) becomes +inf so that its P is 0, not NaN.
__device__ inline float lse_base2(float lse) {
  return lse == -INFINITY ? INFINITY : lse * float(M_LOG2E);
}

// One thread per 8 consecutive elements of an [rows, heads * D] array; the
// D / 8 threads of one (row, head) are consecutive lanes of a warp.  Also
// writes lse in base 2 for the backward pass, and zeroes dq_acc where a
// launch adds to it.
template <int D>
__global__ void delta_kernel(Geometry g, int64_t chunks, const __half* out,
                             const __half* d_out, const float* lse, float* delta, float* lse2,
                             float* dq_acc, bool zero_dq) {
  wait_then_allow_next();  // chained: reads and writes nothing before
  int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  bool ok = x < chunks;
  float d = 0;
  if (ok) {
    uint4 u = reinterpret_cast<const uint4*>(out)[x];
    uint4 v = reinterpret_cast<const uint4*>(d_out)[x];
    const __half2* u2 = reinterpret_cast<const __half2*>(&u);
    const __half2* v2 = reinterpret_cast<const __half2*>(&v);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float2 a = __half22float2(u2[k]), b = __half22float2(v2[k]);
      d += a.x * b.x + a.y * b.y;
    }
    if (zero_dq) {
      float4* z = reinterpret_cast<float4*>(dq_acc) + 2 * x;
      z[0] = z[1] = make_float4(0, 0, 0, 0);
    }
  }
#pragma unroll
  for (int w = 1; w < D / 8; w *= 2) d += __shfl_xor_sync(0xffffffff, d, w);
  if (ok && x % (D / 8) == 0) {
    int64_t row = x / (g.heads * D / 8);  // b * n + i
    int h = int(x / (D / 8) % g.heads);
    int64_t at = (row / g.n * g.heads + h) * g.n + row % g.n;
    delta[at] = d;
    lse2[at] = lse_base2(lse[at]);
  }
}

// d_qkv's Q columns = scale * dq_acc (head-major), rounded to fp16.
template <int D>
__global__ void dq_to_half_kernel(Geometry g, int64_t chunks, const float* dq_acc,
                                  __half* d_qkv) {
  wait_then_allow_next();  // chained: reads and writes nothing before
  int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x >= chunks) return;
  const float scale = g.scale_log2 * float(M_LN2);
  int64_t row = x / (g.heads * D / 8), col = x % (g.heads * D / 8) * 8;  // b * n + i
  int64_t at = ((row / g.n * g.heads + col / D) * g.n + row % g.n) * D + col % D;
  const float4* src = reinterpret_cast<const float4*>(dq_acc + at);
  float4 lo = src[0], hi = src[1];
  __half2 h[4] = {__floats2half2_rn(lo.x * scale, lo.y * scale),
                  __floats2half2_rn(lo.z * scale, lo.w * scale),
                  __floats2half2_rn(hi.x * scale, hi.y * scale),
                  __floats2half2_rn(hi.z * scale, hi.w * scale)};
  *reinterpret_cast<uint4*>(d_qkv + row * g.qkv_width + col) = *reinterpret_cast<uint4*>(h);
}

// dQ reaches dq_acc ([batch, heads, n, D] fp32) by float4 atomics, except
// in one-warpgroup blocks with d = 64 built for sm_90a: there by the TMA
// unit's bulk reductions from a [64][D] fp32 tile of shared memory (one
// reduction per tile where its queries are consecutive positions, one per
// row in strided columns), 2-3% faster on the short strided passes when
// they still added their dQ here (now they own it: owns_dq).  The
// tile takes the last 16 KiB that three such blocks per SM leave.  On the
// wide blocks the bulk reductions measured slower than the atomics, even
// with two staging tiles (docs/attention-kernels.md), and with d = 128 the
// tile would cost a block per SM.
template <int D, int WGS>
constexpr bool kStageDq = D == 64 && WGS == 1;
template <int D, int WGS>
constexpr int kStageFloats = kStageDq<D, WGS> ? kTile * D : 0;

// Adds a warpgroup's dQ fragment (columns [col, col + CW) of the tile's
// rows row[0], row[1]; dq_row(i) is row i's dq_acc row) by float4 atomics:
// lanes t and t ^ 1 swap halves, so even lanes add 4 columns of row g, odd
// ones of row g + 8.  Rows from valid_rows on are past the segment.
template <int CW, class RowPtr>
__device__ inline void atomic_add_dq(float (*dq)[4], int col, const int* row, int valid_rows,
                                     RowPtr dq_row) {
  const int t4 = threadIdx.x % 4, r = t4 % 2;
  const int my_row = r ? row[1] : row[0];  // (row[r] would put row in local memory)
  const bool ok = my_row < valid_rows;
  float* dst = ok ? dq_row(my_row) + col + 2 * (t4 - r) : nullptr;
  // All values first, then the atomics: each in its own registers, so that
  // none waits for the one before to have read its operands (they stalled
  // there when the atomics queue was full).
  float4 v[CW / 8];
#pragma unroll
  for (int j = 0; j < CW / 8; ++j) {
    float send0 = r ? dq[j][0] : dq[j][2], send1 = r ? dq[j][1] : dq[j][3];
    float got0 = __shfl_xor_sync(0xffffffff, send0, 1);
    float got1 = __shfl_xor_sync(0xffffffff, send1, 1);
    v[j] = r ? make_float4(got0, got1, dq[j][2], dq[j][3])
             : make_float4(dq[j][0], dq[j][1], got0, got1);
  }
#pragma unroll
  for (int j = 0; j < CW / 8; ++j)
    if (ok) atomicAdd(reinterpret_cast<float4*>(dst + 8 * j), v[j]);
}

// The same for a one-warpgroup block's whole [64][D] dQ tile, by the TMA
// unit's bulk reductions from the staging tile `stage` (kStageDq): one for
// the tile where its rows are consecutive positions, else one per row.
// The caller waits (bulk_wait_read) before it stages the next tile.
template <int D, class RowPtr>
__device__ inline void bulk_add_dq(float (*dq)[4], float* stage, const int* row, int valid_rows,
                                   const Seg& seg, RowPtr dq_row) {
  const int t4 = threadIdx.x % 4;
#pragma unroll
  for (int j = 0; j < D / 8; ++j)
#pragma unroll
    for (int r = 0; r < 2; ++r)
      *reinterpret_cast<float2*>(stage + row[r] * D + 8 * j + 2 * t4) =
          make_float2(dq[j][2 * r], dq[j][2 * r + 1]);
  fence_smem_for_mma();
  __syncthreads();
  const int rows = min(kTile, valid_rows), e = threadIdx.x;
  if (!seg.summary && seg.step == 1) {
    if (e == 0) bulk_add_f32(dq_row(0), stage, rows * D * int(sizeof(float)));
  } else if (e < rows) {
    bulk_add_f32(dq_row(e), stage + e * D, D * int(sizeof(float)));
  }
  bulk_commit();
}

// A block's dQ rows `rows` (a run; the thread's two rows of a 64-row
// fragment), without an accumulator, scaled and rounded to fp16 into
// d_qkv: the column's partial sums (not final), or the final rows, which
// add the column's partial sums found there where that launch ran.  (The
// column's sums in fp16, not fp32 in dq_acc: half the bytes written and
// read again, for one rounding more, as dK and dV have.)
template <int D>
__device__ inline void store_dq(const BwdArgs& a, int b, int h, const Seg& rows,
                                const float (*dq)[4]) {
  const Geometry& g = a.g;
  const bool add_column = a.accumulate && writes_final_dq(Kind(a.kind), g);
  const int lane = threadIdx.x % 32, warp = threadIdx.x % kThreads / 32, t4 = lane % 4;
  const float scale = g.scale_log2 * float(M_LN2);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = warp * 16 + lane / 4 + 8 * r;
    if (i >= rows.count) continue;
    __half* dst = a.p.d_qkv + (int64_t(b) * g.n + run_pos(rows, i)) * g.qkv_width + h * D;
    // The column's partial sums all loaded before any store: read between
    // the stores, each load waited a round trip behind them (H200, strided
    // n = 16384 forward+backward 0.286 -> 0.274 ms).
    float2 column[D / 8];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      const __half2* src = reinterpret_cast<const __half2*>(dst + 8 * j + 2 * t4);
      column[j] = add_column ? __half22float2(*src) : make_float2(0, 0);
    }
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<__half2*>(dst + 8 * j + 2 * t4) =
          __floats2half2_rn(dq[j][2 * r] * scale + column[j].x,
                            dq[j][2 * r + 1] * scale + column[j].y);
  }
}

// The same rows unscaled in fp32 into dq_acc, for the launch after to add
// to (the fixed pattern's blocks before the summary keys).
template <int D>
__device__ inline void store_dq_acc(const BwdArgs& a, int b, int h, const Seg& rows,
                                    const float (*dq)[4]) {
  const Geometry& g = a.g;
  const int lane = threadIdx.x % 32, warp = threadIdx.x % kThreads / 32, t4 = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = warp * 16 + lane / 4 + 8 * r;
    if (i >= rows.count) continue;
    float* dst = a.p.dq_acc + ((int64_t(b) * g.heads + h) * g.n + run_pos(rows, i)) * D;
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
      *reinterpret_cast<float2*>(dst + 8 * j + 2 * t4) =
          make_float2(dq[j][2 * r], dq[j][2 * r + 1]);
  }
}

// A key-major tile's P^T = 2^(S^T scale_log2 - lse) in place, lse (base 2)
// of the tile's 64 queries, its columns.
__device__ inline void probs_t(float (*s)[4], const float* lse, float scale_log2) {
  const int t4 = threadIdx.x % 4;
#pragma unroll
  for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      s[j][e] = fast_exp2(s[j][e] * scale_log2 - lse[8 * j + 2 * t4 + e % 2]);
}

// dS^T = P^T (dP^T - delta) in place of dP^T, P^T as the fp16 fragments the
// dV product used, delta of the tile's 64 queries.
__device__ inline void dscores_t(float (*dp)[4], const uint32_t (*pf)[4], const float* delta) {
  const int t4 = threadIdx.x % 4;
#pragma unroll
  for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; e += 2) {
      const __half2* p2 = reinterpret_cast<const __half2*>(&pf[j / 2][(j % 2) * 2 + e / 2]);
      float2 p = __half22float2(*p2);
      const float* d = delta + 8 * j + 2 * t4;
      dp[j][e] = p.x * (dp[j][e] - d[0]);
      dp[j][e + 1] = p.y * (dp[j][e + 1] - d[1]);
    }
}

// Row r (0: the lane's row lane / 4 of its warp's 16, 1: 8 rows later) of
// a warpgroup's dK (times scale) and dV fragments, as fp16 into the K and V
// columns of head h in dst_row, a row of d_qkv: plus prev[0 or 1][j] (the
// earlier launch's dK or dV) where prev is given, added atomically where
// `atomic` (the halves of a key tile).
template <int D>
__device__ inline void store_dkv_row(__half* dst_row, const Geometry& g, int h, int r, float scale,
                                     const float (*dk)[4], const float (*dv)[4],
                                     const float2 (*prev)[D / 8], bool atomic) {
  const int t4 = threadIdx.x % 4;
#pragma unroll
  for (int which = 0; which < 2; ++which) {
    __half* dst0 = dst_row + ((1 + which) * g.heads + h) * D;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      __half2* dst = reinterpret_cast<__half2*>(dst0 + 8 * j + 2 * t4);
      float2 v = which == 0 ? make_float2(dk[j][2 * r] * scale, dk[j][2 * r + 1] * scale)
                            : make_float2(dv[j][2 * r], dv[j][2 * r + 1]);
      if (atomic)
        atomicAdd(dst, __floats2half2_rn(v.x, v.y));
      else if (prev)
        *dst = __floats2half2_rn(v.x + prev[which][j].x, v.y + prev[which][j].y);
      else
        *dst = __floats2half2_rn(v.x, v.y);
    }
  }
}

// backward_kernel's query buffers, which its loop and own_dq_pass both
// address: buffer i holds a Q tile and then its dO tile, and its rows' lse
// and delta (kTile floats each).
template <int D>
struct QueryBufs {
  __half* sqd;
  float* slse;
  float* sdelta;
  __device__ __half* q(int i) const { return sqd + 2 * i * kTileElems<D>; }
  __device__ __half* dout(int i) const { return q(i) + kTileElems<D>; }
  __device__ float* lse(int i) const { return slse + i * kTile; }
  __device__ float* delta(int i) const { return sdelta + i * kTile; }
};

// The strided launches' and the fixed blocks' dQ without atomics
// (owns_dq): a block's keys and its inner tile 0 of queries are the same 64
// positions, and the block computes those queries' whole dQ of the launch's
// relation, so no other block adds to their rows.  From the block's own
// keys: dS of tile 0, whose dS^T the key-major loop kept in sds, times K.
// From the keys before them (keys_before: the band's l - 1 positions
// before, the column's earlier rows, the fixed block's), recomputed
// query-major after the loop: S = Q K^T, dP = dO V^T, dS = P (dP - delta),
// dQ += dS K, three products per tile.  The loop's later query tiles then
// need no dQ (they are later blocks' own), so it runs 4 products per tile
// and no reductions.  (Done before the loop, with
// the own keys recomputed too, it measured slower: H100, strided n = 65536
// 1.29 -> 1.44 ms.)  Buffers: the own queries and dO in query buffer
// own_buf (still there where own_kept: the staging tile's room, which
// keeps them since 66edcf2; else reloaded), the keys and values before
// alternately in buffer 1 (its Q and dO rooms) and, once dS K is done, sk
// and sv.
template <int D, class LoadQ>
__device__ inline void own_dq_pass(const BwdArgs& a, const Plan& plan, int b, int h,
                                   const QueryBufs<D>& qb, __half* sk, __half* sv,
                                   const __half* sds, LoadQ load_q, int own_buf, bool own_kept) {
  constexpr int CW = 64;  // dQ's columns per product
  const Geometry& g = a.g;
  const Seg& own = plan.rows;
  Plan before;
  add_seg(before, keys_before(Kind(a.kind), g, plan));
  const int ntiles = inner_tiles(before);
  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const __half *sq = qb.q(own_buf), *sdo = qb.dout(own_buf);
  auto k_tile = [&](int c) { return c % 2 == 0 ? qb.q(1) : sk; };
  auto v_tile = [&](int c) { return c % 2 == 0 ? qb.dout(1) : sv; };
  auto load_kv = [&](int c) {
    load_run_tile<D>(k_tile(c), base + (g.heads + h) * D, g.qkv_width, before.seg[0], c * kTile);
    load_run_tile<D>(v_tile(c), base + (2 * g.heads + h) * D, g.qkv_width, before.seg[0],
                     c * kTile);
  };
  __syncthreads();  // every warp is done with the loop's buffers (and prev_k, prev_v)
  // The own queries: Q, dO, lse, delta into their buffer (own_kept: still there).
  if (plan.nseg > 0 && !own_kept) load_q(0);
  if (ntiles > 0) load_kv(0);
  cp_async_commit();
  wait_copies_for_mma<0>();

  float dq[D / 8][4];
  if (plan.nseg > 0) {
#pragma unroll
    for (int c0 = 0; c0 < D; c0 += CW) mma_atb<D, 1, CW>(dq + c0 / 8, sds, sk, c0);
    mma_wait<0>();
    fence_acc<D / 8>(dq);
    __syncthreads();  // every warp is done with sk: tile 1 before loads there
  } else {  // no queries attend (a head without this part)
#pragma unroll
    for (int j = 0; j < D / 8; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0;
  }

  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  const int qpos[2] = {run_pos(own, row[0]), run_pos(own, row[1])};
  const float* own_lse = qb.lse(own_buf);
  const float* own_delta = qb.delta(own_buf);
  const float lse[2] = {own_lse[row[0]], own_lse[row[1]]};
  const float delta[2] = {own_delta[row[0]], own_delta[row[1]]};
  const FullTiles full = full_tiles(before, g, run_pos(own, 0), run_pos(own, own.count - 1), false);
  for (int c = 0; c < ntiles; ++c) {
    if (c > 0) {
      wait_copies_for_mma<0>();  // tile c; every warp is done with tile c - 1
    }
    float s[kTile / 8][4], dp[kTile / 8][4];  // rows queries, columns keys
    mma_abt<D>(s, sq, k_tile(c));
    mma_abt<D>(dp, sdo, v_tile(c));
    if (c + 1 < ntiles) load_kv(c + 1);  // into tile c - 1's buffers
    cp_async_commit();
    mma_wait<1>();  // S
    fence_acc<kTile / 8>(s);
    if (needs_mask(full, c)) apply_mask(s, before.seg[0], g, c * kTile, qpos, false);
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = fast_exp2(s[j][e] * g.scale_log2 - lse[e / 2]);  // P
    mma_wait<0>();  // dP
    fence_acc<kTile / 8>(dp);
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) dp[j][e] = s[j][e] * (dp[j][e] - delta[e / 2]);  // dS
    uint32_t dsf[kTile / 16][4];
    pack_a(dsf, dp);
    mma_pb<D>(dq, dsf, k_tile(c));
    mma_wait<0>();
    fence_acc<D / 8>(dq);
    fence_frag(dsf);
  }
  if (Kind(a.kind) == kFixedBlock && !writes_final_dq(kFixedBlock, g))
    store_dq_acc<D>(a, b, h, own, dq);
  else
    store_dq<D>(a, b, h, own, dq);
}

// Thread blocks per SM: with one warpgroup (about 168 registers a thread)
// three blocks with d = 64, two with d = 128; with two or three, one.
template <int D, int WGS>
constexpr int kBwdBlocksPerSm = WGS > 1 ? 1 : D == 64 ? 3 : 2;

// Wide blocks (one per SM) have the shared memory for three query tiles in
// flight and two dS^T buffers: then one barrier per tile serves, not two
// (the loop).  A barrier stops every warp of the SM there: H100, dense
// n = 16384 backward 2.11 -> 1.88 ms, fixed n = 65536 forward+backward
// 13.85 -> 13.0.  One-warpgroup blocks, 2 or 3 per SM, have not the room.
template <int WGS>
constexpr bool kOneBarrier = WGS > 1;
template <int WGS>
constexpr int kQueryBufs = kOneBarrier<WGS> ? 3 : 2;
template <int WGS>
constexpr int kDsBufs = kOneBarrier<WGS> ? 2 : 1;
// Blocks that own their dQ add none, so the staging tile serves them as a
// third query buffer, which keeps their own query tile for own_dq_pass:
// lse and delta have room for three.
template <int D, int WGS>
constexpr int kStatBufs = kStageDq<D, WGS> ? 3 : kQueryBufs<WGS>;
// The kernel's shared memory, as it carves it (backward_kernel's start).
template <int D, int WGS>
constexpr size_t backward_smem() {
  constexpr int q = kQueryBufs<WGS>;
  return ((2 * WGS + 2 * q) * kTileElems<D> + kDsBufs<WGS> * WGS * kTileElems<64>) *
             sizeof(__half) +
         (kStageFloats<D, WGS> + 2 * kStatBufs<D, WGS> * kTile) * sizeof(float) + kTileAlign;
}

// WGS warpgroups, each owning 64 keys; they share the query tiles.
template <int D, int WGS>
__global__ void __launch_bounds__(WGS * kThreads, (kBwdBlocksPerSm<D, WGS>))
    backward_kernel(BwdArgs a, const __grid_constant__ ItemOrder item_order) {
  // Three warpgroups: 168 registers, the dQ column split and prev_k/prev_v's
  // six tiles in the query, dO and dS^T buffers all assume d = 64.
  static_assert(WGS < 3 || D == 64, "three warpgroups only with d = 64");
  extern __shared__ unsigned char smem_raw[];
  constexpr int T = kTileElems<D>;
  __half* sk = reinterpret_cast<__half*>(aligned_smem(smem_raw));  // WGS tiles
  __half* sv = sk + WGS * T;    // WGS tiles
  constexpr int QB = kQueryBufs<WGS>, DSB = kDsBufs<WGS>;
  __half* sds = sv + WGS * T;   // DSB buffers of dS^T [64 WGS keys][64 queries]
  __half* sqd = sds + DSB * WGS * kTileElems<64>;  // QB query buffers: a Q tile, a dO tile
  float* sstage = reinterpret_cast<float*>(sqd + 2 * QB * T);  // [64][D] dQ
  float* slse = sstage + kStageFloats<D, WGS>;       // kStatBufs buffers
  float* sdelta = slse + kStatBufs<D, WGS> * kTile;  // kStatBufs buffers
  const QueryBufs<D> qb = {sqd, slse, sdelta};
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr bool bulk_dq = kStageDq<D, WGS>;
#else
  constexpr bool bulk_dq = false;
#endif
  const Geometry& g = a.g;
  const BlockTile bt = block_tile(g, a.pairs, a.chunks);
  const int b = bt.b, h = bt.h;
  // A launch in halves (summary_items, three warpgroups): block x runs item
  // item_order.item[x], a whole key tile or half of its query tiles.
  int x = bt.x, half = 0;
  if constexpr (WGS == 3)
    if (a.halves > 0) x = item_order.item[bt.x] / 4, half = item_order.item[bt.x] % 4;
  const Plan plan = key_plan(Kind(a.kind), g, x, h, WGS * kTile);
  const bool split = a.chunks > 1;
  const bool add_prev = a.accumulate && !split;
  // Whether the epilogue adds the earlier launch's dK, dV rows (load_prev):
  // a half of a key tile adds its sums to them atomically instead.
  const bool reads_prev = add_prev && half == 0;
  // The strided launches' one-warpgroup blocks write their queries' dQ
  // whole (own_dq_pass, after the loop, which computes only dK and dV and
  // keeps tile 0's dS^T for it).
  const bool own_dq = WGS == 1 && a.own_dq;
  // Chained launches (kernels/cuda/chain.cuh): a launch that adds to an
  // earlier one's dK and dV computes its tiles first (its dQ goes to the
  // accumulator, which the prologue kernel zeroed, or, where it owns its
  // dQ, is written after the wait) and waits for that one only before it
  // reads them; any other launch waits now, and so do the summary keys,
  // whose dQ adds to the rows that the blocks' launch before them stored.
  if (!add_prev || Kind(a.kind) == kFixedSummary) wait_then_allow_next();
  int t_begin = split ? bt.chunk * kSplitTiles : 0;
  int t_end = split ? min(inner_tiles(plan), t_begin + kSplitTiles) : inner_tiles(plan);
  if (WGS == 3 && half > 0) {
    const TileRange span = half_tiles(half, t_end);
    t_begin = span.lo, t_end = span.hi;
  }
  if ((a.accumulate && plan.nseg == 0) || (split && t_begin >= t_end)) {
    if (add_prev) wait_then_allow_next();
    if (own_dq) {  // a head without the band part: the column's dQ alone
      const float zero[D / 8][4] = {};
      store_dq<D>(a, b, h, plan.rows, zero);
    }
    return;
  }
  const int wg = warpgroup_index();  // this warpgroup owns keys [64 wg, 64 wg + 64)
  const Seg keys = warpgroup_rows(plan.rows, wg);
  __half* my_k = sk + wg * T;
  __half* my_v = sv + wg * T;

  // The first warpgroup loads the query tiles and lse, the last the dO tiles
  // and delta.
  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const int64_t orow = int64_t(b) * g.n * g.out_width + h * D;
  const int64_t stat = (int64_t(b) * g.heads + h) * g.n;
  // Step t visits query tile tile_of(t), so that the summary keys' blocks in
  // flight, whose first query tiles lie far apart, read the same query tiles
  // and add to the same dQ rows at about the same time (their L2 footprint).
  // Blocks run in waves of a.slots, longest first.  A wave that starts
  // together walks back from the last query tile together; its blocks end
  // shortest first, and the next wave's start in that order, longest first,
  // each later by as much as its first query tile lies further up: walking
  // forward, they are at the same query tile throughout and end together,
  // so the wave after walks back again.  (Halves: back.  Blocks of one
  // warpgroup, the split runs of few heads' summary keys among them, walk
  // forward: a walk in either direction cost the strided launches' loop
  // registers.)
  const bool backward_walk = WGS > 1 && Kind(a.kind) == kFixedSummary &&
                             (a.halves > 0 || blockIdx.x / a.slots % 2 == 0);
  auto tile_of = [&](int t) { return backward_walk ? t_begin + t_end - 1 - t : t; };
  // One-warpgroup blocks that own their dQ (d = 64) load their own query
  // tile (tile 0) into a third buffer, the staging tile's room, where it
  // stays for own_dq_pass, which then reloads nothing but the keys before.
  const bool keep_own = kStageDq<D, WGS> && own_dq;
  static_assert(!kStageDq<D, WGS> || kStageFloats<D, WGS> == T, "staging tile = a query buffer");
  auto buf_of = [&](int t) { return keep_own && t == 0 ? 2 : t % QB; };  // 2: the staging tile
  auto load_q = [&](int t) {
    InnerTile it = inner_tile(plan, tile_of(t));
    const Seg s = pick(plan, it.seg);
    int buf = buf_of(t);
    if (wg == 0) load_run_tile<D>(qb.q(buf), base + h * D, g.qkv_width, s, it.e0);
    if (wg == WGS - 1) load_run_tile<D>(qb.dout(buf), a.p.d_out + orow, g.out_width, s, it.e0);
    int e = threadIdx.x % kThreads;
    if (e < kTile) {
      bool ok = e < s.count - it.e0;
      int pos = ok ? run_pos(s, it.e0 + e) : 0;  // queries: a run
      if (wg == 0) cp_async4(qb.lse(buf) + e, a.p.lse2 + stat + pos, ok);
      if (wg == WGS - 1) cp_async4(qb.delta(buf) + e, a.p.delta + stat + pos, ok);
    }
  };
  // A launch that adds to an earlier one reads that one's dK and dV of its
  // keys into shared memory for the epilogue (read from global memory there,
  // one round trip per element, they cost the band launch of the strided
  // pattern a third of its time).  With one warpgroup they go into the query
  // and dO buffers that the last tile leaves free, while it computes; with
  // more (two tiles each), after the loop, into the query and dO buffers
  // (six tiles).
  __half* prev_k = qb.q(WGS == 1 ? t_end % 2 : wg);
  __half* prev_v = prev_k + T;
  auto load_prev = [&] {
    wait_then_allow_next();
    if (!reads_prev) return;
    const __half* d_base = a.p.d_qkv + int64_t(b) * g.n * g.qkv_width;
    load_tile<D>(prev_k, d_base + (g.heads + h) * D, g.qkv_width, keys, g, 0);
    load_tile<D>(prev_v, d_base + (2 * g.heads + h) * D, g.qkv_width, keys, g, 0);
  };
  load_tile<D>(my_k, base + (g.heads + h) * D, g.qkv_width, keys, g, 0);
  load_tile<D>(my_v, base + (2 * g.heads + h) * D, g.qkv_width, keys, g, 0);
  if (t_begin < t_end)
    load_q(t_begin);
  else if (WGS == 1 && add_prev)
    load_prev();
  cp_async_commit();
  if constexpr (kOneBarrier<WGS>) {  // the loop's barrier is a tile ahead
    if (t_begin + 1 < t_end) load_q(t_begin + 1);
    cp_async_commit();
    wait_copies_for_mma<1>();  // keys, values, query tile t_begin
  }

  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32, t4 = lane % 4;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  const int kpos[2] = {seg_pos(keys, g, row[0]), seg_pos(keys, g, row[1])};
  // A partial key tile is masked even where its valid keys would not need
  // it: its zero-filled rows past the end would get P^T = exp(-lse),
  // possibly inf in fp16, and dQ adds dS K.  (Today's plans put such a
  // tile only where it meets the diagonal anyway; this keeps it so.)
  const FullTiles full = keys.count == kTile
                             ? full_tiles(plan, g, seg_pos(keys, g, 0),
                                          seg_pos(keys, g, kTile - 1), true)
                             : FullTiles{};  // every tile masked

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[j][e] = dv[j][e] = 0;

  // (Issuing the next tile's S^T and dP^T before this tile's dQ atomics,
  // to overlap the two, made ptxas serialize the products: the loop-carried
  // accumulators.)
  for (int t = t_begin; t < t_end; ++t) {
    if constexpr (!kOneBarrier<WGS>) {
      // Query tile t; every warp is done with tile t - 1 and its sds.
      wait_copies_for_mma<0>();
    }
    const int buf = buf_of(t);
    const __half* q_tile = qb.q(buf);
    const __half* do_tile = qb.dout(buf);

    // S^T and dP^T = V dO^T on the tensor cores together; then, while dV and
    // dK accumulate there, the warps compute dS^T and store it for dQ.
    float s[kTile / 8][4], dp[kTile / 8][4];  // rows keys, columns queries
    mma_abt<D>(s, my_k, q_tile);
    mma_abt<D>(dp, my_v, do_tile);
    if constexpr (!kOneBarrier<WGS>) {  // copies issued while the products run
      if (t + 1 < t_end)
        load_q(t + 1);  // into tile t - 1's buffers
      else if (add_prev)
        load_prev();
      cp_async_commit();
    }
    InnerTile it = inner_tile(plan, tile_of(t));
    const Seg seg = pick(plan, it.seg);
    mma_wait<1>();  // S^T
    fence_acc<kTile / 8>(s);
    if (needs_mask(full, tile_of(t))) apply_mask(s, seg, g, it.e0, kpos, true);
    probs_t(s, qb.lse(buf), g.scale_log2);  // P^T
    uint32_t pf[kTile / 16][4];  // P^T in fp16
    pack_a(pf, s);
    mma_pb<D>(dv, pf, do_tile);
    mma_wait<1>();  // dP^T
    fence_acc<kTile / 8>(dp);
    dscores_t(dp, pf, qb.delta(buf));  // dS^T
    uint32_t dsf[kTile / 16][4];  // dS^T in fp16
    pack_a(dsf, dp);
    mma_pb<D>(dk, dsf, q_tile);
    if (own_dq) {  // tile 0 holds the block's own queries: its dS^T stays for dQ
      if (t == 0) {
        store_frags(sds, dsf);
        fence_smem_for_mma();  // the barriers before own_dq_pass's products follow
      }
      mma_wait<0>();  // dV and dK: P^T and dS^T may be overwritten now
      fence_frag(pf);
      fence_frag(dsf);
      continue;
    }

    // dQ needs all keys of a query row, spread over the warps: dS^T goes
    // through shared memory, and each warpgroup computes some of dQ's
    // columns from it (read transposed) and adds them to the accumulator.
    __half* ds_tile = sds + (t % DSB) * WGS * kTileElems<64>;
    store_frags(ds_tile + wg * kTileElems<64>, dsf);
    if constexpr (bulk_dq) bulk_wait_read();  // the previous tile's staged dQ was read
    if constexpr (kOneBarrier<WGS>) cp_async_wait<0>();  // query tile t + 1
    fence_smem_for_mma();
    // With one barrier per tile it also says: query tile t + 1 is in, and
    // every warp is done with tile t - 1 (its dQ product was waited for), so
    // tile t + 2 may load into tile t - 1's buffers.
    __syncthreads();
    // D / WGS columns each, at most 64 at a time (32 accumulator registers);
    // with three warpgroups (d = 64) the first two take 32 and the third none.
    constexpr int kDqWgs = WGS == 3 ? 2 : WGS;
    constexpr int N = D / kDqWgs, CW = N < 64 ? N : 64;  // columns [N wg, N wg + N)
    const int valid_rows = seg.count - it.e0;
    const int64_t head_rows = (int64_t(b) * g.heads + h) * g.n;
    auto dq_row = [&](int i) { return a.p.dq_acc + (head_rows + run_pos(seg, it.e0 + i)) * D; };
    // With one barrier per tile, query tile t + 2's copies, issued while dQ's
    // product runs.
    auto issue_next = [&] {
      if constexpr (kOneBarrier<WGS>) {
        if (t + 2 < t_end) load_q(t + 2);
        cp_async_commit();
      }
    };
    if (WGS != 3 || wg < kDqWgs) {
#pragma unroll
      for (int c0 = 0; c0 < N; c0 += CW) {
        float dq[CW / 8][4];
        mma_atb<D, WGS, CW>(dq, ds_tile, sk, N * wg + c0);
        if (c0 == 0) issue_next();
        mma_wait<0>();  // also dV and dK: P^T and dS^T may be overwritten now
        fence_acc<CW / 8>(dq);
        fence_frag(pf);
        fence_frag(dsf);
        if constexpr (bulk_dq)  // one warpgroup, CW == D: one pass
          bulk_add_dq<D>(dq, sstage, row, valid_rows, seg, dq_row);
        else
          atomic_add_dq<CW>(dq, N * wg + c0, row, valid_rows, dq_row);
      }
    } else {  // no dQ columns
      issue_next();
      mma_wait<0>();  // dV and dK: P^T and dS^T may be overwritten now
      fence_frag(pf);
      fence_frag(dsf);
    }
  }
  if constexpr (bulk_dq) bulk_wait_read();  // before the block's shared memory goes
  if (WGS > 1 && add_prev) {
    __syncthreads();  // every warpgroup is done with the query tiles
    load_prev();
    cp_async_commit();
  }
  cp_async_wait<0>();
  if (add_prev) __syncthreads();  // every thread's rows of prev_k and prev_v
  fence_acc<D / 8>(dk);
  fence_acc<D / 8>(dv);
  const float scale = g.scale_log2 * float(M_LN2);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= keys.count) continue;
    if (split) {  // partial sums of summary cells: [pair][cell][dK | dV]
      int cells = (g.n / g.l) * g.c;
      float* acc =
          a.p.dkv_acc + (int64_t(b * g.heads + h) * cells + keys.first + row[r]) * 2 * D;
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        atomicAdd(reinterpret_cast<float2*>(acc + 8 * j + 2 * t4),
                  make_float2(dk[j][2 * r] * scale, dk[j][2 * r + 1] * scale));
        atomicAdd(reinterpret_cast<float2*>(acc + D + 8 * j + 2 * t4),
                  make_float2(dv[j][2 * r], dv[j][2 * r + 1]));
      }
      continue;
    }
    // The earlier launch's rows, all read before any store (as in store_dq).
    float2 prev[2][D / 8];
#pragma unroll
    for (int which = 0; which < 2; ++which)
#pragma unroll
      for (int j = 0; j < D / 8; ++j) {
        const __half* p = (which == 0 ? prev_k : prev_v) + swizzled(row[r], 8 * j + 2 * t4);
        prev[which][j] =
            reads_prev ? __half22float2(*reinterpret_cast<const __half2*>(p)) : make_float2(0, 0);
      }
    // Both halves of a key tile add to the earlier launch's rows, which
    // load_prev waited for (fp16 atomics: one rounding more than one sum,
    // and the two in either order).
    store_dkv_row<D>(a.p.d_qkv + (int64_t(b) * g.n + kpos[r]) * g.qkv_width, g, h, r, scale, dk,
                     dv, prev, WGS == 3 && half > 0);
  }
  // The own tile is still in its buffer where no later tile or prev_k took it.
  const bool own_kept = keep_own || t_end <= 1;
  if (own_dq)
    own_dq_pass<D>(a, plan, b, h, qb, sk, sv, sds, load_q, buf_of(0), own_kept);
}

// d_qkv's K and V columns of every summary cell += dkv_acc, one thread per
// 8 elements, rounded to fp16.
template <int D>
__global__ void add_summary_grads_kernel(Geometry g, int64_t chunks, const float* acc,
                                         __half* d_qkv) {
  wait_then_allow_next();  // chained: reads and writes nothing before
  int64_t x = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (x >= chunks) return;
  constexpr int kPerCell = 2 * D / 8;
  const int cells = (g.n / g.l) * g.c, part = int(x % kPerCell);
  const int64_t pair = x / kPerCell / cells;
  const int e = int(x / kPerCell % cells), b = int(pair / g.heads), h = int(pair % g.heads);
  const int pos = seg_pos(summary_cells(g, h, 0, cells, kLE), g, e);
  const int which = part / (D / 8), col = part % (D / 8) * 8;  // K or V, 8 columns
  __half* dst = d_qkv + (int64_t(b) * g.n + pos) * g.qkv_width +
                ((1 + which) * g.heads + h) * D + col;
  const float4* src = reinterpret_cast<const float4*>(acc) + 2 * x;
  const float4 lo = src[0], hi = src[1];
  const float add[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
  uint4 u = *reinterpret_cast<const uint4*>(dst);
  __half2* h2 = reinterpret_cast<__half2*>(&u);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    float2 f = __half22float2(h2[k]);
    h2[k] = __floats2half2_rn(f.x + add[2 * k], f.y + add[2 * k + 1]);
  }
  *reinterpret_cast<uint4*>(dst) = u;
}

// Short strided columns (n / l <= 128 rows: one or two tiles), d = 64: a
// block takes one head's whole column, so each of its tiles is read once,
// all of them at the block's start (one round trip, not one per step), and
// its three tile pairs need 15 products, none recomputed.  (With a block
// per key tile, the own-dQ pass read the query tile and the key tile before
// it again: 17 products and 112 KB read a column instead of 64.)  The
// pairs, key tile first: (1, 1), then (0, 1), then dQ of query tile 1 from
// both dS^T tiles in one product over 128 keys, then (0, 0) and its dQ.
// Shared memory: K0 K1 Q0 Q1 dO0 dO1 V0 V1 X (9 tiles, 72 KiB: three
// blocks per SM); dS^T(0, 1) goes where V1 was, dS^T(1, 1) into X, so the
// two are consecutive as K0 and K1 are; dS^T(0, 0) then where V1 was.
// H100, side by side (2026-12-07): strided n = 16384 forward+backward
// 0.263-0.267 -> 0.259-0.262 ms (with the forward's short columns too,
// 0.253-0.254).
constexpr int kShortColumnSmemTiles = 9;

// One tile pair of a short column: dK, dV of key tile tk += its queries' of
// query tile tq; returns dS^T (keys x queries) in fp16 fragments in dsf.
__device__ inline void column_pair_grads(const Geometry& g, const __half* k_tile,
                                         const __half* v_tile, const __half* q_tile,
                                         const __half* do_tile, const float* lse,
                                         const float* delta, const Seg& queries, int tq,
                                         const int* kpos, bool masked, float (*dk)[4],
                                         float (*dv)[4], uint32_t (*dsf)[4]) {
  float s[kTile / 8][4], dp[kTile / 8][4];  // rows keys, columns queries
  mma_abt<64>(s, k_tile, q_tile);
  mma_abt<64>(dp, v_tile, do_tile);
  mma_wait<1>();  // S^T
  fence_acc<kTile / 8>(s);
  if (masked) apply_mask(s, queries, g, tq * kTile, kpos, true);
  probs_t(s, lse, g.scale_log2);  // P^T
  uint32_t pf[kTile / 16][4];
  pack_a(pf, s);
  mma_pb<64>(dv, pf, do_tile);
  mma_wait<1>();  // dP^T
  fence_acc<kTile / 8>(dp);
  dscores_t(dp, pf, delta);  // dS^T
  pack_a(dsf, dp);
  mma_pb<64>(dk, dsf, q_tile);
  mma_wait<0>();  // dV and dK: P^T may be overwritten now
  fence_acc<64 / 8>(dv);
  fence_acc<64 / 8>(dk);
  fence_frag(pf);
  fence_frag(dsf);
}

// dK (scaled) and dV of key rows `keys` into d_qkv (the column launch is
// the first: nothing to add to).
__device__ inline void store_column_dkv(const BwdArgs& a, int b, int h, const Seg& keys,
                                        const float (*dk)[4], const float (*dv)[4]) {
  const Geometry& g = a.g;
  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
  const float scale = g.scale_log2 * float(M_LN2);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp * 16 + lane / 4 + 8 * r;
    if (row >= keys.count) continue;
    store_dkv_row<64>(a.p.d_qkv + (int64_t(b) * g.n + run_pos(keys, row)) * g.qkv_width, g, h, r,
                      scale, dk, dv, nullptr, false);
  }
}

// dQ of a short column's query tile `rows` = dS K over its KT key tiles:
// their dS^T tiles consecutive from ds (just stored by every warp), the
// keys from sk.
template <int KT>
__device__ inline void column_dq(const BwdArgs& a, int b, int h, const Seg& rows,
                                 const __half* ds, const __half* sk) {
  float dq[64 / 8][4];
  fence_smem_for_mma();
  __syncthreads();
  mma_atb<64, KT, 64>(dq, ds, sk, 0);
  mma_wait<0>();
  fence_acc<64 / 8>(dq);
  store_dq<64>(a, b, h, rows, dq);
}

__global__ void __launch_bounds__(kThreads, 3) short_column_backward_kernel(BwdArgs a) {
  extern __shared__ unsigned char smem_raw[];
  constexpr int D = 64, T = kTileElems<64>;
  __half* sk = reinterpret_cast<__half*>(aligned_smem(smem_raw));  // K0, K1
  __half* sq = sk + 2 * T;                                          // Q0, Q1
  __half* sdo = sq + 2 * T;                                         // dO0, dO1
  __half* sv = sdo + 2 * T;                                         // V0, V1, then X
  __half* ds01 = sv + T;      // dS^T(0, 1) where V1 was, then dS^T(0, 0)
  __half* ds11 = sv + 2 * T;  // X: dS^T(1, 1), right after dS^T(0, 1)
  float* slse = reinterpret_cast<float*>(sv + 3 * T);  // [2][64]
  float* sdelta = slse + 2 * kTile;                     // [2][64]
  const Geometry& g = a.g;
  const BlockTile bt = block_tile(g, a.pairs, 1);
  const int b = bt.b, h = bt.h, col = bt.x, rows = g.n / g.l, part = head_part(g, h);
  wait_then_allow_next();  // reads the prologue's lse2 and delta
  // The column's queries (no pair allowed for a head without the column part).
  const Seg queries = run(col, g.l, part != 1 ? rows : 0, part == 0 ? kLT : kLE);
  const Seg all = run(col, g.l, rows, kLE);  // the column's rows
  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const __half* d_out = a.p.d_out + int64_t(b) * g.n * g.out_width + h * D;
  const int64_t stat = (int64_t(b) * g.heads + h) * g.n;
  auto load = [&](int t, bool keys, bool queries_too) {
    if (keys) {
      load_run_tile<D>(sk + t * T, base + (g.heads + h) * D, g.qkv_width, all, t * kTile);
      load_run_tile<D>(sv + t * T, base + (2 * g.heads + h) * D, g.qkv_width, all, t * kTile);
    }
    if (queries_too) {
      load_run_tile<D>(sq + t * T, base + h * D, g.qkv_width, all, t * kTile);
      load_run_tile<D>(sdo + t * T, d_out, g.out_width, all, t * kTile);
      const int e = threadIdx.x % kTile, r = t * kTile + e;
      const bool ok = r < rows;
      const int pos = ok ? run_pos(all, r) : 0;
      if (threadIdx.x < kTile)
        cp_async4(slse + t * kTile + e, a.p.lse2 + stat + pos, ok);
      else
        cp_async4(sdelta + t * kTile + e, a.p.delta + stat + pos, ok);
    }
  };
  const bool two = rows > kTile;
  // Every tile now, in the order the pairs need them: three groups.
  if (two) load(1, true, true);
  cp_async_commit();
  if (two) load(0, true, false);
  cp_async_commit();
  load(0, !two, true);
  cp_async_commit();

  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  auto kpos = [&](int tk, int* p) {
    p[0] = run_pos(all, tk * kTile + row[0]);
    p[1] = run_pos(all, tk * kTile + row[1]);
  };
  float dk[D / 8][4], dv[D / 8][4];
  auto zero = [&] {
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) dk[j][e] = dv[j][e] = 0;
  };
  uint32_t dsf[kTile / 16][4];
  int kp[2];
  if (two) {
    // (1, 1): key tile 1 is done.
    wait_copies_for_mma<2>();
    zero();
    kpos(1, kp);
    column_pair_grads(g, sk + T, sv + T, sq + T, sdo + T, slse + kTile, sdelta + kTile, queries,
                      1, kp, true, dk, dv, dsf);
    store_frags(ds11, dsf);
    store_column_dkv(a, b, h, warpgroup_rows(all, 1), dk, dv);
    // (0, 1).
    wait_copies_for_mma<1>();  // also: every warp is done with V1
    zero();
    kpos(0, kp);
    column_pair_grads(g, sk, sv, sq + T, sdo + T, slse + kTile, sdelta + kTile, queries, 1, kp,
                      !short_column_tiles_full(part, rows), dk, dv, dsf);
    store_frags(ds01, dsf);
    // dQ of query tile 1 over both key tiles: [dS^T(0, 1); dS^T(1, 1)]^T [K0; K1].
    column_dq<2>(a, b, h, warpgroup_rows(all, 1), ds01, sk);
    __syncthreads();  // every warp is done with ds01
  } else {
    zero();
  }
  // (0, 0): key tile 0 is done, and query tile 0's dQ.
  wait_copies_for_mma<0>();
  kpos(0, kp);
  column_pair_grads(g, sk, sv, sq, sdo, slse, sdelta, queries, 0, kp, true, dk, dv, dsf);
  store_frags(ds01, dsf);
  store_column_dkv(a, b, h, warpgroup_rows(all, 0), dk, dv);
  column_dq<1>(a, b, h, warpgroup_rows(all, 0), ds01, sk);
}

void launch_short_columns(const BwdArgs& a, cudaStream_t stream) {
  size_t smem = kShortColumnSmemTiles * kTileElems<64> * sizeof(__half) +
                4 * kTile * sizeof(float) + kTileAlign;
  allow_dynamic_smem<short_column_backward_kernel>(smem);
  launch_chained(true, short_column_backward_kernel, dim3(a.g.l * a.pairs), kThreads, smem,
                 stream, a);
}

template <int D, int WGS>
void launch_pass(const BwdArgs& a, const ItemOrder& order, int tiles, cudaStream_t stream) {
  size_t smem = backward_smem<D, WGS>();
  allow_dynamic_smem<backward_kernel<D, WGS>>(smem);
  dim3 grid(tiles * a.pairs * a.chunks);
  BwdArgs args = a;
  args.slots = sm_count() * kBwdBlocksPerSm<D, WGS>;
  // A split launch follows the memset of its accumulator, not a kernel.
  launch_chained(a.chunks == 1, backward_kernel<D, WGS>, grid, WGS * kThreads, smem, stream, args,
                 order);
}

// Two warpgroups per block halve the dQ atomics but run one block per SM:
// they pay where a key tile meets many query tiles (dense and summary keys,
// long strided columns) and the grid still fills the GPU several times
// over; short passes run faster with 2 or 3 one-warpgroup blocks per SM.
// (H100: dense n = 16384 backward 2.62 -> 2.35 ms; with blocks numbered
// tile-major over the heads, also fixed n = 16384, whose 256 summary blocks
// fill the SMs once, 1.05 -> 0.74 ms.)  Three (d = 64 only: within 168
// registers; the third adds no dQ columns) cut them to one per 192 keys
// and run 12 warps per SM, where the grid has two such blocks per SM
// (dense n = 65536 forward+backward 49.5 -> 47.4 ms; fixed n = 16384's
// 171 summary blocks of 192 were 20% slower than 256 of 128 unsplit; the
// summary keys now run so in halves: summary_halves).
int backward_warpgroups(Kind kind, const Geometry& g, int batch) {
  if (!long_inner_loops(kind, g) || !fills_gpu(kind, g, batch, 2, 1)) return 1;
  if (g.d == 64 && fills_gpu(kind, g, batch, 3, 2)) return 3;
  return kind == kFixedSummary && summary_halves(g, batch).halves > 0 ? 3 : 2;
}

// Blocks of 256 threads over the 8-element chunks of [batch * n, heads * D].
int64_t row_chunks(const Geometry& g, int batch) {
  return int64_t(batch) * g.n * g.heads * g.d / 8;
}
unsigned row_blocks(int64_t chunks) { return unsigned((chunks + 255) / 256); }

}  // namespace

SummaryItems summary_halves(const Geometry& g, int batch) {
  if (g.d != 64 || !fills_gpu(kFixedSummary, g, batch, 2, 1) ||
      fills_gpu(kFixedSummary, g, batch, 3, 2))
    return SummaryItems{};
  return summary_items(g, batch * g.heads, sm_count());
}

int summary_chunks(const Geometry& g, int batch) {
  return backward_warpgroups(kFixedSummary, g, batch) > 1 ? 1
                                                         : tiles_of(g.n, kTile * kSplitTiles);
}

bool owns_dq(Kind kind, const Geometry& g, int batch) {
  // The band's own dQ costs more than it saves (the epilogue) where the
  // column launch adds to dq_acc anyway (long columns, wide blocks: H100,
  // strided n = 262144 8.59 -> 8.71 ms with it).
  bool one_warpgroup_columns = backward_warpgroups(kStridedColumn, g, batch) == 1;
  return (kind == kStridedBand && (one_warpgroup_columns || g.part == 1)) ||
         (kind == kStridedColumn && one_warpgroup_columns) || kind == kFixedBlock;
}

void launch_backward_prologue(const Geometry& g, int batch, const Pointers& p, bool zero_dq,
                              cudaStream_t stream) {
  int64_t chunks = row_chunks(g, batch);
  launch_chained(true, g.d == 64 ? delta_kernel<64> : delta_kernel<128>, row_blocks(chunks), 256,
                 0, stream, g, chunks, p.out, p.d_out, p.lse, p.delta, p.lse2, p.dq_acc,
                 zero_dq);
}

void launch_backward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                     cudaStream_t stream) {
  int chunks = kind == kFixedSummary ? summary_chunks(g, batch) : 1;
  ST_CHECK(chunks == 1 || p.dkv_acc, "attention: split backward without its accumulator");
  const bool own = owns_dq(kind, g, batch);
  BwdArgs a{g, p, kind, accumulate, batch * g.heads, chunks, own, 0, 0};
  if (short_columns(kind, g)) {
    ST_CHECK(own, "attention: short strided columns own their dQ");
    launch_short_columns(a, stream);
    return;
  }
  ItemOrder order{};
  int wgs = backward_warpgroups(kind, g, batch);
  ST_CHECK(!own || wgs == 1, "attention: a launch that owns dQ runs one warpgroup");
  int tiles = grid_tiles(kind, g, wgs * kTile);
  if (kind == kFixedSummary && wgs == 3) {
    const SummaryItems items = summary_halves(g, batch);
    if (items.halves > 0) {
      a.halves = items.halves, tiles = items.items;
      std::copy(items.order, items.order + items.items, order.item);
    }
  }
  if (g.d == 64)
    wgs == 3 ? launch_pass<64, 3>(a, order, tiles, stream)
             : wgs == 2 ? launch_pass<64, 2>(a, order, tiles, stream)
                        : launch_pass<64, 1>(a, order, tiles, stream);
  else
    wgs == 2 ? launch_pass<128, 2>(a, order, tiles, stream)
             : launch_pass<128, 1>(a, order, tiles, stream);
}

void launch_add_summary_grads(const Geometry& g, int batch, const Pointers& p,
                              cudaStream_t stream) {
  int64_t chunks = int64_t(summary_grads_floats(g, batch) / 8);
  launch_chained(true, g.d == 64 ? add_summary_grads_kernel<64> : add_summary_grads_kernel<128>,
                 row_blocks(chunks), 256, 0, stream, g, chunks, p.dkv_acc, p.d_qkv);
}

void launch_backward_epilogue(const Geometry& g, int batch, const Pointers& p,
                              cudaStream_t stream) {
  int64_t chunks = row_chunks(g, batch);
  launch_chained(true, g.d == 64 ? dq_to_half_kernel<64> : dq_to_half_kernel<128>,
                 row_blocks(chunks), 256, 0, stream, g, chunks, p.dq_acc, p.d_qkv);
}

}  // namespace st::cuda::attn
