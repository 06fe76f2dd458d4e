// The idempotency_keys table, and claiming, finishing and releasing keys.

#include "core/idempotency/idempotency.h"

#include <algorithm>
#include <stdexcept>

#include <boost/json.hpp>

#include "core/crypto/hash.h"
#include "core/crypto/random.h"

namespace agora::idempotency {
namespace {

// One row per (scope, key). While in progress, lease_token and
// locked_until_ms are set and response_status is NULL; once finished, the
// response columns are set and the lease columns are NULL. expires_at_ms is
// when Purge may delete the row: lease end + retention while in progress,
// finish time + retention once finished.
constexpr std::string_view kSqliteSchema = R"sql(
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  lease_token TEXT,
  locked_until_ms INTEGER,
  response_status INTEGER,
  response_content_type TEXT,
  response_headers TEXT,
  response_body BLOB,
  created_at_ms INTEGER NOT NULL,
  finished_at_ms INTEGER,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, idem_key),
  CHECK ((response_status IS NULL AND lease_token IS NOT NULL AND locked_until_ms IS NOT NULL)
      OR (response_status IS NOT NULL AND lease_token IS NULL AND locked_until_ms IS NULL))
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at_ms);
)sql";

constexpr std::string_view kPostgresSchema = R"sql(
CREATE TABLE idempotency_keys (
  scope TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  lease_token TEXT,
  locked_until_ms BIGINT,
  response_status INTEGER,
  response_content_type TEXT,
  response_headers TEXT,
  response_body BYTEA,
  created_at_ms BIGINT NOT NULL,
  finished_at_ms BIGINT,
  expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY (scope, idem_key),
  CHECK ((response_status IS NULL AND lease_token IS NOT NULL AND locked_until_ms IS NOT NULL)
      OR (response_status IS NOT NULL AND lease_token IS NULL AND locked_until_ms IS NULL))
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at_ms);
)sql";

const db::Migration kMigrations[] = {
    {1, "create_idempotency_keys", kSqliteSchema, kPostgresSchema},
};

// Start's read-backs race only with Abandon/Purge deleting the row or
// another Start taking it over; a few rounds always settle it.
constexpr int kStartRounds = 4;
constexpr int64_t kPurgeBatch = 1000;

int64_t Millis(std::chrono::milliseconds d) { return d.count(); }

std::string EncodeHeaders(const std::vector<std::pair<std::string, std::string>>& headers) {
  boost::json::array a;
  a.reserve(headers.size());
  for (const auto& [name, value] : headers) {
    a.push_back(boost::json::array{boost::json::string(name), boost::json::string(value)});
  }
  return boost::json::serialize(a);
}

Result<std::vector<std::pair<std::string, std::string>>> DecodeHeaders(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  if (text.empty()) {
    return out;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_array()) {
    return Error::Internal("idempotency: stored response headers are not a JSON array");
  }
  for (const boost::json::value& item : v.get_array()) {
    const boost::json::array* pair = item.if_array();
    if (pair == nullptr || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string()) {
      return Error::Internal("idempotency: stored response header is not a [name, value] pair");
    }
    out.emplace_back(std::string((*pair)[0].get_string()), std::string((*pair)[1].get_string()));
  }
  return out;
}

Status CheckLease(const Lease& lease) {
  if (lease.scope.empty() || lease.key.empty() || lease.token.empty()) {
    return Error::Internal("idempotency: an empty lease (Start did not return kProceed)");
  }
  return Ok();
}

Status LeaseLost() {
  return Error::FailedPrecondition(
             "The idempotency key is no longer held by this request (its lease expired and "
             "another attempt took it over)")
      .WithType("idempotency-lease-lost");
}

// Deletes the record if `lease` still holds it; Ok either way.
Status Release(db::Tx& tx, const Lease& lease) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows r, tx.Exec("idempotency.release",
                          "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 "
                          "AND lease_token = $3 AND response_status IS NULL",
                          {lease.scope, lease.key, lease.token}));
  (void)r;
  return Ok();
}

}  // namespace

std::span<const db::Migration> Migrations() { return kMigrations; }

Status ValidateKey(std::string_view key) {
  bool ok = !key.empty() && key.size() <= kMaxKeyLength;
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      ok = false;
      break;
    }
  }
  if (!ok) {
    return Error::Validation({{std::string(kHeader),
                               "must be 1 to 255 printable ASCII characters"}});
  }
  return Ok();
}

std::string Fingerprint(std::string_view method, std::string_view path, std::string_view body) {
  std::string data;
  data.reserve(method.size() + path.size() + body.size() + 24);
  data += std::to_string(method.size());
  data += ':';
  data += method;
  data += std::to_string(path.size());
  data += ':';
  data += path;
  data += std::to_string(body.size());
  data += ':';
  data += body;
  return crypto::Sha256Hex(data);
}

bool IsReplayable(int status) {
  if (status == 408 || status == 429) {
    return false;
  }
  return (status >= 200 && status <= 299) || (status >= 400 && status <= 499);
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kProceed: return "proceed";
    case Outcome::kReplay: return "replay";
    case Outcome::kMismatch: return "mismatch";
    case Outcome::kInProgress: return "in-progress";
  }
  return "?";
}

Store::Store(db::Database& db, const Clock& clock, StoreOptions options)
    : db_(db), clock_(clock), options_(options) {
  if (options_.retention < std::chrono::hours(24)) {
    throw std::invalid_argument("idempotency: retention must be at least 24 hours");
  }
  if (options_.lease <= std::chrono::seconds(0)) {
    throw std::invalid_argument("idempotency: the lease must be positive");
  }
}

Result<Begin> Store::Start(std::string_view scope, std::string_view key,
                           std::string_view fingerprint) {
  AGORA_RETURN_IF_ERROR(ValidateKey(key));
  if (scope.empty() || fingerprint.empty()) {
    return Error::Internal("idempotency: Start needs a scope and a fingerprint");
  }
  const int64_t lease_ms = Millis(options_.lease);
  const int64_t retention_ms = Millis(options_.retention);

  // One write transaction: on SQLite it holds the write lock throughout; on
  // PostgreSQL (READ COMMITTED) the INSERT waits for a concurrent inserter
  // of the same key to commit or roll back, and each statement sees what
  // has committed before it.
  return db_.Transact("idempotency.start", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Begin> {
    for (int round = 0; round < kStartRounds; ++round) {
      const int64_t now = clock_.NowMillis();
      Lease lease{std::string(scope), std::string(key), crypto::RandomToken(18)};

      AGORA_ASSIGN_OR_RETURN(
          db::Rows inserted,
          tx.Exec("idempotency.insert",
                  "INSERT INTO idempotency_keys (scope, idem_key, fingerprint, lease_token, "
                  "locked_until_ms, created_at_ms, expires_at_ms) "
                  "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                  {lease.scope, lease.key, std::string(fingerprint), lease.token, now + lease_ms,
                   now, now + lease_ms + retention_ms}));
      if (inserted.affected == 1) {
        Begin b;
        b.outcome = Outcome::kProceed;
        b.lease = std::move(lease);
        return b;
      }

      AGORA_ASSIGN_OR_RETURN(
          db::Rows rows,
          tx.Exec("idempotency.read",
                  "SELECT fingerprint, lease_token, locked_until_ms, response_status, "
                  "response_content_type, response_headers, response_body "
                  "FROM idempotency_keys WHERE scope = $1 AND idem_key = $2",
                  {lease.scope, lease.key}));
      if (rows.empty()) {
        continue;  // released or purged since the INSERT: insert again
      }
      const db::Row& row = rows[0];
      if (row.Text(0) != fingerprint) {
        Begin b;
        b.outcome = Outcome::kMismatch;
        return b;
      }
      if (!row.IsNull(3)) {
        AGORA_ASSIGN_OR_RETURN(auto headers, DecodeHeaders(row.Text(5)));
        Begin b;
        b.outcome = Outcome::kReplay;
        b.saved = Saved{static_cast<int>(row.Int(3)), row.Text(4), row.Bytes(6), std::move(headers)};
        return b;
      }
      const int64_t locked_until = row.Int(2);
      if (locked_until > now) {
        Begin b;
        b.outcome = Outcome::kInProgress;
        b.retry_after = std::chrono::seconds(std::max<int64_t>(1, (locked_until - now + 999) / 1000));
        return b;
      }
      // The lease expired: take the record over, unless someone else just did
      // (or it finished): compare-and-swap on the old token.
      AGORA_ASSIGN_OR_RETURN(
          db::Rows taken,
          tx.Exec("idempotency.take_over",
                  "UPDATE idempotency_keys SET lease_token = $3, locked_until_ms = $4, "
                  "expires_at_ms = $5 WHERE scope = $1 AND idem_key = $2 AND lease_token = $6 "
                  "AND response_status IS NULL",
                  {lease.scope, lease.key, lease.token, now + lease_ms,
                   now + lease_ms + retention_ms, row.Text(1)}));
      if (taken.affected == 1) {
        Begin b;
        b.outcome = Outcome::kProceed;
        b.lease = std::move(lease);
        b.taken_over = true;
        return b;
      }
      // Lost the race: read the record again.
    }
    return Error::Unavailable("The idempotency key is changing too fast; retry");
  });
}

Status Store::FinishInTx(db::Tx& tx, const Lease& lease, const Saved& response) const {
  AGORA_RETURN_IF_ERROR(CheckLease(lease));
  if (response.status < 100 || response.status > 599) {
    return Error::Internal("idempotency: Finish with an HTTP status outside 100..599");
  }
  if (!IsReplayable(response.status)) {
    return Release(tx, lease);
  }
  const int64_t now = clock_.NowMillis();
  AGORA_ASSIGN_OR_RETURN(
      db::Rows r,
      tx.Exec("idempotency.finish",
              "UPDATE idempotency_keys SET response_status = $4, response_content_type = $5, "
              "response_headers = $6, response_body = $7, finished_at_ms = $8, "
              "expires_at_ms = $9, lease_token = NULL, locked_until_ms = NULL "
              "WHERE scope = $1 AND idem_key = $2 AND lease_token = $3 "
              "AND response_status IS NULL",
              {lease.scope, lease.key, lease.token, int64_t{response.status},
               response.content_type, EncodeHeaders(response.headers), db::Blob{response.body},
               now, now + Millis(options_.retention)}));
  if (r.affected != 1) {
    return LeaseLost();
  }
  return Ok();
}

Status Store::Finish(const Lease& lease, const Saved& response) {
  return db_.Transact("idempotency.finish", db::TxMode::kWrite,
                      [&](db::Tx& tx) -> Status { return FinishInTx(tx, lease, response); });
}

Status Store::Abandon(const Lease& lease) {
  AGORA_RETURN_IF_ERROR(CheckLease(lease));
  return db_.Transact("idempotency.abandon", db::TxMode::kWrite,
                      [&](db::Tx& tx) -> Status { return Release(tx, lease); });
}

Result<int64_t> Store::Purge() {
  int64_t total = 0;
  for (;;) {
    const int64_t now = clock_.NowMillis();
    AGORA_ASSIGN_OR_RETURN(
        db::Rows r,
        db_.Transact("idempotency.purge", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<db::Rows> {
          return tx.Exec("idempotency.purge",
                         "DELETE FROM idempotency_keys WHERE (scope, idem_key) IN "
                         "(SELECT scope, idem_key FROM idempotency_keys WHERE expires_at_ms < $1 "
                         "LIMIT $2)",
                         {now, kPurgeBatch});
        }));
    total += r.affected;
    if (r.affected < kPurgeBatch) {
      return total;
    }
  }
}

}  // namespace agora::idempotency
