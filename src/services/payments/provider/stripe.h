// The Stripe payment provider: PaymentProvider on Stripe's REST API
// (https://api.stripe.com/v1), over the blocking libcurl client
// (core/http/client.h). Requests are form-encoded with Stripe's bracket
// notation, carry "Authorization: Bearer <secret key>", the pinned
// "Stripe-Version" (kStripeApiVersion) and the caller's "Idempotency-Key";
// answers are read with provider/stripe_json.h.
//
// Calls:
//   CreateIntent  POST /v1/payment_intents  amount, currency (lower case),
//                 confirm=true, capture_method automatic|manual,
//                 payment_method_types[0]=card, metadata[payment_id], and the
//                 token as payment_method_data[type]=card +
//                 payment_method_data[card][token]=tok_... (a "pm_..." id is
//                 sent as payment_method instead). No return_url is sent, so a
//                 card that needs 3-D Secure comes back requires_action with
//                 next_action use_stripe_sdk and no next_action_url (see
//                 README: Providers).
//   GetIntent     GET  /v1/payment_intents/{id}?expand[]=latest_charge
//                 (amount_refunded is read from the latest charge)
//   Capture       POST /v1/payment_intents/{id}/capture  amount_to_capture
//   Cancel        POST /v1/payment_intents/{id}/cancel
//   Refund        POST /v1/refunds  payment_intent, amount
//   Transfer      POST /v1/transfers  amount, currency, destination (acct_...)
//
// Outcomes (Stripe's answer -> Result):
//   2xx                               the object; kInternal
//                                     "provider-response-invalid" when it is
//                                     not one (nothing is known about the
//                                     charge: reconcile with GetIntent or
//                                     the webhook)
//   402 card_error with payment_intent the intent (requires_payment_method,
//                                     failure_code = decline_code or code):
//                                     a decline is not an error
//   400/404 invalid_request_error     kInvalidArgument "payment-token-invalid"
//                                     when the param is the token/payment
//                                     method; kFailedPrecondition
//                                     "payment-token-used" (token_already_used),
//                                     "refund-exceeds-captured" (refund:
//                                     amount_too_large, charge_already_refunded,
//                                     or param amount),
//                                     "capture-exceeds-authorized" (param
//                                     amount_to_capture),
//                                     "payment-intent-unexpected-state";
//                                     kNotFound "intent-not-found"
//                                     (resource_missing on an intent);
//                                     otherwise kInvalidArgument
//                                     "provider-request-invalid"
//   idempotency_error (400)           kConflict "idempotency-key-reused" (the
//                                     key was used with other parameters)
//   409                               kUnavailable "provider-unavailable" when
//                                     the key's first request is still running
//                                     (idempotency_key_in_use), else kConflict
//                                     "idempotency-key-reused"
//   401/403                           kInternal "provider-misconfigured" (bad
//                                     secret key or permissions), logged
//   429, 424, 5xx, timeout, no        kUnavailable "provider-unavailable": the
//   connection                        call may or may not have happened; repeat
//                                     with the same key, or wait for the webhook.
//                                     Stripe saves a 5xx under its key and
//                                     replays it for 24 h (429 is not saved).
// Arguments are checked before any request: kInvalidArgument "validation"
// for a non-positive amount, a currency that is not upper-case ISO 4217, an
// empty destination or an idempotency key over 255 characters;
// "payment-token-invalid" for an empty token; kNotFound "intent-not-found"
// for an intent id that is not [A-Za-z0-9_]+.
//
// Webhooks: ParseWebhook verifies Stripe-Signature with webhook_secret
// (VerifyWebhook, 300 s tolerance) and parses with EventFromJson. For an
// event whose data.object is a Charge (charge.refunded, charge.succeeded,
// ...) `intent` is the charge's payment intent as far as the charge tells:
// id, amount, amount_received (amount_captured), amount_refunded, currency,
// metadata.payment_id when the charge carries it, and status succeeded
// (captured), requires_capture (not captured), processing (pending) or
// requires_payment_method with the failure code (failed). A charge without
// a payment_intent, any other object, and a payment intent in a status
// ProviderIntent has no name for ("requires_confirmation") leave `intent`
// empty (acknowledged, nothing to apply).
//
// The secret key goes only into the Authorization header: it is never
// logged nor put into an error message. Failed calls are logged at warn
// with the operation, HTTP status, Stripe's error type/code and Request-Id,
// never a body. Stateless after construction: thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"
#include "services/payments/provider/provider.h"

namespace agora::payments {

struct StripeOptions {
  // Where the API is: Stripe's, or a stand-in in tests. No trailing slash
  // needed.
  std::string base_url = "https://api.stripe.com";
  // "sk_live_..." / "sk_test_..." (or a restricted "rk_..." key). Required.
  std::string secret_key;
  // The webhook endpoint's signing secret, "whsec_...". Required; empty
  // would make every webhook fail verification.
  std::string webhook_secret;
  // Each API call as a whole, connecting included; past it the call is
  // kUnavailable "provider-unavailable".
  std::chrono::milliseconds timeout{10000};
};

class StripeProvider final : public PaymentProvider {
 public:
  // Checks `options` (secret_key and webhook_secret set, base_url http(s),
  // timeout positive): kInvalidArgument naming the option otherwise, for
  // start-up to fail fast with one line. The message never holds a key.
  [[nodiscard]] static Result<std::unique_ptr<StripeProvider>> Create(StripeOptions options);

  // Takes `options` as they are (Create checks them first).
  explicit StripeProvider(StripeOptions options);

  std::string_view name() const override { return "stripe"; }
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

 private:
  const StripeOptions options_;
};

}  // namespace agora::payments
