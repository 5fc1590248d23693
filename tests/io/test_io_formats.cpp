// Input formats: IDX (plain and gzip), WAV, mu-law, SHA-256, separators.
#include <gtest/gtest.h>

#include <cmath>

#include "io/convert.h"
#include "io/idx.h"
#include "io/mulaw.h"
#include "io/sha256.h"
#include "io/wav.h"
#include "io_test_files.h"

using namespace st;
using namespace st::test;

TEST(Idx, ReadsPlainAndGzipFilesAlike) {
  TempDir dir;
  std::vector<uint8_t> data = random_bytes(5 * 4 * 3, 1);
  std::vector<uint8_t> file = idx_bytes({5, 4, 3}, data);
  write_bytes(dir / "plain.idx", file);
  write_gzip(dir / "packed.idx.gz", file);
  for (const char* name : {"plain.idx", "packed.idx.gz"}) {
    IdxArray array = read_idx(dir / name);
    EXPECT_EQ(array.dims, (std::vector<int64_t>{5, 4, 3})) << name;
    EXPECT_EQ(array.data, data) << name;
    EXPECT_EQ(idx_example_shape(array), (std::vector<int64_t>{4, 3, 1})) << name;
  }
}

TEST(Idx, RejectsAWrongMagicNumber) {
  TempDir dir;
  std::vector<uint8_t> file = idx_bytes({2, 2}, random_bytes(4, 2));
  file[0] = 0x1f;
  write_bytes(dir / "bad.idx", file);
  std::string message = error_of([&] { read_idx(dir / "bad.idx"); });
  EXPECT_NE(message.find(dir / "bad.idx"), std::string::npos) << message;
  EXPECT_NE(message.find("wrong magic number"), std::string::npos) << message;
}

TEST(Idx, RejectsASizeThatDisagreesWithTheHeader) {
  TempDir dir;
  std::vector<uint8_t> data = random_bytes(10 * 6, 3);
  write_bytes(dir / "short.idx", idx_bytes({11, 6}, data));  // one example missing
  write_bytes(dir / "long.idx", idx_bytes({9, 6}, data));    // one too many
  for (const char* name : {"short.idx", "long.idx"}) {
    std::string message = error_of([&] { read_idx(dir / name); });
    EXPECT_NE(message.find(dir / name), std::string::npos) << message;
    EXPECT_NE(message.find("size disagrees with the IDX header"), std::string::npos) << message;
  }
}

TEST(Idx, RejectsATruncatedGzip) {
  TempDir dir;
  write_gzip(dir / "whole.gz", idx_bytes({100, 50}, random_bytes(5000, 4)));
  std::vector<uint8_t> packed = read_bytes(dir / "whole.gz");
  packed.resize(packed.size() / 2);
  write_bytes(dir / "cut.gz", packed);
  std::string message = error_of([&] { read_idx(dir / "cut.gz"); });
  EXPECT_NE(message.find(dir / "cut.gz"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated gzip"), std::string::npos) << message;
}

TEST(Idx, RejectsAMissingFile) {
  TempDir dir;
  std::string message = error_of([&] { read_idx(dir / "absent.idx"); });
  EXPECT_NE(message.find("absent.idx: cannot open"), std::string::npos) << message;
}

TEST(Wav, Reads16BitStereoMixedDown) {
  TempDir dir;
  std::vector<int> samples = {1000, -3000, 32767, 32767, -32768, 0, 5, 7};
  write_bytes(dir / "a.wav", wav_bytes(22050, 2, 16, samples));
  WavAudio audio = read_wav(dir / "a.wav");
  EXPECT_EQ(audio.sample_rate, 22050);
  EXPECT_EQ(audio.channels, 2);
  ASSERT_EQ(audio.mono.size(), 4u);
  for (size_t f = 0; f < 4; ++f)
    EXPECT_FLOAT_EQ(audio.mono[f], (samples[2 * f] + samples[2 * f + 1]) / 2 / 32768.0f) << f;
}

TEST(Wav, Reads8BitMono) {
  TempDir dir;
  std::vector<int> samples = {0, 128, 255, 64, 200};
  write_bytes(dir / "a.wav", wav_bytes(8000, 1, 8, samples));
  WavAudio audio = read_wav(dir / "a.wav");
  ASSERT_EQ(audio.mono.size(), samples.size());
  for (size_t i = 0; i < samples.size(); ++i) EXPECT_FLOAT_EQ(audio.mono[i], (samples[i] - 128) / 128.0f);
}

TEST(Wav, RejectsFilesThatAreNotPcm) {
  TempDir dir;
  write_bytes(dir / "float.wav", wav_bytes(8000, 1, 16, {1, 2, 3, 4}, 3));
  std::string message = error_of([&] { read_wav(dir / "float.wav"); });
  EXPECT_NE(message.find(dir / "float.wav"), std::string::npos) << message;
  EXPECT_NE(message.find("not PCM"), std::string::npos) << message;
  write_bytes(dir / "text.wav", random_bytes(100, 5));
  message = error_of([&] { read_wav(dir / "text.wav"); });
  EXPECT_NE(message.find("not a WAV file"), std::string::npos) << message;
}

TEST(Wav, RejectsAFileCutShort) {
  TempDir dir;
  std::vector<uint8_t> file = wav_bytes(8000, 1, 16, std::vector<int>(100, 1234));
  file.resize(file.size() - 51);
  write_bytes(dir / "cut.wav", file);
  std::string message = error_of([&] { read_wav(dir / "cut.wav"); });
  EXPECT_NE(message.find(dir / "cut.wav"), std::string::npos) << message;
  EXPECT_NE(message.find("cut short"), std::string::npos) << message;
}

TEST(Wav, ResamplingKeepsASineAtItsFrequency) {
  // 440 Hz at 16 kHz, down to 8 kHz and up to 24 kHz: compared with the sine
  // sampled directly at the new rate (the box filter delays by half an
  // input sample, which the reference accounts for).
  const double freq = 440, pi = std::acos(-1.0);
  std::vector<float> in(16000);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(0.8 * std::sin(2 * pi * freq * i / 16000));
  for (int rate : {8000, 24000}) {
    std::vector<float> out = resample(in, 16000, rate);
    ASSERT_EQ(int64_t(out.size()), resampled_length(16000, 16000, rate));
    double delay = rate < 16000 ? 0.5 / 16000 : 0;
    double worst = 0;
    for (size_t j = 0; j + 1 < out.size(); ++j)
      worst = std::max(worst, std::fabs(out[j] - 0.8 * std::sin(2 * pi * freq * (double(j) / rate + delay))));
    EXPECT_LT(worst, 0.01) << "to " << rate << " Hz";
  }
  EXPECT_EQ(resample(in, 16000, 16000), in);
}

TEST(MuLaw, IsMonotonicAndInvertsWithinOneStep) {
  for (int b = 1; b < 256; ++b) EXPECT_GT(mulaw_decode(uint8_t(b)), mulaw_decode(uint8_t(b - 1)));
  for (int b = 0; b < 256; ++b) EXPECT_EQ(mulaw_encode(mulaw_decode(uint8_t(b))), b);
  EXPECT_EQ(mulaw_encode(-1), 0);
  EXPECT_EQ(mulaw_encode(1), 255);
  // Quantisation is finest near silence: a small sample comes back within 1e-3.
  EXPECT_NEAR(mulaw_decode(mulaw_encode(0.01f)), 0.01f, 1e-3);
}

TEST(Sha256, MatchesTheStandardTestVectorAndFiles) {
  Sha256 hash;
  hash.update("abc", 3);
  // FIPS 180-2, appendix B.1.
  EXPECT_EQ(hash.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir dir;
  std::vector<uint8_t> bytes = random_bytes(3 << 20, 6);
  write_bytes(dir / "f", bytes);
  Sha256 whole;
  whole.update(bytes.data(), bytes.size());
  EXPECT_EQ(sha256_file(dir / "f"), whole.hex());
}

TEST(Separator, UnderstandsCEscapes) {
  EXPECT_EQ(unescape("a\\nb\\t\\x41\\\\"), "a\nb\tA\\");
  EXPECT_EQ(unescape("\\0"), std::string(1, '\0'));
  EXPECT_EQ(unescape("plain"), "plain");
}
