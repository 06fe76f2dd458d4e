// OutboxRelay: polls outbox_events for unpublished rows, publishes them in
// sequence order, then marks them published.

#include <boost/json.hpp>

#include "core/log.h"

#include "core/events/events.h"

namespace agora::events {
namespace {

constexpr int kBatch = 100;
constexpr auto kStopFlushBudget = std::chrono::seconds(2);

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

OutboxRelay::OutboxRelay(db::Database& db, Bus& bus, std::chrono::milliseconds poll_interval)
    : db_(db), bus_(bus), poll_interval_(poll_interval) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) {
    return;
  }
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
  }
  const auto deadline = std::chrono::steady_clock::now() + kStopFlushBudget;
  stop_deadline_ns_ = deadline.time_since_epoch().count();
  cv_.notify_all();
  if (!thread_.joinable()) {
    return;  // never started: nothing to flush on its behalf
  }
  thread_.join();
  // Flush what committed before Stop(), within the budget.
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = RelayOnce();
    if (!r.ok() || *r == 0 || pending() == 0) {
      break;
    }
  }
}

void OutboxRelay::Notify() {
  {
    std::lock_guard lock(mu_);
    notified_ = true;
  }
  cv_.notify_all();
}

Result<int> OutboxRelay::RelayOnceForTest() { return RelayOnce(); }

void OutboxRelay::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, poll_interval_, [&] { return notified_ || stopping_; });
      if (stopping_) {
        return;
      }
      notified_ = false;
    }
    (void)RelayOnce();
  }
}

Result<int> OutboxRelay::RelayOnce() {
  std::lock_guard relay_lock(relay_mu_);
  int total = 0;
  bool stopped_early = false;
  Status failure;
  for (;;) {
    auto batch = db_.Exec("events.outbox_pending",
                          "SELECT seq, id, type, source, payload, occurred_at_ms "
                          "FROM outbox_events WHERE published_at_ms IS NULL "
                          "ORDER BY seq LIMIT $1",
                          {int64_t{kBatch}});
    if (!batch.ok()) {
      failure = std::move(batch).error();
      break;
    }
    std::vector<int64_t> published;
    for (const db::Row& row : *batch) {
      Event e{row.Text(1), row.Text(2), row.Text(3), row.Text(4), row.Int(5), row.Int(0)};
      if (Status s = bus_.Publish(e); !s.ok()) {
        failure = std::move(s);
        break;
      }
      published.push_back(row.Int(0));
    }
    if (!published.empty()) {
      // One statement marks the batch (its seqs as a JSON array). If this
      // fails (or the process dies first) the rows are published again on
      // the next pass: at least once.
      boost::json::array seqs;
      for (int64_t seq : published) seqs.push_back(seq);
      Status marked = StatusOf(db_.Exec(
          "events.outbox_mark_published",
          "UPDATE outbox_events SET published_at_ms = $1 WHERE seq IN (" +
              db::JsonArrayElements(db_.dialect(), "$2", "bigint") + ")",
          {NowMillis(), boost::json::serialize(seqs)}));
      if (!marked.ok()) {
        failure = std::move(marked);
        break;
      }
      total += static_cast<int>(published.size());
    }
    if (!failure.ok() || static_cast<int>(batch->size()) < kBatch) {
      break;
    }
    if (std::chrono::steady_clock::now().time_since_epoch().count() >= stop_deadline_ns_.load()) {
      stopped_early = true;
      break;  // stopping, and the flush budget is spent
    }
  }
  // A pass that emptied the outbox leaves nothing pending (what committed
  // since is the next pass's); only one that stopped early counts the rest.
  if (failure.ok() && !stopped_early) {
    pending_ = 0;
  } else if (auto count = db_.Exec("events.outbox_count_pending",
                                   "SELECT COUNT(*) FROM outbox_events WHERE published_at_ms IS NULL");
             count.ok()) {
    pending_ = (*count)[0].Int(0);
  }
  if (!failure.ok()) {
    if ((failures_logged_++ & 63) == 0) {  // the first, then one in 64
      log::Warn("outbox relay failed",
                {{"code", ErrorCodeName(failure.error().code)}, {"error", failure.error().message}});
    }
    return std::move(failure).error();
  }
  return total;
}

void ExportServiceMetrics(metrics::Registry& registry, const std::string& service, db::Database& db,
                          const OutboxRelay& relay) {
  const std::string label = "service=\"" + service + "\"";
  registry.NewGauge("agora_outbox_pending_events", "Committed events not yet published to the bus.",
                    [&relay] { return static_cast<double>(relay.pending()); }, label);
  registry.NewGauge("agora_db_pool_connections", "Open database connections, by service and state.",
                    [&db] { return static_cast<double>(db.Stats().size); }, label + ",state=\"open\"");
  registry.NewGauge("agora_db_pool_connections", "Open database connections, by service and state.",
                    [&db] { return static_cast<double>(db.Stats().in_use); }, label + ",state=\"in_use\"");
  registry.NewGauge("agora_db_pool_waits", "Connection acquisitions that had to wait, by service.",
                    [&db] { return static_cast<double>(db.Stats().waits); }, label);
}

}  // namespace agora::events
