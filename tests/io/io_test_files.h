// Small input files made on the fly for the io tests: a temporary folder
// that removes itself, and writers for raw bytes, IDX (plain or gzip) and WAV.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "tests/error_of.h"

namespace st::test {

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "st-io-XXXXXX").string();
    ST_CHECK(mkdtemp(pattern.data()) != nullptr, "mkdtemp failed");
    path = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// Random bytes, fresh for each seed (never all zeros).
inline std::vector<uint8_t> random_bytes(size_t count, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<uint8_t> bytes(count);
  for (auto& b : bytes) b = uint8_t(gen());
  return bytes;
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ST_CHECK(out.good(), "cannot write " + path);
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// An IDX file of unsigned bytes: magic 00 00 08 <rank>, big-endian dims, data.
inline std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes = {0, 0, 0x08, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(uint8_t(d >> shift));
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

inline void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ST_CHECK(file != nullptr, "cannot write " + path);
  ST_CHECK(gzwrite(file, bytes.data(), unsigned(bytes.size())) == int(bytes.size()), "gzwrite failed");
  gzclose(file);
}

// A PCM WAV; samples are interleaved frames, already in the file's encoding
// (8-bit: unsigned bytes, 16-bit: int16 values).
inline std::vector<uint8_t> wav_bytes(int rate, int channels, int bits, const std::vector<int>& samples,
                                      int format_tag = 1) {
  auto put16 = [](std::vector<uint8_t>& b, int v) { b.push_back(uint8_t(v)); b.push_back(uint8_t(v >> 8)); };
  auto put32 = [&](std::vector<uint8_t>& b, uint32_t v) { put16(b, int(v & 0xFFFF)); put16(b, int(v >> 16)); };
  uint32_t data_bytes = uint32_t(samples.size() * bits / 8);
  std::vector<uint8_t> b = {'R', 'I', 'F', 'F'};
  put32(b, 36 + data_bytes);
  for (char c : std::string("WAVEfmt ")) b.push_back(uint8_t(c));
  put32(b, 16);
  put16(b, format_tag);
  put16(b, channels);
  put32(b, uint32_t(rate));
  put32(b, uint32_t(rate * channels * bits / 8));
  put16(b, channels * bits / 8);
  put16(b, bits);
  for (char c : std::string("data")) b.push_back(uint8_t(c));
  put32(b, data_bytes);
  for (int s : samples) bits == 8 ? b.push_back(uint8_t(s)) : put16(b, s);
  return b;
}

}  // namespace st::test
