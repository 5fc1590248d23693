// Which tiles a fused attention kernel visits.  A thread block owns one
// tile of up to 64 "outer" rows (queries in the forward kernel, keys in
// the backward kernel) and loops over up to two "inner" segments of
// positions (keys, resp. queries).  Each pattern is split into relations
// whose positions are regular (a run, a column of the [n/l, l] view, or
// the compact list of summary cells), so that the tiles hold almost only
// allowed pairs and a tile needs a mask only at its edges.
#pragma once

#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/cuda_check.h"

namespace st::cuda::attn {

constexpr int kTile = 64;      // rows of a warpgroup's outer tile, positions of an inner tile
constexpr int kThreads = 128;  // a warpgroup: 4 warps of 16 outer rows each

// What one launch covers.  Query-major launches (forward) use
// Dense, FixedQuery, StridedColumn, StridedBand; key-major launches (backward)
// use Dense, FixedBlock, FixedSummary, StridedColumn, StridedBand.
enum Kind { kDense, kFixedQuery, kFixedBlock, kFixedSummary, kStridedColumn, kStridedBand };

// When key j is allowed for query i, given that the segment already
// restricts the candidates (same column, summary cells).
enum Rel { kLE, kLT, kBand, kPrevBlock, kBlockLE };

// Positions first + e for e in [0, count): start + e * step, or for the
// summary cells of one head (e / c) * l + start + e % c.
struct Seg {
  int start = 0, step = 1, first = 0, count = 0;
  bool summary = false;
  int rel = kLE;
};

struct Plan {
  Seg rows;
  Seg seg[2];
  int nseg = 0;
};

struct Geometry {
  int n, heads, l, c, slices;
  int pattern;  // st::Pattern as int
  int part;     // st::AttentionPart as int
  int64_t qkv_width, out_width;
  int d;        // head size (dqk == dv)
  float scale_log2;  // log2(e) / sqrt(d)
  int c_shift = -1;  // log2(c) where c is a power of two: summary cells by shifts
};

// Geometry::c_shift for a summary width c: log2(c) where c is a power of
// two, else -1.
__host__ __device__ inline int summary_shift(int c) {
  if (c <= 0 || (c & (c - 1)) != 0) return -1;
  int shift = 0;
  while ((1 << shift) < c) ++shift;
  return shift;
}

// seg_pos for a segment known to be a run: the inner segments of key-major
// launches (queries) always are.
__host__ __device__ inline int run_pos(const Seg& s, int t) { return s.start + (s.first + t) * s.step; }

__host__ __device__ inline int seg_pos(const Seg& s, const Geometry& g, int t) {
  if (!s.summary) return run_pos(s, t);
  int e = s.first + t;
  // (A division by c costs some 25 instructions; the tile loads of the
  // fixed pattern's forward called it for every tile.)
  if (g.c_shift >= 0) return (e >> g.c_shift) * g.l + s.start + (e & (g.c - 1));
  return (e / g.c) * g.l + s.start + e % g.c;
}

// Positions of a segment visited every `stride` indices, with no division
// per step (load_tile's rows).  cell: the index within a summary block.
struct SegWalk {
  int pos, cell;
};
__host__ __device__ inline SegWalk seg_walk(const Seg& s, const Geometry& g, int t) {
  return {seg_pos(s, g, t), s.summary ? (s.first + t) % g.c : 0};
}
__host__ __device__ inline void seg_advance(SegWalk& w, const Seg& s, const Geometry& g,
                                            int stride) {
  if (!s.summary) {
    w.pos += stride * s.step;
    return;
  }
  w.pos += stride, w.cell += stride;
  while (w.cell >= g.c) w.cell -= g.c, w.pos += g.l - g.c;
}

__host__ __device__ inline int floor_div(int a, int b) {  // b > 0
  return a >= 0 ? a / b : -((b - 1 - a) / b);
}

// The smallest t (relative to s.first, possibly negative or past s.count)
// with seg_pos(s, g, t) >= x: positions grow with t.
__host__ __device__ inline int first_index_at_least(const Seg& s, const Geometry& g, int x) {
  if (!s.summary) return floor_div(x - s.start + s.step - 1, s.step) - s.first;
  // Summary cells below x: whole blocks of c cells, then part of x's block.
  int below = x <= s.start ? 0
                           : floor_div(x - 1 - s.start, g.l) * g.c +
                                 min(g.c, (x - 1 - s.start) % g.l + 1);
  return below - s.first;
}

// The inner positions allowed for outer position p under a relation, as
// one interval [lo, hi] (kFar stands for no bound).  Query-major: p is a
// query i, the interval holds keys j; key-major: p is a key j, the
// interval holds queries i.
constexpr int kFar = 1 << 29;
struct Interval {
  int lo, hi;
};

__host__ __device__ inline Interval allowed_positions(int rel, int p, int l, bool key_major) {
  int block_start = p / l * l;
  if (!key_major) switch (rel) {
      case kLE: return {-kFar, p};
      case kLT: return {-kFar, p - 1};
      case kBand: return {p - l + 1, p};
      case kBlockLE: return {block_start, p};
      default: return {-kFar, block_start - 1};  // kPrevBlock
    }
  switch (rel) {
    case kLE: return {p, kFar};
    case kLT: return {p + 1, kFar};
    case kBand: return {p, p + l - 1};
    case kBlockLE: return {p, block_start + l - 1};
    default: return {block_start + l, kFar};  // kPrevBlock
  }
}

// The columns x in [lo, hi] of an inner tile starting at index e0 whose
// pair with outer position p is allowed (and whose index is inside the
// segment): the segment's positions grow with the index, so the allowed
// ones are one range.  (apply_mask; tests/kernels/test_attention_plan.cu.)
struct ColumnRange {
  int lo, hi;
};
__host__ __device__ inline ColumnRange mask_range(const Seg& inner, const Geometry& g, int e0,
                                                  int p, bool key_major) {
  Interval x = allowed_positions(inner.rel, p, g.l, key_major);
  int end = min(first_index_at_least(inner, g, x.hi + 1), inner.count);
  return {first_index_at_least(inner, g, x.lo) - e0, end - 1 - e0};
}

// True when every pair of the position ranges [imin, imax] x [jmin, jmax]
// is allowed: such a tile needs no mask.
__host__ __device__ inline bool all_allowed(int rel, int imin, int imax, int jmin, int jmax,
                                            int l) {
  switch (rel) {
    case kLE: return jmax <= imin;
    case kLT: return jmax < imin;
    case kBand: return jmax <= imin && jmin > imax - l;
    case kBlockLE: return jmax <= imin && jmin / l == imax / l;
    default: return jmax / l < imin / l;
  }
}

// 0: both parts (merged), 1 or 2: one part; as st::head_part.
__host__ __device__ inline int head_part(const Geometry& g, int h) {
  if (g.pattern == 0) return 1;
  switch (g.part) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 2;
    default: return h < g.heads / 2 ? 1 : 2;
  }
}

__host__ __device__ inline Seg run(int start, int step, int count, int rel) {
  Seg s;
  s.start = start, s.step = step, s.count = count, s.rel = rel;
  return s;
}

__host__ __device__ inline Seg summary_cells(const Geometry& g, int h, int first, int count,
                                            int rel) {
  Seg s;
  s.summary = true;
  s.start = g.l - (h % g.slices + 1) * g.c;  // first cell of the head's slice
  s.first = first, s.count = count, s.rel = rel;
  return s;
}

// (Constant indices only: a run-time index would put the plan in local memory.)
__host__ __device__ inline void add_seg(Plan& p, const Seg& s) {
  if (s.count <= 0) return;
  if (p.nseg == 0)
    p.seg[0] = s;
  else
    p.seg[1] = s;
  ++p.nseg;
}


__host__ __device__ inline int tiles_of(int count, int tile = kTile) {
  return (count + tile - 1) / tile;
}

// Thread blocks each launch needs, for outer tiles of `tile` rows.
inline int grid_tiles(Kind kind, const Geometry& g, int tile) {
  int rows = g.n / (g.l > 0 ? g.l : 1);
  switch (kind) {
    case kStridedColumn: return g.l * tiles_of(rows, tile);
    case kFixedSummary: return tiles_of(rows * g.c, tile);
    default: return tiles_of(g.n, tile);
  }
}

// Queries of tile x (`rows` of them, 64 per warpgroup) and the keys that
// any of them attends.  Heavy tiles get low x so that they start first
// (strided columns: within each column).
__host__ __device__ inline Plan query_plan(Kind kind, const Geometry& g, int x, int h, int rows,
                                           int ntiles) {
  Plan p;
  int part = head_part(g, h);
  if (kind == kStridedColumn) {
    // Column-major: the blocks in flight share a few columns, whose keys then
    // come from L2 (row-major, every block read its column prefix from DRAM).
    int col_rows = g.n / g.l, xr = ntiles - 1 - x;
    int col = xr / tiles_of(col_rows, rows), rt = xr % tiles_of(col_rows, rows);
    p.rows = run(rt * rows * g.l + col, g.l, min(rows, col_rows - rt * rows), kLE);
    if (part != 1) add_seg(p, run(col, g.l, rt * rows + p.rows.count, part == 0 ? kLT : kLE));
    return p;
  }
  int q0 = (kind == kStridedBand ? x : ntiles - 1 - x) * rows;
  p.rows = run(q0, 1, min(rows, g.n - q0), kLE);
  int q_end = q0 + p.rows.count;
  if (kind == kDense) {
    add_seg(p, run(0, 1, q_end, kLE));
  } else if (kind == kStridedBand) {
    // From a tile boundary: as many tiles as from q0 - l + 1, and a band
    // tile's key tiles are then the next one's shifted by one tile
    // (band_forward_kernel keeps them).  The relation masks the extra keys.
    int s = max(0, q0 - g.l + 1) / kTile * kTile;
    if (part != 2) add_seg(p, run(s, 1, q_end - s, kBand));
  } else {  // kFixedQuery: the tile's rows may span two blocks
    int block = q0 / g.l, last = (q_end - 1) / g.l;
    if (part == 0) add_seg(p, summary_cells(g, h, 0, last * g.c, kPrevBlock));
    if (part == 2) add_seg(p, summary_cells(g, h, 0, (last + 1) * g.c, kLE));
    if (part != 2) add_seg(p, run(block * g.l, 1, q_end - block * g.l, kBlockLE));
  }
  return p;
}

// Keys of tile x (`keys` of them, 64 per warpgroup) and the queries that
// attend any of them; each warpgroup takes its 64 (warpgroup_rows) and
// masks the rest.
__host__ __device__ inline Plan key_plan(Kind kind, const Geometry& g, int x, int h, int keys) {
  Plan p;
  int part = head_part(g, h);
  if (kind == kStridedColumn) {  // column-major as in query_plan; heavy tiles first
    int rows = g.n / g.l, col = x / tiles_of(rows, keys), rt = x % tiles_of(rows, keys);
    p.rows = run(rt * keys * g.l + col, g.l, min(keys, rows - rt * keys), kLE);
    if (part != 1)
      add_seg(p, run(p.rows.start, g.l, rows - rt * keys, part == 0 ? kLT : kLE));
    return p;
  }
  if (kind == kFixedSummary) {
    int total = (g.n / g.l) * g.c;
    p.rows = summary_cells(g, h, x * keys, min(keys, total - x * keys), kLE);
    int j0 = seg_pos(p.rows, g, 0);
    if (part == 0) {
      int q0 = (j0 / g.l + 1) * g.l;
      add_seg(p, run(q0, 1, g.n - q0, kPrevBlock));
    }
    if (part == 2) add_seg(p, run(j0, 1, g.n - j0, kLE));
    return p;
  }
  int k0 = x * keys;
  p.rows = run(k0, 1, min(keys, g.n - k0), kLE);
  int k_last = k0 + p.rows.count - 1;
  if (kind == kDense) {
    add_seg(p, run(k0, 1, g.n - k0, kLE));
  } else if (kind == kStridedBand) {
    if (part != 2) add_seg(p, run(k0, 1, min(g.n, k_last + g.l) - k0, kBand));
  } else {  // kFixedBlock: the blocks of the tile's keys
    int block_end = (k_last / g.l + 1) * g.l;
    if (part != 2) add_seg(p, run(k0, 1, block_end - k0, kBlockLE));
  }
  return p;
}

// The strided and fixed-block launches' key-major plans of one tile (64
// keys) have inner tile 0 at the keys' own positions (a band's or block's
// queries start at its first key, a column's at its first row).  For those
// queries, the keys before them that they attend: the band's l - 1
// positions before the tile, from a tile boundary (the relation's mask
// drops the rest); the column's earlier rows; the fixed pattern's block's
// positions before the tile.
// With the tile's own keys, that is every key the queries attend in the
// launch's relation (tests/kernels/test_attention_plan.cu), which lets a
// block write its queries' dQ whole (attention_bwd.cu).
__host__ __device__ inline Seg keys_before(Kind kind, const Geometry& g, const Plan& p) {
  if (p.nseg == 0) return Seg{};
  const Seg& q = p.seg[0];
  if (kind == kStridedColumn) return run(q.start % g.l, g.l, q.start / g.l, q.rel);
  if (kind == kFixedBlock) {
    int block = q.start / g.l * g.l;
    return run(block, 1, q.start - block, q.rel);
  }
  int start = max(0, q.start - tiles_of(g.l - 1) * kTile);
  return run(start, 1, q.start - start, q.rel);
}

// The current device's SMs (asked once).
inline int sm_count() {
  static int sms = [] {
    int device = 0, count = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  }();
  return sms;
}

// Whether a launch can run `warpgroups` warpgroups (64 outer rows each,
// sharing each inner tile) per thread block rather than one: only where
// the grid still has at least `per_sm` blocks for each SM.
inline bool fills_gpu(Kind kind, const Geometry& g, int batch, int warpgroups, int per_sm) {
  return int64_t(grid_tiles(kind, g, warpgroups * kTile)) * batch * g.heads >=
         int64_t(per_sm) * sm_count();
}

// Whether a launch's outer tiles meet many inner tiles each: dense, the
// fixed pattern's summary keys (and the queries attending them), long
// strided columns.  Band tiles and the fixed pattern's own blocks meet 2-4.
// (Columns of 512 rows measured mixed: d = 64 slower, d = 128 faster.)
inline bool long_inner_loops(Kind kind, const Geometry& g) {
  return kind == kDense || kind == kFixedQuery || kind == kFixedSummary ||
         (kind == kStridedColumn && g.n / g.l >= 16 * kTile);
}

// A launch's thread blocks are numbered tile-major over the (batch, head)
// pairs: tile x of every head before tile x + 1 of any, so that the heavy
// tiles (low x) of all heads start first.  (Head-major, the last heads'
// heaviest tiles started last and set the launch's length.)  A launch split
// into `chunks` runs of inner tiles repeats this for chunk 0, 1, ...
struct BlockTile {
  int x, ntiles, chunk, b, h;
};
__device__ inline BlockTile block_tile(const Geometry& g, int pairs, int chunks) {
  int bh = int(blockIdx.x % pairs), rest = int(blockIdx.x / pairs);
  int ntiles = int(gridDim.x / pairs) / chunks;
  return {rest % ntiles, ntiles, rest / ntiles, bh / g.heads, bh % g.heads};
}

// Rows [64 w, 64 w + 64) of a plan's outer tile: warpgroup w's share (count
// 0 when the tile is shorter).  Positions past the end extrapolate the
// segment to positions >= n, as in any partial tile.
__host__ __device__ inline Seg warpgroup_rows(const Seg& rows, int w) {
  Seg s = rows;
  s.first = rows.first + w * kTile;
  s.count = max(0, min(kTile, rows.count - w * kTile));
  return s;
}

// The inner tile number t of a plan: its segment and first index.
struct InnerTile {
  int seg, e0;
};

__host__ __device__ inline int inner_tiles(const Plan& p) {
  return tiles_of(p.seg[0].count) + tiles_of(p.seg[1].count);  // unused: count 0
}

__host__ __device__ inline Seg pick(const Plan& p, int i) { return i == 0 ? p.seg[0] : p.seg[1]; }

// The strided band's forward in windows (band_forward_kernel,
// attention_fwd.cu): a block takes query tiles [x_begin, x_end) of one
// head in turn; its key tiles come in order into a ring of kBandRing
// slots, tile m in slot m % kBandRing, each loaded a step before the step
// that first needs it.  Two slots serve where a query tile's keys span at
// most three key tiles: the two that end a query tile begin the next, and
// a load replaces the tile of the step before the current one.
// band_key_tile: a band plan's first key tile (its keys start on a tile
// boundary).  band_next_load: the key tile to load during step t of a query
// tile whose ntiles key tiles start at tile m0, given the first key tile of
// the block's next query tile (-1: none) and the last one loaded; or -1.
// (tests/kernels/test_attention_plan.cu walks every block: each step finds
// its tile in its slot, and no load replaces a tile a later step needs.)
constexpr int kBandRing = 2;
constexpr int kBandMaxKeyTiles = 3;  // a query tile's, with kBandRing slots
__host__ __device__ inline int band_key_tile(const Plan& p) {
  return p.nseg > 0 ? p.seg[0].start / kTile : 0;
}
__host__ __device__ inline int band_next_load(int m0, int ntiles, int t, int next_m0,
                                              int loaded) {
  const int next = t + 1 < ntiles ? m0 + t + 1 : next_m0;
  return next > loaded ? next : -1;
}

__host__ __device__ inline InnerTile inner_tile(const Plan& p, int t) {
  int first = tiles_of(p.seg[0].count);
  return t < first ? InnerTile{0, t * kTile} : InnerTile{1, (t - first) * kTile};
}

// Whether inner tile t needs no mask for the outer positions [omin, omax]:
// it holds 64 positions of its segment and every pair is allowed.
__host__ __device__ inline bool tile_full(const Plan& p, const Geometry& g, int t, int omin,
                                          int omax, bool key_major) {
  const InnerTile it = inner_tile(p, t);
  const Seg s = pick(p, it.seg);
  if (s.count - it.e0 < kTile) return false;
  const int a = seg_pos(s, g, it.e0), b = seg_pos(s, g, it.e0 + kTile - 1);
  return key_major ? all_allowed(s.rel, a, b, omin, omax, g.l)
                   : all_allowed(s.rel, omin, omax, a, b, g.l);
}

// The inner tiles that need no mask, one range [lo, hi) of tile numbers per
// segment.  Along a segment the positions grow, and each relation's test
// in all_allowed holds for a prefix, a suffix or the meet of the two, so
// those tiles are one run, found from both ends (one or two tiles each
// side).  The loops then test a tile with two comparisons: evaluated per
// tile, the relation cost some 40 instructions of the forward's 480.
struct TileRange {
  int lo = 0, hi = 0;  // empty by default
};
struct FullTiles {
  TileRange seg[2];
};
// The run within one segment's tiles r: shrunk from both ends.
__host__ __device__ inline TileRange full_run(const Plan& p, const Geometry& g, int omin,
                                              int omax, bool key_major, TileRange r) {
  while (r.lo < r.hi && !tile_full(p, g, r.lo, omin, omax, key_major)) ++r.lo;
  while (r.hi > r.lo && !tile_full(p, g, r.hi - 1, omin, omax, key_major)) --r.hi;
  return r;
}
__host__ __device__ inline FullTiles full_tiles(const Plan& p, const Geometry& g, int omin,
                                                int omax, bool key_major) {
  const int n0 = tiles_of(p.seg[0].count), n1 = tiles_of(p.seg[1].count);  // unused: count 0
  FullTiles f;
  f.seg[0] = full_run(p, g, omin, omax, key_major, TileRange{0, n0});
  f.seg[1] = full_run(p, g, omin, omax, key_major, TileRange{n0, n0 + n1});
  return f;
}
__host__ __device__ inline bool needs_mask(const FullTiles& f, int t) {
  return !((t >= f.seg[0].lo && t < f.seg[0].hi) || (t >= f.seg[1].lo && t < f.seg[1].hi));
}

// The fixed pattern's summary keys in blocks of three warpgroups where the
// launch has fewer than two such blocks per SM (8 heads, n = 16384): the
// key tiles' work falls linearly from the first, which every later query
// attends, to the last, so unsplit the first tiles alone outlast the
// average SM.  The heavy tiles (more than kHalveAbove of an SM's share of
// tile pairs) run as two blocks, each over half of the tile's query tiles;
// each adds its dK, dV sums to d_qkv atomically (summary_halves in
// attention_fused.cuh).  A launch's items, numbered tile-major over the
// heads as any launch's tiles: whole tiles and halves, longest first, each
// x * 4 + half (0: the whole tile, 1: its first half of query tiles, 2: its
// second).
constexpr int kMaxSummaryItems = 512;
constexpr double kHalveAbove = 0.6;  // of an SM's share (a balance model's best)
struct SummaryItems {
  int halves = 0;  // key tiles split in two: the first `halves`
  int items = 0;   // thread blocks per head
  uint16_t order[kMaxSummaryItems];
};
__host__ __device__ inline TileRange half_tiles(int half, int tiles) {
  const int mid = tiles / 2;
  return half == 0 ? TileRange{0, tiles} : half == 1 ? TileRange{0, mid} : TileRange{mid, tiles};
}
// The items for `pairs` (batch * heads) heads on `sms` SMs; halves 0: none
// heavy enough (the launch then runs unsplit).
inline SummaryItems summary_items(const Geometry& g, int pairs, int sms) {
  SummaryItems s;
  const int keys = 3 * kTile, ntiles = grid_tiles(kFixedSummary, g, keys);
  std::vector<int> work(ntiles);  // query tiles per key tile (the last head's: part 2 if any)
  int64_t total = 0;
  for (int x = 0; x < ntiles; ++x)
    total += work[x] = inner_tiles(key_plan(kFixedSummary, g, x, g.heads - 1, keys));
  const double share = double(total) * pairs / sms;
  while (s.halves < ntiles && work[s.halves] > kHalveAbove * share) ++s.halves;
  if (s.halves == 0 || ntiles + s.halves > kMaxSummaryItems) return SummaryItems{};
  struct Item {
    int work, code;
  };
  std::vector<Item> items;
  for (int x = 0; x < ntiles; ++x)
    for (int half = x < s.halves ? 1 : 0; half <= (x < s.halves ? 2 : 0); ++half) {
      TileRange r = half_tiles(half, work[x]);
      items.push_back({r.hi - r.lo, x * 4 + half});
    }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.work > b.work; });
  s.items = int(items.size());
  for (int i = 0; i < s.items; ++i) s.order[i] = uint16_t(items[i].code);
  return s;
}

}  // namespace st::cuda::attn
