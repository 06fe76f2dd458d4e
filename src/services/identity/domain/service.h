// The identity domain: accounts, passwords, tokens, roles and seller
// onboarding. Handlers call it; it calls IdentityStore, the key ring, the
// mailer and the throttles. Thread-safe (it holds no mutable state of its
// own beyond the throttles).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/crypto/aead.h"
#include "core/crypto/jws.h"
#include "core/crypto/password.h"
#include "core/result.h"
#include "services/identity/domain/store.h"
#include "services/identity/domain/throttle.h"
#include "services/identity/domain/types.h"

namespace agora::identity {

struct IdentityOptions {
  std::string issuer = "http://127.0.0.1:8080";  // `iss` of access tokens
  std::string audience = "agora";                 // `aud` of access tokens
  std::string public_url = "http://127.0.0.1:8080";
  std::chrono::seconds access_ttl{900};
  std::chrono::seconds refresh_ttl{30 * 24 * 3600};
  std::chrono::seconds verify_email_ttl{48 * 3600};
  std::chrono::seconds reset_password_ttl{3600};
  crypto::PasswordHashParams hash_params = crypto::PasswordHashParams::Interactive();
  int login_free_failures_per_account = 5;
  int login_free_failures_per_ip = 20;
};

struct PayoutDetails {
  std::string account_holder;
  std::string iban;
};

class IdentityService {
 public:
  IdentityService(IdentityOptions options, IdentityStore& store, std::shared_ptr<crypto::KeyRing> keys,
                  std::shared_ptr<crypto::Aead> aead, Mailer& mailer, const Clock& clock);

  // Creates a buyer account and mails an email verification token.
  //   kInvalidArgument  bad email, weak password or display name (per field);
  //   kConflict         ("email-taken") the email is registered.
  Result<User> Register(std::string_view email, std::string_view password, std::string_view display_name);

  // Creates an administrator (command line only, never the public API).
  Result<User> CreateAdmin(std::string_view email, std::string_view password, std::string_view display_name);

  // Checks the password and issues tokens. Unknown email and wrong password
  // give the same kUnauthenticated answer in similar time.
  //   kResourceExhausted  too many failures for this account or client; `retry_after` says how long.
  Result<TokenPair> Login(std::string_view email, std::string_view password, std::string_view client_ip,
                          std::chrono::seconds* retry_after = nullptr);

  // Rotates a refresh token. A token used twice revokes its whole family
  // (kUnauthenticated, type "refresh-token-reused").
  Result<TokenPair> Refresh(std::string_view refresh_token);

  // Revokes the session (family) of `refresh_token`. Unknown tokens are ignored.
  Status Logout(std::string_view refresh_token);

  Result<User> GetUser(std::string_view user_id);
  Result<User> UpdateDisplayName(std::string_view user_id, std::string_view display_name);

  // Makes a buyer a seller. kFailedPrecondition ("already-seller") if done before.
  Result<User> OnboardSeller(std::string_view user_id, std::string_view display_name, const PayoutDetails& payout);
  // The decrypted payout details of a seller (for the payments service).
  Result<PayoutDetails> PayoutDetailsOf(const User& user) const;

  Status VerifyEmail(std::string_view token);
  // Mails a fresh verification token, unless the email is verified already.
  Status ResendVerification(std::string_view user_id);
  // Mails a reset token if the account exists; the same answer either way.
  Status ForgotPassword(std::string_view email);
  // Sets a new password with a reset token; ends every session of the user.
  Status ResetPassword(std::string_view token, std::string_view new_password);

  const IdentityOptions& options() const { return options_; }
  const crypto::KeyRing& keys() const { return *keys_; }

 private:
  Result<User> CreateAccount(std::string_view email, std::string_view password, std::string_view display_name,
                             std::vector<std::string> roles);
  Result<TokenPair> IssueTokens(const User& user, std::string family_id);
  std::string AccessToken(const User& user) const;
  Status MailToken(const User& user, OneTimePurpose purpose, const std::string& token);
  OneTimeToken NewOneTimeToken(const User& user, OneTimePurpose purpose, std::string& token_out) const;

  IdentityOptions options_;
  IdentityStore& store_;
  std::shared_ptr<crypto::KeyRing> keys_;
  std::shared_ptr<crypto::Aead> aead_;
  Mailer& mailer_;
  const Clock& clock_;
  LoginThrottle account_throttle_;
  LoginThrottle ip_throttle_;
};

// True when `iban` has a valid country prefix, length and mod-97 checksum.
bool IsValidIban(std::string_view iban);

}  // namespace agora::identity
