#include "services/payments/sandbox/gateway.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/json.hpp>

#include "core/db/db_testing.h"
#include "core/http/client.h"
#include "core/http/http_testing.h"
#include "core/id.h"
#include "services/payments/provider/stripe_json.h"
#include "services/payments/provider/webhook_signature.h"

namespace agora::payments::sandbox {
namespace {

constexpr std::string_view kSecret = "whsec_sandbox_test";
constexpr std::string_view kWebhookPath = "/v1/payments/webhooks/sandbox";

// The payments service's side of the webhooks, as a test double: verifies
// each delivery's signature and records the event ids it accepted.
class Receiver {
 public:
  explicit Receiver(const Clock& clock) : clock_(clock) {}

  http::Response Handle(const http::Request& req) {
    std::lock_guard lock(mu_);
    ++requests_;
    if (fail_next_ > 0) {
      --fail_next_;
      return http::Response::Text(500, "down");
    }
    std::string header(req.headers.Get(kSignatureHeader).value_or(""));
    if (Status s = VerifyWebhook(kSecret, header, req.body, clock_.Now()); !s.ok()) {
      ++bad_signatures_;
      return http::Response::Text(400, "bad signature");
    }
    auto ev = EventFromJson(req.body);
    if (!ev.ok()) return http::Response::Text(400, "bad event");
    ids_.push_back(ev->id);
    types_.push_back(ev->type);
    cv_.notify_all();
    return http::Response::Json(200, boost::json::object{{"received", true}});
  }

  void FailNext(int n) {
    std::lock_guard lock(mu_);
    fail_next_ = n;
  }
  std::vector<std::string> ids() {
    std::lock_guard lock(mu_);
    return ids_;
  }
  std::vector<std::string> types() {
    std::lock_guard lock(mu_);
    return types_;
  }
  int requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  int bad_signatures() {
    std::lock_guard lock(mu_);
    return bad_signatures_;
  }
  // Waits (without polling) until `n` events were accepted.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ids_.size() >= n; });
  }

 private:
  const Clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> ids_;    // GUARDED_BY(mu_)
  std::vector<std::string> types_;  // GUARDED_BY(mu_)
  int fail_next_ = 0;               // GUARDED_BY(mu_)
  int requests_ = 0;                // GUARDED_BY(mu_)
  int bad_signatures_ = 0;          // GUARDED_BY(mu_)
};

void ExpectError(const Error& e, ErrorCode code, std::string_view type = "") {
  EXPECT_EQ(e.code, code) << e.message;
  if (!type.empty()) {
    EXPECT_EQ(e.type, type) << e.message;
  }
}

class GatewayTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    if (auto why = db::testing::SkipReason(GetParam()); !why.empty()) GTEST_SKIP() << why;
    scratch_.emplace(GetParam());
    db_ = std::move(db::Database::Open(scratch_->options()).value());
    ASSERT_TRUE(db_->Migrate("payments", PaymentsMigrations()).ok());
    ASSERT_TRUE(db_->Migrate("payments.sandbox", GatewayMigrations()).ok());
    tokens_.emplace(*db_);
    receiver_.emplace(clock_);
    loopback_ = std::make_unique<http::testing::LoopbackServer>();
    http::Route receive = http::MakeRoute(http::Method::kPost, std::string(kWebhookPath), http::Execution::kBlocking,
                                    [this](http::Request& req) { return receiver_->Handle(req); });
    loopback_->app().Add(std::move(receive));
    gateway_ = NewGateway(loopback_->Url(kWebhookPath));
    AddGatewayRoutes(loopback_->app(), *gateway_);
    loopback_->Run();
  }

  void TearDown() override {
    // The server first (its routes use the gateway), then the gateway, then the db.
    loopback_.reset();
    gateway_.reset();
    db_.reset();
  }

  std::unique_ptr<Gateway> NewGateway(std::string webhook_url) {
    GatewayOptions o;
    o.webhook_url = std::move(webhook_url);
    o.webhook_secret = std::string(kSecret);
    o.poll_interval = std::chrono::milliseconds(20);
    return std::make_unique<Gateway>(*db_, *tokens_, clock_, o);
  }

  std::string Token(Behavior b) {
    SandboxToken t{NewId("tok_", clock_), CardSummary{"visa", "4242", 12, 2040, b}, clock_.NowMillis()};
    EXPECT_TRUE(tokens_->Insert(t).ok());
    return t.id;
  }

  Result<ProviderIntent> Create(const std::string& token, const std::string& key, bool manual = false,
                                int64_t amount = 2500, Gateway* gateway = nullptr) {
    CreateIntentRequest r;
    r.amount = amount;
    r.currency = "EUR";
    r.payment_token = token;
    r.manual_capture = manual;
    r.payment_id = "pay_1";
    r.idempotency_key = key;
    return (gateway != nullptr ? gateway : gateway_.get())->CreateIntent(r);
  }

  ProviderIntent MustCreate(Behavior b, bool manual = false, int64_t amount = 2500) {
    auto in = Create(Token(b), NewId("key_"), manual, amount);
    EXPECT_TRUE(in.ok()) << (in.ok() ? "" : in.error().message);
    return in.ok() ? *in : ProviderIntent{};
  }

  // Event types in the order they are delivered.
  std::vector<std::string> EventTypes() {
    auto rows = db_->Exec("test.event_types", "SELECT type FROM sandbox_webhook_events ORDER BY created_at_ms, id");
    EXPECT_TRUE(rows.ok());
    std::vector<std::string> out;
    if (rows.ok()) {
      for (const auto& r : *rows) out.push_back(r.Text(0));
    }
    return out;
  }
  std::vector<std::string> EventIds(bool newest_first = false) {
    auto rows = db_->Exec("test.event_ids", newest_first
                                                ? "SELECT id FROM sandbox_webhook_events ORDER BY created_at_ms DESC, id DESC"
                                                : "SELECT id FROM sandbox_webhook_events ORDER BY created_at_ms, id");
    EXPECT_TRUE(rows.ok());
    std::vector<std::string> out;
    if (rows.ok()) {
      for (const auto& r : *rows) out.push_back(r.Text(0));
    }
    return out;
  }
  int64_t Count(std::string_view table) {
    auto rows = db_->Exec("test.count", "SELECT COUNT(*) FROM " + std::string(table));
    return rows.ok() ? (*rows)[0].Int(0) : -1;
  }
  // The intent carried by the newest event of `type`.
  std::optional<ProviderIntent> LastEventIntent(std::string_view type) {
    auto rows = db_->Exec("test.last_event",
                          "SELECT body FROM sandbox_webhook_events WHERE type = $1 ORDER BY created_at_ms DESC, id DESC",
                          {std::string(type)});
    if (!rows.ok() || rows->empty()) return std::nullopt;
    auto ev = EventFromJson((*rows)[0].Text(0));
    if (!ev.ok()) return std::nullopt;
    return ev->intent;
  }
  int Deliver() {
    auto n = gateway_->DeliverDueForTest();
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
    return n.ok() ? *n : -1;
  }
  http::ClientResponse Call(std::string method, std::string_view path, std::string body = "") {
    http::ClientRequest r;
    r.method = std::move(method);
    r.url = loopback_->Url(path);
    r.body = std::move(body);
    if (!r.body.empty()) r.headers = {{"Content-Type", "application/json"}};
    auto res = http::Send(r);
    EXPECT_TRUE(res.ok()) << (res.ok() ? "" : res.error().message);
    return res.ok() ? *res : http::ClientResponse{};
  }

  ManualClock clock_;
  std::optional<db::testing::ScratchDatabase> scratch_;
  std::unique_ptr<db::Database> db_;
  std::optional<SandboxTokenStore> tokens_;
  std::optional<Receiver> receiver_;
  std::unique_ptr<http::testing::LoopbackServer> loopback_;
  std::unique_ptr<Gateway> gateway_;
};

// ---- charging: each card behaviour ----

TEST_P(GatewayTest, SucceedCapturesAtOnce) {
  ProviderIntent in = MustCreate(Behavior::kSucceed);
  EXPECT_TRUE(IsValidId(in.id, "pi_")) << in.id;
  EXPECT_EQ(in.status, IntentStatus::kSucceeded);
  EXPECT_EQ(in.amount, 2500);
  EXPECT_EQ(in.amount_received, 2500);
  EXPECT_EQ(in.amount_capturable, 0);
  EXPECT_EQ(in.currency, "EUR");
  EXPECT_EQ(in.payment_id, "pay_1");
  EXPECT_EQ(in.created, clock_.NowSeconds());
  EXPECT_EQ(EventTypes(), (std::vector<std::string>{"payment_intent.created", "payment_intent.succeeded"}));
  auto got = gateway_->GetIntent(in.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, IntentStatus::kSucceeded);
  EXPECT_EQ(got->amount_received, 2500);
  auto carried = LastEventIntent("payment_intent.succeeded");
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->id, in.id);
  EXPECT_EQ(carried->status, IntentStatus::kSucceeded);
}

TEST_P(GatewayTest, GetIntentOfAnUnknownIdIsNotFound) {
  auto got = gateway_->GetIntent("pi_nope");
  ASSERT_FALSE(got.ok());
  ExpectError(got.error(), ErrorCode::kNotFound, "intent-not-found");
}

TEST_P(GatewayTest, DeclinesAreIntentsNotErrors) {
  ProviderIntent declined = MustCreate(Behavior::kDecline);
  EXPECT_EQ(declined.status, IntentStatus::kRequiresPaymentMethod);
  EXPECT_EQ(declined.failure_code, "card_declined");
  EXPECT_FALSE(declined.failure_message.empty());
  EXPECT_EQ(declined.amount_received, 0);
  ProviderIntent poor = MustCreate(Behavior::kInsufficientFunds);
  EXPECT_EQ(poor.status, IntentStatus::kRequiresPaymentMethod);
  EXPECT_EQ(poor.failure_code, "insufficient_funds");
  EXPECT_EQ(EventTypes(), (std::vector<std::string>{"payment_intent.created", "payment_intent.payment_failed",
                                                     "payment_intent.created", "payment_intent.payment_failed"}));
  auto carried = LastEventIntent("payment_intent.payment_failed");
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->failure_code, "insufficient_funds");
}

TEST_P(GatewayTest, RequiresActionUntilAuthenticated) {
  ProviderIntent in = MustCreate(Behavior::kRequiresAction);
  EXPECT_EQ(in.status, IntentStatus::kRequiresAction);
  EXPECT_EQ(in.next_action_url, loopback_->Url("/sandbox/v1/payment_intents/" + in.id + "/authenticate"));
  EXPECT_EQ(EventTypes(), (std::vector<std::string>{"payment_intent.created", "payment_intent.requires_action"}));

  auto done = gateway_->Authenticate(in.id, true);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(done->status, IntentStatus::kSucceeded);
  EXPECT_EQ(done->amount_received, 2500);
  EXPECT_EQ(done->next_action_url, "");
  EXPECT_EQ(EventTypes().back(), "payment_intent.succeeded");
  auto again = gateway_->Authenticate(in.id, true);
  ASSERT_FALSE(again.ok());
  ExpectError(again.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");

  ProviderIntent failing = MustCreate(Behavior::kRequiresAction);
  auto failed = gateway_->Authenticate(failing.id, false);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->status, IntentStatus::kRequiresPaymentMethod);
  EXPECT_EQ(failed->failure_code, "authentication_required");
  EXPECT_EQ(EventTypes().back(), "payment_intent.payment_failed");

  ProviderIntent held = MustCreate(Behavior::kRequiresAction, true);
  auto authorized = gateway_->Authenticate(held.id, true);
  ASSERT_TRUE(authorized.ok());
  EXPECT_EQ(authorized->status, IntentStatus::kRequiresCapture);
  EXPECT_EQ(authorized->amount_capturable, 2500);
  EXPECT_EQ(EventTypes().back(), "payment_intent.amount_capturable_updated");

  auto unknown = gateway_->Authenticate("pi_nope", true);
  ASSERT_FALSE(unknown.ok());
  ExpectError(unknown.error(), ErrorCode::kNotFound, "intent-not-found");
}

TEST_P(GatewayTest, NetworkErrorChargesButLosesTheAnswer) {
  const std::string token = Token(Behavior::kNetworkError);
  auto first = Create(token, "key-net");
  ASSERT_FALSE(first.ok());
  ExpectError(first.error(), ErrorCode::kUnavailable, "provider-unavailable");
  // The charge happened: its events are on their way.
  EXPECT_EQ(Count("sandbox_intents"), 1);
  EXPECT_EQ(EventTypes(), (std::vector<std::string>{"payment_intent.created", "payment_intent.succeeded"}));
  // Repeating with the same key gets the intent, as Stripe's replay does.
  auto replay = Create(token, "key-net");
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->status, IntentStatus::kSucceeded);
  EXPECT_EQ(replay->amount_received, 2500);
  EXPECT_EQ(Count("sandbox_intents"), 1);
  EXPECT_EQ(EventTypes().size(), 2u);
  // Another key is another charge of a used token.
  auto other = Create(token, "key-net-2");
  ASSERT_FALSE(other.ok());
  ExpectError(other.error(), ErrorCode::kFailedPrecondition, "payment-token-used");
}

// ---- idempotency and tokens ----

TEST_P(GatewayTest, SameIdempotencyKeyReturnsTheFirstIntent) {
  const std::string token = Token(Behavior::kSucceed);
  auto a = Create(token, "key-1");
  auto b = Create(token, "key-1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(Count("sandbox_intents"), 1);
  EXPECT_EQ(EventTypes().size(), 2u);
  // The same key with other parameters is refused.
  auto changed = Create(token, "key-1", false, 9999);
  ASSERT_FALSE(changed.ok());
  ExpectError(changed.error(), ErrorCode::kConflict, "idempotency-key-reused");
  // ... and so is the same key on another operation.
  auto capture = gateway_->Capture(a->id, 100, "key-1");
  ASSERT_FALSE(capture.ok());
  ExpectError(capture.error(), ErrorCode::kConflict, "idempotency-key-reused");
}

TEST_P(GatewayTest, ConcurrentCallsWithOneKeyChargeOnce) {
  const std::string token = Token(Behavior::kSucceed);
  constexpr int kThreads = 6;
  std::vector<std::optional<Result<ProviderIntent>>> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i].emplace(Create(token, "key-race")); });
  }
  for (auto& t : threads) t.join();
  std::string id;
  for (auto& r : results) {
    ASSERT_TRUE(r->ok()) << r->error().message;
    if (id.empty()) id = (*r)->id;
    EXPECT_EQ((*r)->id, id);
  }
  EXPECT_EQ(Count("sandbox_intents"), 1);
  EXPECT_EQ(EventTypes().size(), 2u);
}

TEST_P(GatewayTest, ReplaysTheFirstAnswerEvenAfterTheIntentMoved) {
  const std::string token = Token(Behavior::kSucceed);
  auto held = Create(token, "key-held", true);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(gateway_->Capture(held->id, 2500, "cap-1").ok());
  auto replay = Create(token, "key-held", true);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->status, IntentStatus::kRequiresCapture);
  EXPECT_EQ(gateway_->GetIntent(held->id)->status, IntentStatus::kSucceeded);
}

TEST_P(GatewayTest, ATokenChargesOnce) {
  const std::string token = Token(Behavior::kDecline);
  ASSERT_TRUE(Create(token, "key-a").ok());
  auto second = Create(token, "key-b");
  ASSERT_FALSE(second.ok());
  ExpectError(second.error(), ErrorCode::kFailedPrecondition, "payment-token-used");
  // Nothing of the refused call stays: its key is free for another request.
  EXPECT_EQ(Count("sandbox_intents"), 1);
  EXPECT_TRUE(Create(Token(Behavior::kSucceed), "key-b").ok());
}

TEST_P(GatewayTest, RefusesUnknownTokensAndBadRequests) {
  auto unknown = Create("tok_nope", "key-u");
  ASSERT_FALSE(unknown.ok());
  ExpectError(unknown.error(), ErrorCode::kInvalidArgument, "payment-token-invalid");
  auto empty = Create("", "key-e");
  ASSERT_FALSE(empty.ok());
  ExpectError(empty.error(), ErrorCode::kInvalidArgument, "payment-token-invalid");
  auto zero = Create(Token(Behavior::kSucceed), "key-z", false, 0);
  ASSERT_FALSE(zero.ok());
  ExpectError(zero.error(), ErrorCode::kInvalidArgument, "validation");
  CreateIntentRequest lower;
  lower.amount = 100;
  lower.currency = "eur";
  lower.payment_token = Token(Behavior::kSucceed);
  auto bad_currency = gateway_->CreateIntent(lower);
  ASSERT_FALSE(bad_currency.ok());
  ExpectError(bad_currency.error(), ErrorCode::kInvalidArgument, "validation");
  EXPECT_EQ(Count("sandbox_intents"), 0);
  EXPECT_EQ(Count("sandbox_webhook_events"), 0);
}

TEST_P(GatewayTest, NoIdempotencyKeyMeansNoReplay) {
  auto a = gateway_->Transfer("acct_1", 100, "EUR", "");
  auto b = gateway_->Transfer("acct_1", 100, "EUR", "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
}

// ---- capture, cancel, refund, transfer ----

TEST_P(GatewayTest, CaptureRules) {
  ProviderIntent in = MustCreate(Behavior::kSucceed, true);
  EXPECT_EQ(in.status, IntentStatus::kRequiresCapture);
  EXPECT_EQ(in.amount_capturable, 2500);
  EXPECT_EQ(in.amount_received, 0);
  EXPECT_EQ(EventTypes().back(), "payment_intent.amount_capturable_updated");

  auto zero = gateway_->Capture(in.id, 0, "cap-0");
  ASSERT_FALSE(zero.ok());
  ExpectError(zero.error(), ErrorCode::kInvalidArgument);
  auto too_much = gateway_->Capture(in.id, 2501, "cap-big");
  ASSERT_FALSE(too_much.ok());
  ExpectError(too_much.error(), ErrorCode::kFailedPrecondition, "capture-exceeds-authorized");

  auto captured = gateway_->Capture(in.id, 2000, "cap-1");
  ASSERT_TRUE(captured.ok()) << captured.error().message;
  EXPECT_EQ(captured->status, IntentStatus::kSucceeded);
  EXPECT_EQ(captured->amount_received, 2000);
  EXPECT_EQ(captured->amount_capturable, 0);
  EXPECT_EQ(EventTypes().back(), "payment_intent.succeeded");
  const size_t events = EventTypes().size();

  // The same key replays; another key finds nothing left to capture.
  auto replay = gateway_->Capture(in.id, 2000, "cap-1");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->amount_received, 2000);
  EXPECT_EQ(EventTypes().size(), events);
  auto again = gateway_->Capture(in.id, 100, "cap-2");
  ASSERT_FALSE(again.ok());
  ExpectError(again.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");

  ProviderIntent automatic = MustCreate(Behavior::kSucceed);
  auto not_held = gateway_->Capture(automatic.id, 100, "cap-3");
  ASSERT_FALSE(not_held.ok());
  ExpectError(not_held.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");
  auto unknown = gateway_->Capture("pi_nope", 100, "cap-4");
  ASSERT_FALSE(unknown.ok());
  ExpectError(unknown.error(), ErrorCode::kNotFound, "intent-not-found");
}

TEST_P(GatewayTest, CancelRules) {
  for (Behavior b : {Behavior::kDecline, Behavior::kRequiresAction}) {
    ProviderIntent in = MustCreate(b);
    auto canceled = gateway_->Cancel(in.id, "cancel-" + in.id);
    ASSERT_TRUE(canceled.ok()) << canceled.error().message;
    EXPECT_EQ(canceled->status, IntentStatus::kCanceled);
    EXPECT_EQ(canceled->next_action_url, "");
  }
  ProviderIntent held = MustCreate(Behavior::kSucceed, true);
  auto canceled = gateway_->Cancel(held.id, "cancel-held");
  ASSERT_TRUE(canceled.ok());
  EXPECT_EQ(canceled->status, IntentStatus::kCanceled);
  EXPECT_EQ(canceled->amount_capturable, 0);
  EXPECT_EQ(EventTypes().back(), "payment_intent.canceled");
  const size_t events = EventTypes().size();
  // Replayed with its key; refused with another.
  ASSERT_TRUE(gateway_->Cancel(held.id, "cancel-held").ok());
  EXPECT_EQ(EventTypes().size(), events);
  auto twice = gateway_->Cancel(held.id, "cancel-held-2");
  ASSERT_FALSE(twice.ok());
  ExpectError(twice.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");
  auto captured = gateway_->Capture(held.id, 100, "cap-after-cancel");
  ASSERT_FALSE(captured.ok());
  ExpectError(captured.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");

  ProviderIntent paid = MustCreate(Behavior::kSucceed);
  auto too_late = gateway_->Cancel(paid.id, "cancel-paid");
  ASSERT_FALSE(too_late.ok());
  ExpectError(too_late.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");
}

TEST_P(GatewayTest, RefundRules) {
  ProviderIntent in = MustCreate(Behavior::kSucceed);
  auto first = gateway_->Refund(in.id, 1000, "re-1");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(IsValidId(first->id, "re_")) << first->id;
  EXPECT_EQ(first->intent_id, in.id);
  EXPECT_EQ(first->amount, 1000);
  EXPECT_EQ(first->currency, "EUR");
  EXPECT_EQ(first->status, "succeeded");
  EXPECT_EQ(gateway_->GetIntent(in.id)->amount_refunded, 1000);
  EXPECT_EQ(EventTypes().back(), "charge.refunded");
  auto carried = LastEventIntent("charge.refunded");
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->amount_refunded, 1000);
  EXPECT_EQ(carried->status, IntentStatus::kSucceeded);

  // Replay: the same refund, not a second one.
  auto replay = gateway_->Refund(in.id, 1000, "re-1");
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->id, first->id);
  EXPECT_EQ(Count("sandbox_refunds"), 1);
  EXPECT_EQ(gateway_->GetIntent(in.id)->amount_refunded, 1000);

  auto over = gateway_->Refund(in.id, 1501, "re-2");
  ASSERT_FALSE(over.ok());
  ExpectError(over.error(), ErrorCode::kFailedPrecondition, "refund-exceeds-captured");
  ASSERT_TRUE(gateway_->Refund(in.id, 1500, "re-3").ok());
  EXPECT_EQ(gateway_->GetIntent(in.id)->amount_refunded, 2500);
  auto more = gateway_->Refund(in.id, 1, "re-4");
  ASSERT_FALSE(more.ok());
  ExpectError(more.error(), ErrorCode::kFailedPrecondition, "refund-exceeds-captured");
  auto zero = gateway_->Refund(in.id, 0, "re-5");
  ASSERT_FALSE(zero.ok());
  ExpectError(zero.error(), ErrorCode::kInvalidArgument);

  // Nothing captured yet: nothing to refund.
  ProviderIntent held = MustCreate(Behavior::kSucceed, true);
  auto uncaptured = gateway_->Refund(held.id, 100, "re-6");
  ASSERT_FALSE(uncaptured.ok());
  ExpectError(uncaptured.error(), ErrorCode::kFailedPrecondition, "refund-exceeds-captured");
  // A partial capture bounds the refund.
  ASSERT_TRUE(gateway_->Capture(held.id, 700, "cap-h").ok());
  auto partial_over = gateway_->Refund(held.id, 701, "re-7");
  ASSERT_FALSE(partial_over.ok());
  ExpectError(partial_over.error(), ErrorCode::kFailedPrecondition, "refund-exceeds-captured");
  EXPECT_TRUE(gateway_->Refund(held.id, 700, "re-8").ok());

  auto unknown = gateway_->Refund("pi_nope", 1, "re-9");
  ASSERT_FALSE(unknown.ok());
  ExpectError(unknown.error(), ErrorCode::kNotFound, "intent-not-found");
}

TEST_P(GatewayTest, TransfersAreIdempotent) {
  auto a = gateway_->Transfer("acct_seller_1", 900, "EUR", "tr-key-1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(IsValidId(a->id, "tr_")) << a->id;
  EXPECT_EQ(a->destination, "acct_seller_1");
  EXPECT_EQ(a->amount, 900);
  EXPECT_EQ(a->currency, "EUR");
  auto b = gateway_->Transfer("acct_seller_1", 900, "EUR", "tr-key-1");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->id, a->id);
  EXPECT_EQ(Count("sandbox_transfers"), 1);
  auto changed = gateway_->Transfer("acct_seller_1", 901, "EUR", "tr-key-1");
  ASSERT_FALSE(changed.ok());
  ExpectError(changed.error(), ErrorCode::kConflict, "idempotency-key-reused");
  auto c = gateway_->Transfer("acct_seller_1", 900, "EUR", "tr-key-2");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->id, a->id);
  for (auto bad : {gateway_->Transfer("", 1, "EUR", "k1"), gateway_->Transfer("acct_1", 0, "EUR", "k2"),
                   gateway_->Transfer("acct_1", 1, "euro", "k3")}) {
    ASSERT_FALSE(bad.ok());
    ExpectError(bad.error(), ErrorCode::kInvalidArgument, "validation");
  }
}

TEST_P(GatewayTest, ParseWebhookVerifiesWithTheGatewaySecret) {
  ProviderIntent in = MustCreate(Behavior::kSucceed);
  auto rows = db_->Exec("test.body", "SELECT body FROM sandbox_webhook_events ORDER BY created_at_ms, id");
  ASSERT_TRUE(rows.ok());
  const std::string body = (*rows)[1].Text(0);
  auto ev = gateway_->ParseWebhook(SignWebhook(kSecret, clock_.NowSeconds(), body), body, clock_.Now());
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->type, "payment_intent.succeeded");
  ASSERT_TRUE(ev->intent.has_value());
  EXPECT_EQ(ev->intent->id, in.id);
  auto forged = gateway_->ParseWebhook(SignWebhook("whsec_other", clock_.NowSeconds(), body), body, clock_.Now());
  ASSERT_FALSE(forged.ok());
  ExpectError(forged.error(), ErrorCode::kUnauthenticated, "webhook-signature-invalid");
  auto stale = gateway_->ParseWebhook(SignWebhook(kSecret, clock_.NowSeconds() - 3600, body), body, clock_.Now());
  ASSERT_FALSE(stale.ok());
  ExpectError(stale.error(), ErrorCode::kUnauthenticated, "webhook-timestamp-stale");
  const std::string not_event = R"({"hello":1})";
  auto junk = gateway_->ParseWebhook(SignWebhook(kSecret, clock_.NowSeconds(), not_event), not_event, clock_.Now());
  ASSERT_FALSE(junk.ok());
  ExpectError(junk.error(), ErrorCode::kInvalidArgument);
}

// ---- webhook delivery over real HTTP ----

TEST_P(GatewayTest, DeliversSignedEventsInOrder) {
  MustCreate(Behavior::kSucceed);
  MustCreate(Behavior::kDecline);
  EXPECT_EQ(Deliver(), 4);
  EXPECT_EQ(receiver_->ids(), EventIds());
  EXPECT_EQ(receiver_->types(), EventTypes());
  EXPECT_EQ(receiver_->bad_signatures(), 0);
  // Delivered once: nothing is due any more.
  EXPECT_EQ(Deliver(), 0);
  EXPECT_EQ(receiver_->requests(), 4);
}

TEST_P(GatewayTest, DuplicateDeliversEachEventTwice) {
  gateway_->SetDelivery({std::chrono::milliseconds(0), true, false});
  MustCreate(Behavior::kSucceed);
  EXPECT_EQ(Deliver(), 2);
  auto ids = EventIds();
  EXPECT_EQ(receiver_->ids(), (std::vector<std::string>{ids[0], ids[0], ids[1], ids[1]}));
}

TEST_P(GatewayTest, OutOfOrderDeliversNewestFirst) {
  gateway_->SetDelivery({std::chrono::milliseconds(0), false, true});
  MustCreate(Behavior::kSucceed);
  clock_.Advance(std::chrono::milliseconds(5));
  MustCreate(Behavior::kSucceed, true);
  EXPECT_EQ(Deliver(), 4);
  EXPECT_EQ(receiver_->ids(), EventIds(true));
  EXPECT_EQ(receiver_->types().front(), "payment_intent.amount_capturable_updated");
  EXPECT_EQ(receiver_->types().back(), "payment_intent.created");
}

TEST_P(GatewayTest, DelayHoldsEventsBack) {
  gateway_->SetDelivery({std::chrono::milliseconds(2000), false, false});
  EXPECT_EQ(gateway_->delivery().delay, std::chrono::milliseconds(2000));
  MustCreate(Behavior::kSucceed);
  EXPECT_EQ(Deliver(), 0);
  clock_.Advance(std::chrono::milliseconds(1999));
  EXPECT_EQ(Deliver(), 0);
  EXPECT_EQ(receiver_->requests(), 0);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(Deliver(), 2);
  EXPECT_EQ(receiver_->ids(), EventIds());
}

TEST_P(GatewayTest, RetriesUntilAnswered2xx) {
  MustCreate(Behavior::kSucceed);
  const auto ids = EventIds();
  receiver_->FailNext(1);
  // The first event meets a 500 and waits; the second goes through.
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(receiver_->ids(), (std::vector<std::string>{ids[1]}));
  EXPECT_EQ(Deliver(), 0);
  clock_.Advance(std::chrono::milliseconds(999));
  EXPECT_EQ(Deliver(), 0);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(Deliver(), 1);
  EXPECT_EQ(receiver_->ids(), (std::vector<std::string>{ids[1], ids[0]}));
  auto attempts = db_->Exec("test.attempts", "SELECT attempts FROM sandbox_webhook_events WHERE id = $1", {ids[0]});
  ASSERT_TRUE(attempts.ok());
  EXPECT_EQ((*attempts)[0].Int(0), 2);
}

TEST_P(GatewayTest, RetryDelayDoublesUpToTheMaximum) {
  // Retried at most 3 s apart.
  GatewayOptions o;
  o.webhook_url = loopback_->Url(kWebhookPath);
  o.webhook_secret = std::string(kSecret);
  o.max_retry_delay = std::chrono::milliseconds(3000);
  Gateway gateway(*db_, *tokens_, clock_, o);
  ASSERT_TRUE(Create(Token(Behavior::kSucceed), "k-retry", false, 100, &gateway).ok());
  // One event is enough to follow.
  ASSERT_TRUE(db_->Exec("test.keep_one", "DELETE FROM sandbox_webhook_events WHERE type <> 'payment_intent.created'")
                  .ok());
  auto deliver = [&gateway] { return gateway.DeliverDueForTest().value(); };
  receiver_->FailNext(3);
  EXPECT_EQ(deliver(), 0);  // attempt 1 fails: next in 1 s
  clock_.Advance(std::chrono::milliseconds(1000));
  EXPECT_EQ(deliver(), 0);  // attempt 2 fails: next in 2 s
  clock_.Advance(std::chrono::milliseconds(1999));
  EXPECT_EQ(deliver(), 0);
  EXPECT_EQ(receiver_->requests(), 2);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(deliver(), 0);  // attempt 3 fails: next in min(4 s, 3 s)
  clock_.Advance(std::chrono::milliseconds(2999));
  EXPECT_EQ(deliver(), 0);
  EXPECT_EQ(receiver_->requests(), 3);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(deliver(), 1);
  EXPECT_EQ(receiver_->ids().size(), 1u);
}

TEST_P(GatewayTest, UndeliveredEventsSurviveANewGateway) {
  {
    // Nothing listens where this gateway sends.
    auto dead = NewGateway("http://127.0.0.1:" + std::to_string(http::testing::ClosedPort()) + std::string(kWebhookPath));
    ASSERT_TRUE(Create(Token(Behavior::kSucceed), "k-dead", false, 2500, dead.get()).ok());
    EXPECT_EQ(dead->DeliverDueForTest().value(), 0);
  }
  // As after a restart: a new gateway on the same database, the right URL.
  auto revived = NewGateway(loopback_->Url(kWebhookPath));
  EXPECT_EQ(revived->DeliverDueForTest().value(), 0);  // not due before the retry delay
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(revived->DeliverDueForTest().value(), 2);
  EXPECT_EQ(receiver_->ids(), EventIds());
}

TEST_P(GatewayTest, TheDeliveryThreadSendsNewEvents) {
  gateway_->Start();
  gateway_->Start();  // a second Start is a no-op
  MustCreate(Behavior::kSucceed);
  ASSERT_TRUE(receiver_->WaitFor(2, std::chrono::seconds(10)));
  MustCreate(Behavior::kDecline);
  ASSERT_TRUE(receiver_->WaitFor(4, std::chrono::seconds(10)));
  gateway_->Stop();
  EXPECT_EQ(receiver_->ids(), EventIds());
  // Stopped: new events wait in the table.
  MustCreate(Behavior::kSucceed);
  EXPECT_EQ(receiver_->ids().size(), 4u);
  EXPECT_EQ(Deliver(), 2);
}

// ---- the sandbox routes ----

TEST_P(GatewayTest, AuthenticateRoute) {
  ProviderIntent in = MustCreate(Behavior::kRequiresAction);
  const std::string path = "/sandbox/v1/payment_intents/" + in.id + "/authenticate";
  auto bad = Call("POST", path, R"({"outcome":"maybe"})");
  EXPECT_EQ(bad.status, 400);
  auto ok = Call("POST", path, R"({"outcome":"succeed"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto body = boost::json::parse(ok.body).as_object();
  EXPECT_EQ(std::string_view(body.at("id").as_string()), in.id);
  EXPECT_EQ(body.at("status"), "succeeded");
  auto again = Call("POST", path, R"({"outcome":"succeed"})");
  EXPECT_EQ(again.status, 409);
  EXPECT_NE(again.body.find("/problems/payment-intent-unexpected-state"), std::string::npos) << again.body;
  auto missing = Call("POST", "/sandbox/v1/payment_intents/pi_nope/authenticate", R"({"outcome":"fail"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("/problems/intent-not-found"), std::string::npos) << missing.body;
}

TEST_P(GatewayTest, WebhookSettingsRoutes) {
  auto read = Call("GET", "/sandbox/v1/webhook_settings");
  ASSERT_EQ(read.status, 200);
  EXPECT_EQ(boost::json::parse(read.body),
            boost::json::parse(R"({"delay_ms":0,"duplicate":false,"out_of_order":false})"));
  auto set = Call("POST", "/sandbox/v1/webhook_settings", R"({"delay_ms":1500,"out_of_order":true})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(boost::json::parse(set.body),
            boost::json::parse(R"({"delay_ms":1500,"duplicate":false,"out_of_order":true})"));
  // Fields left out keep their value.
  auto dup = Call("POST", "/sandbox/v1/webhook_settings", R"({"duplicate":true})");
  ASSERT_EQ(dup.status, 200);
  DeliverySettings s = gateway_->delivery();
  EXPECT_EQ(s.delay, std::chrono::milliseconds(1500));
  EXPECT_TRUE(s.duplicate);
  EXPECT_TRUE(s.out_of_order);
  EXPECT_EQ(Call("POST", "/sandbox/v1/webhook_settings", R"({"delay_ms":600001})").status, 400);
  EXPECT_EQ(Call("POST", "/sandbox/v1/webhook_settings", R"({"delay_ms":-1})").status, 400);
  EXPECT_EQ(Call("POST", "/sandbox/v1/webhook_settings", R"({"slow":true})").status, 400);
  EXPECT_EQ(gateway_->delivery().delay, std::chrono::milliseconds(1500));
}

INSTANTIATE_TEST_SUITE_P(Drivers, GatewayTest, db::testing::AllDialects(), db::testing::DialectParamName);

}  // namespace
}  // namespace agora::payments::sandbox
