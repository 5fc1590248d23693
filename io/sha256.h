// SHA-256 of source files, recorded in a dataset so that a user can tell
// which bytes it was made from (OpenSSL's libcrypto, which HDF5 already
// pulls in on Debian).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace st {

// An incremental hash: feed the bytes as they are read, then take the digest.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t bytes);
  // The digest as 64 lowercase hex digits; the hash cannot be fed after.
  std::string hex();

 private:
  void* ctx_;  // EVP_MD_CTX, kept opaque so that callers need no OpenSSL header
};

// The SHA-256 of a whole file, read in 1 MiB pieces.
std::string sha256_file(const std::string& path);

}  // namespace st
