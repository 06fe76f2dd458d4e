#include "core/events/events.h"

#include <algorithm>
#include <atomic>
#include <set>

#include <gtest/gtest.h>

#include "core/db/db_testing.h"

namespace agora::events {
namespace {

using namespace std::chrono_literals;

constexpr auto kDeadline = 5s;

// Collects what a consumer receives; tests wait on it with a deadline.
class Recorder {
 public:
  Handler handler() {
    return [this](const Event& e) {
      std::lock_guard lock(mu_);
      events_.push_back(e);
      cv_.notify_all();
      return Ok();
    };
  }

  // Waits until at least `n` events arrived or the deadline passed.
  std::vector<Event> WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kDeadline, [&] { return events_.size() >= n; });
    return events_;
  }

  std::vector<Event> Snapshot() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

std::vector<std::string> Types(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) {
    out.push_back(e.type);
  }
  return out;
}

Event MakeEvent(std::string type, std::string payload = "{}") {
  return Event{NewEventId(), std::move(type), "test", std::move(payload), 1'700'000'000'000};
}

TEST(NewEventId, IsPrefixedTimeOrderedAndUnique) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) {
    ids.push_back(NewEventId());
  }
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  for (const std::string& id : {ids.front(), ids.back()}) {
    EXPECT_EQ(id.rfind("evt_", 0), 0u) << id;
    EXPECT_EQ(id.size(), 30u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdefghjkmnpqrstvwxyz", 4), std::string::npos);
  }
  // Ids from different threads are unique too.
  std::vector<std::string> a, b;
  std::thread ta([&] { for (int i = 0; i < 5000; ++i) a.push_back(NewEventId()); });
  std::thread tb([&] { for (int i = 0; i < 5000; ++i) b.push_back(NewEventId()); });
  ta.join();
  tb.join();
  std::set<std::string> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  EXPECT_EQ(all.size(), 10000u);
}

// ---------------------------------------------------------------- bus only

TEST(InProcessBus, DeliversByPrefixInPublishOrder) {
  auto bus = NewInProcessBus();
  Recorder catalog, all;
  bus->Subscribe("test.catalog", "catalog.", catalog.handler());
  bus->Subscribe("test.all", "", all.handler());
  bus->Start();
  for (const char* type : {"catalog.listing_created", "identity.user_registered",
                           "catalog.listing_updated", "orders.order_paid"}) {
    ASSERT_TRUE(bus->Publish(MakeEvent(type)).ok());
  }
  EXPECT_EQ(Types(all.WaitFor(4)),
            (std::vector<std::string>{"catalog.listing_created", "identity.user_registered",
                                      "catalog.listing_updated", "orders.order_paid"}));
  EXPECT_EQ(Types(catalog.WaitFor(2)),
            (std::vector<std::string>{"catalog.listing_created", "catalog.listing_updated"}));
  bus->Stop();
  Status after = bus->Publish(MakeEvent("catalog.late"));
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code, ErrorCode::kUnavailable);
}

TEST(InProcessBus, AFullConsumerRefusesNewEventsForEveryone) {
  // Before Start() nothing drains, so the queue fills deterministically.
  auto bus = NewInProcessBus({.retry_initial = 1ms, .retry_max = 5ms, .max_queue = 2});
  Recorder slow, other;
  bus->Subscribe("test.slow", "catalog.", slow.handler());
  bus->Subscribe("test.other", "", other.handler());
  ASSERT_TRUE(bus->Publish(MakeEvent("catalog.a")).ok());
  ASSERT_TRUE(bus->Publish(MakeEvent("catalog.b")).ok());
  Status full = bus->Publish(MakeEvent("catalog.c"));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::kUnavailable);
  bus->Start();
  // The refused event reached nobody: the outbox will offer it again.
  EXPECT_EQ(Types(other.WaitFor(2)), (std::vector<std::string>{"catalog.a", "catalog.b"}));
  EXPECT_EQ(Types(slow.WaitFor(2)), (std::vector<std::string>{"catalog.a", "catalog.b"}));
  bus->Stop();
}

TEST(InProcessBus, FailingHandlerIsRetriedWithoutBlockingOthers) {
  auto bus = NewInProcessBus({.retry_initial = 1ms, .retry_max = 20ms});
  std::atomic<bool> healthy{false};
  std::atomic<int> attempts{0};
  Recorder flaky_ok, steady;
  Handler ok = flaky_ok.handler();
  bus->Subscribe("test.flaky", "", [&](const Event& e) -> Status {
    ++attempts;
    if (!healthy) {
      return Error::Unavailable("downstream is down");
    }
    return ok(e);
  });
  bus->Subscribe("test.steady", "", steady.handler());
  bus->Start();
  ASSERT_TRUE(bus->Publish(MakeEvent("a.first")).ok());
  ASSERT_TRUE(bus->Publish(MakeEvent("a.second")).ok());

  // The steady consumer gets both while the flaky one keeps failing.
  EXPECT_EQ(steady.WaitFor(2).size(), 2u);
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (attempts < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(attempts.load(), 3);
  EXPECT_TRUE(flaky_ok.Snapshot().empty());

  healthy = true;
  EXPECT_EQ(Types(flaky_ok.WaitFor(2)), (std::vector<std::string>{"a.first", "a.second"}));
  bus->Stop();
}

TEST(InProcessBus, ThrowingHandlerIsRetried) {
  auto bus = NewInProcessBus({.retry_initial = 1ms, .retry_max = 5ms});
  std::atomic<int> calls{0};
  Recorder rec;
  Handler ok = rec.handler();
  bus->Subscribe("test.throws", "", [&](const Event& e) -> Status {
    if (++calls == 1) {
      throw std::runtime_error("boom");
    }
    return ok(e);
  });
  bus->Start();
  ASSERT_TRUE(bus->Publish(MakeEvent("a.b")).ok());
  EXPECT_EQ(rec.WaitFor(1).size(), 1u);
  EXPECT_EQ(calls.load(), 2);
  bus->Stop();
}

// ---------------------------------------------------------------- with a database

class EventsTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
    scratch_.emplace(GetParam());
    auto db = db::Database::Open(scratch_->options());
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(db).value();
    Status migrated = db_->Migrate("test.events", Migrations());
    ASSERT_TRUE(migrated.ok()) << migrated.error().message;
    bus_ = NewInProcessBus({.retry_initial = 1ms, .retry_max = 20ms});
  }

  void TearDown() override {
    relay_.reset();
    if (bus_) {
      bus_->Stop();
    }
    bus_.reset();
    db_.reset();
    scratch_.reset();
  }

  OutboxRelay& relay(std::chrono::milliseconds poll = 200ms) {
    if (!relay_) {
      relay_ = std::make_unique<OutboxRelay>(*db_, *bus_, poll);
    }
    return *relay_;
  }

  // Runs one relay pass; -1 (and a test failure) if it fails.
  int RelayNow() {
    auto n = relay().RelayOnceForTest();
    EXPECT_TRUE(n.ok()) << n.error().message;
    return n.ok() ? *n : -1;
  }

  Status AppendAll(const std::vector<Event>& events) {
    return db_->Transact("test.append", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
      for (const Event& e : events) {
        AGORA_RETURN_IF_ERROR(AppendToOutbox(tx, e));
      }
      return Ok();
    });
  }

  int64_t Count(std::string_view sql) {
    auto r = db_->Exec("test.count", sql);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? (*r)[0].Int(0) : -1;
  }

  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::unique_ptr<Bus> bus_;
  std::unique_ptr<OutboxRelay> relay_;
};

INSTANTIATE_TEST_SUITE_P(Drivers, EventsTest, db::testing::AllDialects(),
                         db::testing::DialectParamName);

// A bus that takes 1 ms per event, to make a backlog slow to drain.
class SlowBus final : public Bus {
 public:
  Status Publish(const Event&) override {
    std::this_thread::sleep_for(1ms);
    ++published;
    return Ok();
  }
  void Subscribe(std::string, std::string, Handler) override {}
  void Start() override {}
  void Stop() override {}
  std::atomic<int> published{0};
};

TEST_P(EventsTest, StopIsBoundedEvenWithALargeBacklog) {
  if (GetParam() != db::Dialect::kSqlite) GTEST_SKIP() << "the bound does not depend on the store";
  std::vector<Event> events;
  for (int i = 0; i < 6000; ++i) events.push_back(MakeEvent("catalog.bulk"));
  ASSERT_TRUE(AppendAll(events).ok());
  SlowBus slow;
  OutboxRelay relay(*db_, slow, 10ms);
  relay.Start();
  relay.Notify();
  std::this_thread::sleep_for(100ms);  // a pass is under way
  auto started = std::chrono::steady_clock::now();
  relay.Stop();
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_LT(took, 4s) << "6 s of backlog must not hold Stop() past its 2 s budget";
  EXPECT_GT(slow.published.load(), 0);
  EXPECT_LT(slow.published.load(), 6000);
}

TEST_P(EventsTest, AppendInARolledBackTransactionPublishesNothing) {
  Recorder rec;
  bus_->Subscribe("test.all", "", rec.handler());
  bus_->Start();
  Status s = db_->Transact("test.append", db::TxMode::kWrite, [](db::Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(AppendToOutbox(tx, MakeEvent("user.registered")));
    return Error::Conflict("email taken");
  });
  ASSERT_FALSE(s.ok());
  auto n = relay().RelayOnceForTest();
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 0);
  EXPECT_EQ(relay().pending(), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox_events"), 0);
  EXPECT_TRUE(rec.Snapshot().empty());  // nothing was published, so nothing can be in flight
}

TEST_P(EventsTest, CommittedAppendsAreRelayedInOrderOnce) {
  Recorder rec;
  bus_->Subscribe("test.all", "", rec.handler());
  bus_->Start();
  std::vector<Event> first = {MakeEvent("t.one", R"({"n":1})"), MakeEvent("t.two"),
                              MakeEvent("t.three")};
  std::vector<Event> second = {MakeEvent("t.four"), MakeEvent("t.five")};
  ASSERT_TRUE(AppendAll(first).ok());
  ASSERT_TRUE(AppendAll(second).ok());

  auto n = relay().RelayOnceForTest();
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 5);
  EXPECT_EQ(relay().pending(), 0);
  auto got = rec.WaitFor(5);
  EXPECT_EQ(Types(got),
            (std::vector<std::string>{"t.one", "t.two", "t.three", "t.four", "t.five"}));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].id, first[0].id);
  EXPECT_EQ(got[0].source, "test");
  EXPECT_EQ(got[0].payload, R"({"n":1})");
  EXPECT_EQ(got[0].occurred_at_ms, 1'700'000'000'000);

  auto again = relay().RelayOnceForTest();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox_events WHERE published_at_ms IS NULL"), 0);
}

TEST_P(EventsTest, PendingCountsUnpublishedRows) {
  ASSERT_TRUE(AppendAll({MakeEvent("t.a"), MakeEvent("t.b")}).ok());
  // The bus refuses: nothing is marked, both stay pending for the next pass.
  bus_->Stop();
  auto n = relay().RelayOnceForTest();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(relay().pending(), 2);
}

TEST_P(EventsTest, RunningRelayPublishesPromptlyAfterNotify) {
  Recorder rec;
  bus_->Subscribe("test.all", "", rec.handler());
  bus_->Start();
  OutboxRelay& r = relay(60s);  // only Notify() can make it poll within the test
  r.Start();
  ASSERT_TRUE(AppendAll({MakeEvent("t.notified")}).ok());
  r.Notify();
  EXPECT_EQ(Types(rec.WaitFor(1)), (std::vector<std::string>{"t.notified"}));
  r.Stop();
}

TEST_P(EventsTest, StopFlushesWhatIsCommitted) {
  Recorder rec;
  bus_->Subscribe("test.all", "", rec.handler());
  bus_->Start();
  OutboxRelay& r = relay(60s);
  r.Start();
  ASSERT_TRUE(AppendAll({MakeEvent("t.a"), MakeEvent("t.b")}).ok());
  r.Stop();  // no Notify: the flush on Stop publishes them
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox_events WHERE published_at_ms IS NULL"), 0);
  EXPECT_EQ(Types(rec.WaitFor(2)), (std::vector<std::string>{"t.a", "t.b"}));
}

TEST_P(EventsTest, RelayedTwiceTheInboxRefusesTheDuplicate) {
  ASSERT_TRUE(db_->Exec("test.ddl", "CREATE TABLE applied (event_id TEXT NOT NULL)").ok());
  std::mutex mu;
  std::condition_variable cv;
  int deliveries = 0;
  int fresh_claims = 0;
  bus_->Subscribe("test.consumer", "", [&](const Event& e) -> Status {
    Result<bool> fresh =
        db_->Transact("test.apply", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<bool> {
          AGORA_ASSIGN_OR_RETURN(bool claimed, ClaimInbox(tx, "test.consumer", e.id));
          if (claimed) {
            AGORA_RETURN_IF_ERROR(tx.Exec("test.apply",
                                          "INSERT INTO applied (event_id) VALUES ($1)", {e.id}));
          }
          return claimed;
        });
    if (!fresh.ok()) {
      return fresh.error();
    }
    std::lock_guard lock(mu);
    ++deliveries;
    fresh_claims += *fresh ? 1 : 0;
    cv.notify_all();
    return Ok();
  });
  bus_->Start();
  ASSERT_TRUE(AppendAll({MakeEvent("order.paid")}).ok());
  ASSERT_EQ(RelayNow(), 1);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kDeadline, [&] { return deliveries == 1; }));
  }
  // Simulate a crash between publishing and marking: the row is unmarked.
  ASSERT_TRUE(
      db_->Exec("test.unmark", "UPDATE outbox_events SET published_at_ms = NULL").ok());
  ASSERT_EQ(RelayNow(), 1);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kDeadline, [&] { return deliveries == 2; }));
    EXPECT_EQ(fresh_claims, 1);
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM applied"), 1);
}

TEST_P(EventsTest, ClaimInboxIsPerConsumerAndRollsBackWithItsTransaction) {
  auto claim = [&](std::string consumer, std::string id, bool commit) -> bool {
    std::optional<bool> seen;
    Status s = db_->Transact("test.claim", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
      AGORA_ASSIGN_OR_RETURN(bool fresh, ClaimInbox(tx, consumer, id));
      seen = fresh;
      return commit ? Ok() : Status(Error::Unavailable("handler failed"));
    });
    if (!seen) {
      ADD_FAILURE() << s.error().message;
      return false;
    }
    return *seen;
  };
  EXPECT_EQ(claim("a", "evt_1", /*commit=*/false), true);
  EXPECT_EQ(claim("a", "evt_1", true), true);  // the rolled-back claim did not stick
  EXPECT_EQ(claim("a", "evt_1", true), false);
  EXPECT_EQ(claim("b", "evt_1", true), true);
  EXPECT_EQ(claim("a", "evt_2", true), true);
}

TEST_P(EventsTest, FailingConsumerIsRetriedUntilItSucceeds) {
  std::atomic<int> attempts{0};
  Recorder rec;
  Handler ok = rec.handler();
  bus_->Subscribe("test.flaky", "", [&](const Event& e) -> Status {
    if (++attempts <= 3) {
      return Error::Unavailable("not yet");
    }
    return ok(e);
  });
  bus_->Start();
  ASSERT_TRUE(AppendAll({MakeEvent("t.first"), MakeEvent("t.second")}).ok());
  ASSERT_EQ(RelayNow(), 2);
  EXPECT_EQ(Types(rec.WaitFor(2)), (std::vector<std::string>{"t.first", "t.second"}));
  EXPECT_EQ(attempts.load(), 5);
}

TEST_P(EventsTest, TwoConsumersOfOneTopicEachGetEveryEvent) {
  Recorder a, b, other;
  bus_->Subscribe("test.a", "catalog.", a.handler());
  bus_->Subscribe("test.b", "catalog.", b.handler());
  bus_->Subscribe("test.identity", "identity.", other.handler());
  bus_->Start();
  ASSERT_TRUE(AppendAll({MakeEvent("catalog.listing_created"),
                         MakeEvent("identity.user_registered"),
                         MakeEvent("catalog.listing_updated")})
                  .ok());
  ASSERT_EQ(RelayNow(), 3);
  const std::vector<std::string> catalog = {"catalog.listing_created", "catalog.listing_updated"};
  EXPECT_EQ(Types(a.WaitFor(2)), catalog);
  EXPECT_EQ(Types(b.WaitFor(2)), catalog);
  EXPECT_EQ(Types(other.WaitFor(1)), (std::vector<std::string>{"identity.user_registered"}));
}

TEST_P(EventsTest, AppendValidatesAndRefusesADuplicateId) {
  Event e = MakeEvent("t.dup");
  ASSERT_TRUE(AppendAll({e}).ok());
  Status dup = AppendAll({e});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);

  Status untyped = AppendAll({Event{"", "", "test", "{}", 0}});
  ASSERT_FALSE(untyped.ok());
  EXPECT_EQ(untyped.error().code, ErrorCode::kInvalidArgument);

  ASSERT_TRUE(AppendAll({Event{"", "t.generated", "test", "{}", 0}}).ok());
  auto r = db_->Exec("test.id", "SELECT id FROM outbox_events WHERE type = $1",
                     {std::string("t.generated")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].Text(0).rfind("evt_", 0), 0u);
}

TEST_P(EventsTest, MigrationsAreIdempotent) {
  Status again = db_->Migrate("test.events", Migrations());
  EXPECT_TRUE(again.ok()) << again.error().message;
}

}  // namespace
}  // namespace agora::events
