// Event ids, the outbox/inbox tables, and appending and claiming rows.

#include "core/events/events.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <random>

namespace agora::events {
namespace {

constexpr char kBase32[] = "0123456789abcdefghjkmnpqrstvwxyz";  // Crockford, lowercase

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr std::string_view kSqliteSchema = R"sql(
CREATE TABLE outbox_events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  payload TEXT NOT NULL,
  occurred_at_ms INTEGER NOT NULL,
  published_at_ms INTEGER
);
CREATE INDEX outbox_events_unpublished ON outbox_events (seq) WHERE published_at_ms IS NULL;
CREATE TABLE inbox_events (
  consumer TEXT NOT NULL,
  event_id TEXT NOT NULL,
  handled_at_ms INTEGER NOT NULL,
  PRIMARY KEY (consumer, event_id)
);
)sql";

constexpr std::string_view kPostgresSchema = R"sql(
CREATE TABLE outbox_events (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  source TEXT NOT NULL,
  payload TEXT NOT NULL,
  occurred_at_ms BIGINT NOT NULL,
  published_at_ms BIGINT
);
CREATE INDEX outbox_events_unpublished ON outbox_events (seq) WHERE published_at_ms IS NULL;
CREATE TABLE inbox_events (
  consumer TEXT NOT NULL,
  event_id TEXT NOT NULL,
  handled_at_ms BIGINT NOT NULL,
  PRIMARY KEY (consumer, event_id)
);
)sql";

const db::Migration kMigrations[] = {
    {1, "create_outbox_and_inbox", kSqliteSchema, kPostgresSchema},
    // How far each consumer has applied its publisher's outbox (CatchUp).
    {2, "consumer_positions", R"sql(
CREATE TABLE consumer_positions (
  consumer TEXT PRIMARY KEY,
  seq BIGINT NOT NULL
);
)sql"},
};

}  // namespace

std::string NewEventId() {
  // ULID-style: 48-bit milliseconds, then 80 random bits; within one
  // millisecond the random part is incremented, so ids keep increasing.
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}() ^
                             static_cast<uint64_t>(NowMillis()) * 0x9e3779b97f4a7c15ull);
  static uint64_t last_ms = 0;
  static uint64_t last_hi = 0;  // top 16 random bits
  static uint64_t last_lo = 0;  // low 64 random bits

  uint64_t ms = static_cast<uint64_t>(NowMillis());
  uint64_t hi = 0;
  uint64_t lo = 0;
  {
    std::lock_guard lock(mu);
    if (ms <= last_ms) {
      ms = last_ms;
      lo = last_lo + 1;
      hi = last_hi + (lo == 0 ? 1 : 0);
      if (hi > 0xffff) {  // 2^80 ids in one millisecond: move to the next one
        ++ms;
        hi = rng() & 0x7fff;
        lo = rng();
      }
    } else {
      // Keep the top bit clear so increments within a millisecond never overflow.
      hi = rng() & 0x7fff;
      lo = rng();
    }
    last_ms = ms;
    last_hi = hi;
    last_lo = lo;
  }

  std::string out = "evt_";
  out.resize(4 + 26);
  // 10 characters of time (50 bits, top 2 always zero for 48-bit values).
  for (int i = 9; i >= 0; --i) {
    out[4 + i] = kBase32[ms & 31];
    ms >>= 5;
  }
  // 16 characters of randomness: 80 bits as hi:16 | lo:64.
  for (int i = 15; i >= 0; --i) {
    out[14 + i] = kBase32[lo & 31];
    lo = (lo >> 5) | ((hi & 31) << 59);
    hi >>= 5;
  }
  return out;
}

std::span<const db::Migration> Migrations() { return kMigrations; }

Status AppendToOutbox(db::Tx& tx, const Event& event) {
  if (event.type.empty() || event.source.empty()) {
    return Error::InvalidArgument("an event needs a type and a source");
  }
  std::string id = event.id.empty() ? NewEventId() : event.id;
  auto r = tx.Exec("events.outbox_append",
                   "INSERT INTO outbox_events (id, type, source, payload, occurred_at_ms) "
                   "VALUES ($1, $2, $3, $4, $5)",
                   {std::move(id), event.type, event.source, event.payload, event.occurred_at_ms});
  if (!r.ok()) {
    return std::move(r).error();
  }
  return Ok();
}

Result<bool> ClaimInbox(db::Tx& tx, std::string_view consumer, std::string_view event_id) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows r, tx.Exec("events.inbox_claim",
                          "INSERT INTO inbox_events (consumer, event_id, handled_at_ms) "
                          "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                          {std::string(consumer), std::string(event_id), NowMillis()}));
  return r.affected == 1;
}

Result<std::vector<Event>> ReadOutbox(db::Database& db, int64_t after_seq, int limit) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db.Exec("events.outbox_read",
                                 "SELECT seq, id, type, source, payload, occurred_at_ms FROM outbox_events "
                                 "WHERE seq > $1 ORDER BY seq LIMIT $2",
                                 {after_seq, int64_t{limit}}));
  std::vector<Event> out;
  out.reserve(rows.size());
  for (const db::Row& row : rows) {
    out.push_back(Event{row.Text(1), row.Text(2), row.Text(3), row.Text(4), row.Int(5), row.Int(0)});
  }
  return out;
}

Result<int64_t> LastOutboxSeq(db::Database& db) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db.Exec("events.outbox_last_seq", "SELECT COALESCE(MAX(seq), 0) FROM outbox_events"));
  return rows.empty() ? int64_t{0} : rows[0].Int(0);
}

Status SavePosition(db::Tx& tx, std::string_view consumer, int64_t seq) {
  AGORA_ASSIGN_OR_RETURN(db::Rows r, tx.Exec("events.position_save",
                                             "INSERT INTO consumer_positions (consumer, seq) VALUES ($1, $2) "
                                             "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq "
                                             "WHERE consumer_positions.seq < excluded.seq",
                                             {std::string(consumer), seq}));
  (void)r;
  return Ok();
}

Result<int64_t> LoadPosition(db::Database& db, std::string_view consumer) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, db.Exec("events.position_load",
                                                "SELECT seq FROM consumer_positions WHERE consumer = $1",
                                                {std::string(consumer)}));
  return rows.empty() ? int64_t{0} : rows[0].Int(0);
}

Result<int64_t> CatchUp(int64_t position, int64_t window, const OutboxReader& read, std::string_view type_prefix,
                        const Handler& handler) {
  int64_t after = std::max<int64_t>(0, position - window);
  int64_t applied = 0;
  for (;;) {
    AGORA_ASSIGN_OR_RETURN(std::vector<Event> page, read(after, 500));
    if (page.empty()) return applied;
    for (const Event& e : page) {
      after = std::max(after, e.seq);
      if (!e.type.starts_with(type_prefix)) continue;
      AGORA_RETURN_IF_ERROR(handler(e));
      ++applied;
    }
  }
}

}  // namespace agora::events
