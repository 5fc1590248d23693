// The counter-based dropout mask shared by the CPU and CUDA backends.
//
// Whether element `index` of a tensor is kept depends only on (seed, index),
// so the backward pass and recomputation regenerate the exact mask of the
// forward pass without storing it, and the CPU and GPU drop the same
// elements (which lets their results be compared with dropout on).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ST_HOST_DEVICE __host__ __device__
#else
#define ST_HOST_DEVICE
#endif

namespace st {

// splitmix64's finaliser: a good 64-bit mix, cheap on both sides.
ST_HOST_DEVICE inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// True when the element survives dropout with drop probability p.
ST_HOST_DEVICE inline bool dropout_keep(uint64_t seed, uint64_t index, float p) {
  uint64_t bits = mix64(seed + 0x9e3779b97f4a7c15ULL * (index + 1));
  float u = float(bits >> 40) * (1.0f / 16777216.0f);  // 24 bits in [0, 1)
  return u >= p;
}

// A seed for one dropout site of one step: different for every (step,
// layer, site) so that masks never repeat.
ST_HOST_DEVICE inline uint64_t dropout_seed(uint64_t base, uint64_t step, uint64_t layer,
                                            uint64_t site) {
  return mix64(mix64(mix64(base ^ step) + layer) + site);
}

}  // namespace st
