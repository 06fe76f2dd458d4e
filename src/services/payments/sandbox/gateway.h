// The built-in sandbox gateway: a payment provider that behaves like a real
// one, in process. It charges the tokens of POST /sandbox/v1/tokens by their
// card's behaviour (sandbox/cards.h), keeps its own intents, refunds and
// transfers (tables sandbox_*), and sends Stripe-shaped webhook events over
// real HTTP to the payments service's webhook URL, signed like Stripe's
// (webhook_signature.h), retried until answered 2xx.
//
// Behaviours on CreateIntent:
//   succeed            -> succeeded (or requires_capture with manual capture);
//                         events payment_intent.created, then
//                         payment_intent.succeeded (or .amount_capturable_updated)
//   decline            -> requires_payment_method, failure_code card_declined;
//                         payment_intent.payment_failed
//   insufficient funds -> the same with insufficient_funds
//   requires action    -> requires_action with next_action_url
//                         (POST /sandbox/v1/payment_intents/{id}/authenticate
//                         {"outcome": "succeed"|"fail"} completes it)
//   network error      -> the charge happens and its webhooks are sent, but the
//                         call answers kUnavailable "provider-unavailable" (the
//                         response was lost), as a gateway timeout does
//
// Webhook delivery can be told (DeliverySettings, also over
// POST /sandbox/v1/webhook_settings) to deliver late, twice, or out of order.
//
// Every state change of an intent adds its events in the same transaction
// (so an event exists if and only if the change committed); each event's
// data.object is the intent as that call left it. Simplification:
// charge.refunded carries the intent (with amount_refunded), not a charge.
//
// Idempotency keys are gateway-wide, as Stripe's are account-wide: the first
// call with a key saves its answer in that same transaction, and a repeat
// gets the saved answer back (even if the intent moved since); the key with
// another operation or other parameters is kConflict
// "idempotency-key-reused". A call that fails saves nothing, so a retry runs
// again. An empty key is never replayed.
//
// Errors beyond provider.h's: kInvalidArgument "validation" for a
// non-positive amount, a currency that is not upper-case ISO 4217 or an empty
// destination; kNotFound "intent-not-found"; kFailedPrecondition
// "payment-intent-unexpected-state" for a capture, cancel or authenticate in
// the wrong state, "capture-exceeds-authorized" above amount_capturable.
//
// Thread-safe, except that Start and Stop belong to the owner.
#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "core/clock.h"
#include "core/db/db.h"
#include "core/http/app.h"
#include "services/payments/provider/provider.h"
#include "services/payments/store/sql_store.h"

namespace agora::payments::sandbox {

// The sandbox_intents, sandbox_refunds, sandbox_transfers,
// sandbox_idempotency_keys and sandbox_webhook_events tables; applied with
// db.Migrate("payments.sandbox", sandbox::GatewayMigrations()).
std::span<const db::Migration> GatewayMigrations();

struct DeliverySettings {
  std::chrono::milliseconds delay{0};  // hold each event this long first ("late")
  bool duplicate = false;              // deliver every event twice
  bool out_of_order = false;           // deliver each batch of due events newest first
};

struct GatewayOptions {
  // Where webhook events go: "<public url>/v1/payments/webhooks/sandbox".
  // next_action_url points under the same public URL. Empty: events are
  // kept but not sent.
  std::string webhook_url;
  std::string webhook_secret;  // "whsec_..."
  DeliverySettings delivery;
  // A delivery that fails is tried again after 1 s, doubling, at most this.
  std::chrono::milliseconds max_retry_delay{30000};
  std::chrono::milliseconds poll_interval{100};
};

class Gateway final : public PaymentProvider {
 public:
  // `db` has GatewayMigrations() and PaymentsMigrations() applied; `tokens`
  // reads the tokens of /sandbox/v1/tokens.
  Gateway(db::Database& db, SandboxTokenStore& tokens, const Clock& clock, GatewayOptions options);
  ~Gateway() override;  // Stop()s

  std::string_view name() const override { return "sandbox"; }
  Result<ProviderIntent> CreateIntent(const CreateIntentRequest& request) override;
  Result<ProviderIntent> GetIntent(std::string_view intent_id) override;
  Result<ProviderIntent> Capture(std::string_view intent_id, int64_t amount,
                                 std::string_view idempotency_key) override;
  Result<ProviderIntent> Cancel(std::string_view intent_id, std::string_view idempotency_key) override;
  Result<ProviderRefund> Refund(std::string_view intent_id, int64_t amount,
                                std::string_view idempotency_key) override;
  Result<ProviderTransfer> Transfer(std::string_view destination, int64_t amount, std::string_view currency,
                                    std::string_view idempotency_key) override;
  Result<WebhookEvent> ParseWebhook(std::string_view signature_header, std::string_view body,
                                    TimePoint now) override;

  // Completes a requires_action intent: "succeed" or "fail" (the buyer
  // failed authentication: requires_payment_method,
  // authentication_required). kFailedPrecondition unless requires_action.
  Result<ProviderIntent> Authenticate(std::string_view intent_id, bool succeed);

  void SetDelivery(const DeliverySettings& settings);
  DeliverySettings delivery() const;

  // Starts / stops the webhook delivery thread (a second Start is a no-op;
  // Stop waits for a delivery in flight, at most its 5 s timeout). The
  // thread sends what is due every poll_interval, and at once when events
  // are added. Undelivered events stay in sandbox_webhook_events and are
  // sent after a restart.
  void Start();
  void Stop();
  // One delivery pass now, on the caller's thread (tests; passes take
  // turns with the thread's); returns how many events were delivered (a
  // duplicate delivery counts once).
  Result<int> DeliverDueForTest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// POST /sandbox/v1/payment_intents/{id}/authenticate, GET and POST
// /sandbox/v1/webhook_settings. (POST /sandbox/v1/tokens is AddSandboxRoutes.)
void AddGatewayRoutes(http::App& app, Gateway& gateway);

}  // namespace agora::payments::sandbox
