#include "runtime/partition.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "core/check.h"

namespace st {

StageCosts estimate_costs(int d_model, int attended_per_token, int vocab) {
  double d = d_model;
  return {d, 12 * d * d + double(attended_per_token) * d, d * vocab};
}

static double cost_of(int begin, int end, int stage, int stages, const StageCosts& c) {
  return (end - begin) * c.block + (stage == 0 ? c.embedding : 0) +
         (stage == stages - 1 ? c.head : 0);
}

double stage_cost(const Partition& p, int stage, const StageCosts& costs) {
  return cost_of(p.begin(stage), p.end(stage), stage, p.stages(), costs);
}

Partition partition_blocks(int blocks, int stages, const StageCosts& costs) {
  ST_CHECK(stages >= 1, "the pipeline needs at least one stage");
  ST_CHECK(blocks >= stages, "cannot split " + std::to_string(blocks) + " blocks into " +
                                 std::to_string(stages) +
                                 " pipeline stages: each stage needs at least one block");
  // worst[s][i]: the smallest possible maximum stage cost when stages 0..s
  // hold blocks [0, i); from[s][i] the start of stage s in that split.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> worst(stages, std::vector<double>(blocks + 1, inf));
  std::vector<std::vector<int>> from(stages, std::vector<int>(blocks + 1, 0));
  for (int i = 1; i <= blocks; ++i) worst[0][i] = cost_of(0, i, 0, stages, costs);
  for (int s = 1; s < stages; ++s)
    for (int i = s + 1; i <= blocks; ++i)
      for (int j = s; j < i; ++j) {
        double w = std::max(worst[s - 1][j], cost_of(j, i, s, stages, costs));
        // '<' keeps the earliest start on ties, so the split is deterministic.
        if (w < worst[s][i]) worst[s][i] = w, from[s][i] = j;
      }
  Partition p;
  p.first.assign(stages + 1, 0);
  p.first[stages] = blocks;
  for (int s = stages - 1; s > 0; --s) p.first[s] = from[s][p.first[s + 1]];
  return p;
}

std::string describe(const Partition& p, const StageCosts& costs) {
  double total = 0;
  for (int s = 0; s < p.stages(); ++s) total += stage_cost(p, s, costs);
  std::string text;
  for (int s = 0; s < p.stages(); ++s) {
    char line[160];
    std::snprintf(line, sizeof(line), "stage %d: blocks [%d, %d)%s%s, %.1f%% of the cost\n", s,
                  p.begin(s), p.end(s), s == 0 ? " + embedding" : "",
                  s == p.stages() - 1 ? " + head and loss" : "",
                  100 * stage_cost(p, s, costs) / total);
    text += line;
  }
  return text;
}

}  // namespace st
