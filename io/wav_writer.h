// Writing mono 16-bit PCM WAV files (sampled audio).
#pragma once

#include <string>
#include <vector>

namespace st {

// Writes samples in [-1, 1] (clipped) as mono 16-bit PCM at sample_rate Hz.
// Written to "<path>.tmp", then renamed: a failure leaves no file and an
// existing <path> untouched.  Throws st::Error naming the file.
void write_wav(const std::string& path, int sample_rate, const std::vector<float>& samples);

}  // namespace st
