#include "core/db/db.h"

#include <atomic>
#include <barrier>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "core/db/db_testing.h"
#include "core/db/driver.h"

namespace agora::db {
namespace {

class DbTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    if (auto why = testing::SkipReason(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
    scratch_.emplace(GetParam());
    db_ = OpenAnother();
    ASSERT_NE(db_, nullptr);
  }

  void TearDown() override {
    db_.reset();
    scratch_.reset();
  }

  std::unique_ptr<Database> OpenAnother(int pool_size = 8) {
    Options options = scratch_->options();
    options.pool_size = pool_size;
    auto db = Database::Open(options);
    EXPECT_TRUE(db.ok()) << db.error().message;
    return db.ok() ? std::move(db).value() : nullptr;
  }

  bool sqlite() const { return GetParam() == Dialect::kSqlite; }

  void Run(std::string_view sql) {
    auto r = db_->Exec("test.ddl", sql);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }

  int64_t Count(std::string_view table) {
    auto r = db_->Exec("test.count", "SELECT COUNT(*) FROM " + std::string(table));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? (*r)[0].Int(0) : -1;
  }

  std::optional<testing::ScratchDatabase> scratch_;
  std::unique_ptr<Database> db_;
};

INSTANTIATE_TEST_SUITE_P(Drivers, DbTest, testing::AllDialects(), testing::DialectParamName);

TEST_P(DbTest, RoundTripsEveryValueType) {
  Run(std::string("CREATE TABLE vals (id INTEGER PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, "
                  "t TEXT, b ") +
      (sqlite() ? "BLOB" : "BYTEA") + ", flag BOOLEAN)");
  const std::string unicode = "h\xc3\xa9llo \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89";
  const std::string bytes("\x00\x01\xff\x80 \\x'\"", 9);
  const char* insert = "INSERT INTO vals (id, i, d, t, b, flag) VALUES ($1, $2, $3, $4, $5, $6)";
  struct Case {
    Value i, d, t, b, flag;
  };
  std::vector<Case> cases = {
      {int64_t{9223372036854775807}, 0.1, unicode, Blob{bytes}, true},
      {int64_t{-9223372036854775807 - 1}, -1.5e300, std::string(), Blob{}, false},
      {nullptr, nullptr, nullptr, nullptr, nullptr},
  };
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    auto r = db_->Exec("test.insert", insert,
                       {static_cast<int64_t>(k), c.i, c.d, c.t, c.b, c.flag});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->affected, 1);
  }
  auto rows = db_->Exec("test.select", "SELECT i, d, t, b, flag FROM vals ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ(rows->affected, 0);

  const Row& a = (*rows)[0];
  EXPECT_EQ(a.Get(0), Value(int64_t{9223372036854775807}));
  EXPECT_EQ(a.Int(0), 9223372036854775807);
  EXPECT_EQ(a.Double(1), 0.1);
  EXPECT_EQ(a.Text(2), unicode);
  EXPECT_EQ(a.Get(3), Value(Blob{bytes}));
  EXPECT_EQ(a.Bytes(3), bytes);
  EXPECT_TRUE(a.Bool(4));

  const Row& b = (*rows)[1];
  EXPECT_EQ(b.Int(0), -9223372036854775807 - 1);
  EXPECT_EQ(b.Double(1), -1.5e300);
  EXPECT_EQ(b.Get(2), Value(std::string()));
  EXPECT_FALSE(b.IsNull(3));
  EXPECT_EQ(b.Get(3), Value(Blob{}));
  EXPECT_FALSE(b.Bool(4));

  const Row& n = (*rows)[2];
  for (size_t i = 0; i < n.size(); ++i) {
    EXPECT_TRUE(n.IsNull(i)) << i;
  }
  EXPECT_EQ(n.OptInt(0), std::nullopt);
  EXPECT_EQ(n.OptText(2), std::nullopt);
  EXPECT_EQ(a.OptInt(0), 9223372036854775807);
  EXPECT_EQ(a.OptText(2), unicode);
}

TEST_P(DbTest, DollarInsideStringLiteralIsNotAPlaceholder) {
  Run("CREATE TABLE notes (a TEXT, b TEXT)");
  auto ins = db_->Exec("test.insert",
                       "INSERT INTO notes (a, b) VALUES ('costs $1 -- or $2', $1) /* $3 */",
                       {std::string("bound")});
  ASSERT_TRUE(ins.ok()) << ins.error().message;
  auto r = db_->Exec("test.select",
                     "SELECT a, b, CAST($1 AS TEXT) FROM notes WHERE b = $2 AND a <> 'x$2'",
                     {std::string("again"), std::string("bound")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].Text(0), "costs $1 -- or $2");
  EXPECT_EQ((*r)[0].Text(1), "bound");
  EXPECT_EQ((*r)[0].Text(2), "again");
}

TEST(RewritePlaceholdersForSqlite, RewritesOnlyOutsideLiteralsAndComments) {
  EXPECT_EQ(internal::RewritePlaceholdersForSqlite(
                "SELECT '$1', 'it''s $2', \"col$3\", $4, $10 -- $5\n, $6 /* $7 */ FROM t"),
            "SELECT '$1', 'it''s $2', \"col$3\", ?4, ?10 -- $5\n, ?6 /* $7 */ FROM t");
  EXPECT_EQ(internal::RewritePlaceholdersForSqlite("SELECT '$1"), "SELECT '$1");
  EXPECT_EQ(internal::RewritePlaceholdersForSqlite("SELECT $"), "SELECT $");
}

TEST_P(DbTest, UniqueViolationIsConflictWithoutTheValue) {
  Run("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE)");
  const char* insert = "INSERT INTO users (id, email) VALUES ($1, $2)";
  ASSERT_TRUE(db_->Exec("test.insert_user", insert, {1, std::string("secret@example.com")}).ok());

  auto dup_email = db_->Exec("test.insert_user", insert, {2, std::string("secret@example.com")});
  ASSERT_FALSE(dup_email.ok());
  EXPECT_EQ(dup_email.error().code, ErrorCode::kConflict);
  EXPECT_NE(dup_email.error().message.find("test.insert_user"), std::string::npos)
      << dup_email.error().message;
  EXPECT_EQ(dup_email.error().message.find("secret"), std::string::npos)
      << dup_email.error().message;

  auto dup_key = db_->Exec("test.insert_user", insert, {1, std::string("other@example.com")});
  ASSERT_FALSE(dup_key.ok());
  EXPECT_EQ(dup_key.error().code, ErrorCode::kConflict);
}

TEST_P(DbTest, OtherSqlErrorsAreInternalAndNameTheStatement) {
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  auto not_null = db_->Exec("test.not_null", "INSERT INTO t (id, v) VALUES ($1, $2)",
                            {1, nullptr});
  ASSERT_FALSE(not_null.ok());
  EXPECT_EQ(not_null.error().code, ErrorCode::kInternal);

  auto syntax = db_->Exec("test.syntax", "SELEC 1");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().code, ErrorCode::kInternal);
  EXPECT_NE(syntax.error().message.find("test.syntax"), std::string::npos);

  auto arity = db_->Exec("test.arity", "SELECT id FROM t WHERE id = $1", {});
  ASSERT_FALSE(arity.ok());
  EXPECT_EQ(arity.error().code, ErrorCode::kInternal);
}

TEST_P(DbTest, AffectedCountsChangedRows) {
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(db_->Exec("test.insert", "INSERT INTO t (id, v) VALUES ($1, 0)", {i}).ok());
  }
  auto up = db_->Exec("test.update", "UPDATE t SET v = v + 1 WHERE id < $1", {2});
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(up->affected, 2);
  auto del = db_->Exec("test.delete", "DELETE FROM t WHERE id = $1", {99});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->affected, 0);
}

TEST_P(DbTest, ErrorRollsBackAndLeavesNothingWritten) {
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  Status s = db_->Transact("test.fails", TxMode::kWrite, [](Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(tx.Exec("test.insert", "INSERT INTO t (id) VALUES ($1)", {1}));
    return Error::FailedPrecondition("changed my mind");
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(s.error().message, "changed my mind");
  EXPECT_EQ(Count("t"), 0);
  EXPECT_EQ(db_->Stats().in_use, 0);
}

TEST_P(DbTest, HandledStatementFailureNeverCommitsALostTransactionOnPostgres) {
  if (sqlite()) {
    GTEST_SKIP() << "SQLite keeps the transaction after a failed statement";
  }
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  Run("INSERT INTO t (id) VALUES (1)");
  // The failed insert aborts the transaction; pretending otherwise must not
  // report success (PostgreSQL answers the COMMIT with ROLLBACK).
  Status s = db_->Transact("test.handles", TxMode::kWrite, [](Tx& tx) -> Status {
    (void)tx.Exec("test.duplicate", "INSERT INTO t (id) VALUES ($1)", {1});
    (void)tx.Exec("test.other", "INSERT INTO t (id) VALUES ($1)", {2});
    return Ok();
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Count("t"), 1);
  EXPECT_EQ(db_->Stats().in_use, 0);
}

TEST_P(DbTest, ExceptionRollsBackAndIsRethrown) {
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  EXPECT_THROW((void)db_->Transact("test.throws", TxMode::kWrite,
                                   [](Tx& tx) -> Status {
                                     (void)tx.Exec("test.insert",
                                                   "INSERT INTO t (id) VALUES ($1)", {1});
                                     throw std::runtime_error("boom");
                                   }),
               std::runtime_error);
  EXPECT_EQ(Count("t"), 0);
  EXPECT_EQ(db_->Stats().in_use, 0);
}

TEST_P(DbTest, CommitPersistsAndResultValuesPassThrough) {
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  Result<int64_t> r = db_->Transact("test.commit", TxMode::kWrite, [](Tx& tx) -> Result<int64_t> {
    AGORA_RETURN_IF_ERROR(
        tx.Exec("test.insert", "INSERT INTO t (id, v) VALUES ($1, $2)", {7, std::string("x")}));
    AGORA_ASSIGN_OR_RETURN(Rows rows, tx.Exec("test.max", "SELECT MAX(id) FROM t"));
    return rows[0].Int(0);
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 7);

  auto other = OpenAnother();
  auto rows = other->Exec("test.select", "SELECT v FROM t WHERE id = $1", {7});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Text(0), "x");

  Result<int64_t> err = db_->Transact("test.err", TxMode::kRead,
                                      [](Tx&) -> Result<int64_t> { return Error::NotFound("no"); });
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().code, ErrorCode::kNotFound);
}

// A transaction that loses a write race (SQLite: a stale read snapshot;
// PostgreSQL: REPEATABLE READ serialization failure) is run again.
TEST_P(DbTest, ContentionRetriesTheWholeTransaction) {
  Run("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
  ASSERT_TRUE(db_->Exec("test.seed", "INSERT INTO c (id, n) VALUES (1, 0)").ok());
  auto other = OpenAnother();
  auto race = [&](int interfere_times, int* attempts) {
    return db_->Transact("test.race", sqlite() ? TxMode::kRead : TxMode::kWrite,
                         [&](Tx& tx) -> Status {
                           ++*attempts;
                           if (tx.dialect() == Dialect::kPostgres) {
                             AGORA_RETURN_IF_ERROR(tx.Exec(
                                 "test.iso", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
                           }
                           AGORA_RETURN_IF_ERROR(tx.Exec("test.read", "SELECT n FROM c"));
                           if (*attempts <= interfere_times) {
                             auto w = other->Exec("test.interfere", "UPDATE c SET n = n + 100");
                             EXPECT_TRUE(w.ok()) << w.error().message;
                           }
                           AGORA_RETURN_IF_ERROR(tx.Exec("test.write", "UPDATE c SET n = n + 1"));
                           return Ok();
                         });
  };
  int attempts = 0;
  Status s = race(1, &attempts);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(attempts, 2);
  auto n = db_->Exec("test.read", "SELECT n FROM c");
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ((*n)[0].Int(0), 101);

  attempts = 0;
  s = race(100, &attempts);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(attempts, 6);
}

const Migration kMigrations[] = {
    {1, "create_items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
                        "CREATE INDEX items_name ON items (name);"},
    {2, "seed_items", "INSERT INTO items (id, name) VALUES (1, 'first')"},
};

int64_t AppliedCount(Database& db, std::string_view component) {
  auto r = db.Exec("test.applied", "SELECT COUNT(*) FROM schema_migrations WHERE component = $1",
                   {std::string(component)});
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? (*r)[0].Int(0) : -1;
}

TEST_P(DbTest, MigrateAppliesOnceAndIsIdempotent) {
  ASSERT_TRUE(db_->Migrate("test.items", kMigrations).ok());
  Status again = db_->Migrate("test.items", kMigrations);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(Count("items"), 1);
  EXPECT_EQ(AppliedCount(*db_, "test.items"), 2);

  std::vector<Migration> more(std::begin(kMigrations), std::end(kMigrations));
  more.push_back({3, "seed_more", "INSERT INTO items (id, name) VALUES (2, 'second')"});
  ASSERT_TRUE(db_->Migrate("test.items", more).ok());
  EXPECT_EQ(Count("items"), 2);
  EXPECT_EQ(AppliedCount(*db_, "test.items"), 3);

  auto row = db_->Exec("test.row",
                       "SELECT name, applied_at FROM schema_migrations "
                       "WHERE component = $1 AND version = $2",
                       {std::string("test.items"), 3});
  ASSERT_TRUE(row.ok());
  EXPECT_EQ((*row)[0].Text(0), "seed_more");
  EXPECT_FALSE((*row)[0].Text(1).empty());

  // Components are independent.
  const Migration other[] = {{1, "other_table", "CREATE TABLE other (id INTEGER)"}};
  ASSERT_TRUE(db_->Migrate("test.other", other).ok());
  EXPECT_EQ(AppliedCount(*db_, "test.other"), 1);
}

TEST_P(DbTest, MigrateRefusesARenamedVersion) {
  ASSERT_TRUE(db_->Migrate("test.items", kMigrations).ok());
  const Migration renamed[] = {
      {1, "create_things", kMigrations[0].sql},
      {2, "seed_items", kMigrations[1].sql},
      {3, "seed_more", "INSERT INTO items (id, name) VALUES (2, 'second')"},
  };
  Status s = db_->Migrate("test.items", renamed);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_NE(s.error().message.find("create_things"), std::string::npos) << s.error().message;
  EXPECT_EQ(Count("items"), 1);  // version 3 was not applied

  const Migration twice[] = {{1, "a", "SELECT 1"}, {1, "b", "SELECT 1"}};
  Status dup = db_->Migrate("test.dup", twice);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kInternal);
}

TEST_P(DbTest, FailedMigrationIsRolledBack) {
  ASSERT_TRUE(db_->Migrate("test.items", kMigrations).ok());
  const Migration bad[] = {
      {1, "half", "CREATE TABLE half (id INTEGER); INSERT INTO nowhere VALUES (1);"}};
  Status s = db_->Migrate("test.bad", bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
  EXPECT_NE(s.error().message.find("half"), std::string::npos) << s.error().message;
  EXPECT_FALSE(db_->Exec("test.probe", "SELECT COUNT(*) FROM half").ok());
  EXPECT_EQ(AppliedCount(*db_, "test.bad"), 0);
}

TEST_P(DbTest, MigrateUsesPostgresSqlOnPostgres) {
  const Migration m[] = {{1, "serial",
                          "CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)",
                          "CREATE TABLE seq (id BIGSERIAL PRIMARY KEY, v TEXT)"}};
  ASSERT_TRUE(db_->Migrate("test.seq", m).ok());
  auto r = db_->Exec("test.insert", "INSERT INTO seq (v) VALUES ($1) RETURNING id",
                     {std::string("a")});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].Int(0), 1);
}

TEST_P(DbTest, ConcurrentMigrateFromTwoProcesses) {
  auto a = OpenAnother();
  auto b = OpenAnother();
  for (int round = 0; round < 3; ++round) {
    std::string component = "test.race" + std::to_string(round);
    std::string table = "race" + std::to_string(round);
    std::string create = "CREATE TABLE " + table + " (id INTEGER PRIMARY KEY)";
    std::string seed = "INSERT INTO " + table + " (id) VALUES (1)";
    const Migration m[] = {{1, "create", create}, {2, "seed", seed}};
    std::barrier sync(2);
    Status sa, sb;
    std::thread ta([&] {
      sync.arrive_and_wait();
      sa = a->Migrate(component, m);
    });
    std::thread tb([&] {
      sync.arrive_and_wait();
      sb = b->Migrate(component, m);
    });
    ta.join();
    tb.join();
    ASSERT_TRUE(sa.ok()) << sa.error().message;
    ASSERT_TRUE(sb.ok()) << sb.error().message;
    EXPECT_EQ(Count(table), 1);
    EXPECT_EQ(AppliedCount(*db_, component), 2);
  }
}

TEST_P(DbTest, ConcurrentTransactionsKeepAnExactCount) {
  Run("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
  ASSERT_TRUE(db_->Exec("test.seed", "INSERT INTO counter (id, n) VALUES (1, 0)").ok());
  constexpr int kThreads = 8;
  constexpr int kEach = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        Status s = db_->Transact("test.increment", TxMode::kWrite, [](Tx& tx) -> Status {
          AGORA_ASSIGN_OR_RETURN(Rows r, tx.Exec("test.increment",
                                                 "UPDATE counter SET n = n + 1 WHERE id = $1",
                                                 {1}));
          return r.affected == 1 ? Ok() : Status(Error::Internal("no row"));
        });
        if (!s.ok()) {
          ++failures;
          ADD_FAILURE() << s.error().message;
        }
        auto read = db_->Transact("test.read", TxMode::kRead, [](Tx& tx) -> Result<int64_t> {
          AGORA_ASSIGN_OR_RETURN(Rows r, tx.Exec("test.read", "SELECT n FROM counter"));
          return r[0].Int(0);
        });
        if (!read.ok()) {
          ADD_FAILURE() << read.error().message;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  auto r = db_->Exec("test.read", "SELECT n FROM counter");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].Int(0), kThreads * kEach);
  PoolStats stats = db_->Stats();
  EXPECT_EQ(stats.in_use, 0);
  EXPECT_LE(stats.size, 8);
  EXPECT_GE(stats.size, 1);
}

TEST_P(DbTest, ExhaustedPoolGivesUnavailable) {
  Options options = scratch_->options();
  options.pool_size = 1;
  options.acquire_timeout = std::chrono::milliseconds(50);
  auto small = Database::Open(options);
  ASSERT_TRUE(small.ok());
  Database& db = **small;
  Status s = db.Transact("test.outer", TxMode::kRead, [&](Tx&) -> Status {
    auto inner = db.Exec("test.inner", "SELECT 1");
    EXPECT_FALSE(inner.ok());
    if (!inner.ok()) {
      EXPECT_EQ(inner.error().code, ErrorCode::kUnavailable);
    }
    return Ok();
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(db.Stats().waits, 1);
  EXPECT_TRUE(db.Ping().ok());
}

TEST_P(DbTest, ReadOnlyTransactionRefusesWritesOnPostgres) {
  if (sqlite()) {
    GTEST_SKIP() << "SQLite's BEGIN DEFERRED does not refuse writes";
  }
  Run("CREATE TABLE t (id INTEGER PRIMARY KEY)");
  Status s = db_->Transact("test.ro", TxMode::kRead, [](Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(tx.Exec("test.insert", "INSERT INTO t (id) VALUES (1)"));
    return Ok();
  });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInternal);
}

// A checkout and its orders read in one read transaction must come from
// one commit, even when another commit lands between the two statements.
TEST_P(DbTest, ReadTransactionSeesOneSnapshot) {
  Run("CREATE TABLE parent (id INTEGER PRIMARY KEY, status TEXT NOT NULL)");
  Run("CREATE TABLE child (id INTEGER PRIMARY KEY, status TEXT NOT NULL)");
  ASSERT_TRUE(db_->Exec("test.seed", "INSERT INTO parent (id, status) VALUES (1, 'pending')").ok());
  ASSERT_TRUE(db_->Exec("test.seed", "INSERT INTO child (id, status) VALUES (1, 'pending')").ok());
  auto other = OpenAnother();
  auto seen = db_->Transact("test.snapshot", TxMode::kRead, [&](Tx& tx) -> Result<std::string> {
    AGORA_ASSIGN_OR_RETURN(Rows p, tx.Exec("test.parent", "SELECT status FROM parent WHERE id = 1"));
    Status moved = other->Transact("test.move", TxMode::kWrite, [](Tx& w) -> Status {
      AGORA_RETURN_IF_ERROR(w.Exec("test.move_parent", "UPDATE parent SET status = 'paid'"));
      return StatusOf(w.Exec("test.move_child", "UPDATE child SET status = 'paid'"));
    });
    EXPECT_TRUE(moved.ok()) << moved.error().message;
    AGORA_ASSIGN_OR_RETURN(Rows c, tx.Exec("test.child", "SELECT status FROM child WHERE id = 1"));
    return p[0].Text(0) + "/" + c[0].Text(0);
  });
  ASSERT_TRUE(seen.ok()) << seen.error().message;
  EXPECT_EQ(*seen, "pending/pending");
  auto after = db_->Exec("test.after", "SELECT status FROM child WHERE id = 1");
  ASSERT_TRUE(after.ok()) << after.error().message;
  EXPECT_EQ((*after)[0].Text(0), "paid");
}

TEST_P(DbTest, BrokenPostgresConnectionIsReplaced) {
  if (sqlite()) {
    GTEST_SKIP() << "PostgreSQL only: a server can drop a connection";
  }
  auto single = OpenAnother(/*pool_size=*/1);
  auto kill_connection = [&] {
    auto pid = single->Exec("test.pid", "SELECT pg_backend_pid()");
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    // With a timeout, pg_terminate_backend waits until the backend is gone.
    auto killed = db_->Exec("test.terminate",
                            "SELECT pg_terminate_backend(CAST($1 AS INTEGER), 5000)",
                            {(*pid)[0].Int(0)});
    ASSERT_TRUE(killed.ok()) << killed.error().message;
    ASSERT_TRUE((*killed)[0].Bool(0));
  };
  kill_connection();
  auto select_one = [&] {
    return single->Transact("test.after_kill", TxMode::kRead, [](Tx& tx) -> Result<int64_t> {
      AGORA_ASSIGN_OR_RETURN(Rows rows, tx.Exec("test.one", "SELECT 1"));
      return rows[0].Int(0);
    });
  };
  // The dead connection fails before the transaction's first statement
  // (here while preparing it); the transaction runs on a new one.
  Result<int64_t> r = select_one();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(single->Stats().size, 1);

  kill_connection();
  Status ping = single->Ping();
  EXPECT_TRUE(ping.ok()) << ping.error().message;
  EXPECT_EQ(single->Stats().size, 1);

  // Again with the statement prepared already: BEGIN and the statement go
  // out together and both fail; still run again on a new connection.
  ASSERT_TRUE(select_one().ok());
  kill_connection();
  r = select_one();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, 1);
  EXPECT_EQ(single->Stats().size, 1);
}

TEST(DatabaseOpen, UnreachablePostgresIsUnavailableWithoutThePassword) {
  Options options;
  options.url = "postgresql://agora:hunter2@127.0.0.1:1/agora";
  auto db = Database::Open(options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(db.error().message.find("PostgreSQL"), std::string::npos) << db.error().message;
  EXPECT_EQ(db.error().message.find("hunter2"), std::string::npos) << db.error().message;
}

TEST(DatabaseOpen, MalformedPostgresUrlNeverEchoesThePassword) {
  Options options;
  options.url = "postgresql://agora:hunter2%zz@127.0.0.1:1/agora";
  auto db = Database::Open(options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().message.find("hunter2"), std::string::npos) << db.error().message;
}

TEST(DatabaseOpen, RefusesABadSchemaName) {
  Options options;
  options.url = "postgresql://127.0.0.1:1/agora";
  options.schema = "Robert\"; DROP TABLE students";
  auto db = Database::Open(options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kInvalidArgument);
}

TEST(DatabaseOpen, SqliteCreatesTheParentDirectory) {
  testing::ScratchDatabase scratch(Dialect::kSqlite);
  std::string base = scratch.options().url.substr(7);
  std::string path = (std::filesystem::path(base).parent_path() / "a" / "b" / "x.db").string();
  for (std::string url : {"sqlite:" + path, path}) {
    Options options;
    options.url = url;
    auto db = Database::Open(options);
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ((*db)->dialect(), Dialect::kSqlite);
    EXPECT_TRUE((*db)->Ping().ok());
    auto mode = (*db)->Exec("test.mode", "PRAGMA journal_mode");
    ASSERT_TRUE(mode.ok());
    EXPECT_EQ((*mode)[0].Text(0), "wal");
  }
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST(DatabaseOpen, SqliteInMemoryWorksWithOneConnection) {
  Options options;
  options.url = "sqlite::memory:";
  auto db = Database::Open(options);
  ASSERT_TRUE(db.ok()) << db.error().message;
  ASSERT_TRUE((*db)->Exec("test.create", "CREATE TABLE t (id INTEGER)").ok());
  ASSERT_TRUE((*db)->Exec("test.insert", "INSERT INTO t VALUES (1)").ok());
  auto r = (*db)->Exec("test.count", "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].Int(0), 1);
}

TEST(Row, ConvertsTextAsPostgresSendsIt) {
  Row row({std::string("42"), std::string("t"), std::string("2.5"), std::string("17.0"),
           int64_t{1}, nullptr});
  EXPECT_EQ(row.Int(0), 42);
  EXPECT_TRUE(row.Bool(1));
  EXPECT_EQ(row.Double(2), 2.5);
  EXPECT_EQ(row.Int(3), 17);
  EXPECT_TRUE(row.Bool(4));
  EXPECT_EQ(row.Text(4), "1");
  EXPECT_EQ(row.Int(5), 0);
  EXPECT_EQ(row.Text(5), "");
  EXPECT_DEATH((void)row.Int(99), "out of range");
}

TEST(Row, IntRefusesToTruncateAFraction) {
  Row row({std::string("12.50"), 2.5, std::string("1e30")});
  EXPECT_DEATH((void)row.Int(0), "not a number");
  EXPECT_DEATH((void)row.Int(1), "fractional");
  EXPECT_DEATH((void)row.Int(2), "not a number");
  EXPECT_EQ(row.Double(0), 12.5);
}

}  // namespace
}  // namespace agora::db
