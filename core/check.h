// Error checks shared by every layer of the system.
//
// A failed call throws st::Error whose message names the file, the line, the
// expression and the library's own description, so that a failure deep in a
// rank of a multi-node job still says exactly what went wrong.  Each library
// has its own small header (cuda_check.h, mpi_check.h, nccl_check.h,
// hdf5_check.h) so that code only pulls in the headers it already uses.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace st {

struct Error : std::runtime_error {
  explicit Error(const std::string& message, std::string where = "")
      : std::runtime_error(message), where(std::move(where)) {}
  std::string where;  // "file:line: expression" of the check that failed
};

// A failed library call: throws st::Error("file:line: call: library message"),
// the location in the message itself since it is what one debugs by.
[[noreturn]] void fail_at(const char* file, int line, const std::string& what,
                          const std::string& detail);
// A failed check of our own (usually bad input): the message is for the
// user and stands alone; the location goes to Error::where.
[[noreturn]] void fail_check(const char* file, int line, const char* condition,
                             const std::string& message);

}  // namespace st

// Checks a condition of our own (bad input, broken invariant); the message
// must say what is wrong in the user's terms.
#define ST_CHECK(cond, msg)                                              \
  do {                                                                   \
    if (!(cond)) ::st::fail_check(__FILE__, __LINE__, #cond, (msg));     \
  } while (0)

// Unconditional failure with a message.
#define ST_FAIL(msg) ::st::fail_check(__FILE__, __LINE__, "failure", (msg))
