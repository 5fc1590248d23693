// HDF5 checks.  HDF5 reports failure by a negative return value and keeps the
// reason on its error stack; we read that stack into the message instead of
// letting HDF5 print it to stderr on its own.
#pragma once

#include <hdf5.h>

#include <string>

#include "core/check.h"

namespace st {
// Turns off HDF5's automatic printing of errors (call once at start-up; the
// check below also calls it).
void hdf5_silence_errors();
// The innermost messages of the current HDF5 error stack, joined.
std::string hdf5_error_string();
// Returns value when it is non-negative, else throws with HDF5's message.
hid_t hdf5_checked(hid_t value, const char* file, int line, const char* expr);
}  // namespace st

// Evaluates to the call's (non-negative) result, so it wraps H5Fopen and
// friends as well as calls that return herr_t.
#define HDF5_CHECK(call) ::st::hdf5_checked((call), __FILE__, __LINE__, #call)
