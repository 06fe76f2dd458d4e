// Identity's domain values: users, roles and the tokens that stand for them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace agora::identity {

inline constexpr const char* kRoleBuyer = "buyer";
inline constexpr const char* kRoleSeller = "seller";
inline constexpr const char* kRoleAdmin = "admin";

struct SellerProfile {
  std::string display_name;
  std::string payout_sealed;  // AES-256-GCM sealed payout details (core/crypto/aead.h)
  int64_t onboarded_at_ms = 0;
};

struct User {
  std::string id;     // usr_...
  std::string email;  // normalized
  std::string display_name;
  std::string password_hash;  // Argon2id encoded
  std::vector<std::string> roles;
  std::optional<int64_t> email_verified_at_ms;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<SellerProfile> seller;

  bool HasRole(const std::string& role) const;
};

// A refresh token as stored: only its SHA-256 hash, never the token.
// Tokens of one login form a family; rotation links them.
struct RefreshToken {
  std::string id;  // rt_...
  std::string family_id;
  std::string user_id;
  std::string token_hash;  // hex SHA-256 of the opaque token
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::optional<int64_t> used_at_ms;     // rotated: a second use is theft
  std::optional<int64_t> revoked_at_ms;  // logout, reuse or password reset
};

enum class OneTimePurpose { kVerifyEmail, kResetPassword };
const char* PurposeName(OneTimePurpose p);

// A single-use, expiring token mailed to the user (email verification,
// password reset); stored hashed like refresh tokens.
struct OneTimeToken {
  std::string id;  // ott_...
  std::string user_id;
  OneTimePurpose purpose = OneTimePurpose::kVerifyEmail;
  std::string token_hash;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::optional<int64_t> used_at_ms;
};

// What a successful login or refresh hands to the client.
struct TokenPair {
  std::string access_token;
  int64_t expires_in_s = 0;
  std::string refresh_token;
  int64_t refresh_expires_in_s = 0;
};

}  // namespace agora::identity
