// Progress of a long conversion: bytes done, rate and time left.
//
// On a terminal one line is redrawn in place a few times a second; when the
// output is a file or a pipe (a batch job's log) a plain line is written every
// few seconds instead, so that the log stays readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace st {

class Progress {
 public:
  // total: the bytes expected (0 when unknown); out: where lines go (stderr
  // by default); quiet: print nothing.
  Progress(std::string label, int64_t total, FILE* out = stderr, bool quiet = false);
  // Adds bytes done; prints when it is time to.
  void advance(int64_t bytes);
  // Prints the final line.
  void finish();

 private:
  void print(bool final);

  using Clock = std::chrono::steady_clock;
  std::string label_;
  int64_t total_, done_ = 0;
  FILE* out_;
  bool quiet_, terminal_;
  Clock::time_point start_, last_print_;
};

// "12.3 MiB" and the like.
std::string human_bytes(double bytes);

}  // namespace st
