#include "services/payments/store/sql_store.h"

namespace agora::payments {
namespace {

constexpr db::Migration kMigrations[] = {
    {1, "sandbox_tokens", R"sql(
CREATE TABLE sandbox_tokens (
  id TEXT PRIMARY KEY,
  brand TEXT NOT NULL,
  last4 TEXT NOT NULL,
  exp_month BIGINT NOT NULL,
  exp_year BIGINT NOT NULL,
  behavior TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL
);
)sql"},
    // The double-entry ledger (ledger/ledger.h): append-only. No foreign key
    // from entries to transactions: ledger::Verify reports orphans instead.
    {2, "ledger", R"sql(
CREATE TABLE ledger_transactions (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  reference TEXT NOT NULL,
  idempotency_key TEXT UNIQUE,
  created_at_ms BIGINT NOT NULL
);
CREATE TABLE ledger_entries (
  transaction_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  account TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  PRIMARY KEY (transaction_id, seq)
);
CREATE INDEX ledger_entries_account_currency ON ledger_entries (account, currency);
)sql"},
};

}  // namespace

std::span<const db::Migration> PaymentsMigrations() { return kMigrations; }

Status SandboxTokenStore::Insert(const SandboxToken& t) {
  AGORA_RETURN_IF_ERROR(db_.Exec("payments.insert_sandbox_token",
            "INSERT INTO sandbox_tokens (id, brand, last4, exp_month, exp_year, behavior, created_at_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            {t.id, t.card.brand, t.card.last4, t.card.exp_month, t.card.exp_year,
             std::string(sandbox::BehaviorName(t.card.behavior)), t.created_at_ms}));
  return Ok();
}

Result<SandboxToken> SandboxTokenStore::Find(std::string_view id) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db_.Exec("payments.find_sandbox_token",
                                  "SELECT id, brand, last4, exp_month, exp_year, behavior, created_at_ms "
                                  "FROM sandbox_tokens WHERE id = $1",
                                  {std::string(id)}));
  if (rows.empty()) return Error::NotFound("No such token").WithType("token-not-found");
  const db::Row& r = rows[0];
  SandboxToken t;
  t.id = r.Text(0);
  t.card.brand = r.Text(1);
  t.card.last4 = r.Text(2);
  t.card.exp_month = r.Int(3);
  t.card.exp_year = r.Int(4);
  t.card.behavior = sandbox::ParseBehavior(r.Text(5)).value_or(sandbox::Behavior::kSucceed);
  t.created_at_ms = r.Int(6);
  return t;
}

}  // namespace agora::payments
