// The PostgreSQL driver on libpq: statements prepared once per connection
// (named s1, s2, ...), parameters sent in text format (bytea in binary),
// results read in text format and converted by column type.

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/db/driver.h"

namespace agora::db::internal {
namespace {

constexpr size_t kMaxCachedStatements = 1000;

// Type OIDs from pg_type.h (stable across versions).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;

// Joins libpq's multi-line messages into one line.
std::string OneLine(const char* text) {
  std::string s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  for (char& c : s) {
    if (c == '\n') {
      c = ' ';
    }
  }
  return s;
}

bool ValidSchemaName(std::string_view s) {
  if (s.empty() || s.size() > 63) {
    return false;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return false;
    }
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes bytea output ("\x0a1b..." in the default hex format).
std::string DecodeBytea(const char* text, int len) {
  std::string_view s(text, static_cast<size_t>(len));
  if (s.size() >= 2 && s[0] == '\\' && s[1] == 'x') {
    std::string out;
    out.reserve((s.size() - 2) / 2);
    for (size_t i = 2; i + 1 < s.size(); i += 2) {
      out.push_back(static_cast<char>(HexDigit(s[i]) * 16 + HexDigit(s[i + 1])));
    }
    return out;
  }
  // The legacy escape format, in case bytea_output = 'escape'.
  size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &n);
  std::string out(reinterpret_cast<const char*>(raw), n);
  PQfreemem(raw);
  return out;
}

Value ConvertCell(const PGresult* res, int row, int col) {
  if (PQgetisnull(res, row, col) != 0) {
    return nullptr;
  }
  const char* text = PQgetvalue(res, row, col);
  int len = PQgetlength(res, row, col);
  switch (PQftype(res, col)) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid: {
      int64_t v = 0;
      std::from_chars(text, text + len, v);
      return v;
    }
    case kFloat4Oid:
    case kFloat8Oid: {
      double v = 0;
      std::from_chars(text, text + len, v);
      return v;
    }
    case kBoolOid:
      return static_cast<int64_t>(len > 0 && text[0] == 't' ? 1 : 0);
    case kByteaOid:
      return Blob{DecodeBytea(text, len)};
    default:
      return std::string(text, static_cast<size_t>(len));
  }
}

bool IsConnectionState(std::string_view sqlstate) {
  if (sqlstate == "08P01") {  // protocol_violation: our bug, not the network
    return false;
  }
  return sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0 ||
         sqlstate.rfind("53", 0) == 0;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

class PgConn final : public Conn {
 public:
  explicit PgConn(PGconn* conn) : conn_(conn) {}
  ~PgConn() override { PQfinish(conn_); }

  Dialect dialect() const override { return Dialect::kPostgres; }
  bool broken() const override { return broken_ || PQstatus(conn_) != CONNECTION_OK; }

  Result<Rows> Exec(std::string_view name, std::string_view sql,
                    const std::vector<Value>& params) override {
    auto prepared = Prepare(name, sql);
    if (!prepared.ok()) {
      // The connection died while idle, found before the transaction began.
      if (!pending_begin_.empty() && broken()) retryable_failure_ = true;
      return std::move(prepared).error();
    }
    const Prepared* stmt = *prepared;
    if (stmt->nparams != static_cast<int>(params.size())) {
      return Error::Internal("database statement '" + StatementLabel(name) + "' expects " +
                             std::to_string(stmt->nparams) + " parameters, got " +
                             std::to_string(params.size()));
    }
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    std::vector<int> lengths(params.size(), 0);
    std::vector<int> formats(params.size(), 0);
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      if (std::holds_alternative<std::nullptr_t>(v)) {
        continue;
      }
      if (const auto* n = std::get_if<int64_t>(&v)) {
        texts[i] = std::to_string(*n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *d);
        texts[i].assign(buf, end);
        if (texts[i] == "inf") texts[i] = "Infinity";
        if (texts[i] == "-inf") texts[i] = "-Infinity";
        if (texts[i] == "nan" || texts[i] == "-nan") texts[i] = "NaN";
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        if (s->find('\0') != std::string::npos) {
          return Error::InvalidArgument("database statement '" + StatementLabel(name) +
                                        "': text parameter $" + std::to_string(i + 1) +
                                        " contains a NUL byte");
        }
        values[i] = s->c_str();
        continue;
      } else if (const auto* b = std::get_if<Blob>(&v)) {
        values[i] = b->bytes.data();
        lengths[i] = static_cast<int>(b->bytes.size());
        formats[i] = 1;  // binary: raw bytes, no escaping
        continue;
      }
      values[i] = texts[i].c_str();
    }
    if (!pending_begin_.empty()) {
      return BeginAndExec(name, *stmt, static_cast<int>(params.size()), values.data(), lengths.data(),
                          formats.data());
    }
    ResultPtr res(PQexecPrepared(conn_, stmt->name.c_str(), static_cast<int>(params.size()),
                                 values.data(), lengths.data(), formats.data(), 0));
    return Collect(name, res.get());
  }

  Status ExecScript(std::string_view name, std::string_view sql) override {
    if (!pending_begin_.empty()) {  // a script runs inside the transaction too
      const std::string begin = std::exchange(pending_begin_, {});
      ResultPtr began(PQexec(conn_, begin.c_str()));
      if (auto r = Collect("begin", began.get()); !r.ok()) {
        retryable_failure_ = true;
        return std::move(r).error();
      }
    }
    std::string text(sql);
    ResultPtr res(PQexec(conn_, text.c_str()));
    auto r = Collect(name, res.get());
    if (!r.ok()) {
      return std::move(r).error();
    }
    return Ok();
  }

  // BEGIN is not sent on its own: it goes out with the transaction's first
  // statement, in one round trip (libpq pipeline mode; see BeginAndExec).
  // A read sees one snapshot across its statements, as SQLite's does: a
  // row and its children read in two statements never mix two commits.
  // (Read-only REPEATABLE READ never fails to serialize.)
  Status Begin(TxMode mode) override {
    if (PQstatus(conn_) != CONNECTION_OK) {
      broken_ = true;
      return Error::Unavailable("database connection lost before BEGIN");
    }
    pending_begin_ = mode == TxMode::kWrite ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    return Ok();
  }
  Status Commit() override {
    if (!pending_begin_.empty()) {  // nothing was run: nothing to commit
      pending_begin_.clear();
      return Ok();
    }
    // After a failed statement PostgreSQL answers COMMIT with "ROLLBACK":
    // the transaction is gone, and reporting success would lose its writes.
    if (PQtransactionStatus(conn_) == PQTRANS_INERROR) {
      return Error::Internal("commit: the transaction was aborted by an earlier failed statement");
    }
    return ExecScript("commit", "COMMIT");
  }
  void Rollback() override {
    pending_begin_.clear();
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) {
      return;
    }
    if (!ExecScript("rollback", "ROLLBACK").ok() ||
        PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      broken_ = true;
    }
  }

 private:
  struct Prepared {
    std::string name;  // s1, s2, ...
    int nparams = 0;
  };

  // Sends the pending BEGIN and the first statement together, then reads
  // both answers. A BEGIN that fails (the connection died while idle) fails
  // the statement too, before any work: retryable, as a failed BEGIN is.
  Result<Rows> BeginAndExec(std::string_view name, const Prepared& stmt, int n, const char* const* values,
                            const int* lengths, const int* formats) {
    const std::string begin = std::exchange(pending_begin_, {});
    if (PQenterPipelineMode(conn_) != 1) {
      if (Status s = ExecScript("begin", begin); !s.ok()) {
        retryable_failure_ = true;
        return std::move(s).error();
      }
      ResultPtr res(PQexecPrepared(conn_, stmt.name.c_str(), n, values, lengths, formats, 0));
      return Collect(name, res.get());
    }
    const bool sent = PQsendQueryParams(conn_, begin.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1 &&
                      PQsendQueryPrepared(conn_, stmt.name.c_str(), n, values, lengths, formats, 0) == 1 &&
                      PQpipelineSync(conn_) == 1;
    ResultPtr begin_res;
    ResultPtr stmt_res;
    bool synced = false;
    if (sent) {
      // Each query's result is followed by a NULL; the sync ends the batch.
      begin_res = NextPipelineResult();
      stmt_res = NextPipelineResult();
      ResultPtr sync(PQgetResult(conn_));
      synced = sync != nullptr && PQresultStatus(sync.get()) == PGRES_PIPELINE_SYNC;
    }
    if (!synced || PQexitPipelineMode(conn_) != 1) {
      broken_ = true;
      retryable_failure_ = true;  // nothing committed; a new connection runs it all again
      return Error::Unavailable("database statement '" + StatementLabel(name) +
                                "' failed: database connection lost: " + OneLine(PQerrorMessage(conn_)));
    }
    if (PQresultStatus(begin_res.get()) != PGRES_COMMAND_OK) {
      auto failed = Collect("begin", begin_res.get());
      retryable_failure_ = true;
      return failed.ok() ? Error::Unavailable("BEGIN failed") : std::move(failed).error();
    }
    return Collect(name, stmt_res.get());
  }

  // One query's result in pipeline mode, and the NULL that follows it.
  ResultPtr NextPipelineResult() {
    ResultPtr res(PQgetResult(conn_));
    if (res != nullptr) {
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
    }
    return res;
  }

  Result<const Prepared*> Prepare(std::string_view name, std::string_view sql) {
    std::string key(sql);
    if (auto it = cache_.find(key); it != cache_.end()) {
      return &it->second;
    }
    if (cache_.size() >= kMaxCachedStatements && PQtransactionStatus(conn_) != PQTRANS_INERROR) {
      ResultPtr res(PQexec(conn_, "DEALLOCATE ALL"));
      if (PQresultStatus(res.get()) == PGRES_COMMAND_OK) {
        cache_.clear();
      }
    }
    Prepared stmt{"s" + std::to_string(++next_statement_)};
    ResultPtr res(PQprepare(conn_, stmt.name.c_str(), key.c_str(), 0, nullptr));
    if (auto r = Collect(name, res.get()); !r.ok()) {
      return std::move(r).error();
    }
    // The parameter count, so a wrong count fails here with a clear message.
    ResultPtr desc(PQdescribePrepared(conn_, stmt.name.c_str()));
    if (auto r = Collect(name, desc.get()); !r.ok()) {
      return std::move(r).error();
    }
    stmt.nparams = PQnparams(desc.get());
    auto [it, inserted] = cache_.emplace(std::move(key), std::move(stmt));
    return &it->second;
  }

  // Turns a PGresult into Rows or an Error. Messages carry the SQLSTATE and
  // the constraint/table names, but the server's text only for classes that
  // cannot echo a parameter value (syntax and undefined objects).
  Result<Rows> Collect(std::string_view name, const PGresult* res) {
    ExecStatusType status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      Rows out;
      int nrows = PQntuples(res);
      int ncols = PQnfields(res);
      out.rows.reserve(static_cast<size_t>(nrows));
      for (int r = 0; r < nrows; ++r) {
        std::vector<Value> cells;
        cells.reserve(static_cast<size_t>(ncols));
        for (int c = 0; c < ncols; ++c) {
          cells.push_back(ConvertCell(res, r, c));
        }
        out.rows.emplace_back(std::move(cells));
      }
      std::string_view tag = PQcmdStatus(const_cast<PGresult*>(res));
      if (tag.rfind("INSERT", 0) == 0 || tag.rfind("UPDATE", 0) == 0 ||
          tag.rfind("DELETE", 0) == 0 || tag.rfind("MERGE", 0) == 0) {
        out.affected = std::atoll(PQcmdTuples(const_cast<PGresult*>(res)));
      }
      return out;
    }
    const char* state_c = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string_view sqlstate = state_c != nullptr ? state_c : "";
    std::string label = "database statement '" + StatementLabel(name) + "'";
    if (sqlstate.empty() || PQstatus(conn_) != CONNECTION_OK || IsConnectionState(sqlstate)) {
      if (PQstatus(conn_) != CONNECTION_OK) {
        broken_ = true;
      }
      return Error::Unavailable(label + " failed: database connection lost: " +
                                OneLine(PQerrorMessage(conn_)));
    }
    std::string msg = label + " failed (SQLSTATE " + std::string(sqlstate) + ")";
    auto add = [&](const char* what, int field) {
      if (const char* v = PQresultErrorField(res, field); v != nullptr) {
        msg += std::string(", ") + what + " " + v;
      }
    };
    add("table", PG_DIAG_TABLE_NAME);
    add("column", PG_DIAG_COLUMN_NAME);
    add("constraint", PG_DIAG_CONSTRAINT_NAME);
    if (sqlstate.rfind("42", 0) == 0 || sqlstate.rfind("25", 0) == 0 ||
        sqlstate.rfind("0A", 0) == 0) {
      msg += ": " + OneLine(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    }
    if (sqlstate == "23505") {
      return Error::Conflict(std::move(msg));
    }
    if (sqlstate == "23503") {
      return Error::FailedPrecondition(std::move(msg)).WithType("foreign-key");
    }
    if (sqlstate == "40001" || sqlstate == "40P01") {
      retryable_failure_ = true;
      return Error::Unavailable(std::move(msg));
    }
    if (sqlstate == "55P03" || sqlstate == "57014") {  // lock_not_available, query_canceled
      return Error::Unavailable(std::move(msg));
    }
    return Error::Internal(std::move(msg));
  }

  PGconn* conn_;
  std::string pending_begin_;  // BEGIN still to send with the next statement
  std::unordered_map<std::string, Prepared> cache_;  // by SQL text
  int64_t next_statement_ = 0;
  bool broken_ = false;
};

void IgnoreNotice(void*, const char*) {}

class PgDriver final : public Driver {
 public:
  PgDriver(std::string url, std::string schema, std::chrono::milliseconds connect_timeout)
      : url_(std::move(url)), schema_(std::move(schema)) {
    int64_t secs = std::max<int64_t>(2, (connect_timeout.count() + 999) / 1000);
    connect_timeout_ = std::to_string(secs);
  }

  Dialect dialect() const override { return Dialect::kPostgres; }

  int64_t MigrationLockKey() const override {
    // FNV-1a of the schema: services sharing a database migrate independently.
    uint64_t h = 1469598103934665603ull;
    for (char c : "agora.migrate." + schema_) {
      h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
    return static_cast<int64_t>(h);
  }

  // libpq may quote parts of the URL in its messages; the password never
  // goes into ours.
  std::string WithoutPassword(std::string msg) const {
    PQconninfoOption* opts = PQconninfoParse(url_.c_str(), nullptr);
    if (opts == nullptr) return "the database URL is malformed";
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (std::string_view(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') {
        const std::string secret(o->val);
        for (size_t at = msg.find(secret); at != std::string::npos; at = msg.find(secret, at)) {
          msg.replace(at, secret.size(), "***");
        }
      }
    }
    PQconninfoFree(opts);
    return msg;
  }

  Result<std::unique_ptr<Conn>> Connect() override {
    // Keywords later in the list win: the URL may override connect_timeout.
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* vals[] = {connect_timeout_.c_str(), "agora", url_.c_str(), nullptr};
    PGconn* raw = PQconnectdbParams(keys, vals, 1);
    if (raw == nullptr) {
      return Error::Unavailable("cannot connect to PostgreSQL: out of memory");
    }
    auto conn = std::make_unique<PgConn>(raw);
    if (PQstatus(raw) != CONNECTION_OK) {
      return Error::Unavailable("cannot connect to PostgreSQL: " + WithoutPassword(OneLine(PQerrorMessage(raw))));
    }
    PQsetNoticeProcessor(raw, IgnoreNotice, nullptr);
    if (!schema_.empty()) {
      if (!schema_created_) {
        // Two processes creating the schema at once can race on the catalog's
        // unique index; the loser sees it exists on the second try.
        Status s = conn->ExecScript("postgres.create_schema",
                                    "CREATE SCHEMA IF NOT EXISTS \"" + schema_ + "\"");
        if (!s.ok()) {
          s = conn->ExecScript("postgres.create_schema",
                               "CREATE SCHEMA IF NOT EXISTS \"" + schema_ + "\"");
        }
        if (!s.ok()) {
          return Error::Unavailable("cannot create schema " + schema_ + ": " + s.error().message);
        }
        schema_created_ = true;
      }
      Status s = conn->ExecScript("postgres.search_path", "SET search_path TO \"" + schema_ + "\"");
      if (!s.ok()) {
        return Error::Unavailable("cannot set search_path: " + s.error().message);
      }
    }
    return std::unique_ptr<Conn>(std::move(conn));
  }

 private:
  std::string url_;
  std::string schema_;
  std::string connect_timeout_;
  std::atomic<bool> schema_created_{false};
};

}  // namespace

Result<std::unique_ptr<Driver>> NewPostgresDriver(const Options& options) {
  if (!options.schema.empty() && !ValidSchemaName(options.schema)) {
    return Error::InvalidArgument("database schema name must match [a-z_][a-z0-9_]*");
  }
  return std::unique_ptr<Driver>(
      std::make_unique<PgDriver>(options.url, options.schema, options.acquire_timeout));
}

}  // namespace agora::db::internal
