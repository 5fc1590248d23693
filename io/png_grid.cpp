#include "io/png_grid.h"

#include <png.h>

#include <cmath>
#include <filesystem>

#include "core/check.h"
#include "io/atomic_file.h"

namespace st {

int64_t square_grid_cols(int64_t count) {
  return std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(count)))));
}

void write_png_grid(const std::string& path, const std::vector<std::vector<uint8_t>>& images,
                    const ImageShape& shape, int64_t grid_cols, int64_t gap, int64_t scale) {
  ST_CHECK(!images.empty(), path + ": no images to write");
  ST_CHECK(shape.channels == 1 || shape.channels == 3,
           path + ": images of " + std::to_string(shape.channels) +
               " channels cannot be written as PNG (1: grey, 3: RGB)");
  ST_CHECK(shape.rows > 0 && shape.cols > 0 && gap >= 0 && scale >= 1 && grid_cols >= 0,
           path + ": impossible image or grid shape");
  for (const auto& image : images)
    ST_CHECK(int64_t(image.size()) == shape.bytes(),
             path + ": an image holds " + std::to_string(image.size()) + " bytes, not rows x "
                 "cols x channels = " + std::to_string(shape.bytes()));
  const int64_t count = int64_t(images.size());
  const int64_t across = grid_cols > 0 ? grid_cols : square_grid_cols(count);
  const int64_t down = (count + across - 1) / across;
  const int64_t cell_h = shape.rows * scale, cell_w = shape.cols * scale, c = shape.channels;
  const int64_t height = down * cell_h + (down + 1) * gap, width = across * cell_w + (across + 1) * gap;
  ST_CHECK(height <= 1 << 24 && width <= 1 << 24, path + ": the grid is too large for a PNG");
  std::vector<uint8_t> pixels(height * width * c, 128);  // the gaps: mid grey
  for (int64_t k = 0; k < count; ++k) {
    const int64_t top = gap + k / across * (cell_h + gap), left = gap + k % across * (cell_w + gap);
    for (int64_t y = 0; y < cell_h; ++y)
      for (int64_t x = 0; x < cell_w; ++x)
        for (int64_t ch = 0; ch < c; ++ch)
          pixels[((top + y) * width + left + x) * c + ch] =
              images[k][((y / scale) * shape.cols + x / scale) * c + ch];
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = png_uint_32(width);
  image.height = png_uint_32(height);
  image.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const std::string temp = path + ".tmp";
  if (!png_image_write_to_file(&image, temp.c_str(), 0, pixels.data(), 0, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    ST_FAIL(path + ": writing the PNG failed: " + message);
  }
  replace_file_durably(temp, path);
}

}  // namespace st
