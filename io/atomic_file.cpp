#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/check.h"

namespace st {

static void fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  ST_CHECK(fd >= 0, path + ": cannot open to flush: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  ST_CHECK(rc == 0, path + ": flush to disk failed: " + std::strerror(err));
}

void replace_file_durably(const std::string& temp, const std::string& final_path) {
  try {
    fsync_path(temp, O_RDONLY);
    ST_CHECK(std::rename(temp.c_str(), final_path.c_str()) == 0,
             final_path + ": cannot rename " + temp + " into place: " + std::strerror(errno));
  } catch (const Error&) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
  std::string folder = std::filesystem::path(final_path).parent_path().string();
  fsync_path(folder.empty() ? "." : folder, O_RDONLY | O_DIRECTORY);
}

}  // namespace st
