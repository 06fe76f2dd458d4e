#include "services/identity/store/sql_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/clock.h"
#include "core/id.h"
#include "core/log.h"
#include "core/strings.h"

namespace agora::identity {
namespace {

constexpr db::Migration kMigrations[] = {
    {1, "create users and tokens", R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  roles TEXT NOT NULL,
  email_verified_at_ms BIGINT,
  seller_display_name TEXT,
  payout_sealed TEXT,
  seller_onboarded_at_ms BIGINT,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE TABLE refresh_tokens (
  id TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  token_hash TEXT NOT NULL UNIQUE,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  used_at_ms BIGINT,
  revoked_at_ms BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
CREATE TABLE one_time_tokens (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  purpose TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  used_at_ms BIGINT
);
CREATE INDEX one_time_tokens_user ON one_time_tokens(user_id);
)sql"},
};

// Column lists as macros so statements stay string literals (no formatting
// per call; the driver caches prepared statements by their text).
#define USER_COLUMNS                                                                                         \
  "id, email, display_name, password_hash, roles, email_verified_at_ms, seller_display_name, payout_sealed, " \
  "seller_onboarded_at_ms, created_at_ms, updated_at_ms"
#define TOKEN_COLUMNS "id, family_id, user_id, token_hash, created_at_ms, expires_at_ms, used_at_ms, revoked_at_ms"

constexpr const char* kSelectUserById = "SELECT " USER_COLUMNS " FROM users WHERE id = $1";
constexpr const char* kSelectUserByEmail = "SELECT " USER_COLUMNS " FROM users WHERE email = $1";
constexpr const char* kSelectToken = "SELECT " TOKEN_COLUMNS " FROM refresh_tokens WHERE token_hash = $1";
constexpr const char* kSelectTokenForUpdate =
    "SELECT " TOKEN_COLUMNS " FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE";

std::string JoinRoles(const std::vector<std::string>& roles) {
  std::string out;
  for (const auto& r : roles) {
    if (!out.empty()) out += ',';
    out += r;
  }
  return out;
}

std::vector<std::string> SplitRoles(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view role : SplitList(s)) out.emplace_back(role);
  return out;
}

db::Value OptValue(const std::optional<int64_t>& v) { return v ? db::Value(*v) : db::Value(nullptr); }

User UserFrom(const db::Row& r) {
  User u;
  u.id = r.Text(0);
  u.email = r.Text(1);
  u.display_name = r.Text(2);
  u.password_hash = r.Text(3);
  u.roles = SplitRoles(r.Text(4));
  u.email_verified_at_ms = r.OptInt(5);
  if (!r.IsNull(6)) {
    u.seller = SellerProfile{r.Text(6), r.OptText(7).value_or(""), r.OptInt(8).value_or(0)};
  }
  u.created_at_ms = r.Int(9);
  u.updated_at_ms = r.Int(10);
  return u;
}

RefreshToken TokenFrom(const db::Row& r) {
  RefreshToken t;
  t.id = r.Text(0);
  t.family_id = r.Text(1);
  t.user_id = r.Text(2);
  t.token_hash = r.Text(3);
  t.created_at_ms = r.Int(4);
  t.expires_at_ms = r.Int(5);
  t.used_at_ms = r.OptInt(6);
  t.revoked_at_ms = r.OptInt(7);
  return t;
}

// `sql` is kSelectUserById or kSelectUserByEmail.
Result<User> FindUserIn(db::Tx& tx, std::string_view name, const char* sql, const std::string& value) {
  AGORA_ASSIGN_OR_RETURN(auto rows, tx.Exec(name, sql, {value}));
  if (rows.empty()) return Error::NotFound("No such user").WithType("user-not-found");
  return UserFrom(rows[0]);
}

Status InsertOneTimeTokenIn(db::Tx& tx, const OneTimeToken& t) {
  AGORA_RETURN_IF_ERROR(tx.Exec(
      "identity.insert_one_time_token",
      "INSERT INTO one_time_tokens (id, user_id, purpose, token_hash, created_at_ms, expires_at_ms) "
      "VALUES ($1, $2, $3, $4, $5, $6)",
      {t.id, t.user_id, std::string(PurposeName(t.purpose)), t.token_hash, t.created_at_ms, t.expires_at_ms}));
  return Ok();
}

// Marks an unused, unexpired token of `purpose` used; returns its user id.
Result<std::string> ConsumeOneTimeIn(db::Tx& tx, std::string_view hash, OneTimePurpose purpose, int64_t now_ms) {
  AGORA_ASSIGN_OR_RETURN(auto rows, tx.Exec("identity.consume_one_time_token",
                                            "UPDATE one_time_tokens SET used_at_ms = $1 WHERE token_hash = $2 "
                                            "AND purpose = $3 AND used_at_ms IS NULL AND expires_at_ms > $1 "
                                            "RETURNING user_id",
                                            {now_ms, std::string(hash), std::string(PurposeName(purpose))}));
  if (rows.empty()) {
    return Error::InvalidArgument("The token is not valid, was used already or has expired").WithType("invalid-token");
  }
  return rows[0].Text(0);
}

}  // namespace

std::span<const db::Migration> IdentityMigrations() { return kMigrations; }

Status SqlIdentityStore::CreateUser(const User& u, const OneTimeToken* verification, const events::Event& event) {
  Status s = db_.Transact("identity.create_user", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    auto existing = tx.Exec("identity.email_taken", "SELECT 1 FROM users WHERE email = $1", {u.email});
    if (!existing.ok()) return std::move(existing).error();
    if (!existing->empty()) {
      return Error::Conflict("An account with this email exists already").WithType("email-taken");
    }
    auto ins = tx.Exec("identity.insert_user",
                       "INSERT INTO users (id, email, display_name, password_hash, roles, email_verified_at_ms, "
                       "created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                       {u.id, u.email, u.display_name, u.password_hash, JoinRoles(u.roles),
                        OptValue(u.email_verified_at_ms), u.created_at_ms, u.updated_at_ms});
    if (!ins.ok()) {
      // Two registrations racing for one email: the unique index decides.
      if (ins.error().code == ErrorCode::kConflict) {
        return Error::Conflict("An account with this email exists already").WithType("email-taken");
      }
      return std::move(ins).error();
    }
    if (verification != nullptr) AGORA_RETURN_IF_ERROR(InsertOneTimeTokenIn(tx, *verification));
    return events::AppendToOutbox(tx, event);
  });
  if (s.ok() && on_events_) on_events_();
  return s;
}

Result<User> SqlIdentityStore::FindUserByEmail(std::string_view email) {
  return db_.Transact("identity.find_user_by_email", db::TxMode::kRead, [&](db::Tx& tx) {
    return FindUserIn(tx, "identity.find_user_by_email", kSelectUserByEmail, std::string(email));
  });
}

Result<User> SqlIdentityStore::FindUserById(std::string_view id) {
  uint64_t generation = 0;
  if (cache_users_) {
    std::lock_guard lock(cache_mu_);
    if (auto it = user_cache_.find(std::string(id)); it != user_cache_.end()) return it->second;
    generation = cache_generation_;
  }
  AGORA_ASSIGN_OR_RETURN(auto rows, db_.Exec("identity.find_user_by_id", kSelectUserById, {std::string(id)}));
  if (rows.empty()) return Error::NotFound("No such user").WithType("user-not-found");
  User user = UserFrom(rows[0]);
  if (cache_users_) {
    std::lock_guard lock(cache_mu_);
    if (generation == cache_generation_) {
      if (user_cache_.size() >= kUserCacheCapacity) user_cache_.clear();
      user_cache_.emplace(user.id, user);
    }
  }
  return user;
}

void SqlIdentityStore::ForgetUser(std::string_view id) {
  if (!cache_users_) return;
  std::lock_guard lock(cache_mu_);
  user_cache_.erase(std::string(id));
  ++cache_generation_;
}

Status SqlIdentityStore::UpdateDisplayName(std::string_view user_id, std::string_view name, int64_t now_ms) {
  AGORA_ASSIGN_OR_RETURN(auto rows, db_.Exec("identity.update_display_name",
                                             "UPDATE users SET display_name = $1, updated_at_ms = $2 WHERE id = $3",
                                             {std::string(name), now_ms, std::string(user_id)}));
  ForgetUser(user_id);
  if (rows.affected == 0) return Error::NotFound("No such user").WithType("user-not-found");
  return Ok();
}

Status SqlIdentityStore::UpdatePasswordHash(std::string_view user_id, std::string_view hash, int64_t now_ms) {
  AGORA_ASSIGN_OR_RETURN(auto rows, db_.Exec("identity.update_password_hash",
                                             "UPDATE users SET password_hash = $1, updated_at_ms = $2 WHERE id = $3",
                                             {std::string(hash), now_ms, std::string(user_id)}));
  ForgetUser(user_id);
  if (rows.affected == 0) return Error::NotFound("No such user").WithType("user-not-found");
  return Ok();
}

Result<User> SqlIdentityStore::OnboardSeller(std::string_view user_id, const SellerProfile& p,
                                             const events::Event& event) {
  auto r = db_.Transact("identity.onboard_seller", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<User> {
    AGORA_ASSIGN_OR_RETURN(User u, FindUserIn(tx, "identity.find_user_by_id", kSelectUserById, std::string(user_id)));
    if (u.HasRole(kRoleSeller)) {
      return Error::FailedPrecondition("The account is a seller already").WithType("already-seller");
    }
    u.roles.push_back(kRoleSeller);
    u.seller = p;
    u.updated_at_ms = p.onboarded_at_ms;
    AGORA_RETURN_IF_ERROR(tx.Exec("identity.onboard_seller",
                                  "UPDATE users SET roles = $1, seller_display_name = $2, payout_sealed = $3, "
                                  "seller_onboarded_at_ms = $4, updated_at_ms = $4 WHERE id = $5",
                                  {JoinRoles(u.roles), p.display_name, p.payout_sealed, p.onboarded_at_ms, u.id}));
    AGORA_RETURN_IF_ERROR(events::AppendToOutbox(tx, event));
    return u;
  });
  ForgetUser(user_id);
  if (r.ok() && on_events_) on_events_();
  return r;
}

Status SqlIdentityStore::InsertRefreshToken(const RefreshToken& t) {
  AGORA_RETURN_IF_ERROR(db_.Exec("identity.insert_refresh_token",
                                 "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at_ms, "
                                 "expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                                 {t.id, t.family_id, t.user_id, t.token_hash, t.created_at_ms, t.expires_at_ms}));
  return Ok();
}

Result<RefreshToken> SqlIdentityStore::ConsumeRefreshToken(std::string_view hash, int64_t now_ms) {
  return db_.Transact("identity.consume_refresh_token", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<RefreshToken> {
    // SQLite's write transaction (BEGIN IMMEDIATE) already excludes other writers.
    const char* sql = tx.dialect() == db::Dialect::kPostgres ? kSelectTokenForUpdate : kSelectToken;
    AGORA_ASSIGN_OR_RETURN(auto rows, tx.Exec("identity.find_refresh_token_for_update", sql, {std::string(hash)}));
    if (rows.empty()) return Error::NotFound("No such refresh token");
    RefreshToken before = TokenFrom(rows[0]);
    if (!before.used_at_ms && !before.revoked_at_ms && before.expires_at_ms > now_ms) {
      AGORA_RETURN_IF_ERROR(tx.Exec("identity.mark_refresh_token_used",
                                    "UPDATE refresh_tokens SET used_at_ms = $1 WHERE id = $2", {now_ms, before.id}));
    }
    return before;
  });
}

Result<RefreshToken> SqlIdentityStore::FindRefreshToken(std::string_view hash) {
  AGORA_ASSIGN_OR_RETURN(auto rows,
                         db_.Exec("identity.find_refresh_token",
                                  kSelectToken,
                                  {std::string(hash)}));
  if (rows.empty()) return Error::NotFound("No such refresh token");
  return TokenFrom(rows[0]);
}

Status SqlIdentityStore::RevokeFamily(std::string_view family_id, int64_t now_ms) {
  AGORA_RETURN_IF_ERROR(db_.Exec("identity.revoke_family",
                                 "UPDATE refresh_tokens SET revoked_at_ms = $1 WHERE family_id = $2 AND "
                                 "revoked_at_ms IS NULL",
                                 {now_ms, std::string(family_id)}));
  return Ok();
}

Status SqlIdentityStore::InsertOneTimeToken(const OneTimeToken& token) {
  return db_.Transact("identity.insert_one_time_token", db::TxMode::kWrite,
                      [&](db::Tx& tx) { return InsertOneTimeTokenIn(tx, token); });
}

Result<std::string> SqlIdentityStore::VerifyEmailWithToken(std::string_view hash, int64_t now_ms) {
  auto r = db_.Transact("identity.verify_email", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<std::string> {
    AGORA_ASSIGN_OR_RETURN(std::string user_id, ConsumeOneTimeIn(tx, hash, OneTimePurpose::kVerifyEmail, now_ms));
    AGORA_RETURN_IF_ERROR(tx.Exec("identity.mark_email_verified",
                                  "UPDATE users SET email_verified_at_ms = $1, updated_at_ms = $1 WHERE id = $2 "
                                  "AND email_verified_at_ms IS NULL",
                                  {now_ms, user_id}));
    return user_id;
  });
  if (r.ok()) ForgetUser(*r);
  return r;
}

Result<std::string> SqlIdentityStore::ResetPasswordWithToken(std::string_view hash, std::string_view new_hash,
                                                             int64_t now_ms) {
  auto r = db_.Transact("identity.reset_password", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<std::string> {
    AGORA_ASSIGN_OR_RETURN(std::string user_id, ConsumeOneTimeIn(tx, hash, OneTimePurpose::kResetPassword, now_ms));
    AGORA_RETURN_IF_ERROR(tx.Exec("identity.set_password_hash",
                                  "UPDATE users SET password_hash = $1, updated_at_ms = $2 WHERE id = $3",
                                  {std::string(new_hash), now_ms, user_id}));
    AGORA_RETURN_IF_ERROR(tx.Exec("identity.revoke_user_tokens",
                                  "UPDATE refresh_tokens SET revoked_at_ms = $1 WHERE user_id = $2 AND "
                                  "revoked_at_ms IS NULL",
                                  {now_ms, user_id}));
    // A reset proves control of the mailbox, as verification does.
    AGORA_RETURN_IF_ERROR(tx.Exec("identity.mark_email_verified",
                                  "UPDATE users SET email_verified_at_ms = $1 WHERE id = $2 AND "
                                  "email_verified_at_ms IS NULL",
                                  {now_ms, user_id}));
    return user_id;
  });
  if (r.ok()) ForgetUser(*r);
  return r;
}

Status FileMailbox::Send(const Mail& mail) {
  Status s = Write(mail);
  if (!s.ok()) log::Error("mail not delivered", {{"purpose", mail.purpose}, {"error", s.error().message}});
  return s;
}

Status FileMailbox::Write(const Mail& mail) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error::Unavailable("Cannot create the mailbox folder");
  boost::json::object o{{"to", mail.to},       {"subject", mail.subject}, {"text", mail.text},
                        {"purpose", mail.purpose}, {"token", mail.token},   {"link", mail.link},
                        {"sent_at", FormatRfc3339(SystemClock::Instance().Now())}};
  std::string body = boost::json::serialize(o);
  auto path = dir_ / fmt::format("{}-{}.json", NewId("mail_"), mail.purpose);
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::Unavailable("Cannot write to the mailbox folder");
  bool ok = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok) return Error::Unavailable("Cannot write to the mailbox folder");
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Error::Unavailable("Cannot write to the mailbox folder");
  return Ok();
}

}  // namespace agora::identity
