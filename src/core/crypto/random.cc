#include "core/crypto/random.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

#include "core/crypto/encoding.h"

namespace agora::crypto {

void EnsureSodiumInitialized() {
  // sodium_init() is itself thread-safe and idempotent; the static only saves
  // the repeated call.
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      std::fputs("agora: libsodium failed to initialise\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

std::string RandomBytes(size_t n) {
  EnsureSodiumInitialized();
  std::string out(n, '\0');
  if (n > 0) {
    randombytes_buf(out.data(), n);
  }
  return out;
}

std::string RandomToken(size_t bytes) { return Base64UrlEncode(RandomBytes(bytes)); }

}  // namespace agora::crypto
