// An HDF5 identifier that closes itself, so that an error thrown halfway
// through reading or writing a file never leaves the file open (an open
// temporary file could not be removed cleanly).
#pragma once

#include <hdf5.h>

namespace st {

struct H5Handle {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;

  H5Handle() = default;
  H5Handle(hid_t id, herr_t (*close)(hid_t)) : id(id), close(close) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& other) noexcept : id(other.id), close(other.close) { other.id = -1; }
  H5Handle& operator=(H5Handle&& other) noexcept {
    reset();
    id = other.id, close = other.close;
    other.id = -1;
    return *this;
  }
  ~H5Handle() { reset(); }

  void reset() {
    if (id >= 0 && close) close(id);
    id = -1;
  }
  operator hid_t() const { return id; }
};

}  // namespace st
