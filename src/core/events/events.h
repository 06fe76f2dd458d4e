// Events between services: the transactional outbox, the consumer inbox,
// the Bus interface with its in-process implementation, and the relay that
// moves committed outbox rows to the bus.
//
// A service that publishes appends each event to its outbox in the same
// transaction as the state change (AppendToOutbox), then calls
// OutboxRelay::Notify() after COMMIT. The relay publishes committed rows at
// least once, in outbox order. A consumer handles each event effectively
// once by claiming it in its inbox inside the transaction that applies it:
//
//   bus.Subscribe("search.indexer", "catalog.", [&](const events::Event& e) {
//     return db.Transact("search.apply_event", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
//       AGORA_ASSIGN_OR_RETURN(bool fresh, events::ClaimInbox(tx, "search.indexer", e.id));
//       if (!fresh) return Ok();  // a redelivery: already applied
//       ...apply e...
//     });
//   });
//
// Each service applies the outbox and inbox tables to its own database with
// db.Migrate("<service>.events", events::Migrations()).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/db/db.h"
#include "core/metrics.h"
#include "core/result.h"

namespace agora::events {

struct Event {
  std::string id;          // "evt_" + a time-ordered unique id (NewEventId)
  std::string type;        // "user.registered": "<service>.<what happened>"
  std::string source;      // the publishing service ("identity")
  std::string payload;     // JSON text
  int64_t occurred_at_ms = 0;  // Unix epoch milliseconds
  // The publisher's outbox sequence, set by the relay (and by readers of the
  // outbox); 0 before the event is in an outbox. Increases in outbox order
  // within one publisher, so a consumer can record how far it has applied
  // and catch up from the outbox after a crash.
  int64_t seq = 0;
};

// "evt_" + 26 characters: the millisecond timestamp then 80 random bits, in
// a lowercase Crockford base32 that sorts like the time. Unique; within one
// process, strictly increasing. Thread-safe.
std::string NewEventId();

// The outbox_events and inbox_events tables (both dialects).
std::span<const db::Migration> Migrations();

// Appends `event` to the outbox inside the caller's transaction, so it is
// published if and only if the transaction commits. An empty `event.id` is
// filled with NewEventId(). Returns kInvalidArgument if `type` or `source`
// is empty, kConflict if the id is already in the outbox.
[[nodiscard]] Status AppendToOutbox(db::Tx& tx, const Event& event);

// Records that `consumer` handled `event_id`, inside the consumer's own
// transaction. Returns true the first time, false if it was already recorded
// (the caller then skips the work). If the transaction rolls back, so does
// the claim, and a redelivery is handled again.
[[nodiscard]] Result<bool> ClaimInbox(db::Tx& tx, std::string_view consumer,
                                      std::string_view event_id);

// Committed outbox rows with seq > `after_seq`, published or not, in seq
// order, at most `limit`, each with `seq` set. For consumers catching up
// after a crash (the in-process bus holds events in memory only). Outbox
// rows are kept after publishing, so the history is complete.
[[nodiscard]] Result<std::vector<Event>> ReadOutbox(db::Database& db, int64_t after_seq, int limit);
// The highest outbox seq (0 when the outbox is empty).
[[nodiscard]] Result<int64_t> LastOutboxSeq(db::Database& db);

using Handler = std::function<Status(const Event&)>;

// A consumer's durable position in its publisher's outbox: the highest seq
// it has applied, saved inside the transaction that applied the event (only
// ever moves forward), so a consumer can replay what the in-memory bus lost
// in a crash (CatchUp). Table consumer_positions, in the consumer's database.
[[nodiscard]] Status SavePosition(db::Tx& tx, std::string_view consumer, int64_t seq);
// 0 when the consumer has saved none.
[[nodiscard]] Result<int64_t> LoadPosition(db::Database& db, std::string_view consumer);

// Reads a publisher's outbox (ReadOutbox, or a client's EventsAfter).
using OutboxReader = std::function<Result<std::vector<Event>>(int64_t after_seq, int limit)>;

// Replays to `handler`, in seq order, every event of the publisher's outbox
// with seq > position - window whose type starts with `type_prefix`, until
// the end of the outbox. `window` covers outbox rows that committed out of
// seq order (PostgreSQL sequences follow insert order, not commit order), so
// the consumer must dedupe (ClaimInbox, or state checks). Returns how many
// events were handed over; stops at the first handler error.
//
// The services call it at start-up with a handler that publishes to the bus
// before bus.Start() and before any relay starts: the replayed events are
// then queued ahead of every live one, and the bus retries a failing one
// (with backoff, never skipping it) like any other.
[[nodiscard]] Result<int64_t> CatchUp(int64_t position, int64_t window, const OutboxReader& read,
                                      std::string_view type_prefix, const Handler& handler);

// Delivers events to subscribed consumers. Implementations: the in-process
// bus below, and (distributed shape) a RabbitMQ adapter.
class Bus {
 public:
  virtual ~Bus() = default;

  // Returns once the bus has accepted `event`; it is delivered at least once
  // from then on. kUnavailable if the bus is stopped or unreachable.
  [[nodiscard]] virtual Status Publish(const Event& event) = 0;

  // Delivers every event whose type starts with `type_prefix` ("" = all) to
  // `handler`, one at a time per consumer, in publish order. A handler that
  // returns an error (or throws) gets the same event again after a backoff
  // (doubling, capped), without blocking other consumers. `consumer` names a
  // durable subscription and must be unique on the bus. Call before Start().
  virtual void Subscribe(std::string consumer, std::string type_prefix, Handler handler) = 0;

  virtual void Start() = 0;
  // Stops delivery: each consumer stops after its current handler returns.
  // Idempotent.
  virtual void Stop() = 0;
};

struct InProcessBusOptions {
  // Backoff before redelivering to a failing handler: starts at
  // retry_initial, doubles per failure, at most retry_max.
  std::chrono::milliseconds retry_initial{50};
  std::chrono::milliseconds retry_max{5000};
  // Events one consumer may have waiting. When a matching consumer is full,
  // Publish refuses with kUnavailable and delivers to nobody, so the outbox
  // keeps the row (the durable buffer) and the relay tries again later.
  size_t max_queue = 10000;
};

// A queue and a worker thread per consumer. Events are held in memory only:
// what is still queued at Stop() is dropped (the outbox has already marked it
// published), which is the all-in-one shape's trade-off. Thread-safe.
std::unique_ptr<Bus> NewInProcessBus(InProcessBusOptions options = {});

// Moves committed outbox rows to the bus in outbox order: every
// `poll_interval`, and at once after Notify(), it publishes each unpublished
// row and then marks it published. At least once: a crash between publish and
// mark publishes the row again (consumers dedupe with ClaimInbox). Rows from
// concurrent transactions are published in sequence order as they commit.
// Run one relay per database. Thread-safe; `db` and `bus` must outlive it.
class OutboxRelay {
 public:
  OutboxRelay(db::Database& db, Bus& bus,
              std::chrono::milliseconds poll_interval = std::chrono::milliseconds(200));
  ~OutboxRelay();  // Stop()s
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  void Start();
  // Stops the polling thread, then publishes what is already committed
  // (best effort, bounded by 2 s) before returning. Idempotent.
  void Stop();
  // Wakes the relay; call after committing a transaction that appended events.
  void Notify();
  // Publishes what is pending now; returns how many rows it published.
  [[nodiscard]] Result<int> RelayOnceForTest();
  // Rows not yet published at the last poll (the outbox-lag metric).
  int64_t pending() const { return pending_.load(); }

 private:
  Result<int> RelayOnce();
  void Loop();

  db::Database& db_;
  Bus& bus_;
  const std::chrono::milliseconds poll_interval_;
  std::mutex relay_mu_;  // one relay pass at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;  // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  // Set by Stop(): relay passes end at this steady-clock time (ns since its
  // epoch), so a large backlog cannot hold shutdown past the flush budget.
  std::atomic<int64_t> stop_deadline_ns_{INT64_MAX};
  std::thread thread_;
  std::atomic<int64_t> pending_{0};
  int64_t failures_logged_ = 0;  // GUARDED_BY(relay_mu_)
};

// Exports what every publishing service shows on /metrics, labelled with
// `service`: the relay's pending outbox rows and the database pool (open and
// in-use connections, acquisitions that waited). `db` and `relay` must
// outlive `registry`'s use.
void ExportServiceMetrics(metrics::Registry& registry, const std::string& service, db::Database& db,
                          const OutboxRelay& relay);

}  // namespace agora::events
