// The database facade every store uses: one API over SQLite and PostgreSQL.
//
// A Database owns a pool of connections to one database (a SQLite file, or a
// PostgreSQL database with one schema per service). Stores run statements in
// transactions through Transact(); every statement is prepared once per
// connection (cached by SQL text) and its parameters are always bound, never
// interpolated. SQL uses $1..$n placeholders on both dialects.
//
// Errors come back as Result values with these codes:
//   kConflict     a unique or primary-key constraint was violated;
//   kFailedPrecondition (type "foreign-key")
//                 a foreign-key constraint was violated (the row referred
//                 to is gone, or is still referred to);
//   kUnavailable  the database cannot be reached, the pool is exhausted, or a
//                 transaction kept failing on lock contention (SQLITE_BUSY,
//                 PostgreSQL serialization failure or deadlock) after retries;
//   kInternal     any other SQL error (syntax, other constraints, bad types):
//                 a bug in the caller's SQL or data.
// Messages name the statement and never carry parameter values.
//
// Database is thread-safe; a Tx is used by one thread for the duration of the
// callback it is handed to. Driver headers (sqlite3.h, libpq-fe.h) stay in
// the .cc files.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"

namespace agora::db {

// Raw bytes, bound as a BLOB (SQLite) or bytea (PostgreSQL).
struct Blob {
  std::string bytes;
  friend bool operator==(const Blob&, const Blob&) = default;
};

// A parameter or a column value. bool and int convert to int64_t, const char*
// to std::string. PostgreSQL booleans read back as int64_t 1/0.
using Value = std::variant<std::nullptr_t, int64_t, double, std::string, Blob>;

enum class Dialect { kSqlite, kPostgres };

const char* DialectName(Dialect d);

// A subquery yielding the elements of a JSON array bound as parameter
// `param` ("$2"), for one statement over a list: `WHERE id IN (` +
// JsonArrayElements(d, "$2") + `)` with a serialized array of ids. On
// PostgreSQL the elements are cast to `pg_type`.
std::string JsonArrayElements(Dialect d, std::string_view param, std::string_view pg_type = "text");

// One result row; columns by index, in SELECT order.
//
// Accessors convert where it is lossless or obvious (Int parses text, as
// PostgreSQL NUMERIC arrives; Bool accepts 1/0 and 't'/'f'). A NULL column
// reads as 0, 0.0, "" or false; use IsNull() or the Opt* accessors where NULL
// matters. An index out of range, or a value that cannot be converted (Int of
// "abc"), is a bug in the caller's SQL and aborts.
class Row {
 public:
  Row() = default;
  explicit Row(std::vector<Value> cells) : cells_(std::move(cells)) {}

  size_t size() const { return cells_.size(); }
  bool IsNull(size_t i) const;
  int64_t Int(size_t i) const;
  double Double(size_t i) const;
  std::string Text(size_t i) const;
  std::string Bytes(size_t i) const;
  bool Bool(size_t i) const;
  std::optional<int64_t> OptInt(size_t i) const;
  std::optional<std::string> OptText(size_t i) const;
  // The value as the driver produced it (int64_t for integer and boolean
  // columns, double, std::string, Blob for BLOB/bytea, nullptr for NULL).
  const Value& Get(size_t i) const;

 private:
  std::vector<Value> cells_;
};

// The rows a statement returned, and how many rows an INSERT, UPDATE or
// DELETE changed (0 for other statements).
struct Rows {
  std::vector<Row> rows;
  int64_t affected = 0;

  bool empty() const { return rows.empty(); }
  size_t size() const { return rows.size(); }
  const Row& operator[](size_t i) const { return rows[i]; }
  auto begin() const { return rows.begin(); }
  auto end() const { return rows.end(); }
};

// A connection inside a transaction (or in autocommit). Not thread-safe; used
// by one thread, and only inside the callback it was handed to.
class Tx {
 public:
  virtual ~Tx() = default;

  // Runs one statement. `name` labels it ("identity.find_user_by_email") in
  // errors, logs and metrics. `sql` holds exactly one statement and uses
  // $1..$n placeholders (on SQLite they are rewritten to ?1..?n outside
  // string literals, identifiers and comments). The statement is prepared
  // once per connection and cached by SQL text.
  [[nodiscard]] virtual Result<Rows> Exec(std::string_view name, std::string_view sql,
                                          const std::vector<Value>& params = {}) = 0;
  virtual Dialect dialect() const = 0;
};

struct Options {
  // "sqlite:" + path (or a plain file path), or "postgresql://..." /
  // "postgres://..." (a libpq URI). A SQLite file's parent directory is
  // created if missing.
  std::string url;
  // PostgreSQL only: the service's schema, [a-z_][a-z0-9_]*. Created if
  // missing; every connection's search_path is set to it. Empty: the
  // server's default search_path.
  std::string schema;
  // Maximum number of open connections.
  int pool_size = 8;
  // How long Transact/Exec wait for a free connection before kUnavailable.
  std::chrono::milliseconds acquire_timeout{5000};
  // SQLite only: how long a statement waits for another connection's lock.
  std::chrono::milliseconds busy_timeout{5000};
};

// kRead: SQLite BEGIN DEFERRED, PostgreSQL BEGIN ISOLATION LEVEL REPEATABLE
// READ READ ONLY (writes fail). Either way every statement of a read
// transaction sees the same snapshot.
// kWrite: SQLite BEGIN IMMEDIATE (takes the write lock at once), PostgreSQL
// BEGIN (READ COMMITTED).
enum class TxMode { kRead, kWrite };

// One step of a component's schema. `sql` may hold several statements.
// `postgres_sql`, if non-empty, is used instead of `sql` on PostgreSQL.
struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
  std::string_view postgres_sql = {};
};

struct PoolStats {
  int size;       // open connections
  int in_use;     // connections handed out now
  int64_t waits;  // acquisitions that had to wait for a free connection
};

class Database {
 public:
  // Opens the database and one connection (so a bad URL fails now).
  // Returns kInvalidArgument for a malformed URL or schema name, and
  // kUnavailable when the database cannot be reached or opened (the message
  // says why and never contains the password).
  [[nodiscard]] static Result<std::unique_ptr<Database>> Open(const Options& options);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Dialect dialect() const;

  // Runs fn(Tx&) in a transaction named `name`: COMMIT when fn returns ok,
  // ROLLBACK when it returns an error (which is passed on) or throws (the
  // exception is rethrown). When a statement failed on lock contention
  // (SQLITE_BUSY/LOCKED, PostgreSQL 40001/40P01) or COMMIT did, the whole fn
  // is run again, up to 5 more times with a small jittered backoff, so fn
  // must have no side effects outside the transaction; then kUnavailable.
  // fn returns Status or Result<T>; so does Transact. Do not nest Transact
  // calls on one thread (the inner one takes a second connection).
  template <class F>
  auto Transact(std::string_view name, TxMode mode, F&& fn) -> std::invoke_result_t<F, Tx&>;

  // Runs one statement in autocommit on a pooled connection.
  [[nodiscard]] Result<Rows> Exec(std::string_view name, std::string_view sql,
                                  const std::vector<Value>& params = {});

  // Applies, in version order, the migrations of `component` not yet
  // applied, each in its own transaction, recording (component, version,
  // name, applied_at) in table `schema_migrations`. Returns kInternal, and
  // applies nothing, if an applied version is recorded under another name or
  // two migrations share a version; kInternal naming the migration if its
  // SQL fails (that migration is rolled back). Safe when several processes
  // migrate at once (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock).
  [[nodiscard]] Status Migrate(std::string_view component, std::span<const Migration> migrations);

  // SELECT 1 on a pooled connection; kUnavailable if the database is down.
  [[nodiscard]] Status Ping();

  PoolStats Stats() const;

  // The non-template core of Transact.
  [[nodiscard]] Status RunTransaction(std::string_view name, TxMode mode,
                                      const std::function<Status(Tx&)>& fn);

 private:
  struct Impl;
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

template <class F>
auto Database::Transact(std::string_view name, TxMode mode, F&& fn)
    -> std::invoke_result_t<F, Tx&> {
  using R = std::invoke_result_t<F, Tx&>;
  if constexpr (std::is_same_v<R, Status>) {
    return RunTransaction(name, mode, [&fn](Tx& tx) -> Status { return fn(tx); });
  } else {
    std::optional<R> out;
    Status status = RunTransaction(name, mode, [&fn, &out](Tx& tx) -> Status {
      out.reset();
      out.emplace(fn(tx));
      if (!out->ok()) {
        return out->error();
      }
      return Ok();
    });
    if (!status.ok()) {
      return std::move(status).error();
    }
    return std::move(*out);
  }
}

// The database of service `service` as every service opens it: with an
// empty `database_url`, the SQLite file `data_dir`/<service>.db (creating
// `data_dir`); otherwise that PostgreSQL URL with schema <service>; with
// `pool_size` connections either way. Not migrated. kUnavailable when the folder cannot be created or the database
// cannot be opened.
[[nodiscard]] Result<std::unique_ptr<Database>> OpenServiceDatabase(const std::string& data_dir,
                                                                   const std::string& database_url,
                                                                   const std::string& service, int pool_size = 8);

}  // namespace agora::db
