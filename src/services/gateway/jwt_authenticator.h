// The gateway's bearer-token check: an Ed25519 JWT from identity's key ring,
// with issuer, audience, expiry and not-before checked.
//
// Verified tokens are cached until they expire (a signature check costs more
// than a whole request), in shards to keep lock contention low; a shard that
// fills up is cleared. Thread-safe.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"
#include "core/crypto/jws.h"
#include "core/http/app.h"

namespace agora::gateway {

class JwtAuthenticator final : public http::Authenticator {
 public:
  JwtAuthenticator(std::shared_ptr<const crypto::KeyRing> keys, std::string issuer, std::string audience,
                   const Clock& clock, size_t cache_capacity = 65536);

  Result<http::Principal> Authenticate(std::string_view token) override;

 private:
  static constexpr size_t kShards = 16;
  // Lets the cache be searched with a string_view (no copy of the token).
  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, http::Principal, TokenHash, std::equal_to<>> entries;  // GUARDED_BY(mu)
  };
  Result<http::Principal> Verify(std::string_view token) const;

  std::shared_ptr<const crypto::KeyRing> keys_;
  std::string issuer_;
  std::string audience_;
  const Clock& clock_;
  size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace agora::gateway
