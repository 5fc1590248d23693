#include "core/hdf5_check.h"

namespace st {

void hdf5_silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

static herr_t collect(unsigned depth, const H5E_error2_t* err, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (depth > 0) *text += "; ";
  *text += err->desc ? err->desc : "?";
  if (err->func_name) *text += std::string(" (in ") + err->func_name + ")";
  return 0;
}

std::string hdf5_error_string() {
  std::string text;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &text);
  return text.empty() ? "HDF5 call failed" : text;
}

hid_t hdf5_checked(hid_t value, const char* file, int line, const char* expr) {
  if (value >= 0) return value;
  std::string message = hdf5_error_string();
  H5Eclear2(H5E_DEFAULT);
  fail_at(file, line, expr, message);
}

}  // namespace st
