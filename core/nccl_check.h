// NCCL checks.  ncclInProgress is not an error for non-blocking communicators.
#pragma once

#include <nccl.h>

#include "core/check.h"

#define NCCL_CHECK(call)                                                   \
  do {                                                                     \
    ncclResult_t st_err_ = (call);                                         \
    if (st_err_ != ncclSuccess && st_err_ != ncclInProgress)               \
      ::st::fail_at(__FILE__, __LINE__, #call, ncclGetErrorString(st_err_)); \
  } while (0)
