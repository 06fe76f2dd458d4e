// The SQLite driver: one database file in WAL mode, a connection per pool
// slot (opened NOMUTEX: the pool gives each connection to one thread at a
// time), prepared statements cached per connection by SQL text.

#include <sqlite3.h>

#include <filesystem>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <string>
#include <system_error>
#include <unordered_map>

#include "core/db/driver.h"

namespace agora::db::internal {
namespace {

constexpr size_t kMaxCachedStatements = 256;

bool IsRetryable(int code) {
  int primary = code & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

// Maps a SQLite result code to an Error naming the statement. SQLite's own
// messages name tables and columns, never bound values.
Error MapError(int code, sqlite3* db, std::string_view name) {
  std::string msg = "database statement '" + StatementLabel(name) + "' failed: ";
  msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  switch (code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return Error::Conflict(std::move(msg));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return Error::FailedPrecondition(std::move(msg)).WithType("foreign-key");
    default:
      break;
  }
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return Error::Unavailable(std::move(msg));
    default:
      return Error::Internal(std::move(msg));
  }
}

class SqliteConn final : public Conn {
 public:
  SqliteConn(sqlite3* db, std::shared_ptr<std::timed_mutex> writer, std::chrono::milliseconds writer_wait)
      : db_(db), writer_(std::move(writer)), writer_wait_(writer_wait) {}
  ~SqliteConn() override {
    ReleaseWriter();
    for (auto& [sql, stmt] : cache_) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }
  bool broken() const override { return broken_; }

  Result<Rows> Exec(std::string_view name, std::string_view sql,
                    const std::vector<Value>& params) override {
    AGORA_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(name, sql));
    // Reset on every exit, exceptions included: a statement left mid-step
    // would hold a read transaction open on this pooled connection.
    struct ResetOnExit {
      sqlite3_stmt* stmt;
      ~ResetOnExit() {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
      }
    } reset{stmt};
    // A write outside a transaction queues for the file like a transaction
    // does (see Begin), rather than in SQLite's sleeping busy handler.
    std::unique_lock<std::timed_mutex> write_lock;
    if (!holds_writer_ && sqlite3_get_autocommit(db_) != 0 && sqlite3_stmt_readonly(stmt) == 0) {
      write_lock = std::unique_lock<std::timed_mutex>(*writer_, std::defer_lock);
      if (!write_lock.try_lock_for(writer_wait_)) {
        return Error::Unavailable("database statement '" + StatementLabel(name) +
                                  "': another writer held the database for too long");
      }
    }
    return Run(name, stmt, params);
  }

  Status ExecScript(std::string_view name, std::string_view sql) override {
    std::string text(sql);
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      return Fail(rc, name);
    }
    return Ok();
  }

  Status Begin(TxMode mode) override {
    if (mode == TxMode::kWrite) {
      // One writer at a time per file inside this process, in a queue:
      // without it, writers colliding on BEGIN IMMEDIATE wait in SQLite's
      // busy handler, which sleeps 1, 2, 5, 10 ms... between tries and
      // leaves the file idle meanwhile. Other processes (operator commands)
      // still meet the busy handler. Released at COMMIT or ROLLBACK (the
      // facade always rolls back a transaction that did not commit).
      if (!writer_->try_lock_for(writer_wait_)) {
        retryable_failure_ = true;
        return Error::Unavailable("begin: another writer held the database for too long");
      }
      holds_writer_ = true;
    }
    return Simple("begin", mode == TxMode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
  Status Commit() override {
    // SQLite rolls back by itself on some errors (SQLITE_FULL, IOERR, NOMEM);
    // later statements then ran in autocommit. Do not report a commit.
    if (sqlite3_get_autocommit(db_) != 0) {
      return Error::Unavailable("commit: the transaction was rolled back by an earlier error");
    }
    Status s = Simple("commit", "COMMIT");
    if (s.ok()) ReleaseWriter();
    return s;
  }
  void Rollback() override {
    if (sqlite3_get_autocommit(db_) == 0 && !Simple("rollback", "ROLLBACK").ok()) {
      broken_ = true;
    }
    ReleaseWriter();
  }

 private:
  Error Fail(int rc, std::string_view name) {
    if (IsRetryable(rc)) {
      retryable_failure_ = true;
    }
    return MapError(rc, db_, name);
  }

  Status Simple(std::string_view name, std::string_view sql) {
    auto r = Exec(name, sql, {});
    if (!r.ok()) {
      return std::move(r).error();
    }
    return Ok();
  }

  Result<sqlite3_stmt*> Prepare(std::string_view name, std::string_view sql) {
    std::string key(sql);
    if (auto it = cache_.find(key); it != cache_.end()) {
      return it->second;
    }
    if (cache_.size() >= kMaxCachedStatements) {
      for (auto& [text, stmt] : cache_) {
        sqlite3_finalize(stmt);
      }
      cache_.clear();
    }
    std::string rewritten = RewritePlaceholdersForSqlite(sql);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, rewritten.data(), static_cast<int>(rewritten.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) {
      return Fail(rc, name);
    }
    if (stmt == nullptr) {
      return Error::Internal("database statement '" + StatementLabel(name) + "' is empty");
    }
    for (const char* p = tail; p != nullptr && p < rewritten.data() + rewritten.size(); ++p) {
      if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
        sqlite3_finalize(stmt);
        return Error::Internal("database statement '" + StatementLabel(name) +
                               "' holds more than one statement");
      }
    }
    cache_.emplace(std::move(key), stmt);
    return stmt;
  }

  Status Bind(std::string_view name, sqlite3_stmt* stmt, const std::vector<Value>& params) {
    int expected = sqlite3_bind_parameter_count(stmt);
    if (expected != static_cast<int>(params.size())) {
      return Error::Internal("database statement '" + StatementLabel(name) + "' expects " +
                             std::to_string(expected) + " parameters, got " +
                             std::to_string(params.size()));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i) + 1;
      const Value& v = params[i];
      int rc = SQLITE_OK;
      if (std::holds_alternative<std::nullptr_t>(v)) {
        rc = sqlite3_bind_null(stmt, idx);
      } else if (const auto* n = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, idx, *n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(stmt, idx, *d);
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        rc = sqlite3_bind_text64(stmt, idx, s->data(), s->size(), SQLITE_STATIC, SQLITE_UTF8);
      } else if (const auto* b = std::get_if<Blob>(&v)) {
        // A zero-length blob bound from a null pointer would read back as NULL.
        rc = b->bytes.empty() ? sqlite3_bind_zeroblob(stmt, idx, 0)
                              : sqlite3_bind_blob64(stmt, idx, b->bytes.data(), b->bytes.size(),
                                                    SQLITE_STATIC);
      }
      if (rc != SQLITE_OK) {
        return Fail(rc, name);
      }
    }
    return Ok();
  }

  static Value Column(sqlite3_stmt* stmt, int i) {
    switch (sqlite3_column_type(stmt, i)) {
      case SQLITE_INTEGER:
        return static_cast<int64_t>(sqlite3_column_int64(stmt, i));
      case SQLITE_FLOAT:
        return sqlite3_column_double(stmt, i);
      case SQLITE_TEXT: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        int n = sqlite3_column_bytes(stmt, i);
        return std::string(p != nullptr ? p : "", static_cast<size_t>(n));
      }
      case SQLITE_BLOB: {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, i));
        int n = sqlite3_column_bytes(stmt, i);
        return Blob{p != nullptr ? std::string(p, static_cast<size_t>(n)) : std::string()};
      }
      default:
        return nullptr;
    }
  }

  Result<Rows> Run(std::string_view name, sqlite3_stmt* stmt, const std::vector<Value>& params) {
    AGORA_RETURN_IF_ERROR(Bind(name, stmt, params));
    Rows out;
    int columns = sqlite3_column_count(stmt);
    for (;;) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        std::vector<Value> cells;
        cells.reserve(static_cast<size_t>(columns));
        for (int i = 0; i < columns; ++i) {
          cells.push_back(Column(stmt, i));
        }
        out.rows.emplace_back(std::move(cells));
        continue;
      }
      if (rc == SQLITE_DONE) {
        break;
      }
      return Fail(sqlite3_extended_errcode(db_), name);
    }
    if (sqlite3_stmt_readonly(stmt) == 0) {
      out.affected = sqlite3_changes64(db_);
    }
    return out;
  }

  void ReleaseWriter() {
    if (holds_writer_) {
      holds_writer_ = false;
      writer_->unlock();
    }
  }

  sqlite3* db_;
  std::shared_ptr<std::timed_mutex> writer_;  // shared by the file's connections
  std::chrono::milliseconds writer_wait_;
  bool holds_writer_ = false;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  bool broken_ = false;
};

class SqliteDriver final : public Driver {
 public:
  SqliteDriver(std::string path, std::chrono::milliseconds busy_timeout)
      : path_(std::move(path)), busy_timeout_(busy_timeout) {}
  ~SqliteDriver() override {
    {
      std::lock_guard lock(checkpoint_mu_);
      stopping_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

  Result<std::unique_ptr<Conn>> Connect() override {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &raw,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = "cannot open SQLite database " + path_ + ": " +
                        (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
      sqlite3_close_v2(raw);
      return Error::Unavailable(std::move(msg));
    }
    auto conn = std::make_unique<SqliteConn>(raw, writer_, busy_timeout_);
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, static_cast<int>(busy_timeout_.count()));
    // journal_mode=WAL is persistent in the file; setting it again is cheap.
    // Checkpoints run on the driver's own thread (below), not inside the
    // COMMIT that crosses the WAL's auto-checkpoint size: a checkpoint
    // writes back and syncs the database file, and a commit doing it holds
    // the single writer meanwhile.
    for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                               "PRAGMA foreign_keys=ON", "PRAGMA wal_autocheckpoint=0"}) {
      Status s = conn->ExecScript("sqlite.connect", pragma);
      if (!s.ok()) {
        return Error::Unavailable("cannot set up SQLite database " + path_ + ": " +
                                  s.error().message);
      }
    }
    StartCheckpointer();
    return std::unique_ptr<Conn>(std::move(conn));
  }

 private:
  // Every 100 ms, a PASSIVE checkpoint (it never waits for readers or the
  // writer) on a connection of its own; and when the WAL has grown past
  // 4,096 pages anyway (readers kept it from being reused), a RESTART
  // checkpoint, which waits for readers up to the busy timeout, so the file
  // cannot grow without bound under constant reads.
  void StartCheckpointer() {
    std::lock_guard lock(checkpoint_mu_);
    if (checkpointer_.joinable() || stopping_) return;
    checkpointer_ = std::thread([this] {
      sqlite3* db = nullptr;
      if (sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        sqlite3_close_v2(db);
        return;
      }
      sqlite3_busy_timeout(db, static_cast<int>(busy_timeout_.count()));
      std::unique_lock lock(checkpoint_mu_);
      while (!checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; })) {
        lock.unlock();
        int log_frames = 0;
        int checkpointed = 0;
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &checkpointed);
        if (log_frames > 4096) {
          sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
        }
        lock.lock();
      }
      lock.unlock();
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      sqlite3_close_v2(db);
    });
  }

  std::string path_;
  std::chrono::milliseconds busy_timeout_;
  std::shared_ptr<std::timed_mutex> writer_ = std::make_shared<std::timed_mutex>();
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool stopping_ = false;  // GUARDED_BY(checkpoint_mu_)
  std::thread checkpointer_;
};

}  // namespace

std::string RewritePlaceholdersForSqlite(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    char c = sql[i];
    if (c == '\'' || c == '"') {  // literal or quoted identifier; '' / "" escape
      size_t j = i + 1;
      while (j < n) {
        if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      size_t end = j < n ? j + 1 : n;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      size_t end = j == std::string_view::npos ? n : j;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      size_t j = sql.find("*/", i + 2);
      size_t end = j == std::string_view::npos ? n : j + 2;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '$' && i + 1 < n && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      out.push_back('?');
      ++i;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

Result<std::unique_ptr<Driver>> NewSqliteDriver(const Options& options) {
  std::string path = options.url;
  if (path.rfind("sqlite:", 0) == 0) {
    path = path.substr(7);
    if (path.rfind("//", 0) == 0) {
      path = path.substr(2);  // sqlite:///abs/path
    }
  }
  if (path.empty()) {
    return Error::InvalidArgument("database url names no SQLite file");
  }
  if (path != ":memory:") {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return Error::Unavailable("cannot create directory " + parent.string() + ": " +
                                  ec.message());
      }
    }
  }
  return std::unique_ptr<Driver>(std::make_unique<SqliteDriver>(path, options.busy_timeout));
}

}  // namespace agora::db::internal
