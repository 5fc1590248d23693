// The writers of sampled output: PNG grids read back with libpng pixel by
// pixel, WAV files read back with read_wav; bad requests leave no file.
#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <filesystem>

#include "io/png_grid.h"
#include "io/wav.h"
#include "io/wav_writer.h"
#include "io_test_files.h"

using namespace st;
using namespace st::test;

namespace {

struct Png {
  int64_t width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

Png read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&image, path.c_str())) << image.message;
  Png png;
  png.width = image.width, png.height = image.height;
  png.channels = (image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
  image.format = png.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png.pixels.resize(PNG_IMAGE_SIZE(image));
  EXPECT_TRUE(png_image_finish_read(&image, nullptr, png.pixels.data(), 0, nullptr))
      << image.message;
  return png;
}

}  // namespace

TEST(PngGrid, RoundTripsEveryPixelGreyAndRgb) {
  TempDir dir;
  for (int64_t channels : {1, 3}) {
    ImageShape shape{5, 7, channels};
    std::vector<std::vector<uint8_t>> images;
    for (int k = 0; k < 5; ++k) images.push_back(random_bytes(shape.bytes(), 10 * channels + k));
    const int64_t gap = 2, scale = 3, across = 3;  // 5 images: 3 + 2, one empty cell
    std::string path = dir / ("grid" + std::to_string(channels) + ".png");
    write_png_grid(path, images, shape, across, gap, scale);
    Png png = read_png(path);
    ASSERT_EQ(png.channels, channels);
    const int64_t cell_w = shape.cols * scale, cell_h = shape.rows * scale;
    ASSERT_EQ(png.width, across * cell_w + (across + 1) * gap);
    ASSERT_EQ(png.height, 2 * cell_h + 3 * gap);
    for (int64_t k = 0; k < 5; ++k)
      for (int64_t y = 0; y < cell_h; ++y)
        for (int64_t x = 0; x < cell_w; ++x)
          for (int64_t c = 0; c < channels; ++c) {
            int64_t py = gap + k / across * (cell_h + gap) + y;
            int64_t px = gap + k % across * (cell_w + gap) + x;
            ASSERT_EQ(png.pixels[(py * png.width + px) * channels + c],
                      images[k][((y / scale) * shape.cols + x / scale) * channels + c])
                << "image " << k << " pixel " << y << "," << x;
          }
    // The corner, the gaps and the empty sixth cell are mid grey.
    EXPECT_EQ(png.pixels[0], 128);
    EXPECT_EQ(png.pixels.back(), 128);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_EQ(square_grid_cols(16), 4);
  EXPECT_EQ(square_grid_cols(17), 5);
  EXPECT_EQ(square_grid_cols(1), 1);
}

TEST(PngGrid, BadRequestsFailAndLeaveNoFile) {
  TempDir dir;
  std::string path = dir / "out.png";
  ImageShape shape{4, 4, 1};
  std::vector<std::vector<uint8_t>> images = {random_bytes(16, 1)};
  EXPECT_THROW(write_png_grid(path, {}, shape), Error);
  EXPECT_THROW(write_png_grid(path, {random_bytes(15, 1)}, shape), Error);
  EXPECT_THROW(write_png_grid(path, {random_bytes(32, 1)}, ImageShape{4, 4, 2}), Error);
  try {
    write_png_grid(dir / "missing/out.png", images, shape);
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/out.png"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(WavWriter, RoundTripsThroughReadWav) {
  TempDir dir;
  std::vector<float> samples(999);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = float(std::sin(0.05 * i) * 0.9);
  samples[3] = 1.5f, samples[4] = -2.0f;  // clipped
  std::string path = dir / "a.wav";
  write_wav(path, 8000, samples);
  WavAudio audio = read_wav(path);
  EXPECT_EQ(audio.sample_rate, 8000);
  EXPECT_EQ(audio.channels, 1);
  EXPECT_EQ(audio.bits, 16);
  ASSERT_EQ(audio.mono.size(), samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    float expected = std::fmax(-1.0f, std::fmin(1.0f, samples[i]));
    EXPECT_NEAR(audio.mono[i], expected, 1.0 / 16384) << "sample " << i;
  }
  EXPECT_THROW(write_wav(dir / "missing/a.wav", 8000, samples), Error);
  EXPECT_THROW(write_wav(dir / "b.wav", 0, samples), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "b.wav"));
}
