#include "core/log.h"

#include <cstdarg>
#include <cstdio>

namespace st {

static int g_rank = 0;

void set_log_rank(int rank) { g_rank = rank; }
int log_rank() { return g_rank; }

void log(const char* fmt, ...) {
  if (g_rank != 0) return;
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stdout, fmt, args);
  va_end(args);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void log_all(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "[rank %d] ", g_rank);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace st
