#include "io/wav_writer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "io/atomic_file.h"

namespace st {

static void put16(std::vector<uint8_t>& out, uint32_t x) {
  out.push_back(uint8_t(x)), out.push_back(uint8_t(x >> 8));
}
static void put32(std::vector<uint8_t>& out, uint32_t x) { put16(out, x), put16(out, x >> 16); }
static void put_tag(std::vector<uint8_t>& out, const char* tag) { out.insert(out.end(), tag, tag + 4); }

void write_wav(const std::string& path, int sample_rate, const std::vector<float>& samples) {
  ST_CHECK(sample_rate > 0, path + ": the sample rate must be positive");
  ST_CHECK(samples.size() < (1u << 30), path + ": too many samples for one WAV file");
  const uint32_t data_bytes = uint32_t(samples.size() * 2);
  std::vector<uint8_t> out;
  put_tag(out, "RIFF"), put32(out, 36 + data_bytes), put_tag(out, "WAVE");
  put_tag(out, "fmt "), put32(out, 16);
  put16(out, 1), put16(out, 1);                           // PCM, mono
  put32(out, uint32_t(sample_rate)), put32(out, uint32_t(sample_rate) * 2);  // bytes per second
  put16(out, 2), put16(out, 16);                          // block align, bits
  put_tag(out, "data"), put32(out, data_bytes);
  for (float s : samples) {
    float clipped = std::isnan(s) ? 0.0f : std::clamp(s, -1.0f, 1.0f);
    put16(out, uint16_t(int16_t(std::lround(clipped * 32767.0f))));
  }
  const std::string temp = path + ".tmp";
  FILE* file = std::fopen(temp.c_str(), "wb");
  ST_CHECK(file != nullptr, path + ": cannot write: " + std::strerror(errno));
  bool written = std::fwrite(out.data(), 1, out.size(), file) == out.size();
  written = std::fclose(file) == 0 && written;
  if (!written) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    ST_FAIL(path + ": writing failed: " + std::strerror(errno));
  }
  replace_file_durably(temp, path);
}

}  // namespace st
