// The message of the st::Error a call throws, for tests of error paths.
#pragma once

#include <string>

#include "core/check.h"

namespace st::test {

// "" when the call throws nothing.
template <class F>
std::string error_of(F&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace st::test
