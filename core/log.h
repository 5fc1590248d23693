// A printf-style logger.  By default only rank 0 prints, so that a job of 64
// ranks prints one progress line, not 64; log_all() prints on every rank with
// a "[rank r]" prefix, for errors and per-rank figures.
#pragma once

namespace st {

// Set once by the runtime after MPI start-up; 0 for a single process.
void set_log_rank(int rank);
int log_rank();

void log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_all(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace st
