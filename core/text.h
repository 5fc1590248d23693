// Number formatting shared by the configuration printers.
#pragma once

#include <string>

namespace st {

// The shortest of %.15g .. %.17g that reads back as exactly x: 0.4 prints
// as "0.4", not "0.40000000000000002", and still round-trips.
std::string format_double(double x);

}  // namespace st
