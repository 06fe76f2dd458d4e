#include "services/payments/ledger/ledger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <optional>
#include <thread>

#include "core/db/db_testing.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments::ledger {
namespace {

LedgerTransaction Tx(std::string kind, std::vector<Entry> entries, std::string reference = "ord_1") {
  return LedgerTransaction{NewTransactionId(), std::move(kind), std::move(reference), std::move(entries),
                           1'700'000'000'000};
}

// ---- CheckBalanced (pure) ----

TEST(CheckBalanced, AcceptsBalancedTransactions) {
  EXPECT_TRUE(CheckBalanced(Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}))
                  .ok());
  EXPECT_TRUE(CheckBalanced(Tx("escrow.released", {{"escrow:ord_1", -1000, "EUR"},
                                                   {"seller_payable:usr_1", 900, "EUR"},
                                                   {"platform_commission", 100, "EUR"}}))
                  .ok());
  // Two currencies, each balanced.
  EXPECT_TRUE(CheckBalanced(Tx("x", {{"a", 5, "EUR"}, {"b", -5, "EUR"}, {"a", 7, "USD"}, {"b", -7, "USD"}})).ok());
}

TEST(CheckBalanced, RefusesBrokenTransactions) {
  const std::string long_name(kMaxAccountLength + 1, 'a');
  const std::string max_name(kMaxAccountLength, 'a');
  struct Case {
    const char* why;
    std::vector<Entry> entries;
  };
  for (const Case& c : std::vector<Case>{
           {"unbalanced", {{"a", 1000, "EUR"}, {"b", -999, "EUR"}}},
           {"one entry", {{"a", 0, "EUR"}}},
           {"one non-zero entry", {{"a", 10, "EUR"}}},
           {"no entries", {}},
           {"zero amount", {{"a", 0, "EUR"}, {"b", 0, "EUR"}}},
           {"zero among others", {{"a", 10, "EUR"}, {"b", -10, "EUR"}, {"c", 0, "EUR"}}},
           {"mixed currencies, unbalanced", {{"a", 1000, "EUR"}, {"b", -1000, "USD"}}},
           {"lower-case currency", {{"a", 10, "eur"}, {"b", -10, "eur"}}},
           {"short currency", {{"a", 10, "EU"}, {"b", -10, "EU"}}},
           {"empty account", {{"", 10, "EUR"}, {"b", -10, "EUR"}}},
           {"long account", {{long_name, 10, "EUR"}, {"b", -10, "EUR"}}},
       }) {
    Status s = CheckBalanced(Tx("x", c.entries));
    ASSERT_FALSE(s.ok()) << c.why;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << c.why;
  }
  EXPECT_TRUE(CheckBalanced(Tx("x", {{max_name, 10, "EUR"}, {"b", -10, "EUR"}})).ok());
  // Sums do not overflow.
  EXPECT_FALSE(CheckBalanced(Tx("x", {{"a", INT64_MAX, "EUR"}, {"b", INT64_MAX, "EUR"}, {"c", 2, "EUR"}})).ok());
  EXPECT_TRUE(CheckBalanced(Tx("x", {{"a", INT64_MAX, "EUR"}, {"b", -INT64_MAX, "EUR"}})).ok());
}

// ---- the store, on both dialects ----

class LedgerStoreTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    scratch_.emplace(GetParam());
    db_ = std::move(db::Database::Open(scratch_->options()).value());
    ASSERT_TRUE(db_->Migrate("payments", PaymentsMigrations()).ok());
  }
  void TearDown() override { db_.reset(); }

  int64_t Bal(std::string_view account, std::string_view currency = "EUR") {
    auto b = Balance(*db_, account, currency);
    EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
    return b.ok() ? *b : INT64_MIN;
  }
  int64_t Count(const char* table) {
    auto rows = db_->Exec("test.count", std::string("SELECT COUNT(*) FROM ") + table);
    EXPECT_TRUE(rows.ok());
    return rows.ok() ? (*rows)[0].Int(0) : -1;
  }
  VerifyReport MustVerify() {
    auto r = Verify(*db_);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : VerifyReport{};
  }

  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
};

TEST_P(LedgerStoreTest, EscrowFlowBalancesAtEachStep) {
  // Capture: buyer payment -> escrow.
  ASSERT_TRUE(Post(*db_, Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}))
                  .ok());
  EXPECT_EQ(Bal("buyer_payments"), -1000);
  EXPECT_EQ(Bal("escrow:ord_1"), 1000);
  EXPECT_EQ(Bal("seller_payable:usr_s"), 0);
  EXPECT_EQ(Bal("escrow:ord_1", "USD"), 0);

  // Release: escrow -> seller payable 900 + commission 100.
  ASSERT_TRUE(Post(*db_, Tx("escrow.released", {{"escrow:ord_1", -1000, "EUR"},
                                                {"seller_payable:usr_s", 900, "EUR"},
                                                {"platform_commission", 100, "EUR"}}))
                  .ok());
  EXPECT_EQ(Bal("buyer_payments"), -1000);
  EXPECT_EQ(Bal("escrow:ord_1"), 0);
  EXPECT_EQ(Bal("seller_payable:usr_s"), 900);
  EXPECT_EQ(Bal("platform_commission"), 100);

  // A second seller's order, to see Balances by prefix.
  ASSERT_TRUE(Post(*db_, Tx("escrow.released", {{"escrow:ord_2", -500, "EUR"}, {"seller_payable:usr_t", 500, "EUR"}},
                            "ord_2"))
                  .ok());
  auto payable = Balances(*db_, "seller_payable:");
  ASSERT_TRUE(payable.ok());
  EXPECT_EQ(*payable, (std::vector<AccountBalance>{{"seller_payable:usr_s", "EUR", 900},
                                                   {"seller_payable:usr_t", "EUR", 500}}));

  // Payout: seller payable -> provider cash.
  ASSERT_TRUE(Post(*db_, Tx("payout.paid", {{"seller_payable:usr_s", -900, "EUR"}, {"provider_cash", 900, "EUR"}},
                            "po_1"))
                  .ok());
  EXPECT_EQ(Bal("seller_payable:usr_s"), 0);
  EXPECT_EQ(Bal("provider_cash"), 900);
  EXPECT_EQ(Bal("platform_commission"), 100);

  // Prefix matching is exact: '_' and '%' are not wildcards, and case counts.
  auto none = Balances(*db_, "seller_payable_");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto upper = Balances(*db_, "SELLER_PAYABLE:");
  ASSERT_TRUE(upper.ok());
  EXPECT_TRUE(upper->empty());

  // Everything sums to zero.
  auto all = Balances(*db_, "");
  ASSERT_TRUE(all.ok());
  int64_t total = 0;
  for (const auto& b : *all) total += b.balance;
  EXPECT_EQ(total, 0);

  VerifyReport report = MustVerify();
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(report.transactions, 4);
  EXPECT_EQ(report.entries, 9);
}

TEST_P(LedgerStoreTest, RefusesBrokenTransactionsAndWritesNothing) {
  for (const auto& entries : std::vector<std::vector<Entry>>{
           {{"a", 1000, "EUR"}, {"b", -999, "EUR"}},
           {{"a", 1000, "EUR"}},
           {{"a", 0, "EUR"}, {"b", 0, "EUR"}},
           {{"a", 1000, "EUR"}, {"b", -1000, "USD"}},
       }) {
    Status s = Post(*db_, Tx("x", entries));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    // Also inside a caller's transaction.
    Status in_tx = db_->Transact("test", db::TxMode::kWrite, [&](db::Tx& tx) { return Post(tx, Tx("x", entries)); });
    ASSERT_FALSE(in_tx.ok());
    EXPECT_EQ(in_tx.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(Count("ledger_transactions"), 0);
  EXPECT_EQ(Count("ledger_entries"), 0);
  EXPECT_EQ(Bal("a"), 0);
}

TEST_P(LedgerStoreTest, ReusedTransactionIdIsConflict) {
  LedgerTransaction t = Tx("x", {{"a", 10, "EUR"}, {"b", -10, "EUR"}});
  ASSERT_TRUE(Post(*db_, t).ok());
  Status again = Post(*db_, t);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Bal("a"), 10);
}

TEST_P(LedgerStoreTest, IdempotencyKeyPostsOnce) {
  for (int i = 0; i < 3; ++i) {
    // A new transaction id each time, as a re-delivered webhook would make.
    ASSERT_TRUE(
        Post(*db_, Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}), "evt_1")
            .ok());
  }
  EXPECT_EQ(Bal("escrow:ord_1"), 1000);
  EXPECT_EQ(Count("ledger_transactions"), 1);
  EXPECT_EQ(Count("ledger_entries"), 2);
  // Another key posts again; no key always posts.
  ASSERT_TRUE(
      Post(*db_, Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}), "evt_2")
          .ok());
  ASSERT_TRUE(Post(*db_, Tx("payment.captured", {{"buyer_payments", -1, "EUR"}, {"escrow:ord_1", 1, "EUR"}})).ok());
  ASSERT_TRUE(Post(*db_, Tx("payment.captured", {{"buyer_payments", -1, "EUR"}, {"escrow:ord_1", 1, "EUR"}})).ok());
  EXPECT_EQ(Bal("escrow:ord_1"), 2002);
  EXPECT_TRUE(MustVerify().problems.empty());
}

TEST_P(LedgerStoreTest, ConcurrentPostsWithOneKeyPostOnce) {
  constexpr int kThreads = 10;
  std::atomic<int> failures{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      Status s = Post(*db_, Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}),
                      "evt_concurrent");
      if (!s.ok()) {
        ADD_FAILURE() << s.error().message;
        ++failures;
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Count("ledger_transactions"), 1);
  EXPECT_EQ(Count("ledger_entries"), 2);
  EXPECT_EQ(Bal("escrow:ord_1"), 1000);
}

TEST_P(LedgerStoreTest, PostInACallerTransactionThatRollsBackLeavesNothing) {
  Status s = db_->Transact("test.state_change", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(
        Post(tx, Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}), "evt_rb"));
    return Error::FailedPrecondition("the order changed meanwhile");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Count("ledger_transactions"), 0);
  EXPECT_EQ(Count("ledger_entries"), 0);
  EXPECT_EQ(Bal("escrow:ord_1"), 0);
  // The key was not consumed: posting again works.
  ASSERT_TRUE(
      Post(*db_, Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}}), "evt_rb")
          .ok());
  EXPECT_EQ(Bal("escrow:ord_1"), 1000);

  // And one that commits keeps both writes.
  ASSERT_TRUE(db_->Transact("test.state_change", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
                   return Post(tx, Tx("escrow.released", {{"escrow:ord_1", -1000, "EUR"},
                                                          {"seller_payable:usr_s", 1000, "EUR"}}));
                 }).ok());
  EXPECT_EQ(Bal("escrow:ord_1"), 0);
  EXPECT_EQ(Bal("seller_payable:usr_s"), 1000);
}

TEST_P(LedgerStoreTest, VerifyReportsBrokenRowsByTransactionId) {
  VerifyReport empty = MustVerify();
  EXPECT_TRUE(empty.problems.empty());
  EXPECT_EQ(empty.transactions, 0);
  EXPECT_EQ(empty.entries, 0);

  LedgerTransaction good = Tx("payment.captured", {{"buyer_payments", -1000, "EUR"}, {"escrow:ord_1", 1000, "EUR"}});
  LedgerTransaction victim = Tx("escrow.released", {{"escrow:ord_1", -1000, "EUR"}, {"seller_payable:usr_s", 1000, "EUR"}});
  ASSERT_TRUE(Post(*db_, good).ok());
  ASSERT_TRUE(Post(*db_, victim).ok());
  EXPECT_TRUE(MustVerify().problems.empty());

  // An entry that unbalances `victim`, and an orphan entry, written behind
  // the ledger's back.
  ASSERT_TRUE(db_->Exec("test.break", "INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                                      "VALUES ($1, 2, 'platform_commission', 50, 'EUR')",
                        {victim.id})
                  .ok());
  ASSERT_TRUE(db_->Exec("test.orphan", "INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                                       "VALUES ('ltx_ORPHAN', 0, 'provider_cash', 70, 'EUR')")
                  .ok());
  // A transaction with no entries at all.
  ASSERT_TRUE(db_->Exec("test.lonely", "INSERT INTO ledger_transactions (id, kind, reference, created_at_ms) "
                                       "VALUES ('ltx_LONELY', 'x', 'y', 0)")
                  .ok());

  VerifyReport report = MustVerify();
  EXPECT_EQ(report.transactions, 3);
  EXPECT_EQ(report.entries, 6);
  auto mentions = [&](const std::string& needle) {
    int n = 0;
    for (const auto& line : report.problems) n += line.find(needle) != std::string::npos;
    return n;
  };
  for (const auto& line : report.problems) std::cout << "  problem: " << line << "\n";
  EXPECT_GE(mentions(victim.id), 1);
  EXPECT_EQ(mentions(good.id), 0);
  EXPECT_GE(mentions("ltx_ORPHAN"), 1);  // orphan, and its own "transaction" is unbalanced
  EXPECT_GE(mentions("does not exist"), 1);
  EXPECT_GE(mentions("ltx_LONELY"), 1);
  EXPECT_FALSE(report.truncated);
}

TEST_P(LedgerStoreTest, VerifyCapsTheProblemList) {
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(db_->Exec("test.orphan", "INSERT INTO ledger_entries (transaction_id, seq, account, amount, currency) "
                                         "VALUES ($1, 0, 'a', 1, 'EUR')",
                          {"ltx_" + std::to_string(1000 + i)})
                    .ok());
  }
  VerifyReport report = MustVerify();
  EXPECT_EQ(report.problems.size(), kMaxProblems);
  EXPECT_TRUE(report.truncated);
}

INSTANTIATE_TEST_SUITE_P(Drivers, LedgerStoreTest, db::testing::AllDialects(), db::testing::DialectParamName);

}  // namespace
}  // namespace agora::payments::ledger
