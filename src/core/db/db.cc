// Database: the connection pool, transactions with retry, and migrations,
// over a driver (sqlite_driver.cc, postgres_driver.cc).

#include "core/db/db.h"

#include <algorithm>
#include <filesystem>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/db/driver.h"

namespace agora::db {

using internal::Conn;

const char* DialectName(Dialect d) {
  return d == Dialect::kSqlite ? "sqlite" : "postgres";
}

std::string JsonArrayElements(Dialect d, std::string_view param, std::string_view pg_type) {
  if (d == Dialect::kPostgres) return fmt::format("SELECT jsonb_array_elements_text({}::jsonb)::{}", param, pg_type);
  return fmt::format("SELECT value FROM json_each({})", param);
}

// ---------------------------------------------------------------- Row

namespace {

[[noreturn]] void Die(const char* what, size_t i) {
  std::fprintf(stderr, "agora::db::Row: %s (column %zu)\n", what, i);
  std::abort();
}

// The double as an int64 if it is integral and in range (no truncation).
std::optional<int64_t> ExactInt(double d) {
  if (!(d >= -9.2233720368547758e18 && d < 9.2233720368547758e18) || d != std::trunc(d)) {
    return std::nullopt;
  }
  return static_cast<int64_t>(d);
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && p == s.data() + s.size()) {
    return v;
  }
  double d = 0;
  auto [q, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec2 == std::errc() && q == s.data() + s.size()) {
    return ExactInt(d);  // NUMERIC such as "42.0"; "12.50" is not an integer
  }
  return std::nullopt;
}

}  // namespace

const Value& Row::Get(size_t i) const {
  if (i >= cells_.size()) {
    Die("column index out of range", i);
  }
  return cells_[i];
}

bool Row::IsNull(size_t i) const { return std::holds_alternative<std::nullptr_t>(Get(i)); }

int64_t Row::Int(size_t i) const {
  const Value& v = Get(i);
  if (const auto* n = std::get_if<int64_t>(&v)) return *n;
  if (const auto* d = std::get_if<double>(&v)) {
    if (auto n = ExactInt(*d)) return *n;
    Die("Int() of a fractional or out-of-range number", i);
  }
  if (std::holds_alternative<std::nullptr_t>(v)) return 0;
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (auto n = ParseInt(*s)) return *n;
  }
  Die("Int() of a value that is not a number", i);
}

double Row::Double(size_t i) const {
  const Value& v = Get(i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* n = std::get_if<int64_t>(&v)) return static_cast<double>(*n);
  if (std::holds_alternative<std::nullptr_t>(v)) return 0;
  if (const auto* s = std::get_if<std::string>(&v)) {
    double d = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
    if (ec == std::errc() && p == s->data() + s->size()) return d;
  }
  Die("Double() of a value that is not a number", i);
}

std::string Row::Text(size_t i) const {
  const Value& v = Get(i);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* n = std::get_if<int64_t>(&v)) return std::to_string(*n);
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  if (const auto* b = std::get_if<Blob>(&v)) return b->bytes;
  return "";
}

std::string Row::Bytes(size_t i) const {
  const Value& v = Get(i);
  if (const auto* b = std::get_if<Blob>(&v)) return b->bytes;
  return Text(i);
}

bool Row::Bool(size_t i) const {
  const Value& v = Get(i);
  if (const auto* n = std::get_if<int64_t>(&v)) return *n != 0;
  if (std::holds_alternative<std::nullptr_t>(v)) return false;
  if (const auto* s = std::get_if<std::string>(&v)) {
    if (*s == "t" || *s == "true" || *s == "1") return true;
    if (*s == "f" || *s == "false" || *s == "0") return false;
  }
  Die("Bool() of a value that is not a boolean", i);
}

std::optional<int64_t> Row::OptInt(size_t i) const {
  if (IsNull(i)) return std::nullopt;
  return Int(i);
}

std::optional<std::string> Row::OptText(size_t i) const {
  if (IsNull(i)) return std::nullopt;
  return Text(i);
}

// ---------------------------------------------------------------- pool

struct Database::Impl {
  // A connection taken from the pool; goes back (or is closed if broken)
  // when the lease ends.
  class Lease {
   public:
    Lease(Impl* impl, std::unique_ptr<Conn> conn) : impl_(impl), conn_(std::move(conn)) {}
    Lease(Lease&& o) noexcept : impl_(o.impl_), conn_(std::move(o.conn_)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() { Reset(); }
    Conn& operator*() const { return *conn_; }
    Conn* operator->() const { return conn_.get(); }
    void Reset() {
      if (conn_) {
        impl_->Release(std::move(conn_));
      }
    }

   private:
    Impl* impl_;
    std::unique_ptr<Conn> conn_;
  };

  Options options;
  std::unique_ptr<internal::Driver> driver;
  int max_size = 1;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<std::unique_ptr<Conn>> idle;  // GUARDED_BY(mu)
  int open = 0;                             // GUARDED_BY(mu)
  int in_use = 0;                           // GUARDED_BY(mu)
  int64_t waits = 0;                        // GUARDED_BY(mu)

  Result<Lease> Acquire() {
    std::unique_lock lock(mu);
    auto deadline = std::chrono::steady_clock::now() + options.acquire_timeout;
    bool counted = false;
    for (;;) {
      if (!idle.empty()) {
        std::unique_ptr<Conn> conn = std::move(idle.back());
        idle.pop_back();
        ++in_use;
        return Lease(this, std::move(conn));
      }
      if (open < max_size) {
        ++open;
        ++in_use;
        lock.unlock();
        auto conn = driver->Connect();
        if (!conn.ok()) {
          lock.lock();
          --open;
          --in_use;
          cv.notify_one();
          return std::move(conn).error();
        }
        return Lease(this, std::move(conn).value());
      }
      if (!counted) {
        ++waits;
        counted = true;
      }
      if (cv.wait_until(lock, deadline) == std::cv_status::timeout && idle.empty() &&
          open >= max_size) {
        return Error::Unavailable(fmt::format(
            "no free database connection within {} ms (pool of {} busy)",
            options.acquire_timeout.count(), max_size));
      }
    }
  }

  void Release(std::unique_ptr<Conn> conn) {
    std::unique_ptr<Conn> doomed;
    {
      std::lock_guard lock(mu);
      --in_use;
      if (conn->broken()) {
        --open;
        doomed = std::move(conn);
      } else {
        idle.push_back(std::move(conn));
      }
    }
    cv.notify_one();
    // `doomed` closes outside the lock.
  }

  Status Run(std::string_view name, TxMode mode, const std::function<Status(Conn&)>& fn) {
    constexpr int kMaxAttempts = 6;  // the first try and 5 retries
    thread_local std::minstd_rand rng(std::random_device{}());
    for (int attempt = 1;; ++attempt) {
      AGORA_ASSIGN_OR_RETURN(Lease lease, Acquire());
      Conn& c = *lease;
      c.ClearRetryableFailure();
      Status failure;
      bool retry = false;
      if (Status begun = c.Begin(mode); !begun.ok()) {
        // A connection that died while idle fails at BEGIN, before any work.
        retry = c.retryable_failure() || c.broken();
        c.Rollback();
        failure = std::move(begun);
      } else {
        Status result;
        try {
          result = fn(c);
        } catch (...) {
          c.Rollback();
          throw;
        }
        if (result.ok()) {
          // Only the commit's own failure may send us round again: a
          // retryable error fn handled earlier says nothing about it.
          c.ClearRetryableFailure();
          Status committed = c.Commit();
          if (committed.ok()) {
            return Ok();
          }
          failure = std::move(committed);
        } else {
          failure = std::move(result);
        }
        retry = c.retryable_failure();
        c.Rollback();
      }
      if (!retry) {
        return failure;
      }
      if (attempt == kMaxAttempts) {
        return Error::Unavailable(fmt::format("transaction '{}' gave up after {} attempts: {}",
                                              internal::StatementLabel(name), kMaxAttempts,
                                              failure.error().message));
      }
      lease.Reset();
      int cap_us = std::min(50'000, 1'000 << attempt);
      std::uniform_int_distribution<int> jitter(cap_us / 2, cap_us);
      std::this_thread::sleep_for(std::chrono::microseconds(jitter(rng)));
    }
  }
};

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Database::~Database() = default;

Result<std::unique_ptr<Database>> Database::Open(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->max_size = std::max(1, options.pool_size);
  const std::string& url = options.url;
  if (url.empty()) {
    return Error::InvalidArgument("database url is empty");
  }
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0) {
    AGORA_ASSIGN_OR_RETURN(impl->driver, internal::NewPostgresDriver(options));
  } else {
    AGORA_ASSIGN_OR_RETURN(impl->driver, internal::NewSqliteDriver(options));
    if (url == ":memory:" || url == "sqlite::memory:") {
      impl->max_size = 1;  // each connection would see its own database
    }
  }
  AGORA_ASSIGN_OR_RETURN(std::unique_ptr<Conn> first, impl->driver->Connect());
  impl->idle.push_back(std::move(first));
  impl->open = 1;
  return std::unique_ptr<Database>(new Database(std::move(impl)));
}

Dialect Database::dialect() const { return impl_->driver->dialect(); }

Status Database::RunTransaction(std::string_view name, TxMode mode,
                                const std::function<Status(Tx&)>& fn) {
  return impl_->Run(name, mode, [&fn](Conn& c) { return fn(c); });
}

Result<Rows> Database::Exec(std::string_view name, std::string_view sql,
                            const std::vector<Value>& params) {
  AGORA_ASSIGN_OR_RETURN(Impl::Lease lease, impl_->Acquire());
  return lease->Exec(name, sql, params);
}

Status Database::Ping() {
  for (int attempt = 0;; ++attempt) {
    AGORA_ASSIGN_OR_RETURN(Impl::Lease lease, impl_->Acquire());
    auto r = lease->Exec("db.ping", "SELECT 1", {});
    if (r.ok()) {
      return Ok();
    }
    if (attempt > 0 || !lease->broken()) {
      return std::move(r).error();
    }
    // An idle connection that died: try once more on a fresh one.
  }
}

PoolStats Database::Stats() const {
  std::lock_guard lock(impl_->mu);
  return PoolStats{impl_->open, impl_->in_use, impl_->waits};
}

// ---------------------------------------------------------------- migrations

Status Database::Migrate(std::string_view component, std::span<const Migration> migrations) {
  std::vector<const Migration*> sorted;
  for (const Migration& m : migrations) {
    sorted.push_back(&m);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->version == sorted[i - 1]->version) {
      return Error::Internal(fmt::format("migrations of {} repeat version {}", component,
                                         sorted[i]->version));
    }
  }
  const bool postgres = dialect() == Dialect::kPostgres;
  const int64_t lock_key = impl_->driver->MigrationLockKey();
  const std::string comp(component);

  for (const Migration* m : sorted) {
    Status s = impl_->Run("db.migrate", TxMode::kWrite, [&](Conn& c) -> Status {
      if (postgres) {
        // Serialises migrators; released at COMMIT/ROLLBACK.
        AGORA_RETURN_IF_ERROR(
            c.Exec("db.migrate.lock", "SELECT pg_advisory_xact_lock($1)", {lock_key}));
      }
      AGORA_RETURN_IF_ERROR(c.ExecScript("db.migrate.create_table",
                                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                         " component TEXT NOT NULL,"
                                         " version INTEGER NOT NULL,"
                                         " name TEXT NOT NULL,"
                                         " applied_at TEXT NOT NULL,"
                                         " PRIMARY KEY (component, version))"));
      AGORA_ASSIGN_OR_RETURN(
          Rows applied,
          c.Exec("db.migrate.applied",
                 "SELECT version, name FROM schema_migrations WHERE component = $1", {comp}));
      bool done = false;
      for (const Row& row : applied) {
        int64_t version = row.Int(0);
        std::string name = row.Text(1);
        for (const Migration* known : sorted) {
          if (known->version == version && known->name != name) {
            return Error::Internal(fmt::format(
                "migration {} version {} was applied as '{}' but is now called '{}'", comp,
                version, name, known->name));
          }
        }
        done = done || version == m->version;
      }
      if (done) {
        return Ok();
      }
      std::string_view sql =
          postgres && !m->postgres_sql.empty() ? m->postgres_sql : m->sql;
      if (Status applied_ok = c.ExecScript("db.migrate.apply", sql); !applied_ok.ok()) {
        if (c.retryable_failure()) {
          return applied_ok;
        }
        return Error::Internal(fmt::format("migration {} version {} '{}' failed: {}", comp,
                                           m->version, m->name, applied_ok.error().message));
      }
      AGORA_RETURN_IF_ERROR(
          c.Exec("db.migrate.record",
                 "INSERT INTO schema_migrations (component, version, name, applied_at) "
                 "VALUES ($1, $2, $3, $4)",
                 {comp, static_cast<int64_t>(m->version), std::string(m->name),
                  FormatRfc3339(std::chrono::system_clock::now())}));
      return Ok();
    });
    AGORA_RETURN_IF_ERROR(s);
  }
  return Ok();
}

Result<std::unique_ptr<Database>> OpenServiceDatabase(const std::string& data_dir, const std::string& database_url,
                                                     const std::string& service, int pool_size) {
  namespace fs = std::filesystem;
  Options options;
  if (database_url.empty()) {
    std::error_code ec;
    fs::create_directories(data_dir, ec);
    if (ec) return Error::Unavailable("Cannot create the data folder " + data_dir + ": " + ec.message());
    options.url = "sqlite:" + (fs::path(data_dir) / (service + ".db")).string();
  } else {
    options.url = database_url;
  }
  options.schema = service;
  options.pool_size = pool_size;
  return Database::Open(options);
}

}  // namespace agora::db
