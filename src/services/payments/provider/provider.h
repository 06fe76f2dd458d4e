// The payment provider interface: what the payments service asks of a
// gateway (Stripe's model: payment intents, refunds, transfers to sellers,
// signed webhooks). Implementations: the built-in sandbox gateway
// (sandbox/gateway.h) and Stripe (provider/stripe.h).
//
// Every call that creates or moves money takes the caller's idempotency key
// and passes it to the gateway, so repeating a call whose answer was lost
// (a timeout) returns the first result instead of charging twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/result.h"

namespace agora::payments {

// Stripe's PaymentIntent statuses.
enum class IntentStatus {
  kRequiresPaymentMethod,  // the last attempt failed (decline): see failure_code
  kRequiresAction,         // an extra authentication step is pending
  kProcessing,
  kRequiresCapture,  // authorized; capture_method manual
  kSucceeded,        // captured
  kCanceled,
};
const char* IntentStatusName(IntentStatus s);  // "requires_capture", ...
std::optional<IntentStatus> ParseIntentStatus(std::string_view s);

struct ProviderIntent {
  std::string id;  // "pi_..."
  IntentStatus status = IntentStatus::kProcessing;
  int64_t amount = 0;             // minor units
  int64_t amount_capturable = 0;  // authorized and not captured
  int64_t amount_received = 0;    // captured
  int64_t amount_refunded = 0;
  std::string currency;  // ISO 4217 upper case ("EUR")
  bool manual_capture = false;
  // metadata.payment_id: the payments service's id for this charge.
  std::string payment_id;
  // Set when status is kRequiresPaymentMethod: "card_declined",
  // "insufficient_funds", ...
  std::string failure_code;
  std::string failure_message;
  // Set when status is kRequiresAction: where the buyer completes it.
  std::string next_action_url;
  int64_t created = 0;  // Unix seconds
};

struct CreateIntentRequest {
  int64_t amount = 0;
  std::string currency;       // ISO 4217 upper case
  std::string payment_token;  // the provider's token ("tok_...") from its tokenization
  bool manual_capture = false;
  std::string payment_id;  // stored as metadata.payment_id
  std::string idempotency_key;
};

struct ProviderRefund {
  std::string id;  // "re_..."
  std::string intent_id;
  int64_t amount = 0;
  std::string currency;
  std::string status;  // "succeeded", "pending", "failed"
};

struct ProviderTransfer {
  std::string id;  // "tr_..."
  std::string destination;
  int64_t amount = 0;
  std::string currency;
};

// A verified webhook event (Stripe's event object).
struct WebhookEvent {
  std::string id;    // "evt_..."; the payments service applies each id once
  std::string type;  // "payment_intent.succeeded", "payment_intent.payment_failed",
                     // "payment_intent.amount_capturable_updated",
                     // "payment_intent.canceled", "charge.refunded", ...
  int64_t created = 0;  // Unix seconds
  // data.object when it is a payment intent (every type above; for
  // charge.refunded, the intent the charge belongs to with amount_refunded).
  std::optional<ProviderIntent> intent;
};

class PaymentProvider {
 public:
  virtual ~PaymentProvider() = default;

  // "sandbox", "stripe": the {provider} of /v1/payments/webhooks/{provider}.
  virtual std::string_view name() const = 0;

  // Creates and confirms an intent with the token. A decline is not an
  // error: the intent comes back kRequiresPaymentMethod with failure_code.
  // The same idempotency key returns the same intent.
  // Errors: kInvalidArgument type "payment-token-invalid" (unknown token),
  // kFailedPrecondition type "payment-token-used" (a token charges once),
  // kUnavailable type "provider-unavailable" when the gateway did not answer:
  // the charge may or may not have happened; repeat with the same key, or
  // wait for the webhook.
  virtual Result<ProviderIntent> CreateIntent(const CreateIntentRequest& request) = 0;
  virtual Result<ProviderIntent> GetIntent(std::string_view intent_id) = 0;
  // Captures `amount` (<= amount_capturable) of a kRequiresCapture intent.
  virtual Result<ProviderIntent> Capture(std::string_view intent_id, int64_t amount,
                                         std::string_view idempotency_key) = 0;
  // Cancels an intent that is not captured (releases an authorization).
  virtual Result<ProviderIntent> Cancel(std::string_view intent_id, std::string_view idempotency_key) = 0;
  // Refunds `amount` of a captured intent. kFailedPrecondition type
  // "refund-exceeds-captured" beyond amount_received - amount_refunded.
  virtual Result<ProviderRefund> Refund(std::string_view intent_id, int64_t amount,
                                        std::string_view idempotency_key) = 0;
  // Sends `amount` to a seller's connected account (`destination`).
  virtual Result<ProviderTransfer> Transfer(std::string_view destination, int64_t amount,
                                            std::string_view currency, std::string_view idempotency_key) = 0;

  // Verifies the signature header ("Stripe-Signature: t=...,v1=...") over
  // the raw body at `now`, then parses the event. kUnauthenticated type
  // "webhook-signature-invalid" for a missing/forged signature,
  // "webhook-timestamp-stale" outside the tolerance window; kInvalidArgument
  // for a body that is not an event.
  virtual Result<WebhookEvent> ParseWebhook(std::string_view signature_header, std::string_view body,
                                            TimePoint now) = 0;
};

}  // namespace agora::payments
