#include "kernels/attention_pattern.h"

#include "core/check.h"

namespace st {

const char* pattern_name(Pattern pattern) {
  switch (pattern) {
    case Pattern::Dense: return "dense";
    case Pattern::Strided: return "strided";
    case Pattern::Fixed: return "fixed";
  }
  return "?";
}

const char* part_name(AttentionPart part) {
  switch (part) {
    case AttentionPart::Merged: return "merged";
    case AttentionPart::Part1: return "part1";
    case AttentionPart::Part2: return "part2";
    case AttentionPart::SplitHeads: return "split-heads";
  }
  return "?";
}

void validate(const AttentionSpec& s) {
  ST_CHECK(s.batch >= 1 && s.n >= 1 && s.heads >= 1 && s.head_dim_qk >= 1 && s.head_dim_v >= 1,
           "attention: batch, n, heads and head sizes must be positive");
  if (s.pattern == Pattern::Dense) return;
  ST_CHECK(s.stride >= 1 && s.n % s.stride == 0,
           "attention: n (" + std::to_string(s.n) + ") must be a multiple of the stride l (" +
               std::to_string(s.stride) + ")");
  if (s.pattern == Pattern::Fixed) {
    ST_CHECK(s.summary >= 1 && s.summary <= s.stride && s.stride % s.summary == 0,
             "attention: the summary width c (" + std::to_string(s.summary) +
                 ") must divide the stride l (" + std::to_string(s.stride) + ")");
    ST_CHECK(s.slices >= 1 && s.slices * s.summary <= s.stride,
             "attention: slices v times summary c must not exceed the stride l");
  }
  if (s.part == AttentionPart::SplitHeads)
    ST_CHECK(s.heads % 2 == 0, "attention: split-heads needs an even number of heads");
}

int head_part(const AttentionSpec& s, int64_t head) {
  if (s.pattern == Pattern::Dense) return 1;
  switch (s.part) {
    case AttentionPart::Merged: return 0;
    case AttentionPart::Part1: return 1;
    case AttentionPart::Part2: return 2;
    case AttentionPart::SplitHeads: return head < s.heads / 2 ? 1 : 2;
  }
  return 0;
}

// Strided: part 1 is the window (i - l, i], part 2 the keys i - m*l, m >= 0.
static void strided_keys(int64_t l, int part, int64_t i, std::vector<int64_t>& keys) {
  int64_t local_start = i - l + 1 < 0 ? 0 : i - l + 1;
  if (part != 1) {
    // Keys below the window, ascending; with part 2 alone, also those inside it.
    int64_t top = part == 2 ? i : i - l;
    for (int64_t j = top < 0 ? -1 : top % l; j <= top && j >= 0; j += l) keys.push_back(j);
  }
  if (part != 2)
    for (int64_t j = local_start; j <= i; ++j) keys.push_back(j);
}

// Fixed: part 1 is the own block up to i, part 2 the head's summary cells.
static void fixed_keys(const AttentionSpec& s, int64_t head, int part, int64_t i,
                       std::vector<int64_t>& keys) {
  int64_t l = s.stride, c = s.summary, slice = head % s.slices;
  int64_t block = i / l, lo = l - (slice + 1) * c, hi = l - slice * c;  // cells [lo, hi)
  // With part 1 present the own block is covered whole, so summaries stop
  // at the block before it.
  int64_t last_block = part == 0 ? block - 1 : block;
  if (part != 1)
    for (int64_t b = 0; b <= last_block; ++b)
      for (int64_t j = b * l + lo; j < b * l + hi && j <= i; ++j) keys.push_back(j);
  if (part != 2)
    for (int64_t j = block * l; j <= i; ++j) keys.push_back(j);
}

void attention_keys(const AttentionSpec& s, int64_t head, int64_t i,
                    std::vector<int64_t>& keys) {
  keys.clear();
  int part = head_part(s, head);
  if (s.pattern == Pattern::Dense) {
    for (int64_t j = 0; j <= i; ++j) keys.push_back(j);
  } else if (s.pattern == Pattern::Strided) {
    strided_keys(s.stride, part, i, keys);
  } else {
    fixed_keys(s, head, part, i, keys);
  }
}

int64_t attention_nnz(const AttentionSpec& s, int64_t head) {
  std::vector<int64_t> keys;
  int64_t total = 0;
  for (int64_t i = 0; i < s.n; ++i) {
    attention_keys(s, head, i, keys);
    total += static_cast<int64_t>(keys.size());
  }
  return total;
}

}  // namespace st
