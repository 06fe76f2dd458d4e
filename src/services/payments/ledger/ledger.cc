#include "services/payments/ledger/ledger.h"

#include <map>

#include "core/id.h"

namespace agora::payments::ledger {
namespace {

bool ValidCurrency(std::string_view c) {
  if (c.size() != 3) return false;
  for (char ch : c) {
    if (ch < 'A' || ch > 'Z') return false;
  }
  return true;
}

// `prefix` as a LIKE pattern matching names that start with it ('\' escapes).
std::string LikePrefix(std::string_view prefix) {
  std::string out;
  out.reserve(prefix.size() + 1);
  for (char ch : prefix) {
    if (ch == '%' || ch == '_' || ch == '\\') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('%');
  return out;
}

}  // namespace

std::string NewTransactionId() { return NewId("ltx_"); }

Status CheckBalanced(const LedgerTransaction& t) {
  std::vector<FieldError> fields;
  if (t.entries.size() < 2) {
    fields.push_back({"entries", "must hold at least two entries"});
  }
  // __int128: a sum of int64 amounts cannot overflow it.
  std::map<std::string, __int128> sums;
  for (size_t i = 0; i < t.entries.size(); ++i) {
    const Entry& e = t.entries[i];
    const std::string at = "entries." + std::to_string(i);
    if (e.account.empty()) fields.push_back({at + ".account", "must not be empty"});
    if (e.account.size() > kMaxAccountLength) {
      fields.push_back({at + ".account", "must be at most " + std::to_string(kMaxAccountLength) + " characters"});
    }
    if (e.amount == 0) fields.push_back({at + ".amount", "must not be zero"});
    if (!ValidCurrency(e.currency)) {
      fields.push_back({at + ".currency", "must be three upper-case letters (ISO 4217)"});
    }
    sums[e.currency] += e.amount;
  }
  if (!fields.empty()) return Error::Validation(std::move(fields)).WithType("ledger-invalid");
  std::string unbalanced;
  for (const auto& [currency, sum] : sums) {
    if (sum == 0) continue;
    if (!unbalanced.empty()) unbalanced += ", ";
    unbalanced += currency;
  }
  if (!unbalanced.empty()) {
    return Error::InvalidArgument("Ledger transaction " + t.id + " does not balance in " + unbalanced)
        .WithType("ledger-unbalanced");
  }
  return Ok();
}

Status Post(db::Tx& tx, const LedgerTransaction& t, std::string_view idempotency_key) {
  if (t.id.empty() || t.kind.empty()) {
    return Error::InvalidArgument("A ledger transaction needs an id and a kind").WithType("ledger-invalid");
  }
  AGORA_RETURN_IF_ERROR(CheckBalanced(t));
  db::Rows inserted;
  if (idempotency_key.empty()) {
    AGORA_ASSIGN_OR_RETURN(inserted, tx.Exec("payments.ledger_insert_transaction",
                                             "INSERT INTO ledger_transactions "
                                             "(id, kind, reference, idempotency_key, created_at_ms) "
                                             "VALUES ($1, $2, $3, NULL, $4)",
                                             {t.id, t.kind, t.reference, t.created_at_ms}));
  } else {
    // A key already posted (perhaps by a concurrent transaction: PostgreSQL
    // waits for it to commit) inserts nothing, and the entries are skipped.
    AGORA_ASSIGN_OR_RETURN(inserted, tx.Exec("payments.ledger_insert_transaction_idempotent",
                                             "INSERT INTO ledger_transactions "
                                             "(id, kind, reference, idempotency_key, created_at_ms) "
                                             "VALUES ($1, $2, $3, $4, $5) "
                                             "ON CONFLICT (idempotency_key) DO NOTHING",
                                             {t.id, t.kind, t.reference, std::string(idempotency_key),
                                              t.created_at_ms}));
    if (inserted.affected == 0) return Ok();
  }
  for (size_t i = 0; i < t.entries.size(); ++i) {
    const Entry& e = t.entries[i];
    AGORA_RETURN_IF_ERROR(tx.Exec("payments.ledger_insert_entry",
                                  "INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                                  "VALUES ($1, $2, $3, $4, $5)",
                                  {t.id, static_cast<int64_t>(i), e.account, e.amount, e.currency}));
  }
  return Ok();
}

Status Post(db::Database& db, const LedgerTransaction& t, std::string_view idempotency_key) {
  // Checked before taking the write lock.
  AGORA_RETURN_IF_ERROR(CheckBalanced(t));
  return db.Transact("payments.ledger_post", db::TxMode::kWrite,
                     [&](db::Tx& tx) { return Post(tx, t, idempotency_key); });
}

Result<int64_t> Balance(db::Database& db, std::string_view account, std::string_view currency) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db.Exec("payments.ledger_balance",
                                 "SELECT COALESCE(SUM(amount), 0) FROM ledger_entries "
                                 "WHERE account = $1 AND currency = $2",
                                 {std::string(account), std::string(currency)}));
  return rows.empty() ? int64_t{0} : rows[0].Int(0);
}

Result<std::vector<AccountBalance>> Balances(db::Database& db, std::string_view account_prefix) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db.Exec("payments.ledger_balances",
                                 "SELECT account, currency, SUM(amount) FROM ledger_entries "
                                 "WHERE account LIKE $1 ESCAPE '\\' "
                                 "GROUP BY account, currency ORDER BY account, currency",
                                 {LikePrefix(account_prefix)}));
  std::vector<AccountBalance> out;
  out.reserve(rows.size());
  for (const db::Row& r : rows) {
    AccountBalance b{r.Text(0), r.Text(1), r.Int(2)};
    // SQLite's LIKE ignores ASCII case: keep exact prefixes only.
    if (!b.account.starts_with(account_prefix)) continue;
    out.push_back(std::move(b));
  }
  return out;
}

Result<VerifyReport> Verify(db::Database& db) {
  return db.Transact("payments.ledger_verify", db::TxMode::kRead, [&](db::Tx& tx) -> Result<VerifyReport> {
    VerifyReport report;
    AGORA_ASSIGN_OR_RETURN(db::Rows counts,
                           tx.Exec("payments.ledger_verify_counts",
                                   "SELECT (SELECT COUNT(*) FROM ledger_transactions), "
                                   "(SELECT COUNT(*) FROM ledger_entries)"));
    report.transactions = counts[0].Int(0);
    report.entries = counts[0].Int(1);
    auto add = [&](std::string line) {
      if (report.problems.size() >= kMaxProblems) {
        report.truncated = true;
        return;
      }
      report.problems.push_back(std::move(line));
    };
    // Each query reads one row past the cap so `truncated` is exact.
    const std::string limit = " LIMIT " + std::to_string(kMaxProblems + 1);

    AGORA_ASSIGN_OR_RETURN(db::Rows unbalanced,
                           tx.Exec("payments.ledger_verify_unbalanced",
                                   "SELECT transaction_id, currency, SUM(amount) FROM ledger_entries "
                                   "GROUP BY transaction_id, currency HAVING SUM(amount) <> 0 "
                                   "ORDER BY transaction_id, currency" + limit));
    for (const db::Row& r : unbalanced) {
      add("transaction " + r.Text(0) + ": entries in " + r.Text(1) + " sum to " + r.Text(2) + ", not 0");
    }

    AGORA_ASSIGN_OR_RETURN(db::Rows few,
                           tx.Exec("payments.ledger_verify_few_entries",
                                   "SELECT t.id, COUNT(e.seq) FROM ledger_transactions t "
                                   "LEFT JOIN ledger_entries e ON e.transaction_id = t.id "
                                   "GROUP BY t.id HAVING COUNT(e.seq) < 2 ORDER BY t.id" + limit));
    for (const db::Row& r : few) {
      add("transaction " + r.Text(0) + ": has " + r.Text(1) + " entries, fewer than 2");
    }

    AGORA_ASSIGN_OR_RETURN(db::Rows orphans,
                           tx.Exec("payments.ledger_verify_orphans",
                                   "SELECT e.transaction_id, e.seq, e.account FROM ledger_entries e "
                                   "LEFT JOIN ledger_transactions t ON t.id = e.transaction_id "
                                   "WHERE t.id IS NULL ORDER BY e.transaction_id, e.seq" + limit));
    for (const db::Row& r : orphans) {
      add("entry " + r.Text(0) + "#" + r.Text(1) + " (account " + r.Text(2) + "): its transaction " + r.Text(0) +
          " does not exist");
    }

    AGORA_ASSIGN_OR_RETURN(db::Rows zeros,
                           tx.Exec("payments.ledger_verify_zero",
                                   "SELECT transaction_id, seq, account FROM ledger_entries "
                                   "WHERE amount = 0 ORDER BY transaction_id, seq" + limit));
    for (const db::Row& r : zeros) {
      add("transaction " + r.Text(0) + ": entry #" + r.Text(1) + " (account " + r.Text(2) + ") has amount 0");
    }

    AGORA_ASSIGN_OR_RETURN(db::Rows dup_keys,
                           tx.Exec("payments.ledger_verify_duplicate_keys",
                                   "SELECT idempotency_key, COUNT(*), MIN(id), MAX(id) FROM ledger_transactions "
                                   "WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key "
                                   "HAVING COUNT(*) > 1 ORDER BY idempotency_key" + limit));
    for (const db::Row& r : dup_keys) {
      add("idempotency key " + r.Text(0) + " is used by " + r.Text(1) + " transactions (" + r.Text(2) + " ... " +
          r.Text(3) + ")");
    }
    return report;
  });
}

}  // namespace agora::payments::ledger
