// Cryptographically secure random bytes and tokens, from libsodium.
//
// Use these for keys, nonces, session ids and one-time tokens; never
// std::rand or <random> engines. All functions are thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace agora::crypto {

// Returns `n` random bytes.
std::string RandomBytes(size_t n);

// Returns `bytes` random bytes as base64url without padding (32 bytes give a
// 43-character token), suitable for URLs, cookies and headers.
std::string RandomToken(size_t bytes = 32);

// Initialises libsodium once; every function in agora::crypto that uses
// libsodium calls it. Aborts if libsodium cannot start (no entropy source).
void EnsureSodiumInitialized();

}  // namespace agora::crypto
