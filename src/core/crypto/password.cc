#include "core/crypto/password.h"

#include <sodium.h>

#include <map>
#include <mutex>
#include <utility>

#include "core/crypto/random.h"

namespace agora::crypto {

PasswordHashParams PasswordHashParams::Interactive() {
  return {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE, crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
}

PasswordHashParams PasswordHashParams::ForTest() {
  return {crypto_pwhash_argon2id_OPSLIMIT_MIN, crypto_pwhash_argon2id_MEMLIMIT_MIN};
}

Result<std::string> HashPassword(std::string_view password, const PasswordHashParams& params) {
  EnsureSodiumInitialized();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), params.ops_limit,
                            params.mem_limit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Error::Internal("password hashing failed");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view encoded_hash, std::string_view password) {
  EnsureSodiumInitialized();
  // libsodium reads the hash as a C string: refuse embedded NULs and
  // anything that cannot fit.
  if (encoded_hash.empty() || encoded_hash.size() >= crypto_pwhash_STRBYTES ||
      encoded_hash.find('\0') != std::string_view::npos) {
    return false;
  }
  const std::string hash(encoded_hash);
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool PasswordNeedsRehash(std::string_view encoded, const PasswordHashParams& params) {
  EnsureSodiumInitialized();
  if (encoded.empty() || encoded.size() >= crypto_pwhash_STRBYTES ||
      encoded.find('\0') != std::string_view::npos) {
    return true;
  }
  const std::string hash(encoded);
  // 0: same algorithm and cost; 1: different cost; -1: not an Argon2id hash.
  return crypto_pwhash_str_needs_rehash(hash.c_str(), params.ops_limit, params.mem_limit) != 0;
}

std::string DummyPasswordHash(const PasswordHashParams& params) {
  static std::mutex mu;
  static std::map<std::pair<uint64_t, size_t>, std::string> cache;  // GUARDED_BY(mu)
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(params.ops_limit, params.mem_limit);
  if (auto it = cache.find(key); it != cache.end()) {
    return it->second;
  }
  auto hash = HashPassword(RandomToken(32), params);
  if (!hash.ok()) {
    return {};  // Not cached: the next call tries again.
  }
  cache.emplace(key, *hash);
  return std::move(hash).value();
}

}  // namespace agora::crypto
