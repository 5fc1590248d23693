// The useful-FLOP count behind st-train's model FLOP utilisation agrees
// with the peer's (../shared/peers/model_peer.py) on the configuration the
// peers measured: 6 x matrix parameters + 3 x 4 x keys x d per token and layer.
#include <gtest/gtest.h>

#include "runtime/trainer.h"

TEST(TrainFlops, MatchesThePeersCountForFixedAttention) {
  st::ModelConfig c;
  c.layers = 30, c.d_model = 512, c.heads = 8, c.d_ff = 2048, c.n = 16384;
  c.pattern = st::Pattern::Fixed, c.stride = 128, c.summary = 32;
  // The peer's mean keys per query: (q mod l) + 1 + floor(q / l) c.
  double keys = 0;
  for (int64_t q = 0; q < c.n; ++q) keys += double(q % 128 + 1 + (q / 128) * 32);
  keys /= double(c.n);
  const double d = 512, layers = 30;
  double peer = 6 * (layers * 12 * d * d + 256 * d) + layers * 3 * 4 * keys * d;
  EXPECT_NEAR(st::train_flops_per_token(c) / peer, 1.0, 2e-3);
}

TEST(TrainFlops, HalfQueryKeysAndFeedForwardCountLess) {
  st::ModelConfig c;
  c.layers = 4, c.d_model = 256, c.heads = 2, c.d_ff = 1024, c.n = 3072;
  c.pattern = st::Pattern::Strided, c.stride = 96;
  double full = st::train_flops_per_token(c);
  c.half_qk = true, c.d_ff = 512;
  double half = st::train_flops_per_token(c);
  // qkv shrinks from 3d to 2d columns and the feed-forward halves: 4 layers
  // x (d^2 + 2 d x 512) x 6 fewer, and a quarter of the attention.
  double matmul_saving = 6.0 * 4 * (256.0 * 256 + 2 * 256.0 * 512);
  EXPECT_GT(full - half, matmul_saving);
  EXPECT_LT(full - half, matmul_saving * 1.5);
}
