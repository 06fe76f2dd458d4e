#include "core/idempotency/idempotency.h"

#include <atomic>
#include <barrier>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/db/db_testing.h"

namespace agora::idempotency {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kScope = "usr_1:POST /v1/payments";
constexpr std::string_view kKey = "8e03978e-40d5-43e8-bc93-6894a57f9324";

std::string Fp(std::string_view body) { return Fingerprint("POST", "/v1/payments", body); }

Saved Created(std::string body) {
  return Saved{201, "application/json", std::move(body), {{"Location", "/v1/payments/pay_1"}}};
}

class IdempotencyTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
    scratch_.emplace(GetParam());
    db_ = std::move(db::Database::Open(scratch_->options()).value());
    ASSERT_TRUE(db_->Migrate("test.idempotency", Migrations()).ok());
    store_ = std::make_unique<Store>(*db_, clock_, StoreOptions{24h, 60s});
  }

  void TearDown() override {
    store_.reset();
    db_.reset();
    scratch_.reset();
  }

  Begin MustStart(std::string_view scope, std::string_view key, std::string_view fp) {
    auto r = store_->Start(scope, key, fp);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : Begin{};
  }

  // A table standing in for the payments work's state change.
  void CreateChargesTable() {
    ASSERT_TRUE(db_->Exec("test.create_charges",
                          "CREATE TABLE charges (id TEXT PRIMARY KEY, amount BIGINT NOT NULL)")
                    .ok());
  }
  int64_t CountCharges() {
    auto r = db_->Exec("test.count_charges", "SELECT COUNT(*) FROM charges");
    EXPECT_TRUE(r.ok());
    return r.ok() ? (*r)[0].Int(0) : -1;
  }

  ManualClock clock_;
  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<Store> store_;
};

TEST_P(IdempotencyTest, FirstUseProceeds) {
  Begin b = MustStart(kScope, kKey, Fp("{}"));
  EXPECT_EQ(b.outcome, Outcome::kProceed);
  EXPECT_FALSE(b.taken_over);
  EXPECT_FALSE(b.saved.has_value());
  EXPECT_EQ(b.lease.scope, kScope);
  EXPECT_EQ(b.lease.key, kKey);
  EXPECT_FALSE(b.lease.token.empty());
}

TEST_P(IdempotencyTest, ReplayReturnsTheSavedResponseByteForByte) {
  std::string body = "{\"id\":\"pay_1\",\"note\":\"caf\xc3\xa9\"}";
  body += std::string("\0\xff\x01 trailing\r\n", 14);  // arbitrary bytes survive too
  Saved saved{201, "application/json; charset=utf-8", body,
              {{"Location", "/v1/payments/pay_1"}, {"ETag", "\"v1\""}}};

  Begin first = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(first.outcome, Outcome::kProceed);
  ASSERT_TRUE(store_->Finish(first.lease, saved).ok());

  for (int i = 0; i < 2; ++i) {
    Begin again = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
    ASSERT_EQ(again.outcome, Outcome::kReplay) << OutcomeName(again.outcome);
    ASSERT_TRUE(again.saved.has_value());
    EXPECT_EQ(*again.saved, saved);
    EXPECT_EQ(again.saved->body.size(), body.size());
    EXPECT_TRUE(again.lease.token.empty());
  }
  // A 4xx answer is saved and replayed too.
  Begin other = MustStart(kScope, "key-2", Fp("{}"));
  Saved refused{402, "application/problem+json", "{\"type\":\"/problems/card-declined\"}", {}};
  ASSERT_TRUE(store_->Finish(other.lease, refused).ok());
  Begin replay = MustStart(kScope, "key-2", Fp("{}"));
  ASSERT_EQ(replay.outcome, Outcome::kReplay);
  EXPECT_EQ(*replay.saved, refused);
}

TEST_P(IdempotencyTest, SameKeyWithAnotherRequestIsAMismatch) {
  Begin first = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(first.outcome, Outcome::kProceed);
  // While the first is still running...
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"amount\":999}")).outcome, Outcome::kMismatch);
  ASSERT_TRUE(store_->Finish(first.lease, Created("{}")).ok());
  // ...and after it finished: another body, another path, another method.
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"amount\":999}")).outcome, Outcome::kMismatch);
  EXPECT_EQ(MustStart(kScope, kKey, Fingerprint("POST", "/v1/refunds", "{\"amount\":100}")).outcome,
            Outcome::kMismatch);
  EXPECT_EQ(MustStart(kScope, kKey, Fingerprint("PUT", "/v1/payments", "{\"amount\":100}")).outcome,
            Outcome::kMismatch);
  // The original still replays.
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"amount\":100}")).outcome, Outcome::kReplay);
}

TEST_P(IdempotencyTest, AConcurrentDuplicateIsInProgressWithRetryAfter) {
  Begin first = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(first.outcome, Outcome::kProceed);
  clock_.Advance(15s);
  Begin second = MustStart(kScope, kKey, Fp("{}"));
  EXPECT_EQ(second.outcome, Outcome::kInProgress);
  EXPECT_EQ(second.retry_after, 45s);
  EXPECT_TRUE(second.lease.token.empty());
  clock_.Advance(44s + 500ms);  // 0.5 s left: rounds up to 1 s
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{}")).retry_after, 1s);
}

// 20 threads start the same request at once: exactly one runs it.
TEST_P(IdempotencyTest, ConcurrentStartsLetExactlyOneProceed) {
  constexpr int kThreads = 20;
  std::barrier sync(kThreads);
  std::atomic<int> proceed{0}, in_progress{0}, replay{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      sync.arrive_and_wait();
      auto r = store_->Start(kScope, kKey, Fp("{\"amount\":100}"));
      if (!r.ok()) {
        ADD_FAILURE() << r.error().message;
        ++other;
        return;
      }
      switch (r->outcome) {
        case Outcome::kProceed:
          ++proceed;
          // Finish at once, so some of the others may already see the answer.
          EXPECT_TRUE(store_->Finish(r->lease, Created("{\"id\":\"pay_1\"}")).ok());
          break;
        case Outcome::kInProgress: ++in_progress; break;
        case Outcome::kReplay:
          ++replay;
          EXPECT_EQ(r->saved->body, "{\"id\":\"pay_1\"}");
          break;
        case Outcome::kMismatch: ++other; break;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(proceed.load(), 1);
  EXPECT_EQ(in_progress.load() + replay.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"amount\":100}")).outcome, Outcome::kReplay);
}

// The same race on an expired lease: exactly one takes it over.
TEST_P(IdempotencyTest, ConcurrentTakeoversLetExactlyOneProceed) {
  ASSERT_EQ(MustStart(kScope, kKey, Fp("{}")).outcome, Outcome::kProceed);
  clock_.Advance(61s);
  constexpr int kThreads = 20;
  std::barrier sync(kThreads);
  std::atomic<int> proceed{0}, in_progress{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      sync.arrive_and_wait();
      auto r = store_->Start(kScope, kKey, Fp("{}"));
      if (!r.ok()) {
        ADD_FAILURE() << r.error().message;
        ++other;
      } else if (r->outcome == Outcome::kProceed) {
        EXPECT_TRUE(r->taken_over);
        ++proceed;
      } else if (r->outcome == Outcome::kInProgress) {
        ++in_progress;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(proceed.load(), 1);
  EXPECT_EQ(in_progress.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

TEST_P(IdempotencyTest, AnExpiredLeaseIsTakenOverAndTheOldOwnerIsFencedOut) {
  Begin first = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(first.outcome, Outcome::kProceed);
  clock_.Advance(60s);  // locked_until == now: expired
  Begin second = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(second.outcome, Outcome::kProceed);
  EXPECT_TRUE(second.taken_over);
  EXPECT_NE(second.lease.token, first.lease.token);
  // The new owner holds a fresh lease.
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{}")).outcome, Outcome::kInProgress);

  // The first process, back from the dead, can neither save nor release.
  Status late = store_->Finish(first.lease, Created("{\"from\":\"first\"}"));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(late.error().type, "idempotency-lease-lost");
  ASSERT_TRUE(store_->Abandon(first.lease).ok());  // a no-op
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{}")).outcome, Outcome::kInProgress);

  ASSERT_TRUE(store_->Finish(second.lease, Created("{\"from\":\"second\"}")).ok());
  Begin replay = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(replay.outcome, Outcome::kReplay);
  EXPECT_EQ(replay.saved->body, "{\"from\":\"second\"}");
  // A finished record is never taken over, however late.
  clock_.Advance(2h);
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{}")).outcome, Outcome::kReplay);
}

TEST_P(IdempotencyTest, AbandonLetsARetryProceed) {
  Begin first = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(first.outcome, Outcome::kProceed);
  ASSERT_TRUE(store_->Abandon(first.lease).ok());
  Begin retry = MustStart(kScope, kKey, Fp("{}"));
  EXPECT_EQ(retry.outcome, Outcome::kProceed);
  EXPECT_FALSE(retry.taken_over);
  // Abandoning twice, or a stale lease, is harmless.
  ASSERT_TRUE(store_->Abandon(first.lease).ok());
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{}")).outcome, Outcome::kInProgress);
  // After an abandon the key is free for another body too: nothing was saved.
  ASSERT_TRUE(store_->Abandon(retry.lease).ok());
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"other\":1}")).outcome, Outcome::kProceed);
}

// Only 2xx and 4xx answers are saved. A handler that answers 5xx calls
// Abandon (Finish with a 5xx does the same), so the client's retry runs again.
TEST_P(IdempotencyTest, AServerErrorIsNotSaved) {
  EXPECT_TRUE(IsReplayable(200));
  EXPECT_TRUE(IsReplayable(201));
  EXPECT_TRUE(IsReplayable(400));
  EXPECT_TRUE(IsReplayable(422));
  EXPECT_FALSE(IsReplayable(500));
  EXPECT_FALSE(IsReplayable(503));
  EXPECT_FALSE(IsReplayable(429));
  EXPECT_FALSE(IsReplayable(408));
  EXPECT_FALSE(IsReplayable(302));

  Begin first = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(first.outcome, Outcome::kProceed);
  ASSERT_TRUE(store_->Finish(first.lease, Saved{503, "application/problem+json", "{}", {}}).ok());
  Begin retry = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(retry.outcome, Outcome::kProceed);
  EXPECT_FALSE(retry.taken_over);

  ASSERT_TRUE(store_->Abandon(retry.lease).ok());  // what a handler does on a 5xx
  Begin third = MustStart(kScope, kKey, Fp("{}"));
  ASSERT_EQ(third.outcome, Outcome::kProceed);
  ASSERT_TRUE(store_->Finish(third.lease, Created("{}")).ok());
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{}")).outcome, Outcome::kReplay);

  Status bad = store_->Finish(third.lease, Saved{99, "", "", {}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInternal);
}

TEST_P(IdempotencyTest, PurgeRemovesRecordsPastRetentionOnly) {
  Begin done = MustStart(kScope, "finished", Fp("{}"));
  ASSERT_TRUE(store_->Finish(done.lease, Created("{}")).ok());
  Begin crashed = MustStart(kScope, "crashed", Fp("{}"));  // never finished
  ASSERT_EQ(crashed.outcome, Outcome::kProceed);

  clock_.Advance(24h);  // exactly the retention: kept
  auto purged = store_->Purge();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 0);
  EXPECT_EQ(MustStart(kScope, "finished", Fp("{}")).outcome, Outcome::kReplay);

  clock_.Advance(1ms);  // the answer is older than 24 h; the crashed lease ended 24 h - 59 s ago
  purged = store_->Purge();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(MustStart(kScope, "finished", Fp("{}")).outcome, Outcome::kProceed);

  clock_.Advance(60s);  // now the crashed record's lease ended more than 24 h ago too
  purged = store_->Purge();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  Begin again = MustStart(kScope, "crashed", Fp("{}"));
  EXPECT_EQ(again.outcome, Outcome::kProceed);
  EXPECT_FALSE(again.taken_over);  // a new record, not a takeover
}

TEST_P(IdempotencyTest, PurgeWorksInBatches) {
  for (int i = 0; i < 1005; ++i) {
    Begin b = MustStart(kScope, "k" + std::to_string(i), Fp("{}"));
    ASSERT_TRUE(store_->Finish(b.lease, Created("{}")).ok());
  }
  clock_.Advance(25h);
  auto purged = store_->Purge();
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1005);
}

TEST_P(IdempotencyTest, ScopesIsolateKeys) {
  Begin a = MustStart("usr_a:POST /v1/payments", kKey, Fp("{\"amount\":1}"));
  Begin b = MustStart("usr_b:POST /v1/payments", kKey, Fp("{\"amount\":2}"));
  Begin c = MustStart("usr_a:POST /v1/refunds", kKey, Fp("{\"amount\":3}"));
  EXPECT_EQ(a.outcome, Outcome::kProceed);
  EXPECT_EQ(b.outcome, Outcome::kProceed);
  EXPECT_EQ(c.outcome, Outcome::kProceed);
  ASSERT_TRUE(store_->Finish(a.lease, Created("a")).ok());
  ASSERT_TRUE(store_->Finish(b.lease, Created("b")).ok());
  EXPECT_EQ(MustStart("usr_a:POST /v1/payments", kKey, Fp("{\"amount\":1}")).saved->body, "a");
  EXPECT_EQ(MustStart("usr_b:POST /v1/payments", kKey, Fp("{\"amount\":2}")).saved->body, "b");
  EXPECT_EQ(MustStart("usr_a:POST /v1/refunds", kKey, Fp("{\"amount\":3}")).outcome,
            Outcome::kInProgress);
  // A lease is for its own scope only.
  Lease wrong = a.lease;
  wrong.scope = "usr_b:POST /v1/payments";
  EXPECT_FALSE(store_->Finish(wrong, Created("x")).ok());
}

TEST_P(IdempotencyTest, InvalidKeysAreRefused) {
  std::string control = "abc";
  control[1] = '\x01';
  const std::vector<std::string> bad = {
      "",
      std::string(256, 'k'),
      "caf\xc3\xa9",  // non-ASCII (UTF-8)
      control,
      "tab\there",
      "line\nbreak",
      std::string("nul\0byte", 8),
      "del\x7f",
  };
  for (const std::string& key : bad) {
    auto r = store_->Start(kScope, key, Fp("{}"));
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    ASSERT_EQ(r.error().fields.size(), 1u);
    EXPECT_EQ(r.error().fields[0].field, "Idempotency-Key");
  }
  // The edges that are fine: 255 characters, spaces and punctuation.
  EXPECT_EQ(MustStart(kScope, std::string(255, 'k'), Fp("{}")).outcome, Outcome::kProceed);
  EXPECT_EQ(MustStart(kScope, "a key with spaces ~!@#$%^&*()", Fp("{}")).outcome,
            Outcome::kProceed);
  EXPECT_TRUE(ValidateKey("x").ok());

  // An empty scope or fingerprint is the caller's bug.
  auto no_scope = store_->Start("", kKey, Fp("{}"));
  ASSERT_FALSE(no_scope.ok());
  EXPECT_EQ(no_scope.error().code, ErrorCode::kInternal);
  auto no_fp = store_->Start(kScope, kKey, "");
  ASSERT_FALSE(no_fp.ok());
  EXPECT_EQ(no_fp.error().code, ErrorCode::kInternal);
}

TEST_P(IdempotencyTest, FinishInTxCommitsWithTheStateChange) {
  CreateChargesTable();
  Begin b = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(b.outcome, Outcome::kProceed);
  Status s = db_->Transact("test.charge", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(tx.Exec("test.insert_charge",
                                  "INSERT INTO charges (id, amount) VALUES ($1, $2)",
                                  {std::string("pay_1"), int64_t{100}}));
    return store_->FinishInTx(tx, b.lease, Created("{\"id\":\"pay_1\"}"));
  });
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(CountCharges(), 1);
  Begin replay = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(replay.outcome, Outcome::kReplay);
  EXPECT_EQ(replay.saved->body, "{\"id\":\"pay_1\"}");
}

// The transaction that moves the money fails after FinishInTx: neither the
// charge nor the saved answer commits; the key stays in progress until the
// handler abandons it, and then a retry runs again.
TEST_P(IdempotencyTest, FinishInTxRolledBackLeavesTheKeyInProgress) {
  CreateChargesTable();
  Begin b = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(b.outcome, Outcome::kProceed);
  Status s = db_->Transact("test.charge", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(tx.Exec("test.insert_charge",
                                  "INSERT INTO charges (id, amount) VALUES ($1, $2)",
                                  {std::string("pay_1"), int64_t{100}}));
    AGORA_RETURN_IF_ERROR(store_->FinishInTx(tx, b.lease, Created("{\"id\":\"pay_1\"}")));
    return Error::FailedPrecondition("the ledger refused");  // rolls everything back
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(CountCharges(), 0);
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"amount\":100}")).outcome, Outcome::kInProgress);

  ASSERT_TRUE(store_->Abandon(b.lease).ok());
  Begin retry = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  EXPECT_EQ(retry.outcome, Outcome::kProceed);
  EXPECT_FALSE(retry.taken_over);
}

// A handler that overran its lease and lost the key to a retry cannot commit
// its charge: FinishInTx fails and the charge rolls back with it.
TEST_P(IdempotencyTest, FinishInTxWithALostLeaseRollsTheStateChangeBack) {
  CreateChargesTable();
  Begin slow = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(slow.outcome, Outcome::kProceed);
  clock_.Advance(61s);
  Begin retry = MustStart(kScope, kKey, Fp("{\"amount\":100}"));
  ASSERT_EQ(retry.outcome, Outcome::kProceed);
  ASSERT_TRUE(retry.taken_over);

  auto charge = [&](const Lease& lease, std::string id) {
    return db_->Transact("test.charge", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
      AGORA_RETURN_IF_ERROR(tx.Exec("test.insert_charge",
                                    "INSERT INTO charges (id, amount) VALUES ($1, $2)",
                                    {id, int64_t{100}}));
      return store_->FinishInTx(tx, lease, Created("{\"id\":\"" + id + "\"}"));
    });
  };
  Status late = charge(slow.lease, "pay_slow");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().type, "idempotency-lease-lost");
  EXPECT_EQ(CountCharges(), 0);

  ASSERT_TRUE(charge(retry.lease, "pay_retry").ok());
  EXPECT_EQ(CountCharges(), 1);
  EXPECT_EQ(MustStart(kScope, kKey, Fp("{\"amount\":100}")).saved->body, "{\"id\":\"pay_retry\"}");
}

TEST_P(IdempotencyTest, MigrationsApplyOnce) {
  ASSERT_TRUE(db_->Migrate("test.idempotency", Migrations()).ok());
}

TEST(Fingerprint, IsSha256HexAndUnambiguous) {
  std::string fp = Fingerprint("POST", "/v1/payments", "{\"amount\":100}");
  EXPECT_EQ(fp.size(), 64u);
  EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(fp, Fingerprint("POST", "/v1/payments", "{\"amount\":100}"));
  EXPECT_NE(fp, Fingerprint("POST", "/v1/payments", "{\"amount\": 100}"));
  EXPECT_NE(Fingerprint("POST", "/a", "bc"), Fingerprint("POST", "/ab", "c"));
  EXPECT_NE(Fingerprint("POS", "T/a", ""), Fingerprint("POST", "/a", ""));
}

TEST(StoreOptions, RetentionUnderADayIsABug) {
  db::testing::ScratchDatabase scratch(db::Dialect::kSqlite);
  auto opened = db::Database::Open(scratch.options());
  ASSERT_TRUE(opened.ok());
  ManualClock clock;
  EXPECT_THROW(Store(**opened, clock, StoreOptions{23h, 60s}), std::invalid_argument);
  EXPECT_THROW(Store(**opened, clock, StoreOptions{24h, 0s}), std::invalid_argument);
  EXPECT_NO_THROW(Store(**opened, clock, StoreOptions{48h, 5s}));
}

INSTANTIATE_TEST_SUITE_P(Drivers, IdempotencyTest, db::testing::AllDialects(),
                         db::testing::DialectParamName);

}  // namespace
}  // namespace agora::idempotency
