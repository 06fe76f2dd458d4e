// IdentityStore on the core db facade (SQLite or PostgreSQL), and the
// development mailbox that writes mails as JSON files.
#pragma once

#include <filesystem>
#include <span>

#include "core/db/db.h"
#include "services/identity/domain/store.h"

namespace agora::identity {

// The identity schema, applied with db.Migrate("identity", IdentityMigrations()).
std::span<const db::Migration> IdentityMigrations();

class SqlIdentityStore final : public IdentityStore {
 public:
  explicit SqlIdentityStore(db::Database& db) : db_(db) {}

  Status CreateUser(const User& user, const OneTimeToken* verification, const events::Event& event) override;
  Result<User> FindUserByEmail(std::string_view email) override;
  Result<User> FindUserById(std::string_view id) override;
  Status UpdateDisplayName(std::string_view user_id, std::string_view display_name, int64_t now_ms) override;
  Status UpdatePasswordHash(std::string_view user_id, std::string_view hash, int64_t now_ms) override;
  Result<User> OnboardSeller(std::string_view user_id, const SellerProfile& profile,
                             const events::Event& event) override;
  Status InsertRefreshToken(const RefreshToken& token) override;
  Result<RefreshToken> ConsumeRefreshToken(std::string_view hash, int64_t now_ms) override;
  Result<RefreshToken> FindRefreshToken(std::string_view hash) override;
  Status RevokeFamily(std::string_view family_id, int64_t now_ms) override;
  Status InsertOneTimeToken(const OneTimeToken& token) override;
  Result<std::string> VerifyEmailWithToken(std::string_view hash, int64_t now_ms) override;
  Result<std::string> ResetPasswordWithToken(std::string_view hash, std::string_view new_password_hash,
                                             int64_t now_ms) override;

  // Called after a commit that appended events, to wake the outbox relay.
  void SetOnEventsCommitted(std::function<void()> f) { on_events_ = std::move(f); }

 private:
  db::Database& db_;
  std::function<void()> on_events_;
};

// Writes each mail to `dir/<time>-<purpose>-<id>.json` (0600). For
// development and tests; the notification service replaces it.
class FileMailbox final : public Mailer {
 public:
  explicit FileMailbox(std::filesystem::path dir) : dir_(std::move(dir)) {}
  Status Send(const Mail& mail) override;

 private:
  Status Write(const Mail& mail);

  std::filesystem::path dir_;
};

}  // namespace agora::identity
