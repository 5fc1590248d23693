// Splitting the model's residual blocks into P contiguous pipeline stages.
//
// The first stage also holds the embedding, the last the output head and the
// loss.  A cost model gives each piece a relative cost (forward + backward
// arithmetic); the split minimises the most expensive stage, since that stage
// sets the pace of the whole pipeline.  Each stage owns at least one block.
#pragma once

#include <string>
#include <vector>

namespace st {

struct StageCosts {
  double embedding = 0, block = 1, head = 0;
};

// Relative costs from the model's size: a block's matrix products (qkv,
// projection, 4x feed-forward: 12 d^2 multiply-adds per token) plus its
// attention (n_attended * d per token), the head's d * vocab, the embedding's
// d (a gather).
StageCosts estimate_costs(int d_model, int attended_per_token, int vocab);

struct Partition {
  std::vector<int> first;  // stage s owns blocks [first[s], first[s + 1])
  int stages() const { return int(first.size()) - 1; }
  int begin(int stage) const { return first.at(stage); }
  int end(int stage) const { return first.at(stage + 1); }
  int blocks() const { return first.back(); }
};

// The balanced split; a clear error when blocks < stages.
Partition partition_blocks(int blocks, int stages, const StageCosts& costs);
double stage_cost(const Partition& partition, int stage, const StageCosts& costs);
// One line per stage: blocks, embedding/head, cost share.
std::string describe(const Partition& partition, const StageCosts& costs);

}  // namespace st
