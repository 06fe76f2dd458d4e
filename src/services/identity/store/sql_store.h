// IdentityStore on the core db facade (SQLite or PostgreSQL), and the
// development mailbox that writes mails as JSON files.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <span>
#include <unordered_map>

#include "core/db/db.h"
#include "services/identity/domain/store.h"

namespace agora::identity {

// The identity schema, applied with db.Migrate("identity", IdentityMigrations()).
std::span<const db::Migration> IdentityMigrations();

class SqlIdentityStore final : public IdentityStore {
 public:
  // `cache_users`: keep users read by id in memory, forgotten on every write
  // through this store. Coherent only when this process is the database's
  // sole writer of user rows, as with the embedded SQLite file; leave it off
  // for a shared PostgreSQL.
  explicit SqlIdentityStore(db::Database& db, bool cache_users = false) : db_(db), cache_users_(cache_users) {}

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
  void ForgetUser(std::string_view id);

  db::Database& db_;
  std::function<void()> on_events_;

  // The user cache. A reader inserts only if no write happened since it
  // looked (the generation is unchanged), so a row read before a write can
  // never be cached after it.
  static constexpr size_t kUserCacheCapacity = 10000;
  const bool cache_users_;
  std::mutex cache_mu_;
  std::unordered_map<std::string, User> user_cache_;  // GUARDED_BY(cache_mu_)
  uint64_t cache_generation_ = 0;                      // GUARDED_BY(cache_mu_)
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
