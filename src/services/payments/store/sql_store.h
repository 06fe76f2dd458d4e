// The payments service's tables on the core db facade (SQLite or
// PostgreSQL). Today: the sandbox gateway's card tokens.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "core/db/db.h"
#include "services/payments/sandbox/cards.h"

namespace agora::payments {

// Applied with db.Migrate("payments", PaymentsMigrations()).
std::span<const db::Migration> PaymentsMigrations();

// A card token of the sandbox gateway: what a charge needs to behave like
// the card, and what a receipt may show. Never the number or the CVC.
struct SandboxToken {
  std::string id;  // "tok_..."
  sandbox::CardSummary card;
  int64_t created_at_ms = 0;
};

class SandboxTokenStore {
 public:
  explicit SandboxTokenStore(db::Database& db) : db_(db) {}
  Status Insert(const SandboxToken& token);
  // kNotFound type "token-not-found".
  Result<SandboxToken> Find(std::string_view id);

 private:
  db::Database& db_;
};

}  // namespace agora::payments
