// Internal to core/db: what a driver provides to the Database pool.
//
// A Conn is one driver connection. The pool hands it to one thread at a time
// (as the Tx of a transaction or for one autocommit statement). Stores never
// include this header.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/db/db.h"
#include "core/result.h"

namespace agora::db::internal {

class Conn : public Tx {
 public:
  // Runs a script of one or more statements without parameters (migrations).
  [[nodiscard]] virtual Status ExecScript(std::string_view name, std::string_view sql) = 0;
  [[nodiscard]] virtual Status Begin(TxMode mode) = 0;
  [[nodiscard]] virtual Status Commit() = 0;
  // Rolls back if a transaction is open; a failure marks the connection broken.
  virtual void Rollback() = 0;
  // True once the connection cannot be reused: the pool closes it.
  virtual bool broken() const = 0;

  // Set when a statement failed because of lock contention (SQLITE_BUSY,
  // PostgreSQL 40001/40P01): the transaction may succeed if run again.
  bool retryable_failure() const { return retryable_failure_; }
  void ClearRetryableFailure() { retryable_failure_ = false; }

 protected:
  bool retryable_failure_ = false;
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual Dialect dialect() const = 0;
  // Opens a new connection, ready for use (pragmas / search_path set).
  [[nodiscard]] virtual Result<std::unique_ptr<Conn>> Connect() = 0;
  // The key of the advisory lock Migrate takes (PostgreSQL).
  virtual int64_t MigrationLockKey() const { return 0; }
};

// Build a driver from options whose url has already been classified
// (validating the rest; no connection is opened yet).
[[nodiscard]] Result<std::unique_ptr<Driver>> NewSqliteDriver(const Options& options);
[[nodiscard]] Result<std::unique_ptr<Driver>> NewPostgresDriver(const Options& options);

// Rewrites $N placeholders to ?N outside '...' literals, "..." identifiers,
// -- and /* */ comments.
std::string RewritePlaceholdersForSqlite(std::string_view sql);

// A statement name safe for error messages ("unnamed" when empty).
inline std::string StatementLabel(std::string_view name) {
  return name.empty() ? std::string("unnamed") : std::string(name);
}

}  // namespace agora::db::internal
