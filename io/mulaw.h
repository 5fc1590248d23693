// 8-bit mu-law (mu = 255) companding of audio samples in [-1, 1].
//
// The continuous form used by WaveNet, not G.711's bit-inverted codes: byte
// values are monotonic in the sample (0 is -1, 255 is +1, 127/128 straddle
// silence), which is what a model of bytes wants to see.
#pragma once

#include <cstdint>

namespace st {

uint8_t mulaw_encode(float sample);
float mulaw_decode(uint8_t byte);

}  // namespace st
