// Idempotency keys for POSTs that create or move money (Stripe's semantics).
//
// A client sends `Idempotency-Key: <1..255 printable ASCII>` on a POST. The
// handler asks the Store whether this request may run, runs it at most once,
// and saves the answer, so a retry of the same request gets the same answer
// instead of charging twice:
//
//   std::string scope = principal.user_id + ":" + "POST /v1/payments";
//   auto fp = idempotency::Fingerprint("POST", req.path, req.body);
//   AGORA_ASSIGN_OR_RETURN(idempotency::Begin b, store.Start(scope, key, fp));
//   switch (b.outcome) {
//     case Outcome::kReplay:     return the saved answer (b.saved), as is;
//     case Outcome::kMismatch:   422 /problems/idempotency-key-reused;
//     case Outcome::kInProgress: 409 /problems/idempotency-key-in-use,
//                                Retry-After: b.retry_after;
//     case Outcome::kProceed:    run the request, then in ITS transaction:
//   }
//   db.Transact("payments.charge", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
//     ...move the money...
//     return store.FinishInTx(tx, b.lease, saved);  // same COMMIT
//   });
//   on a 5xx, an error from that transaction, or an exception: store.Abandon(b.lease).
//
// Records are keyed by (scope, key). The scope is chosen by the caller,
// typically "<user id>:<route>", so two users' keys, or one user's keys on
// two routes, never collide. The fingerprint is a digest of the request
// (Fingerprint()); the same key with another fingerprint is refused.
//
// Record life: Start inserts an in-progress record holding a lease (a random
// token and `locked_until = now + lease`); Finish saves the answer and drops
// the lease; Abandon deletes the record so a retry runs again; a lease that
// expired (its process died) is taken over by the next Start, which gets a
// new token. Finish, FinishInTx and Abandon act only while the caller's token
// is still the record's, so a process that lost its lease can neither
// overwrite nor release the new owner's record, and its FinishInTx fails,
// rolling back its state change (the lease token is a fencing token).
//
// Concurrency: Start inserts with INSERT ... ON CONFLICT DO NOTHING and reads
// back (never check-then-insert), and takes over an expired lease with a
// compare-and-swap on the token, so concurrent Starts on one key yield exactly
// one kProceed on SQLite and PostgreSQL alike.
//
// Each service applies the table to its own database with
//   db.Migrate("<service>.idempotency", idempotency::Migrations());
// and runs Store::Purge() periodically. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/db/db.h"
#include "core/result.h"

namespace agora::idempotency {

// The request header, and the field name key validation errors carry.
inline constexpr std::string_view kHeader = "Idempotency-Key";
inline constexpr size_t kMaxKeyLength = 255;

// The idempotency_keys table (both dialects).
std::span<const db::Migration> Migrations();

// kInvalidArgument (type "validation", field "Idempotency-Key") unless `key`
// is 1..255 characters of printable ASCII (0x20..0x7E). Start checks this
// too; handlers may call it first to refuse a bad header before any work.
[[nodiscard]] Status ValidateKey(std::string_view key);

// The request fingerprint: SHA-256 (64 hex characters) over the method, the
// path and the body, length-prefixed so no two different triples collide.
// Pass the path with its query when the query changes what the POST does.
// The body is hashed as bytes: the same JSON with other whitespace or key
// order is another request (a client retrying sends the same bytes).
std::string Fingerprint(std::string_view method, std::string_view path, std::string_view body);

// The answer to replay. `headers` are those that belong to the answer
// (Location, ETag), not per-request ones (request id, Date). `body` is kept
// byte for byte.
struct Saved {
  int status = 0;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  friend bool operator==(const Saved&, const Saved&) = default;
};

// Whether an answer with this status is saved and replayed: 2xx and 4xx,
// except 408 and 429 (they say "try again", so a retry must run again).
// Others (5xx above all) release the key instead; see Finish.
bool IsReplayable(int status);

// Proof of owning an in-progress record: what Finish, FinishInTx and Abandon
// need. `token` is random per Start that returned kProceed.
struct Lease {
  std::string scope;
  std::string key;
  std::string token;
};

enum class Outcome {
  kProceed,     // run the request; `lease` is set. Then Finish or Abandon.
  kReplay,      // already answered: return `saved` unchanged
  kMismatch,    // the key was used with another request: 422
  kInProgress,  // another request with this key is running: 409 + Retry-After
};

const char* OutcomeName(Outcome o);

struct Begin {
  Outcome outcome = Outcome::kProceed;
  std::optional<Saved> saved;  // kReplay
  Lease lease;                 // kProceed
  // kProceed: true when this Start took over an expired lease, i.e. an
  // earlier attempt with this key started and never finished (its process
  // died or overran the lease). It may have done work outside the database
  // (a provider call): repeat such calls with the same provider-side
  // idempotency key so they are not done twice.
  bool taken_over = false;
  // kInProgress: when the running request's lease expires (at least 1 s);
  // the value for Retry-After.
  std::chrono::seconds retry_after{0};
};

struct StoreOptions {
  // How long an answer stays replayable after Finish, and an in-progress
  // record after its lease expires. At least 24 h (Stripe's minimum);
  // Purge deletes records past it.
  std::chrono::hours retention{24};
  // How long a started request owns its key before another Start may take
  // it over. Must exceed the slowest handler, provider timeouts included:
  // a takeover while the first request is still running executes the
  // request twice (FinishInTx then lets only one of them commit).
  std::chrono::seconds lease{60};
};

class Store {
 public:
  // Throws std::invalid_argument (a start-up bug) if options.retention is
  // under 24 h or options.lease is not positive. `db` and `clock` must
  // outlive the Store; `db` must have Migrations() applied.
  Store(db::Database& db, const Clock& clock, StoreOptions options = {});

  // Claims (scope, key) for a request with `fingerprint`:
  //   no record                                 -> kProceed (record in progress)
  //   another fingerprint (finished or not)     -> kMismatch
  //   finished, same fingerprint                -> kReplay with the saved answer
  //   in progress, lease live                   -> kInProgress with retry_after
  //   in progress, lease expired                -> kProceed, taken_over = true
  // kInvalidArgument (field "Idempotency-Key") for an invalid key; kInternal
  // for an empty scope or fingerprint; kUnavailable if the database is.
  [[nodiscard]] Result<Begin> Start(std::string_view scope, std::string_view key,
                                    std::string_view fingerprint);

  // Saves `response` for lease's record inside the caller's transaction, so
  // the state change (the money movement) and the saved answer commit
  // together, or neither does. Without that, a crash between two commits
  // either leaves a committed charge with the key still in progress (after the
  // lease a retry takes over and charges again) or a saved answer for a change
  // that never committed (a retry replays a success that did not happen).
  //
  // Returns kFailedPrecondition (type "idempotency-lease-lost") when the lease
  // is no longer the record's (taken over after expiry, or purged): the caller
  // must let the transaction roll back, because another attempt owns the key.
  // A status that is not IsReplayable() deletes the record instead (within the
  // transaction): use that only when the transaction did not change state,
  // since a retry will run again. kInternal for a status outside 100..599 or
  // an empty lease.
  [[nodiscard]] Status FinishInTx(db::Tx& tx, const Lease& lease, const Saved& response) const;

  // FinishInTx in a transaction of its own, for handlers whose state change
  // has already committed elsewhere (or that changed nothing). Prefer
  // FinishInTx whenever the request writes to this database: see why above.
  [[nodiscard]] Status Finish(const Lease& lease, const Saved& response);

  // Deletes lease's in-progress record so a retry runs again: call it on a
  // 5xx, when the transaction holding FinishInTx failed, or on an exception.
  // Ok also when there is nothing to release (already finished, abandoned,
  // taken over or purged).
  [[nodiscard]] Status Abandon(const Lease& lease);

  // Deletes records past retention (answers saved more than `retention` ago,
  // in-progress records whose lease expired more than `retention` ago), in
  // batches of 1,000; returns how many.
  [[nodiscard]] Result<int64_t> Purge();

  const StoreOptions& options() const { return options_; }

 private:
  db::Database& db_;
  const Clock& clock_;
  const StoreOptions options_;
};

}  // namespace agora::idempotency
