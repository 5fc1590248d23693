// MPI checks.  Communicators must use MPI_ERRORS_RETURN for the codes to reach
// us (comm/ sets it on MPI_COMM_WORLD at start-up).
#pragma once

#include <mpi.h>

#include <string>

#include "core/check.h"

namespace st {
std::string mpi_error_string(int code);
}

#define MPI_CHECK(call)                                                    \
  do {                                                                     \
    int st_err_ = (call);                                                  \
    if (st_err_ != MPI_SUCCESS)                                            \
      ::st::fail_at(__FILE__, __LINE__, #call, ::st::mpi_error_string(st_err_)); \
  } while (0)
