// A counter-based random generator for shuffling (splitmix64).
//
// Its whole state is one integer, so a reader's cursor can store it as a
// plain number, and the same seed gives the same sequence on every machine
// and compiler (std::shuffle and std::uniform_int_distribution do not promise
// that).
#pragma once

#include <cstdint>

namespace st {

struct Rng {
  uint64_t state;

  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) by multiply-shift; the bias, below bound / 2^64,
  // is far beneath anything a shuffle of a dataset could show.
  uint64_t below(uint64_t bound) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
  }
};

// A seed for one stream of draws derived from a base seed and a number (an
// epoch): distinct numbers give unrelated sequences.
inline uint64_t derive_seed(uint64_t seed, uint64_t number) {
  Rng rng{seed ^ (number * 0xD1B54A32D192ED03ull)};
  return rng.next();
}

}  // namespace st
