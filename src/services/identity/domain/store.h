// What the identity domain needs from storage. Each method is atomic; the
// SQL implementation is store/sql_store.h, run on SQLite and PostgreSQL.
#pragma once

#include <string_view>

#include "core/events/events.h"
#include "core/result.h"
#include "services/identity/domain/types.h"

namespace agora::identity {

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;

  // Inserts `user`, the optional email verification token and `event` (to the
  // outbox). kConflict with type "email-taken" if the email is registered.
  virtual Status CreateUser(const User& user, const OneTimeToken* verification, const events::Event& event) = 0;
  // kNotFound when there is no such user.
  virtual Result<User> FindUserByEmail(std::string_view email) = 0;
  virtual Result<User> FindUserById(std::string_view id) = 0;
  virtual Status UpdateDisplayName(std::string_view user_id, std::string_view display_name, int64_t now_ms) = 0;
  virtual Status UpdatePasswordHash(std::string_view user_id, std::string_view hash, int64_t now_ms) = 0;
  // Adds the seller role and profile and appends `event`.
  // kFailedPrecondition ("already-seller") if the user is a seller already.
  virtual Result<User> OnboardSeller(std::string_view user_id, const SellerProfile& profile,
                                     const events::Event& event) = 0;

  virtual Status InsertRefreshToken(const RefreshToken& token) = 0;
  // Returns the token with `hash` as it was before the call, and marks it used
  // if it was neither used, revoked nor expired. kNotFound if unknown.
  virtual Result<RefreshToken> ConsumeRefreshToken(std::string_view hash, int64_t now_ms) = 0;
  virtual Result<RefreshToken> FindRefreshToken(std::string_view hash) = 0;
  virtual Status RevokeFamily(std::string_view family_id, int64_t now_ms) = 0;

  virtual Status InsertOneTimeToken(const OneTimeToken& token) = 0;
  // Consumes an unused, unexpired email verification token and marks its
  // user's email verified. Returns the user id; kInvalidArgument otherwise.
  virtual Result<std::string> VerifyEmailWithToken(std::string_view hash, int64_t now_ms) = 0;
  // Consumes an unused, unexpired reset token, sets the new password hash and
  // revokes every refresh token of the user. Returns the user id;
  // kInvalidArgument otherwise.
  virtual Result<std::string> ResetPasswordWithToken(std::string_view hash, std::string_view new_password_hash,
                                                     int64_t now_ms) = 0;
};

// Where mails go. The development mailbox writes files; the notification
// service replaces it later.
struct Mail {
  std::string to;
  std::string subject;
  std::string text;
  std::string purpose;  // "verify_email", "reset_password"
  std::string token;    // the single-use token the mail carries
  std::string link;
};

class Mailer {
 public:
  virtual ~Mailer() = default;
  virtual Status Send(const Mail& mail) = 0;
};

}  // namespace agora::identity
