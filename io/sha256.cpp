#include "io/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/check.h"

namespace st {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  ST_CHECK(ctx_ != nullptr, "out of memory for a SHA-256 context");
  ST_CHECK(EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) == 1,
           "OpenSSL could not start a SHA-256 digest");
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(const void* data, size_t bytes) {
  ST_CHECK(EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, bytes) == 1,
           "OpenSSL SHA-256 update failed");
}

std::string Sha256::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ST_CHECK(EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &length) == 1,
           "OpenSSL SHA-256 final failed");
  static const char* digits = "0123456789abcdef";
  std::string text;
  for (unsigned int i = 0; i < length; ++i) {
    text += digits[digest[i] >> 4];
    text += digits[digest[i] & 15];
  }
  return text;
}

std::string sha256_file(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  ST_CHECK(file != nullptr, path + ": cannot open: " + std::strerror(errno));
  Sha256 hash;
  std::vector<char> block(1 << 20);
  size_t got;
  while ((got = std::fread(block.data(), 1, block.size(), file)) > 0) hash.update(block.data(), got);
  bool failed = std::ferror(file);
  std::fclose(file);
  ST_CHECK(!failed, path + ": read error");
  return hash.hex();
}

}  // namespace st
