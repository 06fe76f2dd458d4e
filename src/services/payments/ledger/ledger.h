// The payments service's double-entry ledger: every movement of money is a
// balanced LedgerTransaction of two or more entries, appended (never
// updated, never deleted) to ledger_transactions and ledger_entries. Balances
// are derived from the entries, never stored.
//
// Sign convention: Entry::amount is in minor units (cents) of `currency`;
// a positive amount is a DEBIT, a negative amount a CREDIT. Money moves from
// the credited accounts to the debited ones ("escrow -> seller payable" is
// escrow -1000, seller_payable +1000). A transaction balances when, for each
// currency, its entries sum to zero, so the sum of every balance is zero.
// Balance(account) = sum(debits) + sum(credits) (credits are negative):
// positive means the account holds money that flowed in.
//
// Chart of accounts (account names are plain strings; ids in them are the
// other services' ids):
//
//   buyer_payments              where buyers' money comes from; credited at
//                               capture (its balance is minus all captured)
//   escrow:<order id>           money held for one order until delivery:
//                               debited at capture, credited at release or
//                               refund (0 once settled)
//   seller_payable:<seller id>  what the platform owes one seller: debited
//                               at release, credited at payout
//   platform_commission         the platform's commission (debited at release)
//   provider_fees               the payment provider's fees (debited)
//   refunds                     money returned to buyers (debited at refund)
//   provider_cash               payouts leaving through the provider
//                               (debited at payout)
//
// The escrow flow of one 1000 EUR order, commission 100:
//   payment.captured  buyer_payments -1000, escrow:ord_1 +1000
//   escrow.released   escrow:ord_1 -1000, seller_payable:usr_s +900,
//                     platform_commission +100
//   payout.paid       seller_payable:usr_s -900, provider_cash +900
//
// Transactions are posted inside the caller's database transaction (Post on
// a db::Tx), so a state change and its money movement commit together. A
// non-empty idempotency key makes a repeated Post a no-op (a webhook applied
// twice posts once).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/db/db.h"
#include "core/result.h"

namespace agora::payments::ledger {

inline constexpr size_t kMaxAccountLength = 200;
// Verify lists at most this many problems.
inline constexpr size_t kMaxProblems = 100;

struct Entry {
  std::string account;
  int64_t amount = 0;  // minor units; > 0 debit, < 0 credit
  std::string currency;  // ISO 4217, "EUR"
};

struct LedgerTransaction {
  std::string id;         // "ltx_..." (NewTransactionId)
  std::string kind;       // "payment.captured", "escrow.released", "payout.paid", ...
  std::string reference;  // what it is about: a payment, order or payout id
  std::vector<Entry> entries;
  int64_t created_at_ms = 0;
};

// A new "ltx_" id.
std::string NewTransactionId();

// Pure domain check: at least two entries, no zero amounts, currencies of
// three upper-case letters, account names non-empty and at most 200 bytes,
// and the entries sum to zero per currency. kInvalidArgument otherwise
// (type "ledger-unbalanced" when only the sums are wrong, else
// "ledger-invalid").
Status CheckBalanced(const LedgerTransaction& t);

// Appends `t` inside the caller's transaction (the caller commits). Checks
// the balance first and writes nothing when it fails; an empty id or kind is
// kInvalidArgument too. With a non-empty `idempotency_key` already posted,
// does nothing and returns Ok (the earlier transaction stands, whatever `t`
// holds now). A reused transaction id is kConflict.
Status Post(db::Tx& tx, const LedgerTransaction& t, std::string_view idempotency_key = {});

// The same in a write transaction of its own.
Status Post(db::Database& db, const LedgerTransaction& t, std::string_view idempotency_key = {});

// Sum of the entries of `account` in `currency` (0 for an unknown account).
Result<int64_t> Balance(db::Database& db, std::string_view account, std::string_view currency);

struct AccountBalance {
  std::string account;
  std::string currency;
  int64_t balance = 0;
  friend bool operator==(const AccountBalance&, const AccountBalance&) = default;
};

// The balance of every (account, currency) whose account name starts with
// `account_prefix` (e.g. "seller_payable:"; empty: all accounts), ordered by
// account then currency.
Result<std::vector<AccountBalance>> Balances(db::Database& db, std::string_view account_prefix);

struct VerifyReport {
  int64_t transactions = 0;
  int64_t entries = 0;
  // Human-readable, each naming the transaction id; at most kMaxProblems.
  std::vector<std::string> problems;
  bool truncated = false;  // more problems than were listed
  bool ok() const { return problems.empty(); }
};

// Checks all the ledger with SQL: each transaction's entries sum to zero per
// currency, each transaction has at least two entries, no entry lacks its
// transaction, no zero amounts, no duplicate idempotency keys.
Result<VerifyReport> Verify(db::Database& db);

}  // namespace agora::payments::ledger
