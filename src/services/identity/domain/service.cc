#include "services/identity/domain/service.h"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/crypto/hash.h"
#include "core/crypto/random.h"
#include "core/id.h"
#include "services/identity/domain/policy.h"
#include "services/identity/events.h"

namespace agora::identity {
namespace {

std::string TokenHash(std::string_view token) { return crypto::Sha256Hex(token); }

int64_t Millis(std::chrono::seconds s) { return std::chrono::duration_cast<std::chrono::milliseconds>(s).count(); }

Error InvalidCredentials() {
  return Error::Unauthenticated("The email or password is incorrect").WithType("invalid-credentials");
}

Error InvalidRefreshToken() {
  return Error::Unauthenticated("The refresh token is not valid").WithType("invalid-refresh-token");
}

events::Event MakeEvent(const char* type, boost::json::object payload, const Clock& clock) {
  events::Event e;
  e.id = events::NewEventId();
  e.type = type;
  e.source = events_out::kSource;
  e.occurred_at_ms = clock.NowMillis();
  payload["occurred_at"] = FormatRfc3339(clock.Now());
  e.payload = boost::json::serialize(payload);
  return e;
}

}  // namespace

bool IsValidIban(std::string_view raw) {
  std::string iban;
  for (char c : raw) {
    if (c == ' ') continue;
    iban.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  if (iban.size() < 15 || iban.size() > 34) return false;
  if (!std::isalpha(static_cast<unsigned char>(iban[0])) || !std::isalpha(static_cast<unsigned char>(iban[1])) ||
      !std::isdigit(static_cast<unsigned char>(iban[2])) || !std::isdigit(static_cast<unsigned char>(iban[3]))) {
    return false;
  }
  std::string rearranged = iban.substr(4) + iban.substr(0, 4);
  int remainder = 0;
  for (char c : rearranged) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else if (std::isalpha(static_cast<unsigned char>(c))) {
      int v = c - 'A' + 10;
      remainder = (remainder * 100 + v) % 97;
    } else {
      return false;
    }
  }
  return remainder == 1;
}

IdentityService::IdentityService(IdentityOptions options, IdentityStore& store, std::shared_ptr<crypto::KeyRing> keys,
                                 std::shared_ptr<crypto::Aead> aead, Mailer& mailer, const Clock& clock)
    : options_(std::move(options)),
      store_(store),
      keys_(std::move(keys)),
      aead_(std::move(aead)),
      mailer_(mailer),
      clock_(clock),
      account_throttle_(clock, options_.login_free_failures_per_account),
      ip_throttle_(clock, options_.login_free_failures_per_ip) {}

Result<User> IdentityService::Register(std::string_view email, std::string_view password,
                                       std::string_view display_name) {
  return CreateAccount(email, password, display_name, {kRoleBuyer});
}

Result<User> IdentityService::CreateAdmin(std::string_view email, std::string_view password,
                                          std::string_view display_name) {
  return CreateAccount(email, password, display_name, {kRoleBuyer, kRoleAdmin});
}

Result<User> IdentityService::CreateAccount(std::string_view email, std::string_view password,
                                            std::string_view display_name, std::vector<std::string> roles) {
  std::vector<FieldError> errors;
  auto normalized = NormalizeEmail(email);
  if (!normalized) errors.push_back({"email", "is not a valid email address"});
  if (auto why = CheckDisplayName(display_name)) errors.push_back({"display_name", *why});
  if (auto why = CheckPassword(password, normalized.value_or(std::string(email)), display_name)) {
    errors.push_back({"password", *why});
  }
  if (!errors.empty()) return Error::Validation(std::move(errors));
  AGORA_ASSIGN_OR_RETURN(std::string hash, crypto::HashPassword(password, options_.hash_params));

  User user;
  user.id = NewId("usr_", clock_);
  user.email = *normalized;
  user.display_name = Trim(display_name);
  user.password_hash = std::move(hash);
  user.roles = std::move(roles);
  user.created_at_ms = user.updated_at_ms = clock_.NowMillis();

  std::string token;
  OneTimeToken verification = NewOneTimeToken(user, OneTimePurpose::kVerifyEmail, token);
  auto event = MakeEvent(events_out::kUserRegistered,
                         {{"user_id", user.id}, {"email", user.email}, {"display_name", user.display_name}}, clock_);
  AGORA_RETURN_IF_ERROR(store_.CreateUser(user, &verification, event));
  // The account exists even if the mail fails; the user can ask for another.
  (void)MailToken(user, OneTimePurpose::kVerifyEmail, token);
  return user;
}

Result<TokenPair> IdentityService::Login(std::string_view email, std::string_view password,
                                         std::string_view client_ip, std::chrono::seconds* retry_after) {
  std::string normalized = NormalizeEmail(email).value_or(Trim(email));
  const std::string account_key = "acct:" + normalized;
  const std::string ip_key = "ip:" + std::string(client_ip);
  auto wait = std::max(account_throttle_.RetryAfter(account_key), ip_throttle_.RetryAfter(ip_key));
  if (wait.count() > 0) {
    if (retry_after != nullptr) *retry_after = wait;
    return Error::ResourceExhausted(fmt::format("Too many failed logins; retry in {} seconds", wait.count()))
        .WithType("login-throttled");
  }
  auto user = store_.FindUserByEmail(normalized);
  if (!user.ok() && user.error().code != ErrorCode::kNotFound) return std::move(user).error();
  // Unknown accounts cost one hash verification too, so timing tells nothing.
  const std::string& hash = user.ok() ? user->password_hash : crypto::DummyPasswordHash(options_.hash_params);
  const bool match = crypto::VerifyPassword(hash, password) && user.ok();
  if (!match) {
    account_throttle_.RecordFailure(account_key);
    ip_throttle_.RecordFailure(ip_key);
    return InvalidCredentials();
  }
  account_throttle_.RecordSuccess(account_key);
  if (crypto::PasswordNeedsRehash(user->password_hash, options_.hash_params)) {
    if (auto rehashed = crypto::HashPassword(password, options_.hash_params); rehashed.ok()) {
      (void)store_.UpdatePasswordHash(user->id, *rehashed, clock_.NowMillis());
    }
  }
  return IssueTokens(*user, NewId("fam_", clock_));
}

std::string IdentityService::AccessToken(const User& user) const {
  const int64_t now = clock_.NowSeconds();
  boost::json::array roles;
  for (const auto& r : user.roles) roles.emplace_back(r);
  boost::json::object claims{
      {"iss", options_.issuer},
      {"sub", user.id},
      {"aud", options_.audience},
      {"iat", now},
      {"nbf", now},
      {"exp", now + options_.access_ttl.count()},
      {"jti", NewId("at_", clock_)},
      {"roles", std::move(roles)},
      {"email_verified", user.email_verified_at_ms.has_value()},
  };
  return keys_->SignJwt(claims);
}

Result<TokenPair> IdentityService::IssueTokens(const User& user, std::string family_id) {
  TokenPair pair;
  pair.refresh_token = crypto::RandomToken(32);
  RefreshToken rt;
  rt.id = NewId("rt_", clock_);
  rt.family_id = std::move(family_id);
  rt.user_id = user.id;
  rt.token_hash = TokenHash(pair.refresh_token);
  rt.created_at_ms = clock_.NowMillis();
  rt.expires_at_ms = rt.created_at_ms + Millis(options_.refresh_ttl);
  AGORA_RETURN_IF_ERROR(store_.InsertRefreshToken(rt));
  pair.access_token = AccessToken(user);
  pair.expires_in_s = options_.access_ttl.count();
  pair.refresh_expires_in_s = options_.refresh_ttl.count();
  return pair;
}

Result<TokenPair> IdentityService::Refresh(std::string_view refresh_token) {
  if (refresh_token.empty() || refresh_token.size() > 256) return InvalidRefreshToken();
  const int64_t now = clock_.NowMillis();
  auto before = store_.ConsumeRefreshToken(TokenHash(refresh_token), now);
  if (!before.ok()) {
    if (before.error().code == ErrorCode::kNotFound) return InvalidRefreshToken();
    return std::move(before).error();
  }
  if (before->revoked_at_ms) return InvalidRefreshToken();
  if (before->used_at_ms) {
    // A rotated token came back: someone holds a copy. End the whole session.
    AGORA_RETURN_IF_ERROR(store_.RevokeFamily(before->family_id, now));
    return Error::Unauthenticated("The refresh token was already used; the session has been ended")
        .WithType("refresh-token-reused");
  }
  if (before->expires_at_ms <= now) return InvalidRefreshToken();
  AGORA_ASSIGN_OR_RETURN(User user, store_.FindUserById(before->user_id));
  return IssueTokens(user, before->family_id);
}

Status IdentityService::Logout(std::string_view refresh_token) {
  if (refresh_token.empty() || refresh_token.size() > 256) return Ok();
  auto token = store_.FindRefreshToken(TokenHash(refresh_token));
  if (!token.ok()) return token.error().code == ErrorCode::kNotFound ? Ok() : Status(std::move(token).error());
  return store_.RevokeFamily(token->family_id, clock_.NowMillis());
}

Result<User> IdentityService::GetUser(std::string_view user_id) { return store_.FindUserById(user_id); }

Result<User> IdentityService::UpdateDisplayName(std::string_view user_id, std::string_view display_name) {
  if (auto why = CheckDisplayName(display_name)) return Error::Validation({{"display_name", *why}});
  AGORA_RETURN_IF_ERROR(store_.UpdateDisplayName(user_id, Trim(display_name), clock_.NowMillis()));
  return store_.FindUserById(user_id);
}

Result<User> IdentityService::OnboardSeller(std::string_view user_id, std::string_view display_name,
                                            const PayoutDetails& payout) {
  std::vector<FieldError> errors;
  if (auto why = CheckDisplayName(display_name)) errors.push_back({"display_name", *why});
  std::string holder = Trim(payout.account_holder);
  if (holder.empty() || holder.size() > 70) errors.push_back({"payout.account_holder", "must be 1 to 70 characters long"});
  if (!IsValidIban(payout.iban)) errors.push_back({"payout.iban", "is not a valid IBAN"});
  if (!errors.empty()) return Error::Validation(std::move(errors));
  std::string iban;
  for (char c : payout.iban) {
    if (c != ' ') iban.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  boost::json::object details{{"account_holder", holder}, {"iban", iban}};
  SellerProfile profile;
  profile.display_name = Trim(display_name);
  // Bound to the user id, so a sealed value cannot be moved to another account.
  profile.payout_sealed = aead_->Encrypt(boost::json::serialize(details), user_id);
  profile.onboarded_at_ms = clock_.NowMillis();
  auto event = MakeEvent(events_out::kSellerOnboarded,
                         {{"user_id", std::string(user_id)}, {"seller_display_name", profile.display_name}}, clock_);
  return store_.OnboardSeller(user_id, profile, event);
}

Result<PayoutDetails> IdentityService::PayoutDetailsOf(const User& user) const {
  if (!user.seller) return Error::FailedPrecondition("The user is not a seller");
  AGORA_ASSIGN_OR_RETURN(std::string plain, aead_->Decrypt(user.seller->payout_sealed, user.id));
  auto v = boost::json::parse(plain).as_object();
  return PayoutDetails{std::string(v["account_holder"].as_string()), std::string(v["iban"].as_string())};
}

OneTimeToken IdentityService::NewOneTimeToken(const User& user, OneTimePurpose purpose, std::string& token_out) const {
  token_out = crypto::RandomToken(32);
  OneTimeToken t;
  t.id = NewId("ott_", clock_);
  t.user_id = user.id;
  t.purpose = purpose;
  t.token_hash = TokenHash(token_out);
  t.created_at_ms = clock_.NowMillis();
  auto ttl = purpose == OneTimePurpose::kVerifyEmail ? options_.verify_email_ttl : options_.reset_password_ttl;
  t.expires_at_ms = t.created_at_ms + Millis(ttl);
  return t;
}

Status IdentityService::MailToken(const User& user, OneTimePurpose purpose, const std::string& token) {
  Mail mail;
  mail.to = user.email;
  mail.purpose = PurposeName(purpose);
  mail.token = token;
  if (purpose == OneTimePurpose::kVerifyEmail) {
    mail.subject = "Confirm your email address";
    mail.link = options_.public_url + "/verify-email?token=" + token;
    mail.text = "Hello " + user.display_name + ",\n\nconfirm your email address with this link:\n" + mail.link +
                "\n\nThe link works once and expires in " +
                std::to_string(options_.verify_email_ttl.count() / 3600) + " hours.\n";
  } else {
    mail.subject = "Reset your password";
    mail.link = options_.public_url + "/reset-password?token=" + token;
    mail.text = "Hello " + user.display_name + ",\n\nset a new password with this link:\n" + mail.link +
                "\n\nThe link works once and expires in " +
                std::to_string(options_.reset_password_ttl.count() / 60) +
                " minutes. If you did not ask for it, ignore this mail.\n";
  }
  return mailer_.Send(mail);
}

Status IdentityService::VerifyEmail(std::string_view token) {
  if (token.empty() || token.size() > 256) {
    return Error::InvalidArgument("The verification token is not valid").WithType("invalid-token");
  }
  AGORA_ASSIGN_OR_RETURN(std::string user_id, store_.VerifyEmailWithToken(TokenHash(token), clock_.NowMillis()));
  (void)user_id;
  return Ok();
}

Status IdentityService::ResendVerification(std::string_view user_id) {
  AGORA_ASSIGN_OR_RETURN(User user, store_.FindUserById(user_id));
  if (user.email_verified_at_ms) {
    return Error::FailedPrecondition("The email address is verified already").WithType("already-verified");
  }
  std::string token;
  OneTimeToken t = NewOneTimeToken(user, OneTimePurpose::kVerifyEmail, token);
  AGORA_RETURN_IF_ERROR(store_.InsertOneTimeToken(t));
  return MailToken(user, OneTimePurpose::kVerifyEmail, token);
}

Status IdentityService::ForgotPassword(std::string_view email) {
  auto normalized = NormalizeEmail(email);
  if (!normalized) return Error::Validation({{"email", "is not a valid email address"}});
  auto user = store_.FindUserByEmail(*normalized);
  if (!user.ok()) return user.error().code == ErrorCode::kNotFound ? Ok() : Status(std::move(user).error());
  std::string token;
  OneTimeToken t = NewOneTimeToken(*user, OneTimePurpose::kResetPassword, token);
  AGORA_RETURN_IF_ERROR(store_.InsertOneTimeToken(t));
  // A failed mail must not answer differently from an unknown address; the
  // user can ask again. The mailer logs its own failures.
  (void)MailToken(*user, OneTimePurpose::kResetPassword, token);
  return Ok();
}

Status IdentityService::ResetPassword(std::string_view token, std::string_view new_password) {
  if (token.empty() || token.size() > 256) {
    return Error::InvalidArgument("The reset token is not valid").WithType("invalid-token");
  }
  // The token alone does not name the account, so the context-free rules
  // apply here; the token is consumed only once the password passes.
  if (auto why = CheckPassword(new_password, "", "")) return Error::Validation({{"password", *why}});
  AGORA_ASSIGN_OR_RETURN(std::string hash, crypto::HashPassword(new_password, options_.hash_params));
  AGORA_ASSIGN_OR_RETURN(std::string user_id,
                         store_.ResetPasswordWithToken(TokenHash(token), hash, clock_.NowMillis()));
  (void)user_id;
  return Ok();
}

}  // namespace agora::identity
