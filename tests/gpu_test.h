// GPU tests run everywhere and skip, saying why, where no CUDA device exists.
#pragma once

#include <gtest/gtest.h>

#include "kernels/backend.h"

#define ST_REQUIRE_GPU()                                                   \
  do {                                                                     \
    if (!::st::cuda_available())                                           \
      GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped";  \
  } while (0)
