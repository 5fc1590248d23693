// PCM WAV files: parsing, mixing down to mono and resampling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st {

struct WavAudio {
  int sample_rate = 0;
  int channels = 0;         // in the file; the samples below are mixed down
  int bits = 0;             // 8 or 16
  std::vector<float> mono;  // in [-1, 1]
};

// Reads a PCM WAV (8-bit unsigned or 16-bit signed, mono or stereo, any rate;
// WAVE_FORMAT_EXTENSIBLE with a PCM sub-format too) and averages the channels.
// Throws st::Error naming the file for: a missing file, not RIFF/WAVE, a
// format that is not PCM, an unsupported bit depth or channel count, and a
// file cut short (its data chunk promises more than the file holds).
WavAudio read_wav(const std::string& path);

// The number of samples resample() gives for `count` samples.
int64_t resampled_length(int64_t count, int from_rate, int to_rate);

// Changes the sample rate.  Down: each output sample averages the input
// samples of its interval (a box filter, which keeps most aliasing out);
// up: linear interpolation.  Equal rates return the input unchanged.
std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate);

}  // namespace st
