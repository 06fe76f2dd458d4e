#include "services/payments/sandbox/gateway.h"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/events/events.h"
#include "core/http/client.h"
#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "services/payments/provider/stripe_json.h"
#include "services/payments/provider/webhook_signature.h"

namespace agora::payments::sandbox {
namespace {

constexpr db::Migration kMigrations[] = {
    {1, "sandbox_gateway", R"sql(
CREATE TABLE sandbox_intents (
  id TEXT PRIMARY KEY,
  token_id TEXT NOT NULL UNIQUE,
  payment_id TEXT NOT NULL,
  status TEXT NOT NULL,
  amount BIGINT NOT NULL,
  amount_capturable BIGINT NOT NULL,
  amount_received BIGINT NOT NULL,
  amount_refunded BIGINT NOT NULL,
  currency TEXT NOT NULL,
  capture_method TEXT NOT NULL,
  failure_code TEXT NOT NULL,
  failure_message TEXT NOT NULL,
  next_action_url TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE TABLE sandbox_refunds (
  id TEXT PRIMARY KEY,
  intent_id TEXT NOT NULL REFERENCES sandbox_intents (id),
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE INDEX sandbox_refunds_intent ON sandbox_refunds (intent_id);
CREATE TABLE sandbox_transfers (
  id TEXT PRIMARY KEY,
  destination TEXT NOT NULL,
  amount BIGINT NOT NULL,
  currency TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE TABLE sandbox_idempotency_keys (
  idempotency_key TEXT PRIMARY KEY,
  operation TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  object_id TEXT NOT NULL,
  response TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE TABLE sandbox_webhook_events (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  deliver_after_ms BIGINT NOT NULL,
  attempts BIGINT NOT NULL,
  next_attempt_at_ms BIGINT NOT NULL,
  delivered_at_ms BIGINT
);
CREATE INDEX sandbox_webhook_events_due ON sandbox_webhook_events (next_attempt_at_ms)
  WHERE delivered_at_ms IS NULL;
)sql"},
};

constexpr std::chrono::milliseconds kDeliveryTimeout{5000};
constexpr int kDeliveryBatch = 100;

#define INTENT_COLUMNS                                                                                    \
  "id, status, amount, amount_capturable, amount_received, amount_refunded, currency, capture_method, " \
  "payment_id, failure_code, failure_message, next_action_url, created_at_ms"

ProviderIntent IntentFromRow(const db::Row& r) {
  ProviderIntent in;
  in.id = r.Text(0);
  // Only this file writes the column, always with IntentStatusName.
  in.status = ParseIntentStatus(r.Text(1)).value_or(IntentStatus::kProcessing);
  in.amount = r.Int(2);
  in.amount_capturable = r.Int(3);
  in.amount_received = r.Int(4);
  in.amount_refunded = r.Int(5);
  in.currency = r.Text(6);
  in.manual_capture = r.Text(7) == "manual";
  in.payment_id = r.Text(8);
  in.failure_code = r.Text(9);
  in.failure_message = r.Text(10);
  in.next_action_url = r.Text(11);
  in.created = r.Int(12) / 1000;
  return in;
}

const char* ForUpdate(db::Tx& tx) { return tx.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : ""; }

Result<ProviderIntent> LoadIntent(db::Tx& tx, std::string_view id, bool for_update) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows rows,
      tx.Exec("payments.sandbox.find_intent",
              std::string("SELECT " INTENT_COLUMNS " FROM sandbox_intents WHERE id = $1") + (for_update ? ForUpdate(tx) : ""),
              {std::string(id)}));
  if (rows.empty()) return Error::NotFound("No such payment intent").WithType("intent-not-found");
  return IntentFromRow(rows[0]);
}

Status SaveIntent(db::Tx& tx, const ProviderIntent& in, int64_t now_ms) {
  AGORA_RETURN_IF_ERROR(tx.Exec("payments.sandbox.update_intent",
                                "UPDATE sandbox_intents SET status = $2, amount_capturable = $3, amount_received = $4, "
                                "amount_refunded = $5, failure_code = $6, failure_message = $7, next_action_url = $8, "
                                "updated_at_ms = $9 WHERE id = $1",
                                {in.id, std::string(IntentStatusName(in.status)), in.amount_capturable,
                                 in.amount_received, in.amount_refunded, in.failure_code, in.failure_message,
                                 in.next_action_url, now_ms}));
  return Ok();
}

// The webhook event Stripe sends when an intent reaches `s`.
const char* EventTypeFor(IntentStatus s) {
  switch (s) {
    case IntentStatus::kRequiresPaymentMethod: return "payment_intent.payment_failed";
    case IntentStatus::kRequiresAction: return "payment_intent.requires_action";
    case IntentStatus::kProcessing: return "payment_intent.processing";
    case IntentStatus::kRequiresCapture: return "payment_intent.amount_capturable_updated";
    case IntentStatus::kSucceeded: return "payment_intent.succeeded";
    case IntentStatus::kCanceled: return "payment_intent.canceled";
  }
  return "payment_intent.processing";
}

// The card was charged: captured at once, or held for a manual capture.
void Authorize(ProviderIntent& in) {
  in.next_action_url.clear();
  in.failure_code.clear();
  in.failure_message.clear();
  if (in.manual_capture) {
    in.status = IntentStatus::kRequiresCapture;
    in.amount_capturable = in.amount;
  } else {
    in.status = IntentStatus::kSucceeded;
    in.amount_received = in.amount;
  }
}

void Fail(ProviderIntent& in, std::string code, std::string message) {
  in.status = IntentStatus::kRequiresPaymentMethod;
  in.next_action_url.clear();
  in.failure_code = std::move(code);
  in.failure_message = std::move(message);
}

Error UnexpectedState(const ProviderIntent& in, std::string_view action) {
  return Error::FailedPrecondition(fmt::format("Cannot {} a payment intent that is {}", action,
                                               IntentStatusName(in.status)))
      .WithType("payment-intent-unexpected-state");
}

bool IsCurrency(std::string_view c) {
  return c.size() == 3 && std::all_of(c.begin(), c.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
}

// The service's public URL as the webhook URL shows it: the URL without
// its "/v1/payments/webhooks/sandbox" tail (a path prefix such as a proxy's
// "/api" stays), else its scheme and authority ("http://127.0.0.1:8080").
std::string PublicBase(std::string_view webhook_url) {
  constexpr std::string_view kTail = "/v1/payments/webhooks/sandbox";
  if (webhook_url.ends_with(kTail)) return std::string(webhook_url.substr(0, webhook_url.size() - kTail.size()));
  size_t scheme = webhook_url.find("://");
  if (scheme == std::string_view::npos) return "";
  size_t path = webhook_url.find('/', scheme + 3);
  return std::string(webhook_url.substr(0, path));
}

template <class T>
Result<T> ParseSaved(const std::string& response, Result<T> (*from)(const boost::json::object&)) {
  auto o = json::ParseObject(response);
  if (!o.ok()) return Error::Internal("A saved sandbox response is not JSON");
  return from(*o);
}

}  // namespace

std::span<const db::Migration> GatewayMigrations() { return kMigrations; }

struct Gateway::Impl {
  Impl(db::Database& d, SandboxTokenStore& t, const Clock& c, GatewayOptions o)
      : db(d), tokens(t), clock(c), options(std::move(o)), delivery(options.delivery) {}

  db::Database& db;
  SandboxTokenStore& tokens;
  const Clock& clock;
  const GatewayOptions options;  // options.delivery is the start value of `delivery`

  mutable std::mutex mu;
  std::condition_variable cv;
  DeliverySettings delivery;  // GUARDED_BY(mu)
  bool stopping = false;      // GUARDED_BY(mu)
  bool wake = false;          // GUARDED_BY(mu): events were added since the last pass
  std::thread thread;
  // One delivery pass at a time (the thread's or a test's), so an event is
  // never sent by two passes at once.
  std::mutex pass_mu;

  // What an operation saved under its idempotency key.
  struct Saved {
    std::string object_id;
    std::string response;  // the JSON answer
  };
  struct Answer {
    std::string response;
    bool replayed = false;
  };

  DeliverySettings Delivery() const {
    std::lock_guard lock(mu);
    return delivery;
  }

  void Notify() {
    {
      std::lock_guard lock(mu);
      wake = true;
    }
    cv.notify_all();
  }

  // Adds one webhook event in the caller's transaction, so it exists if and
  // only if the state change it reports commits. Ids come from
  // events::NewEventId, increasing within the process, so events of one
  // millisecond keep their order.
  Status Enqueue(db::Tx& tx, std::string_view type, boost::json::object data_object, int64_t now_ms) {
    std::string id = events::NewEventId();
    std::string body = EventToJson(id, type, now_ms / 1000, std::move(data_object));
    const int64_t deliver_after_ms = now_ms + Delivery().delay.count();
    AGORA_RETURN_IF_ERROR(tx.Exec("payments.sandbox.enqueue_webhook",
                                  "INSERT INTO sandbox_webhook_events (id, type, body, created_at_ms, "
                                  "deliver_after_ms, attempts, next_attempt_at_ms, delivered_at_ms) "
                                  "VALUES ($1, $2, $3, $4, $5, 0, $5, NULL)",
                                  {std::move(id), std::string(type), std::move(body), now_ms, deliver_after_ms}));
    return Ok();
  }

  Status EnqueueIntent(db::Tx& tx, std::string_view type, const ProviderIntent& in, int64_t now_ms) {
    return Enqueue(tx, type, IntentToJson(in), now_ms);
  }

  // Runs op(tx, now_ms) at most once per idempotency key, as Stripe does:
  // the key is claimed (INSERT ... ON CONFLICT DO NOTHING) in the same
  // transaction as the operation and its events, and holds the first
  // answer; a repeat gets that answer back (replayed), even if the object
  // changed since. The same key with another operation or other parameters
  // is kConflict "idempotency-key-reused". An operation that fails rolls
  // back with its claim, so a retry runs it again. No key: never a replay.
  template <class Op>
  Result<Answer> Once(std::string_view tx_name, std::string_view operation, std::string_view idempotency_key,
                      const std::string& fingerprint, Op&& op) {
    const std::string key = idempotency_key.empty() ? NewId("idk_", clock) + "_auto" : std::string(idempotency_key);
    const int64_t now_ms = clock.NowMillis();
    auto answer = db.Transact(tx_name, db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Answer> {
      AGORA_ASSIGN_OR_RETURN(
          db::Rows claimed,
          tx.Exec("payments.sandbox.claim_key",
                  "INSERT INTO sandbox_idempotency_keys (idempotency_key, operation, fingerprint, object_id, "
                  "response, created_at_ms) VALUES ($1, $2, $3, '', '', $4) ON CONFLICT (idempotency_key) DO NOTHING",
                  {key, std::string(operation), fingerprint, now_ms}));
      if (claimed.affected == 0) {
        // Taken: by a committed call (PostgreSQL waits for a concurrent one).
        AGORA_ASSIGN_OR_RETURN(db::Rows rows, tx.Exec("payments.sandbox.read_key",
                                                      "SELECT operation, fingerprint, response FROM "
                                                      "sandbox_idempotency_keys WHERE idempotency_key = $1",
                                                      {key}));
        if (rows.empty()) return Error::Internal("An idempotency key was claimed but cannot be read");
        if (rows[0].Text(0) != operation || rows[0].Text(1) != fingerprint) {
          return Error::Conflict("This idempotency key was used with another request")
              .WithType("idempotency-key-reused");
        }
        return Answer{rows[0].Text(2), true};
      }
      AGORA_ASSIGN_OR_RETURN(Saved saved, op(tx, now_ms));
      AGORA_RETURN_IF_ERROR(tx.Exec("payments.sandbox.save_key",
                                    "UPDATE sandbox_idempotency_keys SET object_id = $2, response = $3 "
                                    "WHERE idempotency_key = $1",
                                    {key, saved.object_id, saved.response}));
      return Answer{std::move(saved.response), false};
    });
    if (answer.ok() && !answer->replayed) Notify();
    return answer;
  }

  // Where the buyer completes a requires_action intent: the authenticate
  // route, under the public URL the webhooks go to.
  std::string ActionUrl(std::string_view intent_id) const {
    return PublicBase(options.webhook_url) + "/sandbox/v1/payment_intents/" + std::string(intent_id) +
           "/authenticate";
  }

  // Posts one event body, signed now. Ok only for a 2xx answer.
  Status Post(const std::string& body) {
    http::ClientRequest req;
    req.method = "POST";
    req.url = options.webhook_url;
    req.headers = {{"Content-Type", "application/json"},
                   {std::string(kSignatureHeader), SignWebhook(options.webhook_secret, clock.NowSeconds(), body)}};
    req.body = body;
    req.timeout = kDeliveryTimeout;
    auto res = http::Send(req);
    if (!res.ok()) return std::move(res).error();
    if (res->status < 200 || res->status >= 300) {
      return Error::Unavailable(fmt::format("The webhook endpoint answered {}", res->status));
    }
    return Ok();
  }

  bool Stopping() const {
    std::lock_guard lock(mu);
    return stopping;
  }

  // One pass: sends every due event (up to a batch) and records the
  // outcome. `stoppable`: give up between events once Stop() is called.
  Result<int> DeliverDue(bool stoppable) {
    std::lock_guard pass(pass_mu);
    if (options.webhook_url.empty()) return 0;
    const DeliverySettings settings = Delivery();
    const std::string order = settings.out_of_order ? "created_at_ms DESC, id DESC" : "created_at_ms, id";
    AGORA_ASSIGN_OR_RETURN(db::Rows due, db.Exec("payments.sandbox.due_webhooks",
                                                 "SELECT id, type, body, attempts FROM sandbox_webhook_events "
                                                 "WHERE delivered_at_ms IS NULL AND next_attempt_at_ms <= $1 "
                                                 "ORDER BY " + order + " LIMIT " + std::to_string(kDeliveryBatch),
                                                 {clock.NowMillis()}));
    int delivered = 0;
    for (const db::Row& row : due) {
      if (stoppable && Stopping()) break;
      const std::string id = row.Text(0);
      const std::string type = row.Text(1);
      const std::string body = row.Text(2);
      const int64_t attempts = row.Int(3);
      Status sent = Post(body);
      if (sent.ok()) {
        if (settings.duplicate) {
          // A receiver must apply each event id once; this makes it prove it.
          if (Status again = Post(body); !again.ok()) {
            log::Warn("sandbox webhook duplicate not delivered", {{"event_id", id}, {"error", again.error().message}});
          }
        }
        AGORA_RETURN_IF_ERROR(db.Exec("payments.sandbox.webhook_delivered",
                                      "UPDATE sandbox_webhook_events SET delivered_at_ms = $2, attempts = attempts + 1 "
                                      "WHERE id = $1",
                                      {id, clock.NowMillis()}));
        ++delivered;
        continue;
      }
      // 1 s after the first failure, doubling, at most max_retry_delay.
      const auto backoff = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(1000) * (int64_t{1} << std::min<int64_t>(attempts, 20)), options.max_retry_delay);
      AGORA_RETURN_IF_ERROR(db.Exec("payments.sandbox.webhook_failed",
                                    "UPDATE sandbox_webhook_events SET attempts = attempts + 1, next_attempt_at_ms = $2 "
                                    "WHERE id = $1",
                                    {id, clock.NowMillis() + backoff.count()}));
      // The error names the host and the status, never the body.
      log::Warn("sandbox webhook not delivered", {{"event_id", id},
                                                  {"type", type},
                                                  {"attempts", attempts + 1},
                                                  {"retry_in_ms", backoff.count()},
                                                  {"error", sent.error().message}});
    }
    return delivered;
  }

  void Loop() {
    // A database that is down fails every pass: say so once a minute, not
    // ten times a second.
    std::chrono::steady_clock::time_point last_warning{};
    std::unique_lock lock(mu);
    while (!stopping) {
      wake = false;
      lock.unlock();
      if (auto n = DeliverDue(true); !n.ok()) {
        const auto now = std::chrono::steady_clock::now();
        if (last_warning == std::chrono::steady_clock::time_point{} || now - last_warning >= std::chrono::minutes(1)) {
          last_warning = now;
          log::Warn("sandbox webhook pass failed", {{"error", n.error().message}});
        }
      }
      lock.lock();
      cv.wait_for(lock, options.poll_interval, [&] { return stopping || wake; });
    }
  }
};

Gateway::Gateway(db::Database& db, SandboxTokenStore& tokens, const Clock& clock, GatewayOptions options)
    : impl_(std::make_unique<Impl>(db, tokens, clock, std::move(options))) {}

Gateway::~Gateway() { Stop(); }

Result<ProviderIntent> Gateway::CreateIntent(const CreateIntentRequest& request) {
  std::vector<FieldError> bad;
  if (request.amount <= 0) bad.push_back({"amount", "must be a positive number of minor units"});
  if (!IsCurrency(request.currency)) bad.push_back({"currency", "must be an upper-case ISO 4217 code"});
  if (!bad.empty()) return Error::Validation(std::move(bad));
  if (request.payment_token.empty()) {
    return Error::InvalidArgument("A payment token is required").WithType("payment-token-invalid");
  }
  auto token = impl_->tokens.Find(request.payment_token);
  if (!token.ok()) {
    if (token.error().code == ErrorCode::kNotFound) {
      return Error::InvalidArgument("No such payment token").WithType("payment-token-invalid");
    }
    return std::move(token).error();
  }
  const Behavior behavior = token->card.behavior;

  const std::string fingerprint = boost::json::serialize(
      boost::json::array{request.amount, request.currency, request.payment_token, request.manual_capture,
                         request.payment_id});
  auto answer = impl_->Once(
      "payments.sandbox.create_intent", "create_intent", request.idempotency_key, fingerprint,
      [&](db::Tx& tx, int64_t now_ms) -> Result<Impl::Saved> {
        ProviderIntent in;
        in.id = NewId("pi_", impl_->clock);
        in.amount = request.amount;
        in.currency = request.currency;
        in.manual_capture = request.manual_capture;
        in.payment_id = request.payment_id;
        in.created = now_ms / 1000;
        switch (behavior) {
          case Behavior::kSucceed:
          case Behavior::kNetworkError:  // charged; only the answer is lost
            Authorize(in);
            break;
          case Behavior::kDecline:
            Fail(in, "card_declined", "Your card was declined.");
            break;
          case Behavior::kInsufficientFunds:
            Fail(in, "insufficient_funds", "Your card has insufficient funds.");
            break;
          case Behavior::kRequiresAction:
            in.status = IntentStatus::kRequiresAction;
            in.next_action_url = impl_->ActionUrl(in.id);
            break;
        }
        auto inserted = tx.Exec(
            "payments.sandbox.insert_intent",
            "INSERT INTO sandbox_intents (" INTENT_COLUMNS ", token_id, updated_at_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13)",
            {in.id, std::string(IntentStatusName(in.status)), in.amount, in.amount_capturable, in.amount_received,
             in.amount_refunded, in.currency, std::string(in.manual_capture ? "manual" : "automatic"), in.payment_id,
             in.failure_code, in.failure_message, in.next_action_url, now_ms, request.payment_token});
        if (!inserted.ok()) {
          if (inserted.error().code == ErrorCode::kConflict) {
            return Error::FailedPrecondition("This payment token was already used").WithType("payment-token-used");
          }
          return std::move(inserted).error();
        }
        // Each event carries the intent as this call leaves it.
        AGORA_RETURN_IF_ERROR(impl_->EnqueueIntent(tx, "payment_intent.created", in, now_ms));
        AGORA_RETURN_IF_ERROR(impl_->EnqueueIntent(tx, EventTypeFor(in.status), in, now_ms));
        return Impl::Saved{in.id, boost::json::serialize(IntentToJson(in))};
      });
  if (!answer.ok()) return std::move(answer).error();
  if (behavior == Behavior::kNetworkError && !answer->replayed) {
    return Error::Unavailable("The sandbox gateway did not answer (test card 4000 0000 0000 0119)")
        .WithType("provider-unavailable");
  }
  return ParseSaved<ProviderIntent>(answer->response, IntentFromJson);
}

Result<ProviderIntent> Gateway::GetIntent(std::string_view intent_id) {
  return impl_->db.Transact("payments.sandbox.get_intent", db::TxMode::kRead,
                            [&](db::Tx& tx) { return LoadIntent(tx, intent_id, false); });
}

Result<ProviderIntent> Gateway::Capture(std::string_view intent_id, int64_t amount, std::string_view idempotency_key) {
  if (amount <= 0) return Error::Validation({{"amount", "must be a positive number of minor units"}});
  const std::string fingerprint = boost::json::serialize(boost::json::array{intent_id, amount});
  auto answer = impl_->Once("payments.sandbox.capture", "capture", idempotency_key, fingerprint,
                            [&](db::Tx& tx, int64_t now_ms) -> Result<Impl::Saved> {
                              AGORA_ASSIGN_OR_RETURN(ProviderIntent in, LoadIntent(tx, intent_id, true));
                              if (in.status != IntentStatus::kRequiresCapture) return UnexpectedState(in, "capture");
                              if (amount > in.amount_capturable) {
                                return Error::FailedPrecondition(
                                           fmt::format("Cannot capture {} of {} authorized", amount,
                                                       in.amount_capturable))
                                    .WithType("capture-exceeds-authorized");
                              }
                              // As Stripe: the rest of the authorization is released.
                              in.status = IntentStatus::kSucceeded;
                              in.amount_received = amount;
                              in.amount_capturable = 0;
                              AGORA_RETURN_IF_ERROR(SaveIntent(tx, in, now_ms));
                              AGORA_RETURN_IF_ERROR(impl_->EnqueueIntent(tx, "payment_intent.succeeded", in, now_ms));
                              return Impl::Saved{in.id, boost::json::serialize(IntentToJson(in))};
                            });
  if (!answer.ok()) return std::move(answer).error();
  return ParseSaved<ProviderIntent>(answer->response, IntentFromJson);
}

Result<ProviderIntent> Gateway::Cancel(std::string_view intent_id, std::string_view idempotency_key) {
  const std::string fingerprint = boost::json::serialize(boost::json::array{intent_id});
  auto answer = impl_->Once("payments.sandbox.cancel", "cancel", idempotency_key, fingerprint,
                            [&](db::Tx& tx, int64_t now_ms) -> Result<Impl::Saved> {
                              AGORA_ASSIGN_OR_RETURN(ProviderIntent in, LoadIntent(tx, intent_id, true));
                              if (in.status != IntentStatus::kRequiresCapture &&
                                  in.status != IntentStatus::kRequiresAction &&
                                  in.status != IntentStatus::kRequiresPaymentMethod) {
                                return UnexpectedState(in, "cancel");
                              }
                              in.status = IntentStatus::kCanceled;
                              in.amount_capturable = 0;
                              in.next_action_url.clear();
                              AGORA_RETURN_IF_ERROR(SaveIntent(tx, in, now_ms));
                              AGORA_RETURN_IF_ERROR(impl_->EnqueueIntent(tx, "payment_intent.canceled", in, now_ms));
                              return Impl::Saved{in.id, boost::json::serialize(IntentToJson(in))};
                            });
  if (!answer.ok()) return std::move(answer).error();
  return ParseSaved<ProviderIntent>(answer->response, IntentFromJson);
}

Result<ProviderRefund> Gateway::Refund(std::string_view intent_id, int64_t amount, std::string_view idempotency_key) {
  if (amount <= 0) return Error::Validation({{"amount", "must be a positive number of minor units"}});
  const std::string fingerprint = boost::json::serialize(boost::json::array{intent_id, amount});
  auto answer = impl_->Once(
      "payments.sandbox.refund", "refund", idempotency_key, fingerprint,
      [&](db::Tx& tx, int64_t now_ms) -> Result<Impl::Saved> {
        AGORA_ASSIGN_OR_RETURN(ProviderIntent in, LoadIntent(tx, intent_id, true));
        if (amount > in.amount_received - in.amount_refunded) {
          return Error::FailedPrecondition(fmt::format("Cannot refund {}: {} captured, {} already refunded", amount,
                                                       in.amount_received, in.amount_refunded))
              .WithType("refund-exceeds-captured");
        }
        ProviderRefund refund{NewId("re_", impl_->clock), in.id, amount, in.currency, "succeeded"};
        AGORA_RETURN_IF_ERROR(tx.Exec("payments.sandbox.insert_refund",
                                      "INSERT INTO sandbox_refunds (id, intent_id, amount, currency, status, "
                                      "created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                                      {refund.id, refund.intent_id, refund.amount, refund.currency, refund.status,
                                       now_ms}));
        in.amount_refunded += amount;
        AGORA_RETURN_IF_ERROR(SaveIntent(tx, in, now_ms));
        // Simplification: Stripe's charge.refunded carries the charge; the
        // sandbox sends the intent, whose amount_refunded says the same.
        AGORA_RETURN_IF_ERROR(impl_->EnqueueIntent(tx, "charge.refunded", in, now_ms));
        return Impl::Saved{refund.id, boost::json::serialize(RefundToJson(refund, now_ms / 1000))};
      });
  if (!answer.ok()) return std::move(answer).error();
  return ParseSaved<ProviderRefund>(answer->response, RefundFromJson);
}

Result<ProviderTransfer> Gateway::Transfer(std::string_view destination, int64_t amount, std::string_view currency,
                                           std::string_view idempotency_key) {
  std::vector<FieldError> bad;
  if (destination.empty() || destination.size() > 255) bad.push_back({"destination", "must be 1 to 255 characters"});
  if (amount <= 0) bad.push_back({"amount", "must be a positive number of minor units"});
  if (!IsCurrency(currency)) bad.push_back({"currency", "must be an upper-case ISO 4217 code"});
  if (!bad.empty()) return Error::Validation(std::move(bad));
  const std::string fingerprint = boost::json::serialize(boost::json::array{destination, amount, currency});
  auto answer = impl_->Once(
      "payments.sandbox.transfer", "transfer", idempotency_key, fingerprint,
      [&](db::Tx& tx, int64_t now_ms) -> Result<Impl::Saved> {
        ProviderTransfer t{NewId("tr_", impl_->clock), std::string(destination), amount, std::string(currency)};
        AGORA_RETURN_IF_ERROR(tx.Exec("payments.sandbox.insert_transfer",
                                      "INSERT INTO sandbox_transfers (id, destination, amount, currency, created_at_ms) "
                                      "VALUES ($1, $2, $3, $4, $5)",
                                      {t.id, t.destination, t.amount, t.currency, now_ms}));
        return Impl::Saved{t.id, boost::json::serialize(TransferToJson(t, now_ms / 1000))};
      });
  if (!answer.ok()) return std::move(answer).error();
  return ParseSaved<ProviderTransfer>(answer->response, TransferFromJson);
}

Result<WebhookEvent> Gateway::ParseWebhook(std::string_view signature_header, std::string_view body, TimePoint now) {
  AGORA_RETURN_IF_ERROR(VerifyWebhook(impl_->options.webhook_secret, signature_header, body, now));
  return EventFromJson(body);
}

Result<ProviderIntent> Gateway::Authenticate(std::string_view intent_id, bool succeed) {
  const int64_t now_ms = impl_->clock.NowMillis();
  auto in = impl_->db.Transact(
      "payments.sandbox.authenticate", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<ProviderIntent> {
        AGORA_ASSIGN_OR_RETURN(ProviderIntent in, LoadIntent(tx, intent_id, true));
        if (in.status != IntentStatus::kRequiresAction) return UnexpectedState(in, "authenticate");
        if (succeed) {
          Authorize(in);
        } else {
          Fail(in, "authentication_required", "The customer did not complete authentication.");
        }
        AGORA_RETURN_IF_ERROR(SaveIntent(tx, in, now_ms));
        AGORA_RETURN_IF_ERROR(impl_->EnqueueIntent(tx, EventTypeFor(in.status), in, now_ms));
        return in;
      });
  if (in.ok()) impl_->Notify();
  return in;
}

void Gateway::SetDelivery(const DeliverySettings& settings) {
  std::lock_guard lock(impl_->mu);
  impl_->delivery = settings;
}

DeliverySettings Gateway::delivery() const { return impl_->Delivery(); }

void Gateway::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->thread.joinable()) return;
  impl_->stopping = false;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Loop(); });
}

void Gateway::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<int> Gateway::DeliverDueForTest() { return impl_->DeliverDue(false); }

namespace {

http::Response ProblemFor(const http::Request& req, const Error& e) {
  if (e.code == ErrorCode::kInternal || e.code == ErrorCode::kUnavailable) {
    log::Warn("sandbox gateway request failed", {{"request_id", req.request_id}, {"error", e.message}});
  }
  return http::ProblemFrom(e);
}

boost::json::object SettingsJson(const DeliverySettings& s) {
  return {{"delay_ms", s.delay.count()}, {"duplicate", s.duplicate}, {"out_of_order", s.out_of_order}};
}

}  // namespace

void AddGatewayRoutes(http::App& app, Gateway& gateway) {
  http::Route authenticate = http::MakeRoute(
      http::Method::kPost, "/sandbox/v1/payment_intents/{id}/authenticate", http::Execution::kBlocking,
      [&gateway](http::Request& req) {
        std::string outcome;
        if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
              outcome = r.String("outcome", true, 1, 16).value_or("");
              if (!outcome.empty() && outcome != "succeed" && outcome != "fail") {
                r.AddError("outcome", "must be \"succeed\" or \"fail\"");
              }
            })) {
          return *bad;
        }
        auto in = gateway.Authenticate(req.PathParam("id"), outcome == "succeed");
        if (!in.ok()) return ProblemFor(req, in.error());
        return http::Response::Json(200, IntentToJson(*in));
      });
  authenticate.summary = "Complete a payment intent's authentication step (sandbox gateway)";
  app.Add(std::move(authenticate));

  http::Route get_settings =
      http::MakeRoute(http::Method::kGet, "/sandbox/v1/webhook_settings", http::Execution::kBlocking,
                      [&gateway](http::Request&) { return http::Response::Json(200, SettingsJson(gateway.delivery())); });
  get_settings.summary = "Read how the sandbox gateway delivers webhooks";
  app.Add(std::move(get_settings));

  http::Route set_settings = http::MakeRoute(
      http::Method::kPost, "/sandbox/v1/webhook_settings", http::Execution::kBlocking, [&gateway](http::Request& req) {
        std::optional<int64_t> delay_ms;
        std::optional<bool> duplicate;
        std::optional<bool> out_of_order;
        if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
              delay_ms = r.Int("delay_ms", false, 0, 600000);
              duplicate = r.Bool("duplicate", false);
              out_of_order = r.Bool("out_of_order", false);
            })) {
          return *bad;
        }
        // Fields left out keep their value.
        DeliverySettings s = gateway.delivery();
        if (delay_ms) s.delay = std::chrono::milliseconds(*delay_ms);
        if (duplicate) s.duplicate = *duplicate;
        if (out_of_order) s.out_of_order = *out_of_order;
        gateway.SetDelivery(s);
        return http::Response::Json(200, SettingsJson(s));
      });
  set_settings.summary = "Make the sandbox gateway deliver webhooks late, twice or out of order";
  app.Add(std::move(set_settings));
}

}  // namespace agora::payments::sandbox
