// Stripe's JSON shapes, shared by the sandbox gateway (which writes them, so
// its webhooks look like Stripe's) and the Stripe provider (which reads
// them): the PaymentIntent, Refund and Transfer objects and the webhook
// Event envelope. Pure functions, no I/O; thread-safe.
//
// Amounts are integers in minor units; currencies are lower case in JSON
// and upper case (ISO 4217) in the Provider* structs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "core/result.h"
#include "services/payments/provider/provider.h"

namespace agora::payments {

// The API version the sandbox stamps on its events (Stripe's "api_version").
inline constexpr std::string_view kStripeApiVersion = "2024-06-20";

// A Stripe PaymentIntent object: id, object "payment_intent", amount,
// amount_capturable, amount_received, currency, status, capture_method
// ("automatic" | "manual"), metadata {payment_id}, last_payment_error
// {code, message} or null, next_action {type "redirect_to_url",
// redirect_to_url {url}} or null, created, livemode false.
// Non-standard: "amount_refunded" (Stripe keeps it on the intent's charge;
// the sandbox carries it on the intent so one object tells the whole state).
boost::json::object IntentToJson(const ProviderIntent& intent);

// The reverse. Fields Stripe always sends (id, object, amount, currency,
// status) are required; amount_capturable, amount_received, amount_refunded
// and created read as 0 when absent. last_payment_error.decline_code, when
// present, is the failure_code (Stripe reports "insufficient_funds" as code
// "card_declined" with that decline_code). next_action_url is set only for
// a redirect_to_url action. kInvalidArgument naming the first bad field.
[[nodiscard]] Result<ProviderIntent> IntentFromJson(const boost::json::object& o);

// A Stripe Refund object: id, object "refund", amount, currency,
// payment_intent, status, created.
boost::json::object RefundToJson(const ProviderRefund& refund, int64_t created);
[[nodiscard]] Result<ProviderRefund> RefundFromJson(const boost::json::object& o);

// A Stripe Transfer object: id, object "transfer", amount, currency,
// destination, created.
boost::json::object TransferToJson(const ProviderTransfer& transfer, int64_t created);
[[nodiscard]] Result<ProviderTransfer> TransferFromJson(const boost::json::object& o);

// A Stripe Event as JSON text: {id, object "event", type, created,
// api_version, livemode false, data {object: data_object}}.
std::string EventToJson(std::string_view id, std::string_view type, int64_t created,
                        boost::json::object data_object);

// Parses a webhook body. kInvalidArgument when it is not one JSON object of
// that shape (id, object "event", type, created, data.object), or when
// data.object is a payment intent that IntentFromJson refuses. `intent` is
// set when data.object.object is "payment_intent".
[[nodiscard]] Result<WebhookEvent> EventFromJson(std::string_view body);

}  // namespace agora::payments
