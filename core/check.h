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

namespace st {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws st::Error("file:line: what: detail").
[[noreturn]] void fail_at(const char* file, int line, const std::string& what,
                          const std::string& detail);

}  // namespace st

// Checks a condition of our own (bad input, broken invariant).
#define ST_CHECK(cond, msg)                                              \
  do {                                                                   \
    if (!(cond)) ::st::fail_at(__FILE__, __LINE__, #cond, (msg));        \
  } while (0)

// Unconditional failure with a message.
#define ST_FAIL(msg) ::st::fail_at(__FILE__, __LINE__, "error", (msg))
