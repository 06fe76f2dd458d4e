// Password hashing with Argon2id (libsodium crypto_pwhash).
//
// Hashes are self-describing PHC strings ("$argon2id$v=19$m=...,t=...,p=1$
// salt$hash") that carry their salt and cost, so they can be stored as is and
// verified later even after the default cost changes. Hashing is deliberately
// slow and memory-hungry: call it off latency-sensitive threads.
// All functions are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace agora::crypto {

// The cost of one hash: Argon2id passes (`ops_limit`) and memory in bytes
// (`mem_limit`).
struct PasswordHashParams {
  uint64_t ops_limit = 0;
  size_t mem_limit = 0;

  // libsodium's interactive preset (2 passes, 64 MiB): for logins.
  static PasswordHashParams Interactive();
  // The cheapest valid cost (1 pass, 8 KiB): for tests only.
  static PasswordHashParams ForTest();
};

// Returns the encoded "$argon2id$..." hash of `password` with a fresh random
// salt, or
//   kInternal  the hash could not be computed (out of memory, or a cost
//              outside libsodium's limits).
[[nodiscard]] Result<std::string> HashPassword(std::string_view password,
                                               const PasswordHashParams& params);

// Returns whether `password` matches `encoded_hash` (as made by
// HashPassword). A malformed hash is a mismatch.
bool VerifyPassword(std::string_view encoded_hash, std::string_view password);

// Returns whether `encoded` was made with a cost other than `params` (or is
// not a valid Argon2id hash), so should be recomputed at the next login.
bool PasswordNeedsRehash(std::string_view encoded, const PasswordHashParams& params);

// Returns the hash of a random password, computed once per distinct `params`
// and cached for the process. Verify a login attempt for an unknown user
// against it, so that such attempts take as long as ones for a known user.
// Returns an empty string only if hashing failed (out of memory).
std::string DummyPasswordHash(const PasswordHashParams& params);

}  // namespace agora::crypto
