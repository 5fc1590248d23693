// Which tiles a fused attention kernel visits.  A thread block owns one
// tile of up to 64 "outer" rows (queries in the forward kernel, keys in
// the backward kernel) and loops over up to two "inner" segments of
// positions (keys, resp. queries).  Each pattern is split into relations
// whose positions are regular (a run, a column of the [n/l, l] view, or
// the compact list of summary cells), so that the tiles hold almost only
// allowed pairs and a tile needs a mask only at its edges.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

namespace st::cuda::attn {

constexpr int kTile = 64;      // rows of an outer tile, positions of an inner tile
constexpr int kThreads = 128;  // 4 warps of 16 outer rows each

// Thread blocks per SM the kernels are compiled for (__launch_bounds__).
// The kernels are latency-bound, so warps in flight matter: with d = 64 the
// register caps this sets (128 forward, 168 backward) cost at most a few
// bytes of spills and give 16 and 12 warps per SM instead of 12 and 8.
// With d = 128 the accumulators alone need 128 registers: 2 blocks.
template <int D>
constexpr int kFwdBlocksPerSm = D == 64 ? 4 : 2;
template <int D>
constexpr int kBwdBlocksPerSm = D == 64 ? 3 : 2;

// What one launch covers.  Query-major launches (forward) use
// Dense, FixedQuery, StridedColumn, StridedBand; key-major launches (backward)
// use Dense, FixedBlock, FixedSummary, StridedColumn, StridedBand.
enum Kind { kDense, kFixedQuery, kFixedBlock, kFixedSummary, kStridedColumn, kStridedBand };

// When key j is allowed for query i, given that the segment already
// restricts the candidates (same block, same column, summary cells).
enum Rel { kLE, kLT, kBand, kPrevBlock };

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
};

__device__ inline int seg_pos(const Seg& s, const Geometry& g, int t) {
  int e = s.first + t;
  return s.summary ? (e / g.c) * g.l + s.start + e % g.c : s.start + e * s.step;
}

__device__ inline bool allowed(int rel, int i, int j, int l) {
  switch (rel) {
    case kLE: return j <= i;
    case kLT: return j < i;
    case kBand: return j <= i && j > i - l;
    default: return j / l < i / l;
  }
}

// True when every pair of the position ranges [imin, imax] x [jmin, jmax]
// is allowed: such a tile needs no mask.
__device__ inline bool all_allowed(int rel, int imin, int imax, int jmin, int jmax, int l) {
  switch (rel) {
    case kLE: return jmax <= imin;
    case kLT: return jmax < imin;
    case kBand: return jmax <= imin && jmin > imax - l;
    default: return jmax / l < imin / l;
  }
}

// 0: both parts (merged), 1 or 2: one part; as st::head_part.
__device__ inline int head_part(const Geometry& g, int h) {
  if (g.pattern == 0) return 1;
  switch (g.part) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 2;
    default: return h < g.heads / 2 ? 1 : 2;
  }
}

__device__ inline Seg run(int start, int step, int count, int rel) {
  Seg s;
  s.start = start, s.step = step, s.count = count, s.rel = rel;
  return s;
}

__device__ inline Seg summary_cells(const Geometry& g, int h, int first, int count, int rel) {
  Seg s;
  s.summary = true;
  s.start = g.l - (h % g.slices + 1) * g.c;  // first cell of the head's slice
  s.first = first, s.count = count, s.rel = rel;
  return s;
}

// (Constant indices only: a run-time index would put the plan in local memory.)
__device__ inline void add_seg(Plan& p, const Seg& s) {
  if (s.count <= 0) return;
  if (p.nseg == 0)
    p.seg[0] = s;
  else
    p.seg[1] = s;
  ++p.nseg;
}


__device__ inline int tiles_of(int count) { return (count + kTile - 1) / kTile; }

// Thread blocks each launch needs.
inline int grid_tiles(Kind kind, const Geometry& g) {
  int rows = g.n / (g.l > 0 ? g.l : 1);
  switch (kind) {
    case kStridedColumn: return g.l * ((rows + kTile - 1) / kTile);
    case kFixedSummary: return (rows * g.c + kTile - 1) / kTile;
    default: return (g.n + kTile - 1) / kTile;
  }
}

// Queries of tile x and the keys they attend.  Heavy tiles get low x so
// that they start first (strided columns: within each column).
__device__ inline Plan query_plan(Kind kind, const Geometry& g, int x, int h) {
  Plan p;
  int part = head_part(g, h), ntiles = gridDim.x;
  if (kind == kStridedColumn) {
    // Column-major: the blocks in flight share a few columns, whose keys then
    // come from L2 (row-major, every block read its column prefix from DRAM).
    int rows = g.n / g.l, xr = ntiles - 1 - x;
    int col = xr / tiles_of(rows), rt = xr % tiles_of(rows);
    p.rows = run(rt * kTile * g.l + col, g.l, min(kTile, rows - rt * kTile), kLE);
    if (part != 1) add_seg(p, run(col, g.l, rt * kTile + p.rows.count, part == 0 ? kLT : kLE));
    return p;
  }
  int q0 = (kind == kStridedBand ? x : ntiles - 1 - x) * kTile;
  p.rows = run(q0, 1, min(kTile, g.n - q0), kLE);
  int q_end = q0 + p.rows.count;
  if (kind == kDense) {
    add_seg(p, run(0, 1, q_end, kLE));
  } else if (kind == kStridedBand) {
    int s = max(0, q0 - g.l + 1);
    if (part != 2) add_seg(p, run(s, 1, q_end - s, kBand));
  } else {  // kFixedQuery; l % 64 == 0 keeps the tile inside one block
    int block = q0 / g.l;
    if (part == 0) add_seg(p, summary_cells(g, h, 0, block * g.c, kPrevBlock));
    if (part == 2) add_seg(p, summary_cells(g, h, 0, (block + 1) * g.c, kLE));
    if (part != 2) add_seg(p, run(block * g.l, 1, q_end - block * g.l, kLE));
  }
  return p;
}

// Keys of tile x and the queries that attend them.
__device__ inline Plan key_plan(Kind kind, const Geometry& g, int x, int h) {
  Plan p;
  int part = head_part(g, h);
  if (kind == kStridedColumn) {  // column-major as in query_plan; heavy tiles first
    int rows = g.n / g.l, col = x / tiles_of(rows), rt = x % tiles_of(rows);
    p.rows = run(rt * kTile * g.l + col, g.l, min(kTile, rows - rt * kTile), kLE);
    if (part != 1)
      add_seg(p, run(p.rows.start, g.l, rows - rt * kTile, part == 0 ? kLT : kLE));
    return p;
  }
  if (kind == kFixedSummary) {
    int total = (g.n / g.l) * g.c;
    p.rows = summary_cells(g, h, x * kTile, min(kTile, total - x * kTile), kLE);
    int j0 = seg_pos(p.rows, g, 0);
    if (part == 0) {
      int q0 = (j0 / g.l + 1) * g.l;
      add_seg(p, run(q0, 1, g.n - q0, kPrevBlock));
    }
    if (part == 2) add_seg(p, run(j0, 1, g.n - j0, kLE));
    return p;
  }
  int k0 = x * kTile;
  p.rows = run(k0, 1, min(kTile, g.n - k0), kLE);
  if (kind == kDense) {
    add_seg(p, run(k0, 1, g.n - k0, kLE));
  } else if (kind == kStridedBand) {
    if (part != 2) add_seg(p, run(k0, 1, min(g.n, k0 + kTile - 1 + g.l) - k0, kBand));
  } else {  // kFixedBlock
    int block_end = (k0 / g.l + 1) * g.l;
    if (part != 2) add_seg(p, run(k0, 1, block_end - k0, kLE));
  }
  return p;
}

// The inner tile number t of a plan: its segment and first index.
struct InnerTile {
  int seg, e0;
};

__device__ inline int inner_tiles(const Plan& p) {
  return tiles_of(p.seg[0].count) + tiles_of(p.seg[1].count);  // unused: count 0
}

__device__ inline Seg pick(const Plan& p, int i) { return i == 0 ? p.seg[0] : p.seg[1]; }

__device__ inline InnerTile inner_tile(const Plan& p, int t) {
  int first = tiles_of(p.seg[0].count);
  return t < first ? InnerTile{0, t * kTile} : InnerTile{1, (t - first) * kTile};
}

}  // namespace st::cuda::attn
