#include "core/check.h"

namespace st {

void fail_at(const char* file, int line, const std::string& what,
             const std::string& detail) {
  throw Error(std::string(file) + ":" + std::to_string(line) + ": " + what +
              ": " + detail);
}

void fail_check(const char* file, int line, const char* condition, const std::string& message) {
  throw Error(message, std::string(file) + ":" + std::to_string(line) + ": " + condition);
}

}  // namespace st
