#include "core/check.h"

namespace st {

void fail_at(const char* file, int line, const std::string& what,
             const std::string& detail) {
  throw Error(std::string(file) + ":" + std::to_string(line) + ": " + what +
              ": " + detail);
}

}  // namespace st
