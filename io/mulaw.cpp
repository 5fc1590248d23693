#include "io/mulaw.h"

#include <algorithm>
#include <cmath>

namespace st {

constexpr double kMu = 255.0;

uint8_t mulaw_encode(float sample) {
  double x = std::clamp(double(sample), -1.0, 1.0);
  double y = std::copysign(std::log1p(kMu * std::fabs(x)) / std::log1p(kMu), x);
  return static_cast<uint8_t>(std::lround((y + 1) / 2 * 255));
}

float mulaw_decode(uint8_t byte) {
  double y = byte / 255.0 * 2 - 1;
  return float(std::copysign((std::pow(1 + kMu, std::fabs(y)) - 1) / kMu, y));
}

}  // namespace st
