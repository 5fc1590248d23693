// Which keys a query attends to: the contract of
// ../shared/docs/attention-patterns.md (copied to docs/attention-patterns.md),
// shared by the CPU reference, the CUDA kernels and the tests.
//
// Layouts used by every attention implementation:
//   qkv  [batch * n, heads * (2 * head_dim_qk + head_dim_v)]; row t holds
//        q_t for all heads, then k_t for all heads, then v_t for all heads.
//   out  [batch * n, heads * head_dim_v]
//   lse  [batch, heads, n] fp32 (log-sum-exp of each row's scaled scores;
//        -inf for a row whose key set is empty, whose output is zero).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st {

enum class Pattern { Dense, Strided, Fixed };

// How the two parts of a factorized pattern are combined (paper section 4.3).
// Interleaved mode is Part1 / Part2 chosen per residual block by the layer.
enum class AttentionPart { Merged, Part1, Part2, SplitHeads };

struct AttentionSpec {
  Pattern pattern = Pattern::Dense;
  AttentionPart part = AttentionPart::Merged;
  int64_t batch = 1;
  int64_t n = 0;        // context length
  int64_t stride = 1;   // l
  int64_t summary = 1;  // c (fixed pattern)
  int64_t slices = 1;   // v: distinct summary slices (fixed pattern)
  int64_t heads = 1;
  int64_t head_dim_qk = 0;
  int64_t head_dim_v = 0;

  int64_t qkv_width() const { return heads * (2 * head_dim_qk + head_dim_v); }
  int64_t out_width() const { return heads * head_dim_v; }
};

// Throws st::Error naming the field and the rule when the spec is impossible.
void validate(const AttentionSpec& spec);

// The part head h attends through: 0 for both (merged), 1 or 2.
int head_part(const AttentionSpec& spec, int64_t head);

// The keys query i of head h attends to, ascending, each once.
void attention_keys(const AttentionSpec& spec, int64_t head, int64_t i,
                    std::vector<int64_t>& keys);

// Allowed (query, key) pairs of one head over one sequence.
int64_t attention_nnz(const AttentionSpec& spec, int64_t head);

const char* pattern_name(Pattern pattern);
const char* part_name(AttentionPart part);

}  // namespace st
