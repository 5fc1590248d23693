// Writing a grid of small images (model samples) as one PNG through libpng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace st {

struct ImageShape {
  int64_t rows = 0, cols = 0, channels = 0;  // channels: 1 grey, 3 RGB
  int64_t bytes() const { return rows * cols * channels; }
};

// Writes the images (each rows x cols x channels bytes, row-major, channels
// last) side by side in `grid_cols` columns (0: as square as possible),
// `gap` pixels of mid grey between them and around the edge, every pixel
// enlarged to scale x scale.  Written to "<path>.tmp", then renamed: a
// failure leaves no file and an existing <path> untouched.  Throws st::Error
// naming the file or the problem (no images, a wrong size, channels other
// than 1 or 3, a folder that cannot be written).
void write_png_grid(const std::string& path, const std::vector<std::vector<uint8_t>>& images,
                    const ImageShape& shape, int64_t grid_cols = 0, int64_t gap = 2,
                    int64_t scale = 1);

// The grid's columns for `count` images when grid_cols is 0.
int64_t square_grid_cols(int64_t count);

}  // namespace st
