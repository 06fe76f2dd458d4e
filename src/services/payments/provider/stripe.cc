#include "services/payments/provider/stripe.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "core/http/client.h"
#include "core/json.h"
#include "core/log.h"
#include "services/payments/provider/stripe_json.h"
#include "services/payments/provider/webhook_signature.h"

namespace agora::payments {
namespace {

// Stripe's limit on Idempotency-Key.
constexpr size_t kMaxIdempotencyKey = 255;

enum class Op { kCreateIntent, kGetIntent, kCapture, kCancel, kRefund, kTransfer };

const char* OpName(Op op) {
  switch (op) {
    case Op::kCreateIntent: return "create_intent";
    case Op::kGetIntent: return "get_intent";
    case Op::kCapture: return "capture";
    case Op::kCancel: return "cancel";
    case Op::kRefund: return "refund";
    case Op::kTransfer: return "transfer";
  }
  return "call";
}

bool IsIntentOp(Op op) { return op == Op::kGetIntent || op == Op::kCapture || op == Op::kCancel || op == Op::kRefund; }

// application/x-www-form-urlencoded: unreserved characters as they are,
// everything else %XX. Keys keep Stripe's brackets readable, as Stripe's own
// libraries send them ("metadata[payment_id]").
void AppendEncoded(std::string& out, std::string_view s, bool keep_brackets) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_brackets && (c == '[' || c == ']'))) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
}

using Form = std::vector<std::pair<std::string, std::string>>;

std::string EncodeForm(const Form& form) {
  std::string out;
  for (const auto& [key, value] : form) {
    if (!out.empty()) out.push_back('&');
    AppendEncoded(out, key, true);
    out.push_back('=');
    AppendEncoded(out, value, false);
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool IsCurrency(std::string_view c) {
  return c.size() == 3 && std::all_of(c.begin(), c.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
}

// Stripe object ids ("pi_3Mtw...", "acct_1032..."): safe to put in a path.
bool IsObjectId(std::string_view id) {
  return !id.empty() && id.size() <= 255 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Error IntentNotFound() { return Error::NotFound("No such payment intent").WithType("intent-not-found"); }

Error Unavailable(std::string msg) { return Error::Unavailable(std::move(msg)).WithType("provider-unavailable"); }

Error ResponseInvalid(Op op, std::string_view why) {
  return Error::Internal(fmt::format("Stripe's answer to {} is not understood: {}", OpName(op), why))
      .WithType("provider-response-invalid");
}

// The "error" object of a Stripe error answer; fields absent read as "".
struct StripeError {
  std::string type;
  std::string code;
  std::string decline_code;
  std::string message;
  std::string param;
  const boost::json::object* payment_intent = nullptr;  // points into the parsed body
};

std::string StringField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

StripeError ReadError(const boost::json::object* body) {
  StripeError e;
  if (body == nullptr) return e;
  const boost::json::value* err = body->if_contains("error");
  if (err == nullptr || !err->is_object()) return e;
  const boost::json::object& o = err->as_object();
  e.type = StringField(o, "type");
  e.code = StringField(o, "code");
  e.decline_code = StringField(o, "decline_code");
  e.message = StringField(o, "message");
  e.param = StringField(o, "param");
  if (const boost::json::value* pi = o.if_contains("payment_intent"); pi != nullptr && pi->is_object()) {
    e.payment_intent = &pi->as_object();
  }
  return e;
}

// The parameter that carries the buyer's token or payment method.
bool IsTokenParam(std::string_view param) {
  return param.starts_with("payment_method") || param.starts_with("source") ||
         param.find("token") != std::string_view::npos;
}

// Stripe's text for a client-facing message, or `fallback`.
std::string MessageOr(const StripeError& e, std::string fallback) {
  return e.message.empty() ? std::move(fallback) : "Stripe: " + e.message;
}

// An error answer (not a 2xx, and not a decline carrying its intent) as a
// Result error. See the table in stripe.h.
Error MapError(Op op, int status, const StripeError& e) {
  if (status == 401 || status == 403) {
    // Stripe's message for a bad key names part of the key: not repeated.
    return Error::Internal(fmt::format("Stripe refused the API key (HTTP {})", status))
        .WithType("provider-misconfigured");
  }
  if (status == 429 || status == 424 || status >= 500) {
    return Unavailable(fmt::format("Stripe did not complete the {} (HTTP {}); the outcome is not known",
                                   OpName(op), status));
  }
  if (status == 409) {
    if (e.code == "idempotency_key_in_use") {
      return Unavailable("Stripe is still running the first request with this idempotency key");
    }
    return Error::Conflict(MessageOr(e, "The request conflicts with another one with this idempotency key"))
        .WithType("idempotency-key-reused");
  }
  if (e.type == "idempotency_error") {
    return Error::Conflict(MessageOr(e, "This idempotency key was used with another request"))
        .WithType("idempotency-key-reused");
  }
  if (e.code == "token_already_used") {
    return Error::FailedPrecondition(MessageOr(e, "This payment token was already used"))
        .WithType("payment-token-used");
  }
  if (op == Op::kCreateIntent && IsTokenParam(e.param)) {
    return Error::InvalidArgument(MessageOr(e, "Stripe does not accept this payment token"))
        .WithType("payment-token-invalid");
  }
  if (op == Op::kRefund && (e.code == "amount_too_large" || e.code == "charge_already_refunded" ||
                            (e.param == "amount" && e.code != "parameter_invalid_integer"))) {
    return Error::FailedPrecondition(MessageOr(e, "The refund exceeds what is captured and not yet refunded"))
        .WithType("refund-exceeds-captured");
  }
  if (op == Op::kCapture && (e.param == "amount_to_capture" || e.code == "amount_too_large")) {
    return Error::FailedPrecondition(MessageOr(e, "Cannot capture more than is authorized"))
        .WithType("capture-exceeds-authorized");
  }
  if (e.code == "payment_intent_unexpected_state") {
    return Error::FailedPrecondition(MessageOr(e, "The payment intent is not in a state that allows this"))
        .WithType("payment-intent-unexpected-state");
  }
  if (IsIntentOp(op) && (status == 404 || e.code == "resource_missing") &&
      (e.param.empty() || e.param == "intent" || e.param == "payment_intent")) {
    return IntentNotFound();
  }
  if (status == 402) {
    return Error::FailedPrecondition(MessageOr(e, "Stripe refused the request")).WithType("provider-request-failed");
  }
  return Error::InvalidArgument(MessageOr(e, fmt::format("Stripe refused the {} (HTTP {})", OpName(op), status)))
      .WithType("provider-request-invalid");
}

struct Call {
  Op op;
  std::string method;  // "GET" or "POST"
  std::string path;    // "/v1/...", query included
  Form form;
  std::string_view idempotency_key;
};

// A Stripe answer that is not a transport failure.
struct Answer {
  int status = 0;
  std::optional<boost::json::object> body;  // nullopt when not a JSON object
  std::string request_id;                   // Stripe's Request-Id header
};

void LogFailure(Op op, const Answer& a, const StripeError& e, const Error& mapped) {
  boost::json::object fields{{"operation", OpName(op)},
                             {"http_status", a.status},
                             {"stripe_request_id", a.request_id},
                             {"stripe_error_type", e.type},
                             {"stripe_error_code", e.code},
                             {"error_type", mapped.type}};
  if (mapped.code == ErrorCode::kInternal) {
    log::Error("stripe call failed", std::move(fields));
  } else {
    log::Warn("stripe call failed", std::move(fields));
  }
}

Result<ProviderIntent> ParseIntent(Op op, const boost::json::object& o) {
  auto in = IntentFromJson(o);
  if (!in.ok()) return ResponseInvalid(op, in.error().message);
  // Stripe keeps refunds on the charge; GetIntent expands it.
  if (const boost::json::value* charge = o.if_contains("latest_charge"); charge != nullptr && charge->is_object()) {
    if (const boost::json::value* r = charge->as_object().if_contains("amount_refunded");
        r != nullptr && r->is_int64() && r->as_int64() >= 0) {
      in->amount_refunded = r->as_int64();
    }
  }
  return in;
}

// A webhook's Charge as what it tells of its payment intent; nullopt when
// it belongs to none.
Result<std::optional<ProviderIntent>> IntentOfCharge(const boost::json::object& charge) {
  const std::string intent_id = StringField(charge, "payment_intent");
  if (intent_id.empty()) return std::optional<ProviderIntent>();
  auto bad = [](std::string field, std::string message) {
    std::string msg = "Not a Stripe charge: field 'data.object." + field + "' " + message;
    return Error::InvalidArgument(std::move(msg), {FieldError{"data.object." + field, std::move(message)}});
  };
  auto amount = [&](std::string_view key, bool required) -> Result<int64_t> {
    const boost::json::value* v = charge.if_contains(key);
    if (v == nullptr || v->is_null()) {
      if (required) return bad(std::string(key), "is required");
      return int64_t{0};
    }
    if (v->is_int64() && v->as_int64() >= 0) return v->as_int64();
    return bad(std::string(key), "must be a non-negative integer");
  };
  ProviderIntent in;
  in.id = intent_id;
  AGORA_ASSIGN_OR_RETURN(in.amount, amount("amount", true));
  AGORA_ASSIGN_OR_RETURN(in.amount_received, amount("amount_captured", false));
  AGORA_ASSIGN_OR_RETURN(in.amount_refunded, amount("amount_refunded", false));
  AGORA_ASSIGN_OR_RETURN(in.created, amount("created", false));
  const std::string currency = StringField(charge, "currency");
  if (currency.size() != 3) return bad("currency", "must be a three-letter ISO 4217 code");
  in.currency = currency;
  std::transform(in.currency.begin(), in.currency.end(), in.currency.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  if (const boost::json::value* m = charge.if_contains("metadata"); m != nullptr && m->is_object()) {
    in.payment_id = StringField(m->as_object(), "payment_id");
  }
  const boost::json::value* captured = charge.if_contains("captured");
  const bool is_captured = captured != nullptr && captured->is_bool() && captured->as_bool();
  const std::string status = StringField(charge, "status");
  if (status == "succeeded") {
    if (is_captured) {
      in.status = IntentStatus::kSucceeded;
      if (in.amount_received == 0) in.amount_received = in.amount;  // API versions without amount_captured
    } else {
      in.status = IntentStatus::kRequiresCapture;
      in.manual_capture = true;
      in.amount_capturable = in.amount;
      in.amount_received = 0;
    }
  } else if (status == "pending") {
    in.status = IntentStatus::kProcessing;
  } else if (status == "failed") {
    in.status = IntentStatus::kRequiresPaymentMethod;
    in.failure_code = StringField(charge, "failure_code");
    in.failure_message = StringField(charge, "failure_message");
  } else {
    return bad("status", "must be succeeded, pending or failed");
  }
  return std::optional<ProviderIntent>(std::move(in));
}

}  // namespace

Result<std::unique_ptr<StripeProvider>> StripeProvider::Create(StripeOptions options) {
  std::vector<FieldError> bad;
  if (options.secret_key.empty()) bad.push_back({"secret_key", "is required"});
  if (options.webhook_secret.empty()) bad.push_back({"webhook_secret", "is required"});
  if (!options.base_url.starts_with("https://") && !options.base_url.starts_with("http://")) {
    bad.push_back({"base_url", "must be an http(s) URL"});
  }
  if (options.timeout.count() <= 0) bad.push_back({"timeout", "must be positive"});
  if (!bad.empty()) {
    std::string msg = "Stripe provider options: " + bad[0].field + " " + bad[0].message;
    return Error::InvalidArgument(std::move(msg), std::move(bad));
  }
  return std::make_unique<StripeProvider>(std::move(options));
}

StripeProvider::StripeProvider(StripeOptions options)
    : options_([&] {
        while (options.base_url.ends_with('/')) options.base_url.pop_back();
        return std::move(options);
      }()) {}

namespace {

// Sends `call`; a transport failure (timeout, refused, reset) is
// kUnavailable "provider-unavailable". Any HTTP status is an Answer.
Result<Answer> Send(const StripeOptions& options, const Call& call) {
  if (call.idempotency_key.size() > kMaxIdempotencyKey) {
    return Error::Validation({{"idempotency_key", "must be at most 255 characters"}});
  }
  http::ClientRequest req;
  req.method = call.method;
  req.url = options.base_url + call.path;
  req.timeout = options.timeout;
  req.headers = {{"Authorization", "Bearer " + options.secret_key},
                 {"Stripe-Version", std::string(kStripeApiVersion)}};
  if (!call.idempotency_key.empty()) req.headers.emplace_back("Idempotency-Key", std::string(call.idempotency_key));
  if (call.method == "POST") {
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.body = EncodeForm(call.form);
  }
  auto res = http::Send(req);
  if (!res.ok()) {
    // The message names the host, never a header or the body.
    Error e = std::move(res).error();
    log::Warn("stripe call failed", {{"operation", OpName(call.op)}, {"error", e.message}});
    if (e.code == ErrorCode::kUnavailable) {
      return Unavailable(fmt::format("Stripe did not answer the {}: {}; the outcome is not known", OpName(call.op),
                                     e.message));
    }
    return Error::Internal("Cannot call Stripe: " + e.message).WithType("provider-misconfigured");
  }
  Answer a;
  a.status = res->status;
  a.request_id = res->Header("Request-Id");
  if (auto o = json::ParseObject(res->body); o.ok()) a.body = std::move(*o);
  return a;
}

// Sends `call` and reads a 2xx answer with `parse`; other answers become
// errors (MapError). With `decline_is_value`, a 402 carrying a payment
// intent (a decline) is parsed as the answer.
template <class T, class Parse>
Result<T> Exchange(const StripeOptions& options, const Call& call, Parse&& parse, bool decline_is_value = false) {
  AGORA_ASSIGN_OR_RETURN(Answer a, Send(options, call));
  if (a.status >= 200 && a.status < 300) {
    Result<T> value = a.body ? parse(*a.body) : Result<T>(ResponseInvalid(call.op, "not a JSON object"));
    if (!value.ok()) {
      // Whatever Stripe did is not known here: someone has to look.
      log::Error("stripe answer not understood", {{"operation", OpName(call.op)},
                                                  {"http_status", a.status},
                                                  {"stripe_request_id", a.request_id},
                                                  {"error", value.error().message}});
    }
    return value;
  }
  const StripeError e = ReadError(a.body ? &*a.body : nullptr);
  if (decline_is_value && a.status == 402 && e.payment_intent != nullptr) {
    // A decline: the intent as it now stands, last_payment_error included.
    return parse(*e.payment_intent);
  }
  Error mapped = MapError(call.op, a.status, e);
  if (mapped.code == ErrorCode::kUnavailable || mapped.code == ErrorCode::kInternal) {
    LogFailure(call.op, a, e, mapped);
  }
  return mapped;
}

std::string IntentPath(std::string_view intent_id, std::string_view tail = "") {
  return "/v1/payment_intents/" + std::string(intent_id) + std::string(tail);
}

}  // namespace

Result<ProviderIntent> StripeProvider::CreateIntent(const CreateIntentRequest& request) {
  std::vector<FieldError> bad;
  if (request.amount <= 0) bad.push_back({"amount", "must be a positive number of minor units"});
  if (!IsCurrency(request.currency)) bad.push_back({"currency", "must be an upper-case ISO 4217 code"});
  if (!bad.empty()) return Error::Validation(std::move(bad));
  if (request.payment_token.empty()) {
    return Error::InvalidArgument("A payment token is required").WithType("payment-token-invalid");
  }
  Call call{Op::kCreateIntent, "POST", "/v1/payment_intents", {}, request.idempotency_key};
  call.form = {{"amount", std::to_string(request.amount)},
               {"currency", Lower(request.currency)},
               {"confirm", "true"},
               {"capture_method", request.manual_capture ? "manual" : "automatic"},
               // Cards only: no redirect-based methods, so no return_url is needed.
               {"payment_method_types[0]", "card"}};
  if (request.payment_token.starts_with("pm_")) {
    call.form.emplace_back("payment_method", request.payment_token);
  } else {
    // A token from Stripe.js / the Tokens API becomes a PaymentMethod here.
    call.form.emplace_back("payment_method_data[type]", "card");
    call.form.emplace_back("payment_method_data[card][token]", request.payment_token);
  }
  call.form.emplace_back("metadata[payment_id]", request.payment_id);
  return Exchange<ProviderIntent>(
      options_, call, [](const boost::json::object& o) { return ParseIntent(Op::kCreateIntent, o); }, true);
}

Result<ProviderIntent> StripeProvider::GetIntent(std::string_view intent_id) {
  if (!IsObjectId(intent_id)) return IntentNotFound();
  Call call{Op::kGetIntent, "GET", IntentPath(intent_id, "?expand%5B%5D=latest_charge"), {}, {}};
  return Exchange<ProviderIntent>(options_, call,
                                  [](const boost::json::object& o) { return ParseIntent(Op::kGetIntent, o); });
}

Result<ProviderIntent> StripeProvider::Capture(std::string_view intent_id, int64_t amount,
                                               std::string_view idempotency_key) {
  if (amount <= 0) return Error::Validation({{"amount", "must be a positive number of minor units"}});
  if (!IsObjectId(intent_id)) return IntentNotFound();
  Call call{Op::kCapture, "POST", IntentPath(intent_id, "/capture"), {{"amount_to_capture", std::to_string(amount)}},
            idempotency_key};
  return Exchange<ProviderIntent>(options_, call,
                                  [](const boost::json::object& o) { return ParseIntent(Op::kCapture, o); });
}

Result<ProviderIntent> StripeProvider::Cancel(std::string_view intent_id, std::string_view idempotency_key) {
  if (!IsObjectId(intent_id)) return IntentNotFound();
  Call call{Op::kCancel, "POST", IntentPath(intent_id, "/cancel"), {}, idempotency_key};
  return Exchange<ProviderIntent>(options_, call,
                                  [](const boost::json::object& o) { return ParseIntent(Op::kCancel, o); });
}

Result<ProviderRefund> StripeProvider::Refund(std::string_view intent_id, int64_t amount,
                                              std::string_view idempotency_key) {
  if (amount <= 0) return Error::Validation({{"amount", "must be a positive number of minor units"}});
  if (!IsObjectId(intent_id)) return IntentNotFound();
  Call call{Op::kRefund,
            "POST",
            "/v1/refunds",
            {{"payment_intent", std::string(intent_id)}, {"amount", std::to_string(amount)}},
            idempotency_key};
  return Exchange<ProviderRefund>(options_, call, [](const boost::json::object& o) -> Result<ProviderRefund> {
    auto r = RefundFromJson(o);
    if (!r.ok()) return ResponseInvalid(Op::kRefund, r.error().message);
    return r;
  });
}

Result<ProviderTransfer> StripeProvider::Transfer(std::string_view destination, int64_t amount,
                                                  std::string_view currency, std::string_view idempotency_key) {
  std::vector<FieldError> bad;
  if (destination.empty() || destination.size() > 255) bad.push_back({"destination", "must be 1 to 255 characters"});
  if (amount <= 0) bad.push_back({"amount", "must be a positive number of minor units"});
  if (!IsCurrency(currency)) bad.push_back({"currency", "must be an upper-case ISO 4217 code"});
  if (!bad.empty()) return Error::Validation(std::move(bad));
  Call call{Op::kTransfer,
            "POST",
            "/v1/transfers",
            {{"amount", std::to_string(amount)}, {"currency", Lower(currency)}, {"destination", std::string(destination)}},
            idempotency_key};
  return Exchange<ProviderTransfer>(options_, call, [](const boost::json::object& o) -> Result<ProviderTransfer> {
    auto t = TransferFromJson(o);
    if (!t.ok()) return ResponseInvalid(Op::kTransfer, t.error().message);
    return t;
  });
}

Result<WebhookEvent> StripeProvider::ParseWebhook(std::string_view signature_header, std::string_view body,
                                                  TimePoint now) {
  AGORA_RETURN_IF_ERROR(VerifyWebhook(options_.webhook_secret, signature_header, body, now));
  // Signed by Stripe: now worth parsing. What data.object is decides how.
  AGORA_ASSIGN_OR_RETURN(boost::json::object envelope, json::ParseObject(body));
  boost::json::object* object = nullptr;
  if (auto* data = envelope.if_contains("data"); data != nullptr && data->is_object()) {
    if (auto* o = data->as_object().if_contains("object"); o != nullptr && o->is_object()) object = &o->as_object();
  }
  const std::string kind = object != nullptr ? StringField(*object, "object") : "";
  if (kind == "payment_intent") {
    const boost::json::value* status = object->if_contains("status");
    if (status != nullptr && status->is_string() && !ParseIntentStatus(status->as_string())) {
      // "requires_confirmation": nothing the payments service acts on.
      // Refusing it would make Stripe redeliver it for days.
      *object = boost::json::object{};
      return EventFromJson(boost::json::serialize(envelope));
    }
  }
  AGORA_ASSIGN_OR_RETURN(WebhookEvent event, EventFromJson(body));
  if (kind == "charge") {
    AGORA_ASSIGN_OR_RETURN(event.intent, IntentOfCharge(*object));
  }
  return event;
}

}  // namespace agora::payments
