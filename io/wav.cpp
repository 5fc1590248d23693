#include "io/wav.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/check.h"

namespace st {

static uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24; }
static uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }

static std::vector<uint8_t> read_file(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  ST_CHECK(file != nullptr, path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> block(1 << 20);
  size_t got;
  while ((got = std::fread(block.data(), 1, block.size(), file)) > 0)
    bytes.insert(bytes.end(), block.begin(), block.begin() + got);
  bool failed = std::ferror(file);
  std::fclose(file);
  ST_CHECK(!failed, path + ": read error");
  return bytes;
}

static const char* format_name(int tag) {
  switch (tag) {
    case 3: return "IEEE float";
    case 6: return "A-law";
    case 7: return "mu-law";
    case 2: return "ADPCM";
    default: return "not PCM";
  }
}

WavAudio read_wav(const std::string& path) {
  std::vector<uint8_t> file = read_file(path);
  const uint8_t* p = file.data();
  size_t size = file.size();
  ST_CHECK(size >= 12 && !std::memcmp(p, "RIFF", 4) && !std::memcmp(p + 8, "WAVE", 4),
           path + ": not a WAV file (no RIFF/WAVE header)");
  WavAudio audio;
  int block_align = 0;
  const uint8_t* data = nullptr;
  size_t data_bytes = 0;
  // Walk the chunks; a chunk's body is padded to an even length.
  for (size_t at = 12; at + 8 <= size;) {
    uint32_t chunk = le32(p + at + 4);
    const uint8_t* body = p + at + 8;
    size_t left = size - at - 8;
    if (!std::memcmp(p + at, "fmt ", 4)) {
      ST_CHECK(chunk >= 16 && left >= 16, path + ": fmt chunk cut short");
      int tag = le16(body);
      // WAVE_FORMAT_EXTENSIBLE keeps the real format in its sub-format GUID.
      if (tag == 0xFFFE && chunk >= 40 && left >= 40) tag = le16(body + 24);
      ST_CHECK(tag == 1, path + ": not PCM (format tag " + std::to_string(tag) + ", " +
                             format_name(tag) + "); st-convert reads 8- or 16-bit PCM");
      audio.channels = le16(body + 2);
      audio.sample_rate = int(le32(body + 4));
      block_align = le16(body + 12);
      audio.bits = le16(body + 14);
    } else if (!std::memcmp(p + at, "data", 4)) {
      ST_CHECK(chunk <= left, path + ": cut short: the data chunk promises " +
                                  std::to_string(chunk) + " bytes, the file holds " +
                                  std::to_string(left));
      data = body;
      data_bytes = chunk;
      break;
    }
    if (chunk > left) break;
    at += 8 + chunk + (chunk & 1);
  }
  ST_CHECK(audio.bits != 0, path + ": no fmt chunk (not a usable WAV file)");
  ST_CHECK(data != nullptr, path + ": no data chunk (cut short or not a WAV file)");
  ST_CHECK(audio.bits == 8 || audio.bits == 16,
           path + ": " + std::to_string(audio.bits) + "-bit samples; st-convert reads 8 or 16");
  ST_CHECK(audio.channels == 1 || audio.channels == 2,
           path + ": " + std::to_string(audio.channels) + " channels; st-convert reads mono or stereo");
  ST_CHECK(audio.sample_rate > 0, path + ": sample rate 0");
  ST_CHECK(block_align == audio.channels * audio.bits / 8,
           path + ": block size " + std::to_string(block_align) + " disagrees with " +
               std::to_string(audio.channels) + " channels of " + std::to_string(audio.bits) + " bits");
  ST_CHECK(data_bytes % block_align == 0,
           path + ": cut short: the data ends inside a sample frame");
  size_t frames = data_bytes / block_align;
  audio.mono.resize(frames);
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0;
    for (int c = 0; c < audio.channels; ++c) {
      const uint8_t* s = data + f * block_align + c * (audio.bits / 8);
      // 8-bit PCM is unsigned around 128; 16-bit is signed little-endian.
      sum += audio.bits == 8 ? (s[0] - 128) / 128.0f : int16_t(le16(s)) / 32768.0f;
    }
    audio.mono[f] = sum / audio.channels;
  }
  return audio;
}

int64_t resampled_length(int64_t count, int from_rate, int to_rate) {
  return count * to_rate / from_rate;
}

std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate) {
  if (from_rate == to_rate) return in;
  int64_t count = resampled_length(int64_t(in.size()), from_rate, to_rate);
  std::vector<float> out(count);
  double step = double(from_rate) / to_rate;  // input samples per output sample
  for (int64_t j = 0; j < count; ++j) {
    double t = j * step;
    if (step > 1) {
      int64_t begin = int64_t(t), end = std::min<int64_t>(int64_t(t + step), int64_t(in.size()));
      double sum = 0;
      for (int64_t i = begin; i < end; ++i) sum += in[i];
      out[j] = float(sum / double(std::max<int64_t>(end - begin, 1)));
    } else {
      int64_t i = int64_t(t);
      double frac = t - double(i);
      float next = i + 1 < int64_t(in.size()) ? in[i + 1] : in[i];
      out[j] = float(in[i] * (1 - frac) + next * frac);
    }
  }
  return out;
}

}  // namespace st
