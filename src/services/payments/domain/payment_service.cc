#include "services/payments/domain/payment_service.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <map>

#include "core/id.h"
#include "core/log.h"
#include "services/payments/ledger/ledger.h"

namespace agora::payments {
namespace {

constexpr db::Migration kMigrations[] = {
    {1, "payments", R"sql(
CREATE TABLE payments (
  id TEXT PRIMARY KEY,
  checkout_id TEXT NOT NULL UNIQUE,
  buyer_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  provider_intent_id TEXT,
  payment_token TEXT NOT NULL,
  status TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  amount_captured BIGINT NOT NULL DEFAULT 0,
  amount_refunded BIGINT NOT NULL DEFAULT 0,
  failure_code TEXT NOT NULL DEFAULT '',
  failure_message TEXT NOT NULL DEFAULT '',
  next_action_url TEXT NOT NULL DEFAULT '',
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE INDEX payments_intent ON payments (provider_intent_id);
-- One row per order: its share of the payment and where that money is.
CREATE TABLE payment_allocations (
  order_id TEXT PRIMARY KEY,
  payment_id TEXT NOT NULL REFERENCES payments (id),
  seller_id TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0),
  commission_bps BIGINT NOT NULL CHECK (commission_bps BETWEEN 0 AND 10000),
  refunded BIGINT NOT NULL DEFAULT 0,
  released BIGINT NOT NULL DEFAULT 0,
  commission BIGINT NOT NULL DEFAULT 0,
  CHECK (refunded + released <= amount)
);
CREATE INDEX payment_allocations_payment ON payment_allocations (payment_id);
CREATE INDEX payment_allocations_seller ON payment_allocations (seller_id);
CREATE TABLE refunds (
  id TEXT PRIMARY KEY,
  payment_id TEXT NOT NULL REFERENCES payments (id),
  order_id TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  reason TEXT NOT NULL,
  provider_refund_id TEXT NOT NULL,
  request_id TEXT NOT NULL UNIQUE,
  created_at_ms BIGINT NOT NULL
);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE TABLE payouts (
  id TEXT PRIMARY KEY,
  seller_id TEXT NOT NULL,
  amount BIGINT NOT NULL CHECK (amount > 0),
  currency TEXT NOT NULL,
  status TEXT NOT NULL,
  provider_transfer_id TEXT NOT NULL DEFAULT '',
  failure TEXT NOT NULL DEFAULT '',
  created_at_ms BIGINT NOT NULL,
  paid_at_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX payouts_seller ON payouts (seller_id, created_at_ms);
CREATE INDEX payouts_status ON payouts (status);
)sql"},
};

constexpr const char* kPaymentCols =
    "id, checkout_id, buyer_id, provider, provider_intent_id, status, amount, currency, amount_captured, "
    "amount_refunded, failure_code, failure_message, next_action_url, created_at_ms, updated_at_ms, payment_token";

Payment PaymentFromRow(const db::Row& r) {
  Payment p;
  p.id = r.Text(0);
  p.checkout_id = r.Text(1);
  p.buyer_id = r.Text(2);
  p.provider = r.Text(3);
  p.provider_intent_id = r.Text(4);
  p.status = ParsePaymentStatus(r.Text(5)).value_or(PaymentStatus::kProcessing);
  p.amount = r.Int(6);
  p.currency = r.Text(7);
  p.amount_captured = r.Int(8);
  p.amount_refunded = r.Int(9);
  p.failure_code = r.Text(10);
  p.failure_message = r.Text(11);
  p.next_action_url = r.Text(12);
  p.created_at_ms = r.Int(13);
  p.updated_at_ms = r.Int(14);
  return p;
}

const char* ForUpdate(db::Tx& tx) { return tx.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : ""; }

Result<std::optional<Payment>> SelectPayment(db::Tx& tx, std::string_view column, std::string_view value,
                                             bool lock) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         tx.Exec(fmt::format("payments.payment_by_{}", column),
                                 fmt::format("SELECT {} FROM payments WHERE {} = $1{}", kPaymentCols, column,
                                             lock ? ForUpdate(tx) : ""),
                                 {std::string(value)}));
  if (rows.empty()) return std::optional<Payment>();
  return std::optional<Payment>(PaymentFromRow(rows[0]));
}

Error PaymentNotFound() { return Error::NotFound("No payment for this checkout").WithType("payment-not-found"); }

struct AllocationRow {
  std::string order_id;
  std::string payment_id;
  std::string seller_id;
  int64_t amount = 0;
  int64_t commission_bps = 0;
  int64_t refunded = 0;
  int64_t released = 0;
  int64_t remaining() const { return amount - refunded - released; }
};

Result<std::vector<AllocationRow>> SelectAllocations(db::Tx& tx, std::string_view column, std::string_view value,
                                                     bool lock) {
  AGORA_ASSIGN_OR_RETURN(
      db::Rows rows,
      tx.Exec(fmt::format("payments.allocations_by_{}", column),
              fmt::format("SELECT order_id, payment_id, seller_id, amount, commission_bps, refunded, released "
                          "FROM payment_allocations WHERE {} = $1 ORDER BY order_id{}",
                          column, lock ? ForUpdate(tx) : ""),
              {std::string(value)}));
  std::vector<AllocationRow> out;
  for (const auto& r : rows) {
    out.push_back({r.Text(0), r.Text(1), r.Text(2), r.Int(3), r.Int(4), r.Int(5), r.Int(6)});
  }
  return out;
}

Status Publish(db::Tx& tx, std::string type, boost::json::object payload, int64_t now_ms) {
  return events::AppendToOutbox(tx, events::Event{"", std::move(type), "payments",
                                                  boost::json::serialize(payload), now_ms});
}

// The status a provider intent means for a payment, when the move from
// `from` is allowed; nullopt for old or irrelevant news.
std::optional<PaymentStatus> NextStatus(PaymentStatus from, IntentStatus intent) {
  using P = PaymentStatus;
  switch (intent) {
    case IntentStatus::kSucceeded:
      return from == P::kSucceeded ? std::nullopt : std::optional(P::kSucceeded);
    case IntentStatus::kRequiresCapture:
      if (from == P::kCreated || from == P::kProcessing || from == P::kRequiresAction) return P::kAuthorized;
      return std::nullopt;
    case IntentStatus::kRequiresPaymentMethod:
      if (from == P::kCreated || from == P::kProcessing || from == P::kRequiresAction || from == P::kAuthorized) {
        return P::kFailed;
      }
      return std::nullopt;
    case IntentStatus::kRequiresAction:
      if (from == P::kCreated || from == P::kProcessing) return P::kRequiresAction;
      return std::nullopt;
    case IntentStatus::kCanceled:
      if (from == P::kCreated || from == P::kProcessing || from == P::kRequiresAction || from == P::kAuthorized) {
        return P::kCanceled;
      }
      return std::nullopt;
    case IntentStatus::kProcessing:
      return from == P::kCreated ? std::optional(P::kProcessing) : std::nullopt;
  }
  return std::nullopt;
}

// Moves `p` (locked in `tx`) to what `intent` says, posting the capture to
// the ledger and the event to the outbox. Returns whether it changed.
Result<bool> Transition(db::Tx& tx, Payment& p, const ProviderIntent& intent, int64_t now_ms) {
  const bool new_intent = !intent.id.empty() && p.provider_intent_id.empty();
  if (new_intent) p.provider_intent_id = intent.id;
  auto next = NextStatus(p.status, intent.status);
  if (!next) {
    if (new_intent) {
      AGORA_RETURN_IF_ERROR(tx.Exec("payments.set_intent",
                                    "UPDATE payments SET provider_intent_id = $2 WHERE id = $1",
                                    {p.id, p.provider_intent_id}));
    }
    return false;
  }
  const PaymentStatus from = p.status;
  p.status = *next;
  p.updated_at_ms = now_ms;
  if (*next == PaymentStatus::kFailed) {
    p.failure_code = intent.failure_code.empty() ? "payment_failed" : intent.failure_code;
    p.failure_message = intent.failure_message;
  } else if (*next == PaymentStatus::kCanceled) {
    p.failure_code = "canceled";
  }
  if (*next == PaymentStatus::kRequiresAction) p.next_action_url = intent.next_action_url;
  if (*next == PaymentStatus::kSucceeded) {
    p.amount_captured = intent.amount_received > 0 ? intent.amount_received : p.amount;
    if (from == PaymentStatus::kFailed || from == PaymentStatus::kCanceled) {
      log::Warn("provider reports a charge for a payment that had failed",
                {{"payment_id", p.id}, {"from", PaymentStatusName(from)}});
    }
    if (p.amount_captured != p.amount) {
      // Partial captures are not part of checkout; a mismatch is the
      // provider's word against ours and needs a human.
      log::Error("captured amount differs from the payment",
                 {{"payment_id", p.id}, {"captured", p.amount_captured}, {"amount", p.amount}});
    }
  }
  AGORA_RETURN_IF_ERROR(tx.Exec("payments.update_status",
                                "UPDATE payments SET status = $2, amount_captured = $3, failure_code = $4, "
                                "failure_message = $5, next_action_url = $6, updated_at_ms = $7, "
                                "provider_intent_id = $8 WHERE id = $1",
                                {p.id, std::string(PaymentStatusName(p.status)), p.amount_captured, p.failure_code,
                                 p.failure_message, p.next_action_url, now_ms, p.provider_intent_id}));
  if (*next == PaymentStatus::kSucceeded) {
    AGORA_ASSIGN_OR_RETURN(auto allocations, SelectAllocations(tx, "payment_id", p.id, false));
    ledger::LedgerTransaction t{ledger::NewTransactionId(), "payment.captured", p.id, {}, now_ms};
    t.entries.push_back({"buyer_payments", -p.amount, p.currency});
    boost::json::array orders;
    for (const auto& a : allocations) {
      t.entries.push_back({"escrow:" + a.order_id, a.amount, p.currency});
      orders.push_back(boost::json::value(a.order_id));
    }
    AGORA_RETURN_IF_ERROR(ledger::Post(tx, t, "capture:" + p.id));
    AGORA_RETURN_IF_ERROR(Publish(tx, "payment.succeeded",
                                  {{"payment_id", p.id},
                                   {"checkout_id", p.checkout_id},
                                   {"amount", p.amount_captured},
                                   {"currency", p.currency},
                                   {"order_ids", std::move(orders)}},
                                  now_ms));
  } else if (*next == PaymentStatus::kFailed || *next == PaymentStatus::kCanceled) {
    AGORA_RETURN_IF_ERROR(Publish(tx, "payment.failed",
                                  {{"payment_id", p.id},
                                   {"checkout_id", p.checkout_id},
                                   {"status", PaymentStatusName(p.status)},
                                   {"failure_code", p.failure_code}},
                                  now_ms));
  }
  return true;
}

std::string ProviderKey(std::string_view what, std::string_view id) { return fmt::format("agora-{}-{}", what, id); }

Payout PayoutFromRow(const db::Row& r) {
  Payout p;
  p.id = r.Text(0);
  p.seller_id = r.Text(1);
  p.amount = r.Int(2);
  p.currency = r.Text(3);
  const std::string s = r.Text(4);
  p.status = s == "paid" ? PayoutStatus::kPaid : s == "failed" ? PayoutStatus::kFailed : PayoutStatus::kPending;
  p.provider_transfer_id = r.Text(5);
  p.failure = r.Text(6);
  p.created_at_ms = r.Int(7);
  p.paid_at_ms = r.Int(8);
  return p;
}

constexpr const char* kPayoutCols =
    "id, seller_id, amount, currency, status, provider_transfer_id, failure, created_at_ms, paid_at_ms";

}  // namespace

std::span<const db::Migration> DomainMigrations() { return kMigrations; }

const char* PayoutStatusName(PayoutStatus s) {
  switch (s) {
    case PayoutStatus::kPending: return "pending";
    case PayoutStatus::kPaid: return "paid";
    case PayoutStatus::kFailed: return "failed";
  }
  return "pending";
}

PaymentService::PaymentService(db::Database& db, PaymentProvider& provider, const Clock& clock,
                               PaymentOptions options)
    : db_(db), provider_(provider), clock_(clock), options_(options) {}

Result<Payment> PaymentService::Load(std::string_view checkout_id) {
  return db_.Transact("payments.load", db::TxMode::kRead, [&](db::Tx& tx) -> Result<Payment> {
    AGORA_ASSIGN_OR_RETURN(auto p, SelectPayment(tx, "checkout_id", checkout_id, false));
    if (!p) return PaymentNotFound();
    return *p;
  });
}

Result<Payment> PaymentService::ApplyProviderAnswer(const Payment& payment, const ProviderIntent& intent) {
  bool changed = false;
  AGORA_ASSIGN_OR_RETURN(
      Payment p, db_.Transact("payments.apply_intent", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Payment> {
        AGORA_ASSIGN_OR_RETURN(auto locked, SelectPayment(tx, "id", payment.id, true));
        if (!locked) return PaymentNotFound();
        AGORA_ASSIGN_OR_RETURN(changed, Transition(tx, *locked, intent, clock_.NowMillis()));
        return *locked;
      }));
  if (changed) Notify();
  if (p.status == PaymentStatus::kAuthorized) {
    // Capture once the authorization is confirmed (manual capture).
    auto captured = provider_.Capture(p.provider_intent_id, p.amount, ProviderKey("capture", p.id));
    if (!captured.ok()) {
      log::Warn("capture failed; the next webhook or reconciliation retries",
                {{"payment_id", p.id}, {"error", captured.error().message}});
      return p;
    }
    return ApplyProviderAnswer(p, *captured);
  }
  return p;
}

Result<Payment> PaymentService::Charge(const ChargeRequest& request) {
  if (request.allocations.empty()) return Error::InvalidArgument("a charge needs at least one order");
  int64_t total = 0;
  for (const auto& a : request.allocations) {
    if (a.amount <= 0 || a.commission_bps < 0 || a.commission_bps > 10000) {
      return Error::InvalidArgument("allocation amounts must be positive, commission 0..10000 bps");
    }
    total += a.amount;
  }
  const int64_t now_ms = clock_.NowMillis();
  bool created = false;
  AGORA_ASSIGN_OR_RETURN(
      Payment p, db_.Transact("payments.create", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Payment> {
        created = false;
        AGORA_ASSIGN_OR_RETURN(auto existing, SelectPayment(tx, "checkout_id", request.checkout_id, false));
        if (existing) return *existing;
        created = true;
        Payment p;
        p.id = NewId("pay_", clock_);
        p.checkout_id = request.checkout_id;
        p.buyer_id = request.buyer_id;
        p.provider = std::string(provider_.name());
        p.amount = total;
        p.currency = request.currency;
        p.created_at_ms = p.updated_at_ms = now_ms;
        AGORA_RETURN_IF_ERROR(tx.Exec("payments.insert",
                                      "INSERT INTO payments (id, checkout_id, buyer_id, provider, payment_token, "
                                      "status, amount, currency, created_at_ms, updated_at_ms) "
                                      "VALUES ($1, $2, $3, $4, $5, 'created', $6, $7, $8, $8)",
                                      {p.id, p.checkout_id, p.buyer_id, p.provider, request.payment_token, total,
                                       p.currency, now_ms}));
        for (const auto& a : request.allocations) {
          AGORA_RETURN_IF_ERROR(tx.Exec("payments.insert_allocation",
                                        "INSERT INTO payment_allocations (order_id, payment_id, seller_id, amount, "
                                        "commission_bps) VALUES ($1, $2, $3, $4, $5)",
                                        {a.order_id, p.id, a.seller_id, a.amount, a.commission_bps}));
        }
        return p;
      }));
  if (p.status != PaymentStatus::kCreated && p.status != PaymentStatus::kProcessing) return p;
  // A payment made just now holds the request's token; an earlier one, its own.
  return Reconcile(p, created ? request.payment_token : std::string_view{});
}

// Asks the provider for a payment whose outcome is not known: creates (or,
// with the same idempotency key, finds) the intent and applies it.
Result<Payment> PaymentService::Reconcile(const Payment& payment, std::string_view payment_token) {
  std::string token(payment_token);
  if (token.empty()) {
    AGORA_ASSIGN_OR_RETURN(db::Rows rows, db_.Exec("payments.token",
                                                   "SELECT payment_token FROM payments WHERE id = $1", {payment.id}));
    if (rows.empty()) return PaymentNotFound();
    token = rows[0].Text(0);
  }
  CreateIntentRequest req{payment.amount, payment.currency, std::move(token), options_.manual_capture, payment.id,
                          ProviderKey("pay", payment.id)};
  auto intent = provider_.CreateIntent(req);
  if (!intent.ok()) {
    const Error& e = intent.error();
    ProviderIntent answer;
    if (e.code == ErrorCode::kUnavailable || e.type == "provider-response-invalid") {
      // No (usable) answer: the charge may have happened. Its webhook (or
      // the next reconciliation with the same key) decides.
      log::Warn("payment provider did not answer", {{"payment_id", payment.id}, {"error", e.message}});
      answer.status = IntentStatus::kProcessing;
    } else if (e.type == "payment-token-invalid" || e.type == "payment-token-used") {
      answer.status = IntentStatus::kRequiresPaymentMethod;
      answer.failure_code = e.type == "payment-token-used" ? "token_already_used" : "invalid_payment_token";
      answer.failure_message = e.message;
    } else if (e.code == ErrorCode::kInvalidArgument || e.code == ErrorCode::kFailedPrecondition ||
               e.code == ErrorCode::kConflict) {
      // The provider refused the request itself, so nothing was charged;
      // the cause is on our side (configuration, a bug): loud in the log.
      log::Error("payment provider refused the charge request",
                 {{"payment_id", payment.id}, {"type", e.type}, {"error", e.message}});
      answer.status = IntentStatus::kRequiresPaymentMethod;
      answer.failure_code = "provider_refused";
      answer.failure_message = "The payment provider refused the request";
    } else {
      return std::move(intent).error();
    }
    return ApplyProviderAnswer(payment, answer);
  }
  return ApplyProviderAnswer(payment, *intent);
}

Result<Payment> PaymentService::PaymentForCheckout(std::string_view checkout_id) {
  AGORA_ASSIGN_OR_RETURN(Payment p, Load(checkout_id));
  // Only a charge whose outcome is unknown is asked about again (with its
  // key, so it is never made twice). A payment still `created` never got an
  // answer the buyer saw as a charge (its call failed outright): it is not
  // charged now behind the buyer's back; the checkout times out instead.
  if (p.status == PaymentStatus::kProcessing) return Reconcile(p);
  if (p.status == PaymentStatus::kAuthorized && !p.provider_intent_id.empty()) {
    // Manual capture whose capture failed: read the intent and capture again.
    AGORA_ASSIGN_OR_RETURN(ProviderIntent intent, provider_.GetIntent(p.provider_intent_id));
    return ApplyProviderAnswer(p, intent);
  }
  return p;
}

Result<bool> PaymentService::HandleWebhook(std::string_view provider_name, std::string_view signature_header,
                                           std::string_view body) {
  if (provider_name != provider_.name()) {
    return Error::NotFound("No such payment provider").WithType("provider-not-found");
  }
  AGORA_ASSIGN_OR_RETURN(WebhookEvent event, provider_.ParseWebhook(signature_header, body, clock_.Now()));
  if (!event.intent) return false;  // not about a payment intent: acknowledged, nothing to do
  const ProviderIntent& intent = *event.intent;
  const std::string consumer = "webhooks." + std::string(provider_.name());
  bool changed = false;
  AGORA_ASSIGN_OR_RETURN(
      std::optional<Payment> p,
      db_.Transact("payments.webhook", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<std::optional<Payment>> {
        AGORA_ASSIGN_OR_RETURN(bool fresh, events::ClaimInbox(tx, consumer, event.id));
        if (!fresh) return std::optional<Payment>();
        std::optional<Payment> p;
        if (!intent.payment_id.empty()) {
          AGORA_ASSIGN_OR_RETURN(p, SelectPayment(tx, "id", intent.payment_id, true));
        }
        if (!p && !intent.id.empty()) {
          AGORA_ASSIGN_OR_RETURN(p, SelectPayment(tx, "provider_intent_id", intent.id, true));
        }
        if (!p) {
          log::Warn("webhook for an unknown payment", {{"event_id", event.id}, {"intent_id", intent.id}});
          return std::optional<Payment>();
        }
        AGORA_ASSIGN_OR_RETURN(changed, Transition(tx, *p, intent, clock_.NowMillis()));
        return p;
      }));
  if (changed) Notify();
  if (p && p->status == PaymentStatus::kAuthorized) {
    AGORA_RETURN_IF_ERROR(ApplyProviderAnswer(*p, intent));  // captures
  }
  return changed;
}

Status PaymentService::ApplyOrderEvent(const events::Event& event) {
  if (event.type == "order.refund_requested") return RefundOrder(event);
  if (event.type == "order.completed") return ReleaseOrder(event);
  return SkipOrderEvent(event);
}

Status PaymentService::SkipOrderEvent(const events::Event& event) {
  // An event with nothing to do moves the position only now and then: it
  // only bounds what a restart replays, and replaying it does nothing.
  if (event.seq <= 0 || event.seq - position_saved_.load() < 64) return Ok();
  position_saved_ = event.seq;
  return db_.Transact("payments.skip_event", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    return events::SavePosition(tx, kOrdersConsumer, event.seq);
  });
}

namespace {

struct OrderEventFields {
  std::string order_id;
  int64_t amount = 0;
  std::string reason;
};

Result<OrderEventFields> ParseOrderEvent(const events::Event& event) {
  boost::system::error_code ec;
  auto v = boost::json::parse(event.payload, ec);
  if (ec || !v.is_object() || !v.as_object().contains("order_id") || !v.at("order_id").is_string()) {
    return Error::InvalidArgument("malformed " + event.type + " event " + event.id);
  }
  OrderEventFields f;
  const auto& o = v.as_object();
  f.order_id = std::string(o.at("order_id").as_string());
  if (auto* a = o.if_contains("amount"); a && a->is_int64()) f.amount = a->as_int64();
  if (auto* r = o.if_contains("reason"); r && r->is_string()) f.reason = std::string(r->as_string());
  return f;
}

}  // namespace

Status PaymentService::RefundOrder(const events::Event& event) {
  auto fields = ParseOrderEvent(event);
  if (!fields.ok()) {
    log::Error("refund request ignored", {{"event_id", event.id}, {"error", fields.error().message}});
    return Ok();
  }
  // Applied already (a redelivery or a replay after a restart): the amount
  // left may differ now, and reusing the provider key with another amount
  // would be refused, so stop here.
  AGORA_ASSIGN_OR_RETURN(db::Rows seen, db_.Exec("payments.inbox_seen",
                                                 "SELECT 1 FROM inbox_events WHERE consumer = $1 AND event_id = $2",
                                                 {std::string(kOrdersConsumer), event.id}));
  if (!seen.empty()) return SkipOrderEvent(event);
  // What to refund, read first: the provider call happens outside the
  // database transaction, keyed by the event id so a redelivery (or a crash
  // before the commit) repeats it without refunding twice.
  AGORA_ASSIGN_OR_RETURN(auto found, db_.Transact("payments.refund_read", db::TxMode::kRead,
                                                  [&](db::Tx& tx) -> Result<std::pair<std::vector<AllocationRow>,
                                                                                      std::optional<Payment>>> {
                                                    AGORA_ASSIGN_OR_RETURN(auto a, SelectAllocations(tx, "order_id",
                                                                                                     fields->order_id, false));
                                                    if (a.empty()) return std::pair{a, std::optional<Payment>()};
                                                    AGORA_ASSIGN_OR_RETURN(auto p, SelectPayment(tx, "id", a[0].payment_id, false));
                                                    return std::pair{a, p};
                                                  }));
  auto& [allocations, payment] = found;
  if (allocations.empty() || !payment) {
    log::Info("refund request for an order without a payment", {{"order_id", fields->order_id}});
    return SkipOrderEvent(event);
  }
  if (payment->status == PaymentStatus::kCreated || payment->status == PaymentStatus::kProcessing ||
      payment->status == PaymentStatus::kAuthorized || payment->status == PaymentStatus::kRequiresAction) {
    // Not settled yet: reconcile, and let the bus bring the event back.
    (void)Reconcile(*payment);
    return Error::Unavailable("payment " + payment->id + " not settled yet; refund retried later");
  }
  const AllocationRow& a = allocations[0];
  int64_t amount = fields->amount > 0 ? std::min(fields->amount, a.remaining()) : a.remaining();
  if (payment->status != PaymentStatus::kSucceeded || amount <= 0) {
    return SkipOrderEvent(event);
  }
  if (fields->amount > a.remaining()) {
    log::Warn("refund request above what is left in escrow; refunding what is left",
              {{"order_id", a.order_id}, {"requested", fields->amount}, {"left", a.remaining()}});
  }
  auto provider_refund = provider_.Refund(payment->provider_intent_id, amount, ProviderKey("refund", event.id));
  if (!provider_refund.ok()) {
    const Error& e = provider_refund.error();
    if (e.code == ErrorCode::kUnavailable) return std::move(provider_refund).error();  // the bus retries
    // The provider will not refund it (already refunded outside Agora, a
    // chargeback, ...). Retrying would block every later event: record it
    // as failed, for a human, and move on.
    log::Error("refund refused by the provider; needs a human",
               {{"order_id", a.order_id}, {"amount", amount}, {"type", e.type}, {"error", e.message}});
    AGORA_RETURN_IF_ERROR(db_.Transact("payments.refund_failed", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
      AGORA_ASSIGN_OR_RETURN(bool fresh, events::ClaimInbox(tx, kOrdersConsumer, event.id));
      if (event.seq > 0) AGORA_RETURN_IF_ERROR(events::SavePosition(tx, kOrdersConsumer, event.seq));
      if (!fresh) return Ok();
      return Publish(tx, "refund.failed",
                     {{"payment_id", payment->id},
                      {"order_id", a.order_id},
                      {"amount", amount},
                      {"currency", payment->currency},
                      {"error_type", e.type}},
                     clock_.NowMillis());
    }));
    Notify();
    return Ok();
  }
  const ProviderRefund& refund = *provider_refund;
  const int64_t now_ms = clock_.NowMillis();
  AGORA_RETURN_IF_ERROR(db_.Transact("payments.refund", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_ASSIGN_OR_RETURN(bool fresh, events::ClaimInbox(tx, kOrdersConsumer, event.id));
    if (event.seq > 0) AGORA_RETURN_IF_ERROR(events::SavePosition(tx, kOrdersConsumer, event.seq));
    if (!fresh) return Ok();
    AGORA_ASSIGN_OR_RETURN(auto locked, SelectAllocations(tx, "order_id", a.order_id, true));
    if (locked.empty() || locked[0].remaining() < amount) {
      return Error::Internal("escrow of " + a.order_id + " changed during a refund");
    }
    const std::string id = NewId("ref_", clock_);
    AGORA_RETURN_IF_ERROR(tx.Exec("payments.insert_refund",
                                  "INSERT INTO refunds (id, payment_id, order_id, amount, currency, reason, "
                                  "provider_refund_id, request_id, created_at_ms) "
                                  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                                  {id, payment->id, a.order_id, amount, payment->currency,
                                   fields->reason.empty() ? std::string("requested") : fields->reason, refund.id,
                                   event.id, now_ms}));
    AGORA_RETURN_IF_ERROR(tx.Exec("payments.allocation_refunded",
                                  "UPDATE payment_allocations SET refunded = refunded + $2 WHERE order_id = $1",
                                  {a.order_id, amount}));
    AGORA_RETURN_IF_ERROR(tx.Exec("payments.payment_refunded",
                                  "UPDATE payments SET amount_refunded = amount_refunded + $2, updated_at_ms = $3 "
                                  "WHERE id = $1",
                                  {payment->id, amount, now_ms}));
    ledger::LedgerTransaction t{ledger::NewTransactionId(), "refund", id,
                                {{"escrow:" + a.order_id, -amount, payment->currency},
                                 {"refunds", amount, payment->currency}},
                                now_ms};
    AGORA_RETURN_IF_ERROR(ledger::Post(tx, t, "refund:" + event.id));
    return Publish(tx, "refund.created",
                   {{"refund_id", id},
                    {"payment_id", payment->id},
                    {"order_id", a.order_id},
                    {"amount", amount},
                    {"currency", payment->currency},
                    {"reason", fields->reason}},
                   now_ms);
  }));
  Notify();
  return Ok();
}

Status PaymentService::ReleaseOrder(const events::Event& event) {
  auto fields = ParseOrderEvent(event);
  if (!fields.ok()) {
    log::Error("release ignored", {{"event_id", event.id}, {"error", fields.error().message}});
    return Ok();
  }
  const int64_t now_ms = clock_.NowMillis();
  return db_.Transact("payments.release", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_ASSIGN_OR_RETURN(bool fresh, events::ClaimInbox(tx, kOrdersConsumer, event.id));
    if (event.seq > 0) AGORA_RETURN_IF_ERROR(events::SavePosition(tx, kOrdersConsumer, event.seq));
    if (!fresh) return Ok();
    AGORA_ASSIGN_OR_RETURN(auto allocations, SelectAllocations(tx, "order_id", fields->order_id, true));
    if (allocations.empty()) return Ok();
    const AllocationRow& a = allocations[0];
    AGORA_ASSIGN_OR_RETURN(auto payment, SelectPayment(tx, "id", a.payment_id, false));
    if (!payment || payment->status != PaymentStatus::kSucceeded) {
      return Error::Unavailable("payment of " + a.order_id + " not captured yet; release retried later");
    }
    const int64_t rest = a.remaining();
    if (rest <= 0) return Ok();
    // Commission on what the seller keeps, rounded half up.
    const int64_t commission = (rest * a.commission_bps + 5000) / 10000;
    std::vector<ledger::Entry> entries{{"escrow:" + a.order_id, -rest, payment->currency},
                                       {"seller_payable:" + a.seller_id, rest - commission, payment->currency}};
    if (commission > 0) entries.push_back({"platform_commission", commission, payment->currency});
    if (rest - commission == 0) entries.erase(entries.begin() + 1);
    AGORA_RETURN_IF_ERROR(ledger::Post(
        tx, ledger::LedgerTransaction{ledger::NewTransactionId(), "escrow.released", a.order_id, entries, now_ms},
        "release:" + a.order_id));
    AGORA_RETURN_IF_ERROR(tx.Exec("payments.allocation_released",
                                  "UPDATE payment_allocations SET released = released + $2, commission = $3 "
                                  "WHERE order_id = $1",
                                  {a.order_id, rest, commission}));
    return Ok();
  });
}

Result<Payout> PaymentService::PayOut(Payout payout) {
  auto transfer = provider_.Transfer(payout.seller_id, payout.amount, payout.currency, ProviderKey("payout", payout.id));
  const int64_t now_ms = clock_.NowMillis();
  if (!transfer.ok()) {
    if (transfer.error().code == ErrorCode::kUnavailable) return payout;  // stays pending; the next run retries
    payout.status = PayoutStatus::kFailed;
    payout.failure = transfer.error().message;
    AGORA_RETURN_IF_ERROR(db_.Exec("payments.payout_failed",
                                   "UPDATE payouts SET status = 'failed', failure = $2 WHERE id = $1 AND status = 'pending'",
                                   {payout.id, payout.failure}));
    return payout;
  }
  AGORA_RETURN_IF_ERROR(db_.Transact("payments.payout_paid", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_ASSIGN_OR_RETURN(db::Rows r, tx.Exec("payments.payout_mark_paid",
                                               "UPDATE payouts SET status = 'paid', provider_transfer_id = $2, "
                                               "paid_at_ms = $3 WHERE id = $1 AND status = 'pending'",
                                               {payout.id, transfer->id, now_ms}));
    if (r.affected != 1) return Ok();  // already recorded
    AGORA_RETURN_IF_ERROR(ledger::Post(
        tx,
        ledger::LedgerTransaction{ledger::NewTransactionId(), "payout.paid", payout.id,
                                  {{"seller_payable:" + payout.seller_id, -payout.amount, payout.currency},
                                   {"provider_cash", payout.amount, payout.currency}},
                                  now_ms},
        "payout:" + payout.id));
    return Publish(tx, "payout.paid",
                   {{"payout_id", payout.id},
                    {"seller_id", payout.seller_id},
                    {"amount", payout.amount},
                    {"currency", payout.currency},
                    {"provider_transfer_id", transfer->id}},
                   now_ms);
  }));
  Notify();
  payout.status = PayoutStatus::kPaid;
  payout.provider_transfer_id = transfer->id;
  payout.paid_at_ms = now_ms;
  return payout;
}

Result<std::vector<Payout>> PaymentService::RunPayouts() {
  std::lock_guard lock(payouts_mu_);
  std::vector<Payout> out;
  // Interrupted payouts first, with their original key.
  AGORA_ASSIGN_OR_RETURN(db::Rows pending,
                         db_.Exec("payments.pending_payouts",
                                  fmt::format("SELECT {} FROM payouts WHERE status = 'pending' ORDER BY id", kPayoutCols)));
  for (const auto& r : pending) {
    AGORA_ASSIGN_OR_RETURN(Payout p, PayOut(PayoutFromRow(r)));
    out.push_back(std::move(p));
  }
  AGORA_ASSIGN_OR_RETURN(auto balances, ledger::Balances(db_, "seller_payable:"));
  for (const auto& b : balances) {
    const std::string seller = b.account.substr(std::string_view("seller_payable:").size());
    // What is still pending (a provider that did not answer) is not paid twice.
    AGORA_ASSIGN_OR_RETURN(db::Rows held, db_.Exec("payments.pending_payout_sum",
                                                   "SELECT COALESCE(SUM(amount), 0) FROM payouts WHERE seller_id = $1 "
                                                   "AND currency = $2 AND status = 'pending'",
                                                   {seller, b.currency}));
    const int64_t amount = b.balance - (held.empty() ? 0 : held[0].Int(0));
    if (amount <= 0) continue;
    Payout p;
    p.id = NewId("po_", clock_);
    p.seller_id = seller;
    p.amount = amount;
    p.currency = b.currency;
    p.created_at_ms = clock_.NowMillis();
    AGORA_RETURN_IF_ERROR(db_.Exec("payments.insert_payout",
                                   "INSERT INTO payouts (id, seller_id, amount, currency, status, created_at_ms) "
                                   "VALUES ($1, $2, $3, $4, 'pending', $5)",
                                   {p.id, p.seller_id, p.amount, p.currency, p.created_at_ms}));
    AGORA_ASSIGN_OR_RETURN(Payout done, PayOut(std::move(p)));
    out.push_back(std::move(done));
  }
  return out;
}

Result<SellerBalance> PaymentService::Balance(std::string_view seller_id) {
  SellerBalance out;
  const std::string seller(seller_id);
  AGORA_ASSIGN_OR_RETURN(auto payable, ledger::Balances(db_, "seller_payable:" + seller));
  AGORA_ASSIGN_OR_RETURN(db::Rows pending_payouts,
                         db_.Exec("payments.seller_pending_payouts",
                                  "SELECT currency, SUM(amount) FROM payouts WHERE seller_id = $1 AND status = 'pending' "
                                  "GROUP BY currency",
                                  {seller}));
  std::map<std::string, int64_t> available;
  for (const auto& b : payable) {
    if (b.account == "seller_payable:" + seller) available[b.currency] += b.balance;
  }
  for (const auto& r : pending_payouts) available[r.Text(0)] -= r.Int(1);
  for (const auto& [c, a] : available) out.available.push_back({c, a});
  AGORA_ASSIGN_OR_RETURN(db::Rows escrow,
                         db_.Exec("payments.seller_escrow",
                                  "SELECT p.currency, SUM(a.amount - a.refunded - a.released) FROM payment_allocations a "
                                  "JOIN payments p ON p.id = a.payment_id WHERE a.seller_id = $1 "
                                  "AND p.status = 'succeeded' GROUP BY p.currency ORDER BY p.currency",
                                  {seller}));
  for (const auto& r : escrow) out.pending.push_back({r.Text(0), r.Int(1)});
  AGORA_ASSIGN_OR_RETURN(db::Rows paid, db_.Exec("payments.seller_paid_out",
                                                 "SELECT currency, SUM(amount) FROM payouts WHERE seller_id = $1 "
                                                 "AND status = 'paid' GROUP BY currency ORDER BY currency",
                                                 {seller}));
  for (const auto& r : paid) out.paid_out.push_back({r.Text(0), r.Int(1)});
  return out;
}

Result<std::vector<Payout>> PaymentService::Payouts(std::string_view seller_id, int limit) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db_.Exec("payments.seller_payouts",
                                  fmt::format("SELECT {} FROM payouts WHERE seller_id = $1 "
                                              "ORDER BY created_at_ms DESC, id DESC LIMIT $2",
                                              kPayoutCols),
                                  {std::string(seller_id), int64_t{limit}}));
  std::vector<Payout> out;
  for (const auto& r : rows) out.push_back(PayoutFromRow(r));
  return out;
}

Result<std::vector<Refund>> PaymentService::RefundsForOrder(std::string_view order_id) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         db_.Exec("payments.order_refunds",
                                  "SELECT id, payment_id, order_id, amount, currency, reason, provider_refund_id, "
                                  "created_at_ms FROM refunds WHERE order_id = $1 ORDER BY created_at_ms, id",
                                  {std::string(order_id)}));
  std::vector<Refund> out;
  for (const auto& r : rows) {
    out.push_back({r.Text(0), r.Text(1), r.Text(2), r.Int(3), r.Text(4), r.Text(5), r.Text(6), r.Int(7)});
  }
  return out;
}

Result<PaymentService::ReconcileReport> PaymentService::ReconcileWithProvider() {
  ReconcileReport report;
  std::string after;
  for (;;) {
    AGORA_ASSIGN_OR_RETURN(
        db::Rows rows,
        db_.Exec("payments.reconcile_page",
                 fmt::format("SELECT {} FROM payments WHERE id > $1 AND provider_intent_id IS NOT NULL "
                             "AND provider_intent_id <> '' ORDER BY id LIMIT 200",
                             kPaymentCols),
                 {after}));
    if (rows.empty()) return report;
    for (const auto& r : rows) {
      const Payment p = PaymentFromRow(r);
      after = p.id;
      ++report.payments;
      auto problem = [&](std::string what) {
        if (report.problems.size() < ledger::kMaxProblems) report.problems.push_back(p.id + ": " + what);
      };
      auto intent = provider_.GetIntent(p.provider_intent_id);
      if (!intent.ok()) {
        problem("the provider cannot show intent " + p.provider_intent_id + " (" + intent.error().message + ")");
        continue;
      }
      AGORA_ASSIGN_OR_RETURN(
          db::Rows captured,
          db_.Exec("payments.reconcile_captured",
                   "SELECT COALESCE(-SUM(e.amount), 0) FROM ledger_entries e JOIN ledger_transactions t "
                   "ON t.id = e.transaction_id WHERE t.kind = 'payment.captured' AND t.reference = $1 "
                   "AND e.account = 'buyer_payments'",
                   {p.id}));
      AGORA_ASSIGN_OR_RETURN(
          db::Rows refunded,
          db_.Exec("payments.reconcile_refunded",
                   "SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e JOIN ledger_transactions t "
                   "ON t.id = e.transaction_id JOIN refunds r ON r.id = t.reference WHERE t.kind = 'refund' "
                   "AND r.payment_id = $1 AND e.account = 'refunds'",
                   {p.id}));
      const int64_t ledger_captured = captured[0].Int(0);
      const int64_t ledger_refunded = refunded[0].Int(0);
      const bool provider_captured = intent->status == IntentStatus::kSucceeded;
      if (provider_captured != (p.status == PaymentStatus::kSucceeded)) {
        problem(fmt::format("the provider says {}, the payment is {}", IntentStatusName(intent->status),
                            PaymentStatusName(p.status)));
      }
      if (intent->amount_received != ledger_captured) {
        problem(fmt::format("captured {} at the provider, {} in the ledger", intent->amount_received,
                            ledger_captured));
      }
      if (intent->amount_refunded != ledger_refunded || p.amount_refunded != ledger_refunded) {
        problem(fmt::format("refunded {} at the provider, {} on the payment, {} in the ledger",
                            intent->amount_refunded, p.amount_refunded, ledger_refunded));
      }
    }
  }
}

}  // namespace agora::payments
