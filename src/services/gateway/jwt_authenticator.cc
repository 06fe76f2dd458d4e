#include "services/gateway/jwt_authenticator.h"

#include <functional>

#include <boost/json.hpp>

namespace agora::gateway {

JwtAuthenticator::JwtAuthenticator(std::shared_ptr<const crypto::KeyRing> keys, std::string issuer,
                                   std::string audience, const Clock& clock, size_t cache_capacity)
    : keys_(std::move(keys)),
      issuer_(std::move(issuer)),
      audience_(std::move(audience)),
      clock_(clock),
      shard_capacity_(std::max<size_t>(1, cache_capacity / kShards)) {}

namespace {
// Clients learn only whether to refresh; which check failed stays here.
Error NotValid() { return Error::Unauthenticated("The access token is not valid"); }
Error Expired() { return Error::Unauthenticated("The access token has expired").WithType("token-expired"); }
}  // namespace

Result<http::Principal> JwtAuthenticator::Verify(std::string_view token) const {
  auto verified = keys_->VerifyJwt(token);
  if (!verified.ok()) return NotValid();
  boost::json::object& claims = *verified;
  if (Status s = crypto::CheckRegisteredClaims(claims, clock_.NowSeconds(), issuer_, audience_); !s.ok()) {
    return s.error().message == "token has expired" ? Expired() : NotValid();
  }
  http::Principal p;
  const auto* sub = claims.if_contains("sub");
  const auto* jti = claims.if_contains("jti");
  const auto* roles = claims.if_contains("roles");
  const auto* exp = claims.if_contains("exp");
  if (sub == nullptr || !sub->is_string() || roles == nullptr || !roles->is_array() || exp == nullptr ||
      !exp->is_int64()) {
    return NotValid();
  }
  p.user_id = std::string(sub->as_string());
  if (jti != nullptr && jti->is_string()) p.token_id = std::string(jti->as_string());
  for (const auto& r : roles->as_array()) {
    if (r.is_string()) p.roles.emplace_back(r.as_string());
  }
  p.expires_at = exp->as_int64();
  return p;
}

Result<http::Principal> JwtAuthenticator::Authenticate(std::string_view token) {
  if (token.size() > 4096) return NotValid();
  Shard& shard = shards_[std::hash<std::string_view>{}(token) % kShards];
  const int64_t now = clock_.NowSeconds();
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(token);
    if (it != shard.entries.end()) {
      if (it->second.expires_at > now) return it->second;
      shard.entries.erase(it);
      return Expired();
    }
  }
  AGORA_ASSIGN_OR_RETURN(http::Principal p, Verify(token));
  std::lock_guard lock(shard.mu);
  if (shard.entries.size() >= shard_capacity_) shard.entries.clear();
  shard.entries.emplace(std::string(token), p);
  return p;
}

}  // namespace agora::gateway
