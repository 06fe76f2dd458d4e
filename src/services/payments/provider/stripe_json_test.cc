#include "services/payments/provider/stripe_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace agora::payments {
namespace {

ProviderIntent FullIntent() {
  ProviderIntent in;
  in.id = "pi_1";
  in.status = IntentStatus::kRequiresAction;
  in.amount = 2500;
  in.amount_capturable = 0;
  in.amount_received = 0;
  in.amount_refunded = 0;
  in.currency = "EUR";
  in.manual_capture = true;
  in.payment_id = "pay_1";
  in.next_action_url = "http://127.0.0.1:8080/sandbox/v1/payment_intents/pi_1/authenticate";
  in.created = 1'800'000'000;
  return in;
}

void ExpectSame(const ProviderIntent& a, const ProviderIntent& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.amount, b.amount);
  EXPECT_EQ(a.amount_capturable, b.amount_capturable);
  EXPECT_EQ(a.amount_received, b.amount_received);
  EXPECT_EQ(a.amount_refunded, b.amount_refunded);
  EXPECT_EQ(a.currency, b.currency);
  EXPECT_EQ(a.manual_capture, b.manual_capture);
  EXPECT_EQ(a.payment_id, b.payment_id);
  EXPECT_EQ(a.failure_code, b.failure_code);
  EXPECT_EQ(a.failure_message, b.failure_message);
  EXPECT_EQ(a.next_action_url, b.next_action_url);
  EXPECT_EQ(a.created, b.created);
}

TEST(IntentStatus, NamesRoundTrip) {
  for (IntentStatus s : {IntentStatus::kRequiresPaymentMethod, IntentStatus::kRequiresAction,
                         IntentStatus::kProcessing, IntentStatus::kRequiresCapture, IntentStatus::kSucceeded,
                         IntentStatus::kCanceled}) {
    EXPECT_EQ(ParseIntentStatus(IntentStatusName(s)), s) << IntentStatusName(s);
  }
  EXPECT_STREQ(IntentStatusName(IntentStatus::kRequiresCapture), "requires_capture");
  EXPECT_FALSE(ParseIntentStatus("requires_confirmation").has_value());
  EXPECT_FALSE(ParseIntentStatus("").has_value());
  EXPECT_FALSE(ParseIntentStatus("SUCCEEDED").has_value());
}

TEST(IntentJson, IsStripesShape) {
  boost::json::object o = IntentToJson(FullIntent());
  EXPECT_EQ(o.at("object"), "payment_intent");
  EXPECT_EQ(o.at("currency"), "eur");
  EXPECT_EQ(o.at("status"), "requires_action");
  EXPECT_EQ(o.at("capture_method"), "manual");
  EXPECT_EQ(o.at("metadata").at("payment_id"), "pay_1");
  EXPECT_TRUE(o.at("last_payment_error").is_null());
  EXPECT_EQ(o.at("next_action").at("type"), "redirect_to_url");
  EXPECT_EQ(std::string_view(o.at("next_action").at("redirect_to_url").at("url").as_string()), FullIntent().next_action_url);
  EXPECT_EQ(o.at("amount").as_int64(), 2500);
  EXPECT_EQ(o.at("amount_refunded").as_int64(), 0);
  EXPECT_EQ(o.at("created").as_int64(), 1'800'000'000);
}

TEST(IntentJson, RoundTrips) {
  ProviderIntent action = FullIntent();
  auto back = IntentFromJson(IntentToJson(action));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSame(*back, action);

  ProviderIntent declined = FullIntent();
  declined.status = IntentStatus::kRequiresPaymentMethod;
  declined.manual_capture = false;
  declined.next_action_url.clear();
  declined.failure_code = "insufficient_funds";
  declined.failure_message = "Your card has insufficient funds.";
  auto o = IntentToJson(declined);
  EXPECT_EQ(o.at("capture_method"), "automatic");
  EXPECT_TRUE(o.at("next_action").is_null());
  EXPECT_EQ(o.at("last_payment_error").at("code"), "insufficient_funds");
  back = IntentFromJson(o);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSame(*back, declined);

  ProviderIntent refunded = FullIntent();
  refunded.status = IntentStatus::kSucceeded;
  refunded.next_action_url.clear();
  refunded.amount_received = 2500;
  refunded.amount_refunded = 700;
  back = IntentFromJson(IntentToJson(refunded));
  ASSERT_TRUE(back.ok()) << back.error().message;
  ExpectSame(*back, refunded);
}

TEST(IntentJson, ReadsStripesOwnObjects) {
  // As Stripe sends it: no amount_refunded, a decline_code beside the code,
  // an action that needs Stripe.js, extra fields.
  auto o = boost::json::parse(R"({
    "id": "pi_3", "object": "payment_intent", "amount": 1000, "amount_capturable": 0,
    "amount_received": 0, "currency": "usd", "status": "requires_payment_method",
    "capture_method": "automatic_async", "metadata": {}, "client_secret": "x",
    "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."},
    "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}}, "created": 1700000000
  })").as_object();
  auto in = IntentFromJson(o);
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->currency, "USD");
  EXPECT_EQ(in->failure_code, "insufficient_funds");
  EXPECT_EQ(in->failure_message, "No.");
  EXPECT_EQ(in->amount_refunded, 0);
  EXPECT_FALSE(in->manual_capture);
  EXPECT_EQ(in->next_action_url, "");
  EXPECT_EQ(in->payment_id, "");
}

TEST(IntentJson, RefusesMalformedIntents) {
  const boost::json::object good = IntentToJson(FullIntent());
  struct Case {
    const char* field;
    boost::json::value value;  // null: remove the field
  };
  for (const Case& c : std::vector<Case>{
           {"id", nullptr},
           {"object", boost::json::value("charge")},
           {"amount", nullptr},
           {"amount", boost::json::value(-1)},
           {"amount", boost::json::value("10")},
           {"amount", boost::json::value(1.5)},
           {"currency", boost::json::value("euro")},
           {"currency", nullptr},
           {"status", boost::json::value("requires_confirmation")},
           {"capture_method", boost::json::value("later")},
           {"metadata", boost::json::value("pay_1")},
           {"next_action", boost::json::value(boost::json::object{{"type", "redirect_to_url"}})},
           {"last_payment_error", boost::json::value(boost::json::object{{"code", 5}})},
       }) {
    boost::json::object o = good;
    if (c.value.is_null()) {
      o.erase(c.field);
    } else {
      o[c.field] = c.value;
    }
    auto in = IntentFromJson(o);
    ASSERT_FALSE(in.ok()) << c.field << " " << boost::json::serialize(c.value);
    EXPECT_EQ(in.error().code, ErrorCode::kInvalidArgument);
    ASSERT_EQ(in.error().fields.size(), 1u);
    EXPECT_TRUE(in.error().fields[0].field.starts_with(c.field)) << in.error().fields[0].field;
  }
}

TEST(RefundAndTransferJson, RoundTrip) {
  ProviderRefund r{"re_1", "pi_1", 500, "EUR", "succeeded"};
  auto o = RefundToJson(r, 1'800'000'000);
  EXPECT_EQ(o.at("object"), "refund");
  EXPECT_EQ(o.at("currency"), "eur");
  auto r2 = RefundFromJson(o);
  ASSERT_TRUE(r2.ok()) << r2.error().message;
  EXPECT_EQ(r2->id, "re_1");
  EXPECT_EQ(r2->intent_id, "pi_1");
  EXPECT_EQ(r2->amount, 500);
  EXPECT_EQ(r2->currency, "EUR");
  EXPECT_EQ(r2->status, "succeeded");

  ProviderTransfer t{"tr_1", "acct_1", 900, "USD"};
  auto t2 = TransferFromJson(TransferToJson(t, 1));
  ASSERT_TRUE(t2.ok()) << t2.error().message;
  EXPECT_EQ(t2->id, "tr_1");
  EXPECT_EQ(t2->destination, "acct_1");
  EXPECT_EQ(t2->amount, 900);
  EXPECT_EQ(t2->currency, "USD");
  EXPECT_FALSE(TransferFromJson(RefundToJson(r, 1)).ok());
}

TEST(EventJson, RoundTripsWithAnIntent) {
  ProviderIntent in = FullIntent();
  std::string body = EventToJson("evt_1", "payment_intent.requires_action", 1'800'000'001, IntentToJson(in));
  auto parsed = boost::json::parse(body).as_object();
  EXPECT_EQ(parsed.at("object"), "event");
  EXPECT_EQ(std::string_view(parsed.at("api_version").as_string()), kStripeApiVersion);
  EXPECT_EQ(parsed.at("livemode"), false);
  EXPECT_EQ(parsed.at("data").at("object").at("id"), "pi_1");

  auto ev = EventFromJson(body);
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->id, "evt_1");
  EXPECT_EQ(ev->type, "payment_intent.requires_action");
  EXPECT_EQ(ev->created, 1'800'000'001);
  ASSERT_TRUE(ev->intent.has_value());
  ExpectSame(*ev->intent, in);
}

TEST(EventJson, OtherObjectsLeaveTheIntentEmpty) {
  auto ev = EventFromJson(EventToJson("evt_2", "transfer.created", 5, TransferToJson({"tr_1", "acct_1", 1, "EUR"}, 5)));
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->type, "transfer.created");
  EXPECT_FALSE(ev->intent.has_value());
}

TEST(EventJson, RefusesMalformedBodies) {
  const std::string intent = boost::json::serialize(IntentToJson(FullIntent()));
  for (const std::string& body : std::vector<std::string>{
           "",
           "not json",
           "[]",
           "{}",
           R"({"id":"evt_1","object":"event","type":"x","created":1})",
           R"({"id":"evt_1","object":"event","type":"x","created":1,"data":{}})",
           R"({"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":5}})",
           R"({"id":"evt_1","object":"charge","type":"x","created":1,"data":{"object":{}}})",
           R"({"id":"","object":"event","type":"x","created":1,"data":{"object":{}}})",
           R"({"id":"evt_1","object":"event","type":"","created":1,"data":{"object":{}}})",
           R"({"id":"evt_1","object":"event","type":"x","created":"1","data":{"object":{}}})",
           R"({"id":7,"object":"event","type":"x","created":1,"data":{"object":{}}})",
           // A payment intent missing its amount.
           R"({"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":)"
           R"({"id":"pi_1","object":"payment_intent","currency":"eur","status":"succeeded"}}})",
           // Not valid UTF-8.
           "{\"id\":\"evt_\xff\",\"object\":\"event\",\"type\":\"x\",\"created\":1,\"data\":{\"object\":{}}}",
       }) {
    auto ev = EventFromJson(body);
    ASSERT_FALSE(ev.ok()) << body;
    EXPECT_EQ(ev.error().code, ErrorCode::kInvalidArgument) << body;
  }
  EXPECT_TRUE(
      EventFromJson(R"({"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":)" + intent + "}}").ok());
}

}  // namespace
}  // namespace agora::payments
