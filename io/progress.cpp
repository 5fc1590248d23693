#include "io/progress.h"

#include <unistd.h>

namespace st {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) bytes /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

Progress::Progress(std::string label, int64_t total, FILE* out, bool quiet)
    : label_(std::move(label)), total_(total), out_(out), quiet_(quiet),
      terminal_(isatty(fileno(out))), start_(Clock::now()), last_print_(start_) {}

void Progress::advance(int64_t bytes) {
  done_ += bytes;
  // A terminal redraws often; a log gets a line every 5 s at most.
  auto interval = terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  if (Clock::now() - last_print_ >= interval) print(false);
}

void Progress::finish() { print(true); }

void Progress::print(bool final) {
  if (quiet_) return;
  auto now = Clock::now();
  last_print_ = now;
  double seconds = std::chrono::duration<double>(now - start_).count();
  double rate = seconds > 0 ? done_ / seconds : 0;
  std::string line = label_ + ": " + human_bytes(double(done_));
  if (total_ > 0) {
    char part[96];
    std::snprintf(part, sizeof part, " of %s (%.1f%%)", human_bytes(double(total_)).c_str(),
                  100.0 * double(done_) / double(total_));
    line += part;
  }
  line += ", " + human_bytes(rate) + "/s";
  if (final) {
    char part[48];
    std::snprintf(part, sizeof part, ", done in %.1f s", seconds);
    line += part;
  } else if (total_ > 0 && rate > 0) {
    char part[48];
    std::snprintf(part, sizeof part, ", %.0f s left", double(total_ - done_) / rate);
    line += part;
  }
  if (terminal_)
    std::fprintf(out_, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else
    std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

}  // namespace st
