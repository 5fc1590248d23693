// Fused attention forward (flash-style): a thread block of one or two
// warpgroups (4 warps each) owns 64 queries per warpgroup; key and value
// tiles stream through shared memory two deep (cp.async) while the online
// softmax keeps the running max and sum in registers.  Nothing of size n^2
// is ever stored.
// The products wait for their results at once: the other thread blocks on
// the SM fill the tensor cores meanwhile.  (Issuing the next tile's S
// before this tile's softmax, FlashAttention-3's overlap within a
// warpgroup, measured slower: its extra registers cost a block per SM.)
#include <cmath>

#include "core/cuda_check.h"
#include "kernels/cuda/attention_fused.cuh"
#include "kernels/cuda/attention_mma.cuh"
#include "kernels/cuda/chain.cuh"

namespace st::cuda::attn {

namespace {

struct FwdArgs {
  Geometry g;
  Pointers p;
  int kind;
  bool accumulate;
  int pairs;  // batch * heads
};

__device__ inline float log_add_exp(float a, float b) {
  float m = fmaxf(a, b);
  return m == -INFINITY ? m : m + logf(expf(a - m) + expf(b - m));
}

// One tile's online softmax and P V: the raw scores s (masked: -inf) in
// base 2, p = 2^(s * scale_log2 - m * scale_log2), one FFMA and one ex2 per
// score, where m is the running max of the raw scores and sum the running
// sum of p; o rescaled where some row of the warp moved its max, then
// o += P V with the value tile sv.
template <int D>
__device__ inline void softmax_pv(float (*s)[4], float* m, float* sum, float (*o)[4],
                                  const __half* sv, float scale_log2) {
  float corr[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
    float m_new = fmaxf(m[r], mx);
    // A row with nothing allowed yet keeps m = -inf: use 0 for its offset.
    float offset = m_new == -INFINITY ? 0.f : m_new * scale_log2, rs = 0;
    // (Exactly 1 where the max stayed: computed, m * scale - offset
    // contracts to an FMA whose rounding differs, and the rescale below
    // ran on every tile.)
    corr[r] = m_new == m[r] ? 1.f : fast_exp2(m[r] * scale_log2 - offset);
#pragma unroll
    for (int j = 0; j < kTile / 8; ++j) {
      s[j][2 * r] = fast_exp2(fmaf(s[j][2 * r], scale_log2, -offset));
      s[j][2 * r + 1] = fast_exp2(fmaf(s[j][2 * r + 1], scale_log2, -offset));
      rs += s[j][2 * r] + s[j][2 * r + 1];
    }
    sum[r] = sum[r] * corr[r] + rs;
    m[r] = m_new;
  }
  // The max of most rows stops changing after a few tiles: skip the
  // rescale of o where no row of the warp moved.
  if (__any_sync(0xffffffff, corr[0] != 1.f || corr[1] != 1.f))
#pragma unroll
    for (int j = 0; j < D / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[j][e] *= corr[e / 2];
  uint32_t pf[kTile / 16][4];  // P in fp16
  pack_a(pf, s);
  mma_pb<D>(o, pf, sv);
  mma_wait<0>();
  fence_acc<D / 8>(o);
  fence_frag(pf);
}

// A warpgroup's output rows `rows` and their lse from the softmax's m, sum
// and o; with accumulate, merged with the earlier launch's rows (prev_o, a
// tile of shared memory, and old_lse).
template <int D>
__device__ inline void store_output(const FwdArgs& a, int b, int h, const Seg& rows, float* m,
                                    float* sum, const float (*o)[4], const __half* prev_o,
                                    const float* old_lse) {
  const Geometry& g = a.g;
  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32, t4 = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = warp * 16 + lane / 4 + 8 * r;
    sum[r] += __shfl_xor_sync(0xffffffff, sum[r], 1);
    sum[r] += __shfl_xor_sync(0xffffffff, sum[r], 2);
    if (row >= rows.count) continue;
    const int qpos = seg_pos(rows, g, row);
    float lse = sum[r] > 0 ? (m[r] * g.scale_log2 + log2f(sum[r])) * float(M_LN2) : -INFINITY;
    float w_new = sum[r] > 0 ? 1.f / sum[r] : 0.f, w_old = 0.f;
    if (a.accumulate) {  // merge with the partial softmax already in out / lse
      float merged = log_add_exp(old_lse[r], lse);
      w_old = merged == -INFINITY ? 0.f : expf(old_lse[r] - merged);
      w_new *= merged == -INFINITY ? 0.f : expf(lse - merged);
      lse = merged;
    }
    __half* out = a.p.out_w + (int64_t(b) * g.n + qpos) * g.out_width + h * D;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      __half2* dst = reinterpret_cast<__half2*>(out + 8 * j + 2 * t4);
      float2 v = make_float2(o[j][2 * r] * w_new, o[j][2 * r + 1] * w_new);
      if (a.accumulate) {
        const __half* prev = prev_o + swizzled(row, 8 * j + 2 * t4);
        float2 p = __half22float2(*reinterpret_cast<const __half2*>(prev));
        v.x += p.x * w_old, v.y += p.y * w_old;
      }
      *dst = __floats2half2_rn(v.x, v.y);
    }
    if (t4 == 0) a.p.lse_w[(int64_t(b) * g.heads + h) * g.n + qpos] = lse;
  }
}

// Thread blocks per SM: warps in flight hide the latency of the products.
// With d = 64 the cap of 128 registers costs no spills; with d = 128 the
// accumulators alone need 128 registers.
template <int D, int WGS>
constexpr int kFwdBlocksPerSm = (D == 64 ? 4 : 2) / WGS;

// WGS warpgroups, each owning 64 queries; they share the key and value tiles.
template <int D, int WGS>
__global__ void __launch_bounds__(WGS * kThreads, (kFwdBlocksPerSm<D, WGS>))
    forward_kernel(FwdArgs a) {
  extern __shared__ unsigned char smem_raw[];
  constexpr int T = kTileElems<D>;
  __half* sq = reinterpret_cast<__half*>(aligned_smem(smem_raw));  // WGS tiles
  __half* sk = sq + WGS * T;  // two buffers
  __half* sv = sk + 2 * T;    // two buffers
  const Geometry& g = a.g;
  const BlockTile bt = block_tile(g, a.pairs, 1);
  const int b = bt.b, h = bt.h;
  const Plan plan = query_plan(Kind(a.kind), g, bt.x, h, WGS * kTile, bt.ntiles);
  // Chained launches (kernels/cuda/chain.cuh): a first launch waits for the
  // kernel before it now; one that merges into it computes its tiles first
  // and waits only before it reads that one's output.
  if (!a.accumulate) wait_then_allow_next();
  if (a.accumulate && plan.nseg == 0) {
    wait_then_allow_next();
    return;
  }
  const int wg = warpgroup_index();  // this warpgroup owns queries [64 wg, 64 wg + 64)
  const Seg rows = warpgroup_rows(plan.rows, wg);
  const __half* my_q = sq + wg * T;

  // The first warpgroup loads the key tiles, the last the values.
  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const __half* kbase = base + (g.heads + h) * D;
  const __half* vbase = base + (2 * g.heads + h) * D;
  const int ntiles = inner_tiles(plan);
  auto load_kv = [&](int t) {
    InnerTile it = inner_tile(plan, t);
    const Seg s = pick(plan, it.seg);
    if (wg == 0) load_tile<D>(sk + (t % 2) * T, kbase, g.qkv_width, s, g, it.e0);
    if (wg == WGS - 1) load_tile<D>(sv + (t % 2) * T, vbase, g.qkv_width, s, g, it.e0);
  };
  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  const int qpos[2] = {seg_pos(rows, g, row[0]), seg_pos(rows, g, row[1])};
  float* const lse_row[2] = {a.p.lse_w + (int64_t(b) * g.heads + h) * g.n + qpos[0],
                             a.p.lse_w + (int64_t(b) * g.heads + h) * g.n + qpos[1]};
  // A launch that merges into an earlier one reads that one's output rows
  // into the key (first warpgroup) or value buffer that the last tile leaves
  // free, and its lse into registers, while the last tile computes: read
  // from global memory in the epilogue, one round trip per element, they
  // cost the strided band launch a large part of its time.
  __half* prev_o = (wg == 0 ? sk : sv) + (ntiles % 2) * T;
  float old_lse[2];
  auto load_prev = [&] {
    wait_then_allow_next();
    load_tile<D>(prev_o, a.p.out_w + int64_t(b) * g.n * g.out_width + h * D, g.out_width, rows, g,
                 0);
#pragma unroll
    for (int r = 0; r < 2; ++r) old_lse[r] = row[r] < rows.count ? *lse_row[r] : -INFINITY;
  };
  load_tile<D>(sq + wg * T, base + h * D, g.qkv_width, rows, g, 0);
  if (ntiles > 0)
    load_kv(0);
  else if (a.accumulate)
    load_prev();
  cp_async_commit();
  const FullTiles full =
      full_tiles(plan, g, seg_pos(rows, g, 0), seg_pos(rows, g, rows.count - 1), false);

  float m[2] = {-INFINITY, -INFINITY}, sum[2] = {0, 0};
  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0;

  for (int t = 0; t < ntiles; ++t) {
    wait_copies_for_mma<0>();  // key and value tile t; every warp is done with tile t - 1
    float s[kTile / 8][4];
    mma_abt<D>(s, my_q, sk + (t % 2) * T);
    // The next tile's copies are issued while the tensor cores compute S:
    // their address arithmetic then delays nothing.
    if (t + 1 < ntiles)
      load_kv(t + 1);  // into tile t - 1's buffers
    else if (a.accumulate)
      load_prev();
    cp_async_commit();
    mma_wait<0>();
    fence_acc<kTile / 8>(s);

    if (needs_mask(full, t)) {
      InnerTile it = inner_tile(plan, t);
      apply_mask(s, pick(plan, it.seg), g, it.e0, qpos, false);
    }

    softmax_pv<D>(s, m, sum, o, sv + (t % 2) * T, g.scale_log2);
  }
  cp_async_wait<0>();
  if (a.accumulate) __syncthreads();  // every thread's rows of prev_o

  store_output<D>(a, b, h, rows, m, sum, o, prev_o, old_lse);
}

template <int D, int WGS>
void launch(const FwdArgs& a, cudaStream_t stream) {
  size_t smem = (WGS + 4) * kTileElems<D> * sizeof(__half) + kTileAlign;
  allow_dynamic_smem<forward_kernel<D, WGS>>(smem);
  dim3 grid(grid_tiles(Kind(a.kind), a.g, WGS * kTile) * a.pairs);
  launch_chained(true, forward_kernel<D, WGS>, grid, WGS * kThreads, smem, stream, a);
}

// The strided band's forward where a query tile's keys span at most three
// key tiles (l <= 129; d = 64): a block takes kBandWindowTiles consecutive
// query tiles, whose keys slide by one tile from each to the next, and
// keeps its key and value tiles in a ring of two (attention_plan.cuh,
// band_next_load), so each query tile loads one key and value tile instead
// of three, and its queries and the earlier launch's rows a step ahead.
// Two query tiles a block: H100, side by side (2026-12-07), strided d = 64
// n = 16384 0.274 -> 0.270 ms and n = 65536 1.20 -> 1.18 ms; four tiles
// a block were slower (0.278, 1.20): half the blocks, less in flight.
constexpr int kBandWindowTiles = 2;
constexpr int kBandBlocksPerSm = 4;  // 7 tiles of shared memory, 57 KiB

template <int D>
__global__ void __launch_bounds__(kThreads, kBandBlocksPerSm) band_forward_kernel(FwdArgs a) {
  extern __shared__ unsigned char smem_raw[];
  constexpr int T = kTileElems<D>;
  __half* sq = reinterpret_cast<__half*>(aligned_smem(smem_raw));  // query tile x in x % 2
  __half* sk = sq + 2 * T;              // key tile m in m % kBandRing
  __half* sv = sk + kBandRing * T;      // value tile m in m % kBandRing
  __half* prev_o = sv + kBandRing * T;  // the earlier launch's rows
  const Geometry& g = a.g;
  const BlockTile bt = block_tile(g, a.pairs, 1);
  const int b = bt.b, h = bt.h, qtiles = tiles_of(g.n);
  const int x_begin = bt.x * kBandWindowTiles, x_end = min(qtiles, x_begin + kBandWindowTiles);
  // Chained launches as in forward_kernel: a merging launch waits only
  // before it first reads the earlier one's output.
  bool waited = !a.accumulate;
  if (waited) wait_then_allow_next();
  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  const Seg all = run(0, 1, g.n, kLE);  // key tile m: positions [64 m, 64 m + 64)
  int loaded = -1;                      // the last key tile loaded (tiles come in order)
  auto load_keys = [&](int m) {
    load_run_tile<D>(sk + m % kBandRing * T, base + (g.heads + h) * D, g.qkv_width, all, m * kTile);
    load_run_tile<D>(sv + m % kBandRing * T, base + (2 * g.heads + h) * D, g.qkv_width, all,
                     m * kTile);
    loaded = m;
  };
  auto plan_of = [&](int x) { return query_plan(kStridedBand, g, x, h, kTile, qtiles); };
  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  float old_lse[2];
  auto load_prev = [&](const Seg& rows) {
    if (!waited) wait_then_allow_next();
    waited = true;
    load_run_tile<D>(prev_o, a.p.out_w + int64_t(b) * g.n * g.out_width + h * D, g.out_width,
                     rows, 0);
    const float* lse = a.p.lse_w + (int64_t(b) * g.heads + h) * g.n;
#pragma unroll
    for (int r = 0; r < 2; ++r)
      old_lse[r] = row[r] < rows.count ? lse[run_pos(rows, row[r])] : -INFINITY;
  };

  {
    const Plan first = plan_of(x_begin);
    load_run_tile<D>(sq + x_begin % 2 * T, base + h * D, g.qkv_width, first.rows, 0);
    if (first.nseg > 0) load_keys(band_key_tile(first));
    cp_async_commit();
  }
  for (int x = x_begin; x < x_end; ++x) {
    const Plan plan = plan_of(x);
    const Seg& rows = plan.rows;
    const int qpos[2] = {run_pos(rows, row[0]), run_pos(rows, row[1])};
    const FullTiles full = full_tiles(plan, g, rows.start, run_pos(rows, rows.count - 1), false);
    const int ntiles = inner_tiles(plan), m0 = band_key_tile(plan);
    const __half* q_tile = sq + x % 2 * T;
    // The next query tile's rows and first key tile (-1: none).
    Seg next_rows{};
    int next_m0 = -1;
    if (x + 1 < x_end) {
      const Plan next = plan_of(x + 1);
      next_rows = next.rows, next_m0 = next.nseg > 0 ? band_key_tile(next) : -1;
    }
    // At the query tile's last step, a step ahead: the next query tile and
    // this one's earlier rows.
    auto load_next_query_tile = [&] {
      if (x + 1 < x_end)
        load_run_tile<D>(sq + (x + 1) % 2 * T, base + h * D, g.qkv_width, next_rows, 0);
      if (a.accumulate) load_prev(rows);
    };
    if (ntiles == 0) {  // a head without the band's part
      __syncthreads();  // every warp is done with prev_o and the query buffer
      load_next_query_tile();
      cp_async_commit();
    }

    float m[2] = {-INFINITY, -INFINITY}, sum[2] = {0, 0};
    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0;
    for (int t = 0; t < ntiles; ++t) {
      // Key tile m0 + t, the query tile; every warp is done with the step before.
      wait_copies_for_mma<0>();
      const int mt = m0 + t;
      float s[kTile / 8][4];
      mma_abt<D>(s, q_tile, sk + mt % kBandRing * T);
      const int next = band_next_load(m0, ntiles, t, next_m0, loaded);
      if (next >= 0) load_keys(next);
      if (t + 1 == ntiles) load_next_query_tile();
      cp_async_commit();
      mma_wait<0>();
      fence_acc<kTile / 8>(s);
      if (needs_mask(full, t)) apply_mask(s, plan.seg[0], g, t * kTile, qpos, false);
      softmax_pv<D>(s, m, sum, o, sv + mt % kBandRing * T, g.scale_log2);
    }
    cp_async_wait<0>();
    if (a.accumulate) __syncthreads();  // every thread's rows of prev_o
    store_output<D>(a, b, h, rows, m, sum, o, prev_o, old_lse);
  }
  if (!waited) wait_then_allow_next();  // every block waits (chain.cuh)
}

// Short strided columns (n / l <= 128 rows: one or two tiles), d = 64: a
// block takes one head's whole column and loads all its tiles at its start
// (Q1, K0, V0, then K1, V1, then Q0; one round trip, not one per step),
// then query tile 1 over key tiles 0 and 1, then query tile 0 over key
// tile 0.  (A block per query tile read key tile 0 twice.)  H100, side
// by side (2026-12-07): strided n = 16384 forward 0.077-0.079 ->
// 0.071-0.072 ms.
__global__ void __launch_bounds__(kThreads, 4) short_column_forward_kernel(FwdArgs a) {
  extern __shared__ unsigned char smem_raw[];
  constexpr int D = 64, T = kTileElems<64>;
  __half* sq = reinterpret_cast<__half*>(aligned_smem(smem_raw));  // Q0, Q1
  __half* sk = sq + 2 * T;                                          // K0, K1
  __half* sv = sk + 2 * T;                                          // V0, V1
  const Geometry& g = a.g;
  const BlockTile bt = block_tile(g, a.pairs, 1);
  const int b = bt.b, h = bt.h, col = bt.x, rows = g.n / g.l, part = head_part(g, h);
  wait_then_allow_next();
  // The column's keys (none for a head without the column part).
  const Seg keys = run(col, g.l, part != 1 ? rows : 0, part == 0 ? kLT : kLE);
  const Seg all = run(col, g.l, rows, kLE);  // the column's rows
  const __half* base = a.p.qkv + int64_t(b) * g.n * g.qkv_width;
  auto load = [&](__half* dst, int which, int t) {  // which: 0 Q, 1 K, 2 V
    load_run_tile<D>(dst + t * T, base + (which * g.heads + h) * D, g.qkv_width, all, t * kTile);
  };
  const bool two = rows > kTile;
  if (two) load(sq, 0, 1);
  load(sk, 1, 0);
  load(sv, 2, 0);
  cp_async_commit();
  if (two) load(sk, 1, 1), load(sv, 2, 1);
  cp_async_commit();
  load(sq, 0, 0);
  cp_async_commit();

  const int warp = threadIdx.x % kThreads / 32, lane = threadIdx.x % 32;
  const int row[2] = {warp * 16 + lane / 4, warp * 16 + lane / 4 + 8};
  float m[2], sum[2], o[D / 8][4];
  auto start = [&] {
    m[0] = m[1] = -INFINITY, sum[0] = sum[1] = 0;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0;
  };
  // Query tile tq against key tile tk (both in shared memory).
  auto step = [&](int tq, int tk, bool masked) {
    const int qpos[2] = {run_pos(all, tq * kTile + row[0]), run_pos(all, tq * kTile + row[1])};
    float s[kTile / 8][4];
    mma_abt<D>(s, sq + tq * T, sk + tk * T);
    mma_wait<0>();
    fence_acc<kTile / 8>(s);
    if (masked) apply_mask(s, keys, g, tk * kTile, qpos, false);
    softmax_pv<D>(s, m, sum, o, sv + tk * T, g.scale_log2);
  };
  if (two) {
    start();
    wait_copies_for_mma<2>();
    step(1, 0, !short_column_tiles_full(part, rows));
    wait_copies_for_mma<1>();
    step(1, 1, true);
    store_output<D>(a, b, h, warpgroup_rows(all, 1), m, sum, o, nullptr, nullptr);
  }
  start();
  wait_copies_for_mma<0>();
  step(0, 0, true);
  store_output<D>(a, b, h, warpgroup_rows(all, 0), m, sum, o, nullptr, nullptr);
}

void launch_short_columns(const FwdArgs& a, cudaStream_t stream) {
  size_t smem = 6 * kTileElems<64> * sizeof(__half) + kTileAlign;
  allow_dynamic_smem<short_column_forward_kernel>(smem);
  launch_chained(true, short_column_forward_kernel, dim3(a.g.l * a.pairs), kThreads, smem, stream,
                 a);
}

// Whether the band's forward runs band_forward_kernel: a query tile's keys
// span 1 + ceil((l - 1) / 64) key tiles (tile-aligned starts).
bool band_window(Kind kind, const Geometry& g) {
  return kind == kStridedBand && g.d == 64 && 1 + tiles_of(g.l - 1) <= kBandMaxKeyTiles;
}

void launch_band(const FwdArgs& a, cudaStream_t stream) {
  size_t smem = (2 + 2 * kBandRing + 1) * kTileElems<64> * sizeof(__half) + kTileAlign;
  allow_dynamic_smem<band_forward_kernel<64>>(smem);
  dim3 grid(tiles_of(tiles_of(a.g.n), kBandWindowTiles) * a.pairs);
  launch_chained(true, band_forward_kernel<64>, grid, kThreads, smem, stream, a);
}

}  // namespace

void launch_forward(Kind kind, bool accumulate, const Geometry& g, int batch, const Pointers& p,
                    cudaStream_t stream) {
  FwdArgs a{g, p, kind, accumulate, batch * g.heads};
  if (band_window(kind, g)) {
    launch_band(a, stream);
    return;
  }
  if (short_columns(kind, g)) {
    launch_short_columns(a, stream);
    return;
  }
  // Two warpgroups per block read each key and value tile once for 128
  // queries instead of 64, at the same warps per SM: faster where a query
  // tile meets many key tiles (H100, n = 65536: dense 15.6 -> 14.0 ms,
  // fixed 6.5 -> 5.7), slower on the short strided passes (n = 16384:
  // 0.140 -> 0.182 ms).
  bool wide = long_inner_loops(kind, g) && fills_gpu(kind, g, batch, 2, 2);
  if (g.d == 64)
    wide ? launch<64, 2>(a, stream) : launch<64, 1>(a, stream);
  else
    wide ? launch<128, 2>(a, stream) : launch<128, 1>(a, stream);
}

}  // namespace st::cuda::attn
