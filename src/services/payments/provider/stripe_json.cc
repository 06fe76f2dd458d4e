#include "services/payments/provider/stripe_json.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include <boost/json.hpp>

#include "core/json.h"

namespace agora::payments {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
  return out;
}

bool IsCurrency(std::string_view s) {
  return s.size() == 3 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalpha(c); });
}

// Reads typed fields out of one Stripe object and keeps the first problem,
// named with the object's path ("data.object.amount").
class Fields {
 public:
  Fields(const boost::json::object& o, std::string prefix) : o_(o), prefix_(std::move(prefix)) {}

  std::string String(std::string_view key, bool required) {
    const boost::json::value* v = Take(key, required);
    if (v == nullptr) return "";
    if (!v->is_string()) {
      Fail(key, "must be a string");
      return "";
    }
    return std::string(v->as_string());
  }

  int64_t Int(std::string_view key, bool required) {
    const boost::json::value* v = Take(key, required);
    if (v == nullptr) return 0;
    if (v->is_int64() && v->as_int64() >= 0) return v->as_int64();
    if (v->is_uint64() && v->as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
      return static_cast<int64_t>(v->as_uint64());
    }
    Fail(key, "must be a non-negative integer");
    return 0;
  }

  // Absent or null: nullptr, which is not an error unless required.
  const boost::json::object* Object(std::string_view key, bool required) {
    const boost::json::value* v = Take(key, required);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      Fail(key, "must be an object");
      return nullptr;
    }
    return &v->as_object();
  }

  void Fail(std::string_view key, std::string message) {
    if (!error_) error_ = FieldError{prefix_ + std::string(key), std::move(message)};
  }
  std::string Name(std::string_view key) const { return prefix_ + std::string(key) + "."; }
  bool ok() const { return !error_.has_value(); }
  Error TakeError(std::string_view what) {
    std::string msg = "Not a Stripe " + std::string(what) + ": field '" + error_->field + "' " + error_->message;
    return Error::InvalidArgument(std::move(msg), {std::move(*error_)});
  }

 private:
  const boost::json::value* Take(std::string_view key, bool required) {
    const boost::json::value* v = o_.if_contains(key);
    if (v == nullptr || v->is_null()) {
      if (required) Fail(key, "is required");
      return nullptr;
    }
    return v;
  }

  const boost::json::object& o_;
  std::string prefix_;
  std::optional<FieldError> error_;
};

// Checks "object" names the expected type.
void ExpectObjectType(Fields& f, std::string_view type) {
  std::string object = f.String("object", true);
  if (f.ok() && object != type) f.Fail("object", "must be \"" + std::string(type) + "\"");
}

std::string ReadCurrency(Fields& f) {
  std::string c = f.String("currency", true);
  if (f.ok() && !IsCurrency(c)) f.Fail("currency", "must be a three-letter ISO 4217 code");
  return Upper(c);
}

Result<ProviderIntent> IntentFrom(const boost::json::object& o, const std::string& prefix) {
  Fields f(o, prefix);
  ProviderIntent in;
  in.id = f.String("id", true);
  ExpectObjectType(f, "payment_intent");
  in.amount = f.Int("amount", true);
  in.amount_capturable = f.Int("amount_capturable", false);
  in.amount_received = f.Int("amount_received", false);
  in.amount_refunded = f.Int("amount_refunded", false);
  in.currency = ReadCurrency(f);
  std::string status = f.String("status", true);
  if (f.ok()) {
    auto parsed = ParseIntentStatus(status);
    if (!parsed) {
      f.Fail("status", "is not a known payment intent status");
    } else {
      in.status = *parsed;
    }
  }
  std::string capture = f.String("capture_method", false);
  if (capture == "manual") {
    in.manual_capture = true;
  } else if (!capture.empty() && capture != "automatic" && capture != "automatic_async") {
    f.Fail("capture_method", "must be automatic or manual");
  }
  if (const auto* meta = f.Object("metadata", false)) {
    Fields m(*meta, f.Name("metadata"));
    in.payment_id = m.String("payment_id", false);
    if (!m.ok()) return m.TakeError("payment intent");
  }
  if (const auto* err = f.Object("last_payment_error", false)) {
    Fields e(*err, f.Name("last_payment_error"));
    std::string code = e.String("code", false);
    std::string decline_code = e.String("decline_code", false);
    in.failure_code = decline_code.empty() ? code : decline_code;
    in.failure_message = e.String("message", false);
    if (!e.ok()) return e.TakeError("payment intent");
  }
  if (const auto* action = f.Object("next_action", false)) {
    Fields a(*action, f.Name("next_action"));
    // Other action types (use_stripe_sdk, ...) need Stripe.js; no URL to give.
    if (a.String("type", true) == "redirect_to_url") {
      if (const auto* redirect = a.Object("redirect_to_url", true)) {
        Fields r(*redirect, a.Name("redirect_to_url"));
        in.next_action_url = r.String("url", true);
        if (!r.ok()) return r.TakeError("payment intent");
      }
    }
    if (!a.ok()) return a.TakeError("payment intent");
  }
  in.created = f.Int("created", false);
  if (!f.ok()) return f.TakeError("payment intent");
  return in;
}

}  // namespace

boost::json::object IntentToJson(const ProviderIntent& in) {
  boost::json::object o;
  o["id"] = in.id;
  o["object"] = "payment_intent";
  o["amount"] = in.amount;
  o["amount_capturable"] = in.amount_capturable;
  o["amount_received"] = in.amount_received;
  o["amount_refunded"] = in.amount_refunded;  // non-standard: see the header
  o["currency"] = Lower(in.currency);
  o["status"] = IntentStatusName(in.status);
  o["capture_method"] = in.manual_capture ? "manual" : "automatic";
  o["metadata"] = boost::json::object{{"payment_id", in.payment_id}};
  if (in.failure_code.empty() && in.failure_message.empty()) {
    o["last_payment_error"] = nullptr;
  } else {
    o["last_payment_error"] = boost::json::object{{"code", in.failure_code}, {"message", in.failure_message}};
  }
  if (in.next_action_url.empty()) {
    o["next_action"] = nullptr;
  } else {
    o["next_action"] = boost::json::object{{"type", "redirect_to_url"},
                                           {"redirect_to_url", boost::json::object{{"url", in.next_action_url}}}};
  }
  o["created"] = in.created;
  o["livemode"] = false;
  return o;
}

Result<ProviderIntent> IntentFromJson(const boost::json::object& o) { return IntentFrom(o, ""); }

boost::json::object RefundToJson(const ProviderRefund& r, int64_t created) {
  return boost::json::object{{"id", r.id},
                             {"object", "refund"},
                             {"amount", r.amount},
                             {"currency", Lower(r.currency)},
                             {"payment_intent", r.intent_id},
                             {"status", r.status},
                             {"created", created}};
}

Result<ProviderRefund> RefundFromJson(const boost::json::object& o) {
  Fields f(o, "");
  ProviderRefund r;
  r.id = f.String("id", true);
  ExpectObjectType(f, "refund");
  r.amount = f.Int("amount", true);
  r.currency = ReadCurrency(f);
  r.intent_id = f.String("payment_intent", false);
  r.status = f.String("status", true);
  if (!f.ok()) return f.TakeError("refund");
  return r;
}

boost::json::object TransferToJson(const ProviderTransfer& t, int64_t created) {
  return boost::json::object{{"id", t.id},
                             {"object", "transfer"},
                             {"amount", t.amount},
                             {"currency", Lower(t.currency)},
                             {"destination", t.destination},
                             {"created", created}};
}

Result<ProviderTransfer> TransferFromJson(const boost::json::object& o) {
  Fields f(o, "");
  ProviderTransfer t;
  t.id = f.String("id", true);
  ExpectObjectType(f, "transfer");
  t.amount = f.Int("amount", true);
  t.currency = ReadCurrency(f);
  t.destination = f.String("destination", true);
  if (!f.ok()) return f.TakeError("transfer");
  return t;
}

std::string EventToJson(std::string_view id, std::string_view type, int64_t created,
                        boost::json::object data_object) {
  return boost::json::serialize(boost::json::object{
      {"id", id},
      {"object", "event"},
      {"type", type},
      {"created", created},
      {"api_version", kStripeApiVersion},
      {"livemode", false},
      {"data", boost::json::object{{"object", std::move(data_object)}}},
  });
}

Result<WebhookEvent> EventFromJson(std::string_view body) {
  // Strict: valid UTF-8, one object, bounded depth (the body is untrusted
  // until verified, and parsed only after the signature is).
  AGORA_ASSIGN_OR_RETURN(boost::json::object o, json::ParseObject(body));
  Fields f(o, "");
  WebhookEvent ev;
  ev.id = f.String("id", true);
  ExpectObjectType(f, "event");
  ev.type = f.String("type", true);
  if (f.ok() && (ev.id.empty() || ev.type.empty())) f.Fail(ev.id.empty() ? "id" : "type", "must not be empty");
  ev.created = f.Int("created", true);
  const boost::json::object* data = f.Object("data", true);
  const boost::json::object* object = nullptr;
  if (data != nullptr) {
    Fields d(*data, "data.");
    object = d.Object("object", true);
    if (!d.ok()) return d.TakeError("event");
  }
  if (!f.ok()) return f.TakeError("event");
  const boost::json::value* kind = object->if_contains("object");
  if (kind != nullptr && kind->is_string() && kind->as_string() == "payment_intent") {
    AGORA_ASSIGN_OR_RETURN(ev.intent, IntentFrom(*object, "data.object."));
  }
  return ev;
}

}  // namespace agora::payments
