#include "io/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace st {

// Closes the gzip handle however the read ends.
struct GzFile {
  gzFile file;
  ~GzFile() { if (file) gzclose(file); }
};

// Reads up to `bytes` bytes; fails on a gzip error (truncated or corrupt).
static size_t read_some(GzFile& gz, const std::string& path, uint8_t* out, size_t bytes) {
  size_t done = 0;
  while (done < bytes) {
    int want = static_cast<int>(std::min<size_t>(bytes - done, 1 << 20));
    int got = gzread(gz.file, out + done, want);
    int code = Z_OK;
    const char* message = gzerror(gz.file, &code);
    if (code == Z_BUF_ERROR)
      ST_FAIL(path + ": truncated gzip file (the compressed data ends early)");
    if (code != Z_OK && code != Z_STREAM_END)
      ST_FAIL(path + ": corrupt gzip data: " + message);
    if (got <= 0) break;
    done += got;
  }
  return done;
}

IdxArray read_idx(const std::string& path) {
  errno = 0;
  GzFile gz{gzopen(path.c_str(), "rb")};
  ST_CHECK(gz.file != nullptr, path + ": cannot open: " + std::strerror(errno ? errno : ENOENT));
  uint8_t head[4];
  ST_CHECK(read_some(gz, path, head, 4) == 4, path + ": too short for an IDX header");
  ST_CHECK(head[0] == 0 && head[1] == 0 && head[3] >= 1,
           path + ": wrong magic number (not an IDX file)");
  ST_CHECK(head[2] == 0x08, path + ": IDX type code " + std::to_string(head[2]) +
                                " is not unsigned bytes (0x08), the only type a byte dataset holds");
  IdxArray array;
  int64_t expected = 1;
  for (int d = 0; d < head[3]; ++d) {
    uint8_t be[4];
    ST_CHECK(read_some(gz, path, be, 4) == 4, path + ": IDX header cut short");
    int64_t dim = (int64_t(be[0]) << 24) | (be[1] << 16) | (be[2] << 8) | be[3];
    array.dims.push_back(dim);
    expected *= dim;
  }
  // Read in pieces rather than trusting the header with one allocation: a
  // damaged header must give an error, not an attempt at a huge buffer.
  std::vector<uint8_t> block(1 << 20);
  size_t got;
  while ((got = read_some(gz, path, block.data(), block.size())) > 0) {
    array.data.insert(array.data.end(), block.begin(), block.begin() + got);
    if (int64_t(array.data.size()) > expected) break;
  }
  ST_CHECK(int64_t(array.data.size()) == expected,
           path + ": size disagrees with the IDX header: it promises " + std::to_string(expected) +
               " data bytes, the file holds " +
               (int64_t(array.data.size()) > expected ? "more" : std::to_string(array.data.size())));
  return array;
}

std::vector<int64_t> idx_example_shape(const IdxArray& array) {
  std::vector<int64_t> shape;
  for (size_t d = 1; d < array.dims.size(); ++d) shape.push_back(array.dims[d]);
  if (array.dims.size() == 3) shape.push_back(1);
  return shape;
}

}  // namespace st
