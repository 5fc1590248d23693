// The fused attention kernels' plans and masks, run on the CPU (no GPU
// needed): the same __host__ __device__ functions the kernels call.
//  - Every launch of a pattern, with outer tiles of one to three warpgroups,
//    together visits each allowed (query, key) pair of every head exactly
//    once, against attention_keys (the CPU reference's pattern).
//  - A tile's mask, one column range per row, keeps exactly the columns
//    whose pair the relation allows, for random segments and positions.
//  - Walking a segment's positions with a fixed stride gives seg_pos.
//  - The strided and fixed blocks that write their queries' whole dQ,
//    with the summary keys adding to the fixed blocks', cover each allowed
//    pair once (keys_before).
//  - The inner tiles that the kernels run without a mask hold only allowed
//    pairs.
//  - The fixed pattern's summary keys in halves visit the same pairs as
//    whole.
//  - The strided band's forward in windows keeps each key tile in its ring
//    until its last step.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/attention_pattern.h"
#include "kernels/cuda/attention_fused.cuh"

using namespace st;
using namespace st::cuda::attn;

namespace {

// The relations, written from their definitions in attention_plan.cuh.
bool relation_allows(int rel, int i, int j, int l) {
  switch (rel) {
    case kLE: return j <= i;
    case kLT: return j < i;
    case kBand: return j <= i && j > i - l;
    case kBlockLE: return j <= i && j / l == i / l;
    default: return j / l < i / l;  // kPrevBlock
  }
}

AttentionSpec make_spec(Pattern p, AttentionPart part, int64_t n, int64_t l, int64_t c,
                        int64_t v, int64_t heads) {
  AttentionSpec s;
  s.pattern = p, s.part = part, s.n = n, s.stride = l, s.summary = c, s.slices = v;
  s.heads = heads, s.head_dim_qk = s.head_dim_v = 64;
  return s;
}

using Pair = std::tuple<int, int, int>;  // head, query, key

// Calls f(head, plan, outer rows of one warpgroup) for every warpgroup of
// every thread block of every launch of a pattern.
template <class F>
void for_each_warpgroup(const AttentionSpec& s, const Geometry& g, bool backward, int rows,
                        F f) {
  for (const Launch& launch : backward ? backward_launches(s) : forward_launches(s)) {
    int ntiles = grid_tiles(launch.kind, g, rows);
    for (int h = 0; h < g.heads; ++h)
      for (int x = 0; x < ntiles; ++x) {
        Plan plan = backward ? key_plan(launch.kind, g, x, h, rows)
                             : query_plan(launch.kind, g, x, h, rows, ntiles);
        for (int w = 0; w < rows / kTile; ++w) f(h, plan, warpgroup_rows(plan.rows, w));
      }
  }
}

// How often the launches' tiles visit each allowed pair.
std::map<Pair, int> visits(const AttentionSpec& s, bool backward, int rows) {
  Geometry g = geometry(s);
  std::map<Pair, int> seen;
  for_each_warpgroup(s, g, backward, rows, [&](int h, const Plan& plan, const Seg& outer) {
    for (int r = 0; r < outer.count; ++r)
      for (int k = 0; k < plan.nseg; ++k) {
        Seg inner = pick(plan, k);
        // The backward kernel takes its inner positions by run_pos.
        if (backward) ASSERT_FALSE(inner.summary) << "a key-major plan's queries must be a run";
        int p = seg_pos(outer, g, r);
        for (int t = 0; t < inner.count; ++t) {
          int q = seg_pos(inner, g, t), i = backward ? q : p, j = backward ? p : q;
          if (relation_allows(inner.rel, i, j, g.l)) ++seen[{h, i, j}];
        }
      }
  });
  return seen;
}

const AttentionPart kAllParts[] = {AttentionPart::Merged, AttentionPart::Part1,
                                   AttentionPart::Part2, AttentionPart::SplitHeads};

// Every pair the CPU reference's pattern allows.
std::map<Pair, int> allowed_pairs(const AttentionSpec& s) {
  std::map<Pair, int> allowed;
  std::vector<int64_t> keys;
  for (int h = 0; h < s.heads; ++h)
    for (int64_t i = 0; i < s.n; ++i) {
      attention_keys(s, h, i, keys);
      for (int64_t j : keys) allowed[{h, int(i), int(j)}] = 1;
    }
  return allowed;
}

// seen holds each allowed pair exactly once and nothing else.
void expect_each_once(const std::map<Pair, int>& allowed, const std::map<Pair, int>& seen) {
  int missing = 0, extra = 0, repeated = 0;
  for (const auto& [pair, count] : allowed) missing += !seen.count(pair);
  for (const auto& [pair, count] : seen) {
    extra += !allowed.count(pair);
    repeated += count > 1;
  }
  EXPECT_GT(seen.size(), 0u);
  EXPECT_EQ(missing, 0) << "allowed pairs never visited";
  EXPECT_EQ(extra, 0) << "pairs visited that the pattern does not allow";
  EXPECT_EQ(repeated, 0) << "pairs visited more than once";
}

void expect_exact_cover(const AttentionSpec& s) {
  const std::map<Pair, int> allowed = allowed_pairs(s);
  for (bool backward : {false, true})
    for (int rows : {kTile, 2 * kTile, 3 * kTile}) {
      SCOPED_TRACE(std::string(pattern_name(s.pattern)) + "/" + part_name(s.part) +
                   " n=" + std::to_string(s.n) + " l=" + std::to_string(s.stride) +
                   (backward ? " backward" : " forward") + " rows=" + std::to_string(rows));
      expect_each_once(allowed, visits(s, backward, rows));
    }
}

TEST(AttentionPlan, LaunchesVisitEachAllowedPairOnce) {
  for (AttentionPart part : kAllParts) {
    // Fixed: blocks of one and of two 64-row tiles (a 128-row tile then
    // spans two blocks), distinct summary slices, a partial last tile.
    expect_exact_cover(make_spec(Pattern::Fixed, part, 640, 128, 32, 2, 4));
    expect_exact_cover(make_spec(Pattern::Fixed, part, 448, 64, 16, 2, 4));
    expect_exact_cover(make_spec(Pattern::Fixed, part, 576, 192, 8, 1, 2));
    // A summary width that is not a power of two (positions by division).
    expect_exact_cover(make_spec(Pattern::Fixed, part, 768, 192, 24, 2, 2));
    // Strided: columns of several tiles, and a band wider than a tile.
    expect_exact_cover(make_spec(Pattern::Strided, part, 1000, 40, 1, 1, 2));
    expect_exact_cover(make_spec(Pattern::Strided, part, 640, 128, 1, 1, 2));
  }
  expect_exact_cover(make_spec(Pattern::Dense, AttentionPart::Merged, 1000, 1, 1, 1, 2));
}

// The tiles that full_tiles says need no mask: every one of their 64
// positions is in the segment and allowed for every outer row, and they are
// exactly the tiles for which tile_full holds (the run found from both ends
// is the whole set).
void expect_full_tiles_need_no_mask(const AttentionSpec& s) {
  Geometry g = geometry(s);
  for (bool backward : {false, true})
    for (int rows : {kTile, 2 * kTile}) {
      SCOPED_TRACE(std::string(pattern_name(s.pattern)) + "/" + part_name(s.part) +
                   (backward ? " backward" : " forward") + " rows=" + std::to_string(rows));
      int full_seen = 0;
      for_each_warpgroup(s, g, backward, rows, [&](int, const Plan& plan, const Seg& outer) {
        if (outer.count == 0) return;
        int omin = seg_pos(outer, g, 0), omax = seg_pos(outer, g, outer.count - 1);
        FullTiles f = full_tiles(plan, g, omin, omax, backward);
        for (int t = 0; t < inner_tiles(plan); ++t) {
          ASSERT_EQ(!needs_mask(f, t), tile_full(plan, g, t, omin, omax, backward)) << "tile " << t;
          if (needs_mask(f, t)) continue;
          ++full_seen;
          InnerTile it = inner_tile(plan, t);
          Seg inner = pick(plan, it.seg);
          ASSERT_LE(it.e0 + kTile, inner.count);
          for (int r = 0; r < outer.count; ++r)
            for (int c = 0; c < kTile; ++c) {
              int p = seg_pos(outer, g, r), q = seg_pos(inner, g, it.e0 + c);
              ASSERT_TRUE(backward ? relation_allows(inner.rel, q, p, g.l)
                                   : relation_allows(inner.rel, p, q, g.l))
                  << "tile " << t << " row " << r << " column " << c;
            }
        }
      });
      EXPECT_GT(full_seen, 0) << "no tile without a mask: the test checks nothing";
    }
}

TEST(AttentionPlan, TilesWithoutAMaskHoldOnlyAllowedPairs) {
  for (AttentionPart part : {AttentionPart::Merged, AttentionPart::Part2}) {
    expect_full_tiles_need_no_mask(make_spec(Pattern::Fixed, part, 2048, 128, 32, 2, 2));
    expect_full_tiles_need_no_mask(make_spec(Pattern::Fixed, part, 1536, 192, 64, 1, 2));
    expect_full_tiles_need_no_mask(make_spec(Pattern::Strided, part, 8192, 64, 1, 1, 1));
    expect_full_tiles_need_no_mask(make_spec(Pattern::Strided, part, 4096, 32, 1, 1, 1));
  }
  expect_full_tiles_need_no_mask(make_spec(Pattern::Dense, AttentionPart::Merged, 1000, 1, 1, 1, 1));
}

// The strided launches' one-warpgroup blocks and the fixed pattern's block
// launch write their queries' whole dQ (attention_bwd.cu, own_dq_pass): a
// block's inner tile 0 holds its own keys' positions, and those queries'
// pairs with the own keys and with keys_before cover, over the column and
// band launches, every allowed pair exactly once; and so with the pairs of
// the fixed pattern's summary keys, which add theirs.
void expect_own_dq_cover(const AttentionSpec& s) {
  SCOPED_TRACE(std::string(part_name(s.part)) + " n=" + std::to_string(s.n) +
               " l=" + std::to_string(s.stride));
  Geometry g = geometry(s);
  std::map<Pair, int> seen;  // pairs whose dS enters a block's dQ
  for (const Launch& launch : backward_launches(s))
    for (int h = 0; h < g.heads; ++h)
      for (int x = 0; x < grid_tiles(launch.kind, g, kTile); ++x) {
        Plan plan = key_plan(launch.kind, g, x, h, kTile);
        if (plan.nseg == 0) continue;
        const Seg& own = plan.rows;
        if (launch.kind == kFixedSummary) {  // adds dQ key-major, by atomics
          for (int k = 0; k < plan.nseg; ++k)
            for (int r = 0; r < own.count; ++r)
              for (int t = 0; t < plan.seg[k].count; ++t) {
                int i = run_pos(plan.seg[k], t), j = seg_pos(own, g, r);
                if (relation_allows(plan.seg[k].rel, i, j, g.l)) ++seen[{h, i, j}];
              }
          continue;
        }
        const Seg before = keys_before(launch.kind, g, plan);
        for (int r = 0; r < own.count; ++r) {
          int i = run_pos(own, r);
          ASSERT_EQ(run_pos(plan.seg[0], r), i) << "inner tile 0 is not the block's keys";
          for (int k = 0; k < own.count; ++k) {
            int j = run_pos(own, k);
            if (relation_allows(plan.seg[0].rel, i, j, g.l)) ++seen[{h, i, j}];
          }
          for (int k = 0; k < before.count; ++k) {
            int j = run_pos(before, k);
            ASSERT_LT(j, run_pos(own, 0)) << "a key before is one of the block's own";
            if (relation_allows(before.rel, i, j, g.l)) ++seen[{h, i, j}];
          }
        }
      }
  expect_each_once(allowed_pairs(s), seen);
}

TEST(AttentionPlan, OwnDqBlocksCoverEachAllowedPairOnce) {
  for (AttentionPart part : kAllParts) {
    // Bands narrower and wider than a tile, not multiples of one; columns
    // of one tile, of several, and a partial last tile.
    expect_own_dq_cover(make_spec(Pattern::Strided, part, 1000, 40, 1, 1, 2));
    expect_own_dq_cover(make_spec(Pattern::Strided, part, 2560, 16, 1, 1, 2));
    expect_own_dq_cover(make_spec(Pattern::Strided, part, 1280, 128, 1, 1, 2));
    expect_own_dq_cover(make_spec(Pattern::Strided, part, 1000, 200, 1, 1, 2));
    // Fixed: blocks of one, two and three tiles, distinct summary slices.
    expect_own_dq_cover(make_spec(Pattern::Fixed, part, 640, 128, 32, 2, 4));
    expect_own_dq_cover(make_spec(Pattern::Fixed, part, 384, 64, 8, 1, 2));
    expect_own_dq_cover(make_spec(Pattern::Fixed, part, 768, 192, 48, 2, 2));
  }
}

// The summary keys' launch in halves (summary_items): its items, whole key
// tiles of three warpgroups and halves of a tile's query tiles, visit each
// pair of the summary relation exactly once, as the unsplit launch does;
// every heavy tile is split, into its two halves only, and the items come
// longest first.
std::map<Pair, int> summary_visits(const Geometry& g, int x, int h, TileRange tiles) {
  std::map<Pair, int> seen;
  const Plan plan = key_plan(kFixedSummary, g, x, h, 3 * kTile);
  for (int t = tiles.lo; t < tiles.hi; ++t) {
    const InnerTile it = inner_tile(plan, t);
    const Seg inner = pick(plan, it.seg);
    for (int r = 0; r < plan.rows.count; ++r)
      for (int e = it.e0; e < std::min(inner.count, it.e0 + kTile); ++e) {
        int i = run_pos(inner, e), j = seg_pos(plan.rows, g, r);
        if (relation_allows(inner.rel, i, j, g.l)) ++seen[{h, i, j}];
      }
  }
  return seen;
}

void expect_halves_cover(const AttentionSpec& s, int sms) {
  SCOPED_TRACE(std::string(part_name(s.part)) + " n=" + std::to_string(s.n) +
               " slices=" + std::to_string(s.slices) + " sms=" + std::to_string(sms));
  Geometry g = geometry(s);
  const SummaryItems items = summary_items(g, g.heads, sms);
  const int ntiles = grid_tiles(kFixedSummary, g, 3 * kTile);
  ASSERT_GT(items.halves, 0) << "no tile heavy enough: the test checks nothing";
  ASSERT_EQ(items.items, ntiles + items.halves);
  std::map<Pair, int> unsplit, halved;
  std::vector<int> pieces(ntiles, 0);
  int last_work = 1 << 30;
  for (int h = 0; h < g.heads; ++h)
    for (int x = 0; x < ntiles; ++x) {
      const int tiles = inner_tiles(key_plan(kFixedSummary, g, x, h, 3 * kTile));
      for (const auto& [pair, count] : summary_visits(g, x, h, TileRange{0, tiles}))
        unsplit[pair] += count;
    }
  for (int i = 0; i < items.items; ++i) {
    const int x = items.order[i] / 4, half = items.order[i] % 4;
    ASSERT_LT(x, ntiles);
    ASSERT_EQ(half > 0, x < items.halves) << "item " << i << ": tile " << x << " half " << half;
    pieces[x] += half == 0 ? 2 : half;  // whole: 2; halves 1 + 2: 3
    for (int h = 0; h < g.heads; ++h) {
      const int tiles = inner_tiles(key_plan(kFixedSummary, g, x, h, 3 * kTile));
      const TileRange r = half_tiles(half, tiles);
      if (h == g.heads - 1) {  // the head whose work orders the items
        EXPECT_LE(r.hi - r.lo, last_work) << "item " << i << " is longer than the one before";
        last_work = r.hi - r.lo;
      }
      for (const auto& [pair, count] : summary_visits(g, x, h, r)) halved[pair] += count;
    }
  }
  for (int x = 0; x < ntiles; ++x)
    EXPECT_EQ(pieces[x], x < items.halves ? 3 : 2) << "tile " << x;
  EXPECT_GT(unsplit.size(), 0u);
  EXPECT_EQ(halved, unsplit) << "the halves visit other pairs than the whole tiles";
  for (const auto& [pair, count] : halved) ASSERT_EQ(count, 1) << "a pair visited twice";
}

TEST(AttentionPlan, SummaryHalvesVisitEachPairOnce) {
  // Few SMs stand in for many heads and long sequences: a share of an SM
  // below the first tiles' work.
  for (AttentionPart part :
       {AttentionPart::Merged, AttentionPart::Part2, AttentionPart::SplitHeads}) {
    expect_halves_cover(make_spec(Pattern::Fixed, part, 2048, 128, 32, 2, 2), 4);
    expect_halves_cover(make_spec(Pattern::Fixed, part, 1536, 192, 48, 1, 2), 4);
  }
  // The benchmark's shape on an H100: 8 heads, n = 16384, 132 SMs.
  Geometry g = geometry(make_spec(Pattern::Fixed, AttentionPart::Merged, 16384, 128, 32, 1, 8));
  const SummaryItems h100 = summary_items(g, 8, 132);
  EXPECT_GT(h100.halves, 0);
  EXPECT_EQ(h100.items, grid_tiles(kFixedSummary, g, 3 * kTile) + h100.halves);
}

// band_forward_kernel's walk over `window` query tiles a block: each step
// finds its key tile in its ring slot, and no load replaces a tile that the
// step issuing it or a later step of the block reads.
void expect_band_window_keeps_tiles(const AttentionSpec& s, int window) {
  const Geometry g = geometry(s);
  const int qtiles = tiles_of(g.n);
  for (int h = 0; h < g.heads; ++h)
    for (int x_begin = 0; x_begin < qtiles; x_begin += window) {
      const int x_end = std::min(qtiles, x_begin + window);
      std::vector<std::pair<int, int>> steps;  // (query tile, key tile)
      for (int x = x_begin; x < x_end; ++x) {
        const Plan p = query_plan(kStridedBand, g, x, h, kTile, qtiles);
        for (int t = 0; t < inner_tiles(p); ++t) steps.push_back({x, band_key_tile(p) + t});
      }
      int slot[kBandRing], loaded = -1;
      std::fill(slot, slot + kBandRing, -1);
      auto load = [&](int m, size_t from_step) {
        const int old = slot[m % kBandRing];
        for (size_t k = from_step; k < steps.size(); ++k)
          ASSERT_NE(steps[k].second, old) << "n " << g.n << " l " << g.l << " window " << window
                                          << " x " << steps[k].first << ": tile replaced";
        slot[m % kBandRing] = m, loaded = m;
      };
      const Plan first = query_plan(kStridedBand, g, x_begin, h, kTile, qtiles);
      if (first.nseg > 0) load(band_key_tile(first), 0);
      size_t k = 0;
      for (int x = x_begin; x < x_end; ++x) {
        const Plan p = query_plan(kStridedBand, g, x, h, kTile, qtiles);
        const Plan q =
            x + 1 < x_end ? query_plan(kStridedBand, g, x + 1, h, kTile, qtiles) : Plan{};
        const int next_m0 = q.nseg > 0 ? band_key_tile(q) : -1;
        for (int t = 0; t < inner_tiles(p); ++t, ++k) {
          const int m = band_key_tile(p) + t;
          ASSERT_EQ(slot[m % kBandRing], m) << "n " << g.n << " l " << g.l << " x " << x;
          const int next = band_next_load(band_key_tile(p), inner_tiles(p), t, next_m0, loaded);
          if (next >= 0) load(next, k);
        }
      }
    }
}

TEST(AttentionPlan, BandWindowKeepsEachKeyTileUntilItsLastStep) {
  for (AttentionPart part :
       {AttentionPart::Merged, AttentionPart::Part1, AttentionPart::SplitHeads})
    for (int64_t l : {1, 31, 64, 65, 100, 128, 129})
      for (int64_t rows : {1, 3, 40, 70}) {  // n = rows * l
        ASSERT_LE(1 + tiles_of(int(l) - 1), kBandMaxKeyTiles);
        for (int window : {1, 2, 3, 4, 8})
          expect_band_window_keeps_tiles(
              make_spec(Pattern::Strided, part, rows * l, l, 1, 1, 2), window);
      }
}

TEST(AttentionPlan, MaskKeepsExactlyTheAllowedColumns) {
  std::mt19937 gen(7);
  auto pick_int = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(gen); };
  int checked = 0;
  for (int trial = 0; trial < 4000; ++trial) {
    Geometry g{};
    g.l = 64 * pick_int(1, 3), g.c = pick_int(1, 4) * 8, g.n = g.l * pick_int(4, 20);
    g.heads = 1, g.slices = 1;
    g.c_shift = summary_shift(g.c);  // as geometry(): 24 divides, 8, 16 and 32 shift
    bool summary = pick_int(0, 3) == 0;
    Seg s;
    if (summary) {
      s.summary = true, s.start = g.l - g.c, s.first = pick_int(0, 40);
      s.count = pick_int(1, (g.n / g.l) * g.c - s.first);
      s.rel = pick_int(0, 1) ? kLE : kPrevBlock;
    } else {
      s.step = pick_int(0, 1) ? 1 : g.l, s.start = pick_int(0, s.step == 1 ? 200 : g.l - 1);
      s.first = pick_int(0, 3), s.count = pick_int(1, 300);
      s.rel = pick_int(0, 4);
    }
    bool key_major = !summary && pick_int(0, 1);
    int e0 = kTile * pick_int(0, (s.count - 1) / kTile);
    int p = pick_int(0, g.n + 200);  // positions past n: rows past a tile's end
    ColumnRange keep = mask_range(s, g, e0, p, key_major);
    for (int col = 0; col < kTile; ++col) {
      bool inside = e0 + col < s.count;
      int q = seg_pos(s, g, e0 + col);
      bool allowed = inside && (key_major ? relation_allows(s.rel, q, p, g.l)
                                          : relation_allows(s.rel, p, q, g.l));
      bool kept = col >= keep.lo && col <= keep.hi;
      ASSERT_EQ(kept, allowed) << "rel " << s.rel << (summary ? " summary" : " run") << " step "
                               << s.step << " start " << s.start << " first " << s.first
                               << " e0 " << e0 << " col " << col << " p " << p << " l " << g.l
                               << " c " << g.c << (key_major ? " key-major" : "");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4000 * kTile);
}

// The one-dimensional grids hold below 2^31 blocks: a larger batch * heads
// * n is refused with a message (not a failed launch), one below is taken.
TEST(AttentionPlan, GridsOfMoreThan2To31BlocksAreRefused) {
  AttentionSpec s = make_spec(Pattern::Dense, AttentionPart::Merged, 1 << 20, 1, 1, 1, 2048);
  try {
    geometry(s);
    FAIL() << "no error for batch * heads * n = 2^31";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch * heads * n"), std::string::npos) << e.what();
  }
  s.heads = 2047;
  EXPECT_NO_THROW(geometry(s));
}

TEST(AttentionPlan, SummaryShiftIsLog2OfPowersOfTwoOnly) {
  EXPECT_EQ(summary_shift(1), 0);
  EXPECT_EQ(summary_shift(8), 3);
  EXPECT_EQ(summary_shift(16), 4);
  EXPECT_EQ(summary_shift(32), 5);
  EXPECT_EQ(summary_shift(24), -1);
  EXPECT_EQ(summary_shift(48), -1);
  EXPECT_EQ(summary_shift(0), -1);
}

TEST(AttentionPlan, WalkingASegmentGivesItsPositions) {
  Geometry g{};
  g.l = 192, g.c = 24, g.n = 192 * 40;
  for (bool summary : {false, true})
    for (int stride : {8, 16, 32}) {
      Seg s;
      s.summary = summary, s.start = summary ? g.l - 2 * g.c : 5, s.step = summary ? 1 : g.l;
      s.first = 37;
      SegWalk w = seg_walk(s, g, 3);
      for (int t = 3; t < 600; t += stride) {
        ASSERT_EQ(w.pos, seg_pos(s, g, t)) << (summary ? "summary" : "run") << " t " << t;
        seg_advance(w, s, g, stride);
      }
    }
}

}  // namespace
