#include "services/payments/provider/stripe.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/http/app.h"
#include "core/http/http_testing.h"
#include "services/payments/provider/stripe_json.h"
#include "services/payments/provider/webhook_signature.h"

namespace agora::payments {
namespace {

constexpr std::string_view kSecretKey = "sk_test_51FakeSecretKeyForAgoraTests";
constexpr std::string_view kWebhookSecret = "whsec_stripe_test";
constexpr int64_t kCreated = 1'800'000'000;

// One request as the fake Stripe received it.
struct Seen {
  std::string method;
  std::string path;
  std::string query;
  std::string authorization;
  std::string idempotency_key;
  std::string stripe_version;
  std::string content_type;
  std::map<std::string, std::string> form;
  bool form_ok = true;  // the body parsed as a form without repeated keys
};

http::Response StripeError(int status, boost::json::object error) {
  return http::Response::Json(status, boost::json::object{{"error", std::move(error)}});
}

// A PaymentIntent as Stripe's API reference shows it, with the fields the
// provider does not read left in (it must ignore them).
boost::json::object StripeIntent(std::string id, int64_t amount, std::string currency, std::string capture_method,
                                 std::string payment_id) {
  return boost::json::object{
      {"id", id},
      {"object", "payment_intent"},
      {"amount", amount},
      {"amount_capturable", 0},
      {"amount_details", boost::json::object{{"tip", boost::json::object{}}}},
      {"amount_received", 0},
      {"application", nullptr},
      {"application_fee_amount", nullptr},
      {"automatic_payment_methods", nullptr},
      {"canceled_at", nullptr},
      {"cancellation_reason", nullptr},
      {"capture_method", capture_method},
      {"client_secret", id + "_secret_abc"},
      {"confirmation_method", "automatic"},
      {"created", kCreated},
      {"currency", currency},
      {"customer", nullptr},
      {"description", nullptr},
      {"last_payment_error", nullptr},
      {"latest_charge", nullptr},
      {"livemode", false},
      {"metadata", boost::json::object{{"payment_id", payment_id}}},
      {"next_action", nullptr},
      {"payment_method", "pm_1Abc"},
      {"payment_method_options",
       boost::json::object{{"card", boost::json::object{{"request_three_d_secure", "automatic"}}}}},
      {"payment_method_types", boost::json::array{"card"}},
      {"status", "requires_payment_method"},
  };
}

// Plays Stripe's API over HTTP: checks what the provider sends, keeps
// intents, refunds and transfers, and replays the saved answer of an
// Idempotency-Key as Stripe does. Test cards are chosen by token:
//   tok_visa                  succeeds (or requires_capture when manual)
//   tok_chargeDeclinedInsufficientFunds  402 card_error with the intent
//   tok_threeDSecureRedirect  requires_action, next_action redirect_to_url
//   tok_threeDSecure2Required requires_action, next_action use_stripe_sdk
//   tok_used                  400 token_already_used
//   tok_unknown               400 resource_missing on the token param
//   tok_500                   500 api_error
//   tok_429                   429 rate_limit
//   tok_in_progress           409 idempotency_key_in_use
//   tok_slow                  answers after 1.5 s
//   tok_garbage               200 with a body that is not JSON
//   tok_confirmation          200 with status requires_confirmation
class FakeStripe {
 public:
  FakeStripe() {
    Add(http::Method::kPost, "/v1/payment_intents", [this](http::Request& r) { return CreateIntent(r); });
    Add(http::Method::kGet, "/v1/payment_intents/{id}", [this](http::Request& r) { return GetIntent(r); });
    Add(http::Method::kPost, "/v1/payment_intents/{id}/capture", [this](http::Request& r) { return Capture(r); });
    Add(http::Method::kPost, "/v1/payment_intents/{id}/cancel", [this](http::Request& r) { return Cancel(r); });
    Add(http::Method::kPost, "/v1/refunds", [this](http::Request& r) { return Refund(r); });
    Add(http::Method::kPost, "/v1/transfers", [this](http::Request& r) { return Transfer(r); });
    loopback_.Run();
  }

  std::string url() const { return loopback_.Url(); }

  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  Seen last() {
    std::lock_guard lock(mu_);
    return seen_.empty() ? Seen{} : seen_.back();
  }
  int intents_created() {
    std::lock_guard lock(mu_);
    return intents_created_;
  }
  // Sets the refunded amount on an intent's charge, as a refund made in
  // Stripe's dashboard would.
  void SetRefunded(const std::string& intent_id, int64_t amount) {
    std::lock_guard lock(mu_);
    refunded_[intent_id] = amount;
  }

 private:
  using Handler = std::function<http::Response(http::Request&)>;

  void Add(http::Method m, std::string pattern, Handler h) {
    http::Route route = http::MakeRoute(m, std::move(pattern), http::Execution::kBlocking,
                                        [this, h = std::move(h)](http::Request& req) { return Serve(req, h); });
    route.json_body = false;  // Stripe's API takes forms
    loopback_.app().Add(std::move(route));
  }

  // Records the request, checks the key, and replays an idempotent POST.
  http::Response Serve(http::Request& req, const Handler& h) {
    Seen s;
    s.method = req.method_name;
    s.path = req.path;
    s.query = req.query;
    s.authorization = std::string(req.headers.Get("Authorization").value_or(""));
    s.idempotency_key = std::string(req.headers.Get("Idempotency-Key").value_or(""));
    s.stripe_version = std::string(req.headers.Get("Stripe-Version").value_or(""));
    s.content_type = std::string(req.headers.Get("Content-Type").value_or(""));
    if (auto pairs = http::ParseQuery(req.body)) {
      for (auto& [k, v] : *pairs) {
        if (!s.form.emplace(k, v).second) s.form_ok = false;
      }
    } else {
      s.form_ok = false;
    }
    {
      std::lock_guard lock(mu_);
      seen_.push_back(s);
    }
    if (s.authorization != "Bearer " + std::string(kSecretKey)) {
      // Stripe's text names the key's last four characters.
      const std::string tail = s.authorization.size() >= 4 ? s.authorization.substr(s.authorization.size() - 4) : "";
      return StripeError(401, {{"type", "invalid_request_error"},
                               {"message", "Invalid API Key provided: sk_test_****" + tail}});
    }
    const std::string fingerprint = req.path + "?" + req.body;
    if (req.method == http::Method::kPost && !s.idempotency_key.empty()) {
      std::lock_guard lock(mu_);
      if (auto it = saved_.find(s.idempotency_key); it != saved_.end()) {
        if (it->second.fingerprint != fingerprint) {
          return StripeError(400, {{"type", "idempotency_error"},
                                   {"message",
                                    "Keys for idempotent requests can only be used with the same parameters they "
                                    "were first used with."}});
        }
        http::Response replay = http::Response::Text(it->second.status, it->second.body, "application/json");
        replay.headers.Set("Idempotent-Replayed", "true");
        return replay;
      }
    }
    http::Response res = h(req);
    res.headers.Set("Request-Id", "req_" + std::to_string(seen().size()));
    // Saved once execution began (a 429 runs before Stripe's idempotency layer).
    if (req.method == http::Method::kPost && !s.idempotency_key.empty() && res.status != 429 && res.status != 409) {
      std::lock_guard lock(mu_);
      saved_.emplace(s.idempotency_key, SavedAnswer{fingerprint, res.status, res.body});
    }
    return res;
  }

  static std::map<std::string, std::string> Form(const http::Request& req) {
    std::map<std::string, std::string> form;
    if (auto pairs = http::ParseQuery(req.body)) {
      for (auto& [k, v] : *pairs) form.emplace(k, v);
    }
    return form;
  }

  static int64_t Int(const std::map<std::string, std::string>& form, const std::string& key) {
    auto it = form.find(key);
    return it == form.end() ? 0 : std::stoll(it->second);
  }

  http::Response NoSuchIntent(std::string_view id, std::string param, int status) {
    return StripeError(status, {{"type", "invalid_request_error"},
                                {"code", "resource_missing"},
                                {"param", param},
                                {"message", "No such payment_intent: '" + std::string(id) + "'"}});
  }

  // The intent with its charge: a string id, or the Charge when expanded.
  boost::json::object WithCharge(boost::json::object in, bool expand) {
    const std::string id(in.at("id").as_string());
    if (in.at("status") == "succeeded" || in.at("status") == "requires_capture") {
      if (expand) {
        in["latest_charge"] = boost::json::object{{"id", "ch_" + id.substr(3)},
                                                  {"object", "charge"},
                                                  {"amount_refunded", refunded_[id]},
                                                  {"payment_intent", id}};
      } else {
        in["latest_charge"] = "ch_" + id.substr(3);
      }
    }
    return in;
  }

  http::Response CreateIntent(http::Request& req) {
    auto form = Form(req);
    const std::string token = form["payment_method_data[card][token]"];
    if (token == "tok_slow") std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    if (token == "tok_500") {
      return StripeError(500, {{"type", "api_error"}, {"message", "Something went wrong on Stripe's end."}});
    }
    if (token == "tok_429") {
      return StripeError(429, {{"type", "invalid_request_error"},
                               {"code", "rate_limit"},
                               {"message", "Too many requests hit the API too quickly."}});
    }
    if (token == "tok_in_progress") {
      return StripeError(409, {{"type", "idempotency_error"},
                               {"code", "idempotency_key_in_use"},
                               {"message", "There is currently another in-progress request using this key."}});
    }
    if (token == "tok_garbage") return http::Response::Text(200, "<html>upstream hiccup</html>", "text/html");
    if (token == "tok_unknown") {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"code", "resource_missing"},
                               {"param", "payment_method_data[card][token]"},
                               {"message", "No such token: 'tok_unknown'"}});
    }
    if (token == "tok_used") {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"code", "token_already_used"},
                               {"param", "payment_method_data[card][token]"},
                               {"message", "You cannot use a Stripe token more than once: tok_used."}});
    }
    std::lock_guard lock(mu_);
    const std::string id = "pi_3Fake" + std::to_string(++intents_created_);
    boost::json::object in =
        StripeIntent(id, Int(form, "amount"), form["currency"], form["capture_method"], form["metadata[payment_id]"]);
    if (token == "tok_chargeDeclinedInsufficientFunds") {
      boost::json::object error{{"type", "card_error"},
                                {"code", "card_declined"},
                                {"decline_code", "insufficient_funds"},
                                {"message", "Your card has insufficient funds."},
                                {"doc_url", "https://stripe.com/docs/error-codes/card-declined"}};
      in["last_payment_error"] = error;
      in["status"] = "requires_payment_method";
      intents_[id] = in;
      error["payment_intent"] = in;
      return StripeError(402, std::move(error));
    }
    if (token == "tok_threeDSecureRedirect") {
      in["status"] = "requires_action";
      in["next_action"] = boost::json::object{
          {"type", "redirect_to_url"},
          {"redirect_to_url",
           boost::json::object{{"url", "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1&payment_intent=" + id},
                               {"return_url", "https://agora.example/return"}}}};
    } else if (token == "tok_threeDSecure2Required") {
      in["status"] = "requires_action";
      in["next_action"] = boost::json::object{
          {"type", "use_stripe_sdk"},
          {"use_stripe_sdk", boost::json::object{{"type", "three_d_secure_redirect"}, {"stripe_js", "https://x"}}}};
    } else if (token == "tok_confirmation") {
      in["status"] = "requires_confirmation";
    } else if (form["capture_method"] == "manual") {
      in["status"] = "requires_capture";
      in["amount_capturable"] = in["amount"];
    } else {
      in["status"] = "succeeded";
      in["amount_received"] = in["amount"];
    }
    intents_[id] = in;
    return http::Response::Json(200, WithCharge(in, false));
  }

  http::Response GetIntent(http::Request& req) {
    std::lock_guard lock(mu_);
    const std::string id(req.PathParam("id"));
    auto it = intents_.find(id);
    if (it == intents_.end()) return NoSuchIntent(id, "intent", 404);
    const bool expand = req.QueryParam("expand[]") == std::optional<std::string>("latest_charge");
    return http::Response::Json(200, WithCharge(it->second, expand));
  }

  http::Response Capture(http::Request& req) {
    auto form = Form(req);
    std::lock_guard lock(mu_);
    const std::string id(req.PathParam("id"));
    auto it = intents_.find(id);
    if (it == intents_.end()) return NoSuchIntent(id, "intent", 404);
    boost::json::object& in = it->second;
    if (in.at("status") != "requires_capture") {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"code", "payment_intent_unexpected_state"},
                               {"message", "This PaymentIntent could not be captured because it has a status of " +
                                               std::string(in.at("status").as_string()) + "."}});
    }
    const int64_t amount = Int(form, "amount_to_capture");
    if (amount > in.at("amount_capturable").as_int64()) {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"param", "amount_to_capture"},
                               {"message", "amount_to_capture must be less than or equal to the amount_capturable."}});
    }
    in["status"] = "succeeded";
    in["amount_received"] = amount;
    in["amount_capturable"] = 0;
    return http::Response::Json(200, WithCharge(in, false));
  }

  http::Response Cancel(http::Request& req) {
    std::lock_guard lock(mu_);
    const std::string id(req.PathParam("id"));
    auto it = intents_.find(id);
    if (it == intents_.end()) return NoSuchIntent(id, "intent", 404);
    boost::json::object& in = it->second;
    if (in.at("status") == "succeeded" || in.at("status") == "canceled") {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"code", "payment_intent_unexpected_state"},
                               {"message", "You cannot cancel this PaymentIntent because it has a status of " +
                                               std::string(in.at("status").as_string()) + "."}});
    }
    in["status"] = "canceled";
    in["cancellation_reason"] = nullptr;
    in["amount_capturable"] = 0;
    in["canceled_at"] = kCreated + 60;
    return http::Response::Json(200, in);
  }

  http::Response Refund(http::Request& req) {
    auto form = Form(req);
    std::lock_guard lock(mu_);
    const std::string id = form["payment_intent"];
    auto it = intents_.find(id);
    if (it == intents_.end()) return NoSuchIntent(id, "payment_intent", 400);
    const int64_t amount = Int(form, "amount");
    const int64_t left = it->second.at("amount_received").as_int64() - refunded_[id];
    if (amount > left) {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"code", "amount_too_large"},
                               {"param", "amount"},
                               {"message", "Refund amount (" + std::to_string(amount) +
                                               ") is greater than unrefunded amount on charge (" +
                                               std::to_string(left) + ")"}});
    }
    refunded_[id] += amount;
    return http::Response::Json(200, boost::json::object{{"id", "re_3Fake" + std::to_string(refunded_.size())},
                                                         {"object", "refund"},
                                                         {"amount", amount},
                                                         {"balance_transaction", "txn_1"},
                                                         {"charge", "ch_" + id.substr(3)},
                                                         {"created", kCreated + 120},
                                                         {"currency", it->second.at("currency")},
                                                         {"metadata", boost::json::object{}},
                                                         {"payment_intent", id},
                                                         {"reason", nullptr},
                                                         {"receipt_number", nullptr},
                                                         {"status", "succeeded"}});
  }

  http::Response Transfer(http::Request& req) {
    auto form = Form(req);
    const std::string destination = form["destination"];
    if (!destination.starts_with("acct_")) {
      return StripeError(400, {{"type", "invalid_request_error"},
                               {"code", "resource_missing"},
                               {"param", "destination"},
                               {"message", "No such destination: '" + destination + "'"}});
    }
    return http::Response::Json(200, boost::json::object{{"id", "tr_1MiN3gLkdIwHu7ix"},
                                                         {"object", "transfer"},
                                                         {"amount", Int(form, "amount")},
                                                         {"amount_reversed", 0},
                                                         {"balance_transaction", "txn_2"},
                                                         {"created", kCreated + 180},
                                                         {"currency", form["currency"]},
                                                         {"description", nullptr},
                                                         {"destination", destination},
                                                         {"destination_payment", "py_1"},
                                                         {"livemode", false},
                                                         {"metadata", boost::json::object{}},
                                                         {"reversed", false},
                                                         {"source_transaction", nullptr},
                                                         {"source_type", "card"},
                                                         {"transfer_group", nullptr}});
  }

  struct SavedAnswer {
    std::string fingerprint;
    int status;
    std::string body;
  };

  std::mutex mu_;
  std::vector<Seen> seen_;                              // GUARDED_BY(mu_)
  std::map<std::string, boost::json::object> intents_;  // GUARDED_BY(mu_)
  std::map<std::string, int64_t> refunded_;             // GUARDED_BY(mu_)
  std::map<std::string, SavedAnswer> saved_;            // GUARDED_BY(mu_)
  int intents_created_ = 0;                             // GUARDED_BY(mu_)
  http::testing::LoopbackServer loopback_;  // last: stopped first, while the state above still exists
};

void ExpectError(const Error& e, ErrorCode code, std::string_view type) {
  EXPECT_EQ(e.code, code) << ErrorCodeName(e.code) << ": " << e.message;
  EXPECT_EQ(e.type, type) << e.message;
  EXPECT_EQ(e.message.find(kSecretKey), std::string::npos) << "the secret key leaked into: " << e.message;
}

class StripeTest : public ::testing::Test {
 protected:
  StripeOptions Options(std::string secret_key = std::string(kSecretKey)) {
    StripeOptions o;
    o.base_url = fake_.url() + "/";  // a trailing slash is tolerated
    o.secret_key = std::move(secret_key);
    o.webhook_secret = std::string(kWebhookSecret);
    o.timeout = std::chrono::milliseconds(3000);
    return o;
  }

  CreateIntentRequest Request(std::string token, std::string key = "pay:pay_1", bool manual = false) {
    CreateIntentRequest r;
    r.amount = 2500;
    r.currency = "EUR";
    r.payment_token = std::move(token);
    r.manual_capture = manual;
    r.payment_id = "pay_1";
    r.idempotency_key = std::move(key);
    return r;
  }

  ProviderIntent MustCreate(std::string token, std::string key, bool manual = false) {
    auto in = provider_.CreateIntent(Request(std::move(token), std::move(key), manual));
    EXPECT_TRUE(in.ok()) << (in.ok() ? "" : in.error().message);
    return in.ok() ? *in : ProviderIntent{};
  }

  FakeStripe fake_;
  StripeProvider provider_{Options()};
};

TEST_F(StripeTest, CreateIntentSendsStripesFormAndHeaders) {
  auto in = provider_.CreateIntent(Request("tok_visa", "pay:pay_1"));
  ASSERT_TRUE(in.ok()) << in.error().message;

  Seen s = fake_.last();
  EXPECT_EQ(s.method, "POST");
  EXPECT_EQ(s.path, "/v1/payment_intents");
  EXPECT_EQ(s.authorization, "Bearer " + std::string(kSecretKey));
  EXPECT_EQ(s.idempotency_key, "pay:pay_1");
  EXPECT_EQ(s.stripe_version, kStripeApiVersion);
  EXPECT_EQ(s.content_type, "application/x-www-form-urlencoded");
  ASSERT_TRUE(s.form_ok);
  const std::map<std::string, std::string> expected{
      {"amount", "2500"},
      {"currency", "eur"},
      {"confirm", "true"},
      {"capture_method", "automatic"},
      {"payment_method_types[0]", "card"},
      {"payment_method_data[type]", "card"},
      {"payment_method_data[card][token]", "tok_visa"},
      {"metadata[payment_id]", "pay_1"},
  };
  EXPECT_EQ(s.form, expected);

  EXPECT_EQ(in->id, "pi_3Fake1");
  EXPECT_EQ(in->status, IntentStatus::kSucceeded);
  EXPECT_EQ(in->amount, 2500);
  EXPECT_EQ(in->amount_received, 2500);
  EXPECT_EQ(in->amount_capturable, 0);
  EXPECT_EQ(in->currency, "EUR");
  EXPECT_FALSE(in->manual_capture);
  EXPECT_EQ(in->payment_id, "pay_1");
  EXPECT_EQ(in->created, kCreated);
  EXPECT_TRUE(in->failure_code.empty());
  EXPECT_TRUE(in->next_action_url.empty());
}

TEST_F(StripeTest, CreateIntentSendsAPaymentMethodIdAsPaymentMethod) {
  auto in = provider_.CreateIntent(Request("pm_card_visa"));
  ASSERT_TRUE(in.ok()) << in.error().message;
  Seen s = fake_.last();
  EXPECT_EQ(s.form["payment_method"], "pm_card_visa");
  EXPECT_EQ(s.form.count("payment_method_data[type]"), 0u);
  EXPECT_EQ(s.form.count("payment_method_data[card][token]"), 0u);
}

TEST_F(StripeTest, FormValuesArePercentEncoded) {
  CreateIntentRequest r = Request("tok_visa", "pay:key with spaces&=");
  r.payment_id = "pay_1&amount=1 +x";
  auto in = provider_.CreateIntent(r);
  ASSERT_TRUE(in.ok()) << in.error().message;
  Seen s = fake_.last();
  ASSERT_TRUE(s.form_ok);
  EXPECT_EQ(s.form["metadata[payment_id]"], "pay_1&amount=1 +x");
  EXPECT_EQ(s.form["amount"], "2500");
  EXPECT_EQ(in->payment_id, "pay_1&amount=1 +x");
}

TEST_F(StripeTest, ManualCaptureAuthorizesThenCaptures) {
  ProviderIntent in = MustCreate("tok_visa", "pay:manual", true);
  EXPECT_EQ(fake_.last().form["capture_method"], "manual");
  EXPECT_EQ(in.status, IntentStatus::kRequiresCapture);
  EXPECT_TRUE(in.manual_capture);
  EXPECT_EQ(in.amount_capturable, 2500);

  auto over = provider_.Capture(in.id, 2501, "capture:over");
  ASSERT_FALSE(over.ok());
  ExpectError(over.error(), ErrorCode::kFailedPrecondition, "capture-exceeds-authorized");

  auto captured = provider_.Capture(in.id, 2500, "capture:1");
  ASSERT_TRUE(captured.ok()) << captured.error().message;
  Seen s = fake_.last();
  EXPECT_EQ(s.path, "/v1/payment_intents/" + in.id + "/capture");
  EXPECT_EQ(s.idempotency_key, "capture:1");
  EXPECT_EQ(s.form, (std::map<std::string, std::string>{{"amount_to_capture", "2500"}}));
  EXPECT_EQ(captured->status, IntentStatus::kSucceeded);
  EXPECT_EQ(captured->amount_received, 2500);
  EXPECT_EQ(captured->amount_capturable, 0);

  auto again = provider_.Capture(in.id, 2500, "capture:2");
  ASSERT_FALSE(again.ok());
  ExpectError(again.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");
}

TEST_F(StripeTest, CancelReleasesAnAuthorization) {
  ProviderIntent in = MustCreate("tok_visa", "pay:cancel", true);
  auto canceled = provider_.Cancel(in.id, "cancel:1");
  ASSERT_TRUE(canceled.ok()) << canceled.error().message;
  EXPECT_EQ(fake_.last().path, "/v1/payment_intents/" + in.id + "/cancel");
  EXPECT_EQ(fake_.last().idempotency_key, "cancel:1");
  EXPECT_EQ(canceled->status, IntentStatus::kCanceled);
  EXPECT_EQ(canceled->amount_capturable, 0);

  auto twice = provider_.Cancel(in.id, "cancel:2");
  ASSERT_FALSE(twice.ok());
  ExpectError(twice.error(), ErrorCode::kFailedPrecondition, "payment-intent-unexpected-state");
}

TEST_F(StripeTest, ADeclineIsTheIntentNotAnError) {
  auto in = provider_.CreateIntent(Request("tok_chargeDeclinedInsufficientFunds", "pay:declined"));
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->status, IntentStatus::kRequiresPaymentMethod);
  EXPECT_EQ(in->failure_code, "insufficient_funds");  // decline_code over code "card_declined"
  EXPECT_EQ(in->failure_message, "Your card has insufficient funds.");
  EXPECT_EQ(in->payment_id, "pay_1");
  EXPECT_FALSE(in->id.empty());

  // Stripe saved the 402 under the key: a repeat gets the same intent.
  auto again = provider_.CreateIntent(Request("tok_chargeDeclinedInsufficientFunds", "pay:declined"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->id, in->id);
  EXPECT_EQ(fake_.intents_created(), 1);
}

TEST_F(StripeTest, RequiresActionGivesTheRedirectUrl) {
  auto in = provider_.CreateIntent(Request("tok_threeDSecureRedirect", "pay:3ds"));
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->status, IntentStatus::kRequiresAction);
  EXPECT_EQ(in->next_action_url, "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1&payment_intent=" + in->id);
}

TEST_F(StripeTest, RequiresActionThroughStripeJsHasNoUrl) {
  auto in = provider_.CreateIntent(Request("tok_threeDSecure2Required", "pay:sdk"));
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->status, IntentStatus::kRequiresAction);
  EXPECT_TRUE(in->next_action_url.empty());
}

TEST_F(StripeTest, UnknownAndUsedTokensAreRefused) {
  auto unknown = provider_.CreateIntent(Request("tok_unknown", "pay:unknown"));
  ASSERT_FALSE(unknown.ok());
  ExpectError(unknown.error(), ErrorCode::kInvalidArgument, "payment-token-invalid");

  auto used = provider_.CreateIntent(Request("tok_used", "pay:used"));
  ASSERT_FALSE(used.ok());
  ExpectError(used.error(), ErrorCode::kFailedPrecondition, "payment-token-used");

  auto empty = provider_.CreateIntent(Request("", "pay:empty"));
  ASSERT_FALSE(empty.ok());
  ExpectError(empty.error(), ErrorCode::kInvalidArgument, "payment-token-invalid");
  EXPECT_EQ(fake_.seen().size(), 2u);  // the empty token never left
}

TEST_F(StripeTest, BadArgumentsAreRefusedBeforeAnyRequest) {
  CreateIntentRequest r = Request("tok_visa");
  r.amount = 0;
  r.currency = "eur";
  auto in = provider_.CreateIntent(r);
  ASSERT_FALSE(in.ok());
  ExpectError(in.error(), ErrorCode::kInvalidArgument, "validation");
  EXPECT_EQ(in.error().fields.size(), 2u);

  ExpectError(provider_.Capture("pi_1", 0, "k").error(), ErrorCode::kInvalidArgument, "validation");
  ExpectError(provider_.Refund("pi_1", -5, "k").error(), ErrorCode::kInvalidArgument, "validation");
  ExpectError(provider_.Transfer("", 100, "EUR", "k").error(), ErrorCode::kInvalidArgument, "validation");
  ExpectError(provider_.Transfer("acct_1", 100, "eur", "k").error(), ErrorCode::kInvalidArgument, "validation");
  // An id that could climb out of the path is no intent at all.
  ExpectError(provider_.GetIntent("../v1/transfers").error(), ErrorCode::kNotFound, "intent-not-found");
  ExpectError(provider_.Cancel("pi_1?x=1", "k").error(), ErrorCode::kNotFound, "intent-not-found");
  ExpectError(provider_.CreateIntent(Request("tok_visa", std::string(256, 'k'))).error(), ErrorCode::kInvalidArgument,
              "validation");
  EXPECT_TRUE(fake_.seen().empty());
}

TEST_F(StripeTest, TheSameKeyReturnsTheSavedAnswer) {
  ProviderIntent first = MustCreate("tok_visa", "pay:replay");
  ProviderIntent second = MustCreate("tok_visa", "pay:replay");
  EXPECT_EQ(second.id, first.id);
  EXPECT_EQ(second.status, IntentStatus::kSucceeded);
  EXPECT_EQ(fake_.intents_created(), 1);
  ASSERT_EQ(fake_.seen().size(), 2u);
  EXPECT_EQ(fake_.seen()[1].idempotency_key, "pay:replay");

  // The key with other parameters: Stripe's idempotency_error.
  CreateIntentRequest other = Request("tok_visa", "pay:replay");
  other.amount = 9900;
  auto conflict = provider_.CreateIntent(other);
  ASSERT_FALSE(conflict.ok());
  ExpectError(conflict.error(), ErrorCode::kConflict, "idempotency-key-reused");
  EXPECT_EQ(fake_.intents_created(), 1);
}

TEST_F(StripeTest, AKeyStillRunningIsUnavailable) {
  auto in = provider_.CreateIntent(Request("tok_in_progress", "pay:busy"));
  ASSERT_FALSE(in.ok());
  ExpectError(in.error(), ErrorCode::kUnavailable, "provider-unavailable");
}

TEST_F(StripeTest, ServerErrorsAndRateLimitsAreUnavailable) {
  auto down = provider_.CreateIntent(Request("tok_500", "pay:500"));
  ASSERT_FALSE(down.ok());
  ExpectError(down.error(), ErrorCode::kUnavailable, "provider-unavailable");

  auto limited = provider_.CreateIntent(Request("tok_429", "pay:429"));
  ASSERT_FALSE(limited.ok());
  ExpectError(limited.error(), ErrorCode::kUnavailable, "provider-unavailable");
}

TEST_F(StripeTest, NoAnswerWithinTheTimeoutIsUnavailable) {
  StripeOptions o = Options();
  o.timeout = std::chrono::milliseconds(300);
  StripeProvider impatient(o);
  const auto start = std::chrono::steady_clock::now();
  auto in = impatient.CreateIntent(Request("tok_slow", "pay:slow"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(in.ok());
  ExpectError(in.error(), ErrorCode::kUnavailable, "provider-unavailable");
  EXPECT_LT(elapsed, std::chrono::milliseconds(1200));

  // The charge happened after all: the same key finds it (once the first
  // request finished and Stripe saved its answer).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto again = provider_.CreateIntent(Request("tok_slow", "pay:slow"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->status, IntentStatus::kSucceeded);
  EXPECT_EQ(fake_.intents_created(), 1);
}

TEST_F(StripeTest, NoServerIsUnavailable) {
  StripeOptions o = Options();
  o.base_url = "http://127.0.0.1:" + std::to_string(http::testing::ClosedPort());
  StripeProvider nowhere(o);
  auto in = nowhere.CreateIntent(Request("tok_visa"));
  ASSERT_FALSE(in.ok());
  ExpectError(in.error(), ErrorCode::kUnavailable, "provider-unavailable");
}

TEST_F(StripeTest, AnAnswerThatIsNotAnIntentIsInternal) {
  auto garbage = provider_.CreateIntent(Request("tok_garbage", "pay:garbage"));
  ASSERT_FALSE(garbage.ok());
  ExpectError(garbage.error(), ErrorCode::kInternal, "provider-response-invalid");

  auto unnamed = provider_.CreateIntent(Request("tok_confirmation", "pay:confirmation"));
  ASSERT_FALSE(unnamed.ok());
  ExpectError(unnamed.error(), ErrorCode::kInternal, "provider-response-invalid");
}

TEST_F(StripeTest, AWrongSecretKeyIsInternalAndNeverRepeated) {
  StripeProvider wrong(Options("sk_test_wrongWRONGwrong1234"));
  auto in = wrong.CreateIntent(Request("tok_visa"));
  ASSERT_FALSE(in.ok());
  ExpectError(in.error(), ErrorCode::kInternal, "provider-misconfigured");
  EXPECT_EQ(in.error().message.find("1234"), std::string::npos) << in.error().message;
  EXPECT_EQ(fake_.intents_created(), 0);
}

TEST_F(StripeTest, GetIntentReadsRefundsFromTheLatestCharge) {
  ProviderIntent in = MustCreate("tok_visa", "pay:get");
  fake_.SetRefunded(in.id, 700);
  auto got = provider_.GetIntent(in.id);
  ASSERT_TRUE(got.ok()) << got.error().message;
  Seen s = fake_.last();
  EXPECT_EQ(s.method, "GET");
  EXPECT_EQ(s.path, "/v1/payment_intents/" + in.id);
  EXPECT_EQ(s.query, "expand%5B%5D=latest_charge");
  EXPECT_TRUE(s.idempotency_key.empty());
  EXPECT_EQ(s.authorization, "Bearer " + std::string(kSecretKey));
  EXPECT_EQ(got->id, in.id);
  EXPECT_EQ(got->status, IntentStatus::kSucceeded);
  EXPECT_EQ(got->amount_received, 2500);
  EXPECT_EQ(got->amount_refunded, 700);

  auto missing = provider_.GetIntent("pi_nope");
  ASSERT_FALSE(missing.ok());
  ExpectError(missing.error(), ErrorCode::kNotFound, "intent-not-found");
  auto capture_missing = provider_.Capture("pi_nope", 100, "capture:nope");
  ASSERT_FALSE(capture_missing.ok());
  ExpectError(capture_missing.error(), ErrorCode::kNotFound, "intent-not-found");
}

TEST_F(StripeTest, RefundsUpToWhatIsCaptured) {
  ProviderIntent in = MustCreate("tok_visa", "pay:refund");
  auto refund = provider_.Refund(in.id, 1000, "refund:1");
  ASSERT_TRUE(refund.ok()) << refund.error().message;
  Seen s = fake_.last();
  EXPECT_EQ(s.path, "/v1/refunds");
  EXPECT_EQ(s.idempotency_key, "refund:1");
  EXPECT_EQ(s.form, (std::map<std::string, std::string>{{"payment_intent", in.id}, {"amount", "1000"}}));
  EXPECT_TRUE(refund->id.starts_with("re_"));
  EXPECT_EQ(refund->intent_id, in.id);
  EXPECT_EQ(refund->amount, 1000);
  EXPECT_EQ(refund->currency, "EUR");
  EXPECT_EQ(refund->status, "succeeded");

  // A repeat with the key refunds nothing more.
  auto repeat = provider_.Refund(in.id, 1000, "refund:1");
  ASSERT_TRUE(repeat.ok()) << repeat.error().message;
  EXPECT_EQ(repeat->id, refund->id);

  auto over = provider_.Refund(in.id, 1501, "refund:2");
  ASSERT_FALSE(over.ok());
  ExpectError(over.error(), ErrorCode::kFailedPrecondition, "refund-exceeds-captured");

  auto rest = provider_.Refund(in.id, 1500, "refund:3");
  ASSERT_TRUE(rest.ok()) << rest.error().message;
  auto got = provider_.GetIntent(in.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->amount_refunded, 2500);

  auto unknown = provider_.Refund("pi_nope", 100, "refund:4");
  ASSERT_FALSE(unknown.ok());
  ExpectError(unknown.error(), ErrorCode::kNotFound, "intent-not-found");
}

TEST_F(StripeTest, TransfersToAConnectedAccount) {
  auto t = provider_.Transfer("acct_1MTfjCQ9PRzxEwkZ", 400, "USD", "payout:po_1");
  ASSERT_TRUE(t.ok()) << t.error().message;
  Seen s = fake_.last();
  EXPECT_EQ(s.path, "/v1/transfers");
  EXPECT_EQ(s.idempotency_key, "payout:po_1");
  EXPECT_EQ(s.form, (std::map<std::string, std::string>{
                        {"amount", "400"}, {"currency", "usd"}, {"destination", "acct_1MTfjCQ9PRzxEwkZ"}}));
  EXPECT_EQ(t->id, "tr_1MiN3gLkdIwHu7ix");
  EXPECT_EQ(t->destination, "acct_1MTfjCQ9PRzxEwkZ");
  EXPECT_EQ(t->amount, 400);
  EXPECT_EQ(t->currency, "USD");

  // Not a connected account (a seller's user id, say).
  auto bad = provider_.Transfer("usr_123", 400, "USD", "payout:po_2");
  ASSERT_FALSE(bad.ok());
  ExpectError(bad.error(), ErrorCode::kInvalidArgument, "provider-request-invalid");
}

TEST(StripeOptionsCheck, RefusesMissingSecretsWithoutShowingThem) {
  StripeOptions o;
  o.webhook_secret = "whsec_x";
  auto p = StripeProvider::Create(o);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(p.error().message.find("secret_key"), std::string::npos) << p.error().message;

  o.secret_key = "sk_test_abc";
  o.base_url = "ftp://api.stripe.com";
  p = StripeProvider::Create(o);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("base_url"), std::string::npos) << p.error().message;
  EXPECT_EQ(p.error().message.find("sk_test_abc"), std::string::npos);

  o.base_url = "https://api.stripe.com";
  p = StripeProvider::Create(o);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->name(), "stripe");
  EXPECT_EQ(StripeOptions{}.base_url, "https://api.stripe.com");
  EXPECT_EQ(StripeOptions{}.timeout, std::chrono::seconds(10));
}

// Webhooks: verified with the endpoint secret, then parsed.

class StripeWebhookTest : public ::testing::Test {
 protected:
  StripeWebhookTest() : provider_(Options()) {}
  static StripeOptions Options() {
    StripeOptions o;
    o.base_url = "http://127.0.0.1:1";  // never called
    o.secret_key = std::string(kSecretKey);
    o.webhook_secret = std::string(kWebhookSecret);
    return o;
  }
  Result<WebhookEvent> Deliver(const std::string& body, std::string_view secret = kWebhookSecret,
                               int64_t signed_at_offset = 0) {
    return provider_.ParseWebhook(SignWebhook(secret, clock_.NowSeconds() + signed_at_offset, body), body,
                                  clock_.Now());
  }

  ManualClock clock_;
  StripeProvider provider_;
};

std::string IntentEvent(std::string_view type, std::string_view status) {
  boost::json::object in = StripeIntent("pi_3Hook", 2500, "eur", "automatic", "pay_9");
  in["status"] = status;
  in["amount_received"] = status == "succeeded" ? 2500 : 0;
  return EventToJson("evt_1", type, kCreated, std::move(in));
}

TEST_F(StripeWebhookTest, ASignedEventIsParsed) {
  auto ev = Deliver(IntentEvent("payment_intent.succeeded", "succeeded"));
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  EXPECT_EQ(ev->id, "evt_1");
  EXPECT_EQ(ev->type, "payment_intent.succeeded");
  EXPECT_EQ(ev->created, kCreated);
  ASSERT_TRUE(ev->intent.has_value());
  EXPECT_EQ(ev->intent->id, "pi_3Hook");
  EXPECT_EQ(ev->intent->status, IntentStatus::kSucceeded);
  EXPECT_EQ(ev->intent->amount_received, 2500);
  EXPECT_EQ(ev->intent->currency, "EUR");
  EXPECT_EQ(ev->intent->payment_id, "pay_9");
}

TEST_F(StripeWebhookTest, AForgedSignatureIsRefused) {
  const std::string body = IntentEvent("payment_intent.succeeded", "succeeded");
  auto forged = Deliver(body, "whsec_someone_else");
  ASSERT_FALSE(forged.ok());
  ExpectError(forged.error(), ErrorCode::kUnauthenticated, "webhook-signature-invalid");

  // Signed, then changed.
  std::string header = SignWebhook(kWebhookSecret, clock_.NowSeconds(), body);
  std::string tampered = body;
  tampered.replace(tampered.find("2500"), 4, "9999");
  auto changed = provider_.ParseWebhook(header, tampered, clock_.Now());
  ASSERT_FALSE(changed.ok());
  ExpectError(changed.error(), ErrorCode::kUnauthenticated, "webhook-signature-invalid");

  auto unsigned_ = provider_.ParseWebhook("", body, clock_.Now());
  ASSERT_FALSE(unsigned_.ok());
  ExpectError(unsigned_.error(), ErrorCode::kUnauthenticated, "webhook-signature-invalid");
}

TEST_F(StripeWebhookTest, AStaleSignatureIsRefused) {
  auto stale = Deliver(IntentEvent("payment_intent.succeeded", "succeeded"), kWebhookSecret, -3600);
  ASSERT_FALSE(stale.ok());
  ExpectError(stale.error(), ErrorCode::kUnauthenticated, "webhook-timestamp-stale");
}

TEST_F(StripeWebhookTest, ASignedBodyThatIsNotAnEventIsInvalid) {
  auto junk = Deliver(R"({"hello":"world"})");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(StripeWebhookTest, ChargeRefundedTellsTheIntentsRefundedAmount) {
  boost::json::object charge{{"id", "ch_3Hook"},
                             {"object", "charge"},
                             {"amount", 2500},
                             {"amount_captured", 2500},
                             {"amount_refunded", 1000},
                             {"captured", true},
                             {"created", kCreated},
                             {"currency", "eur"},
                             {"failure_code", nullptr},
                             {"metadata", boost::json::object{}},
                             {"paid", true},
                             {"payment_intent", "pi_3Hook"},
                             {"refunded", false},
                             {"status", "succeeded"}};
  auto ev = Deliver(EventToJson("evt_2", "charge.refunded", kCreated, charge));
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  ASSERT_TRUE(ev->intent.has_value());
  EXPECT_EQ(ev->intent->id, "pi_3Hook");
  EXPECT_EQ(ev->intent->status, IntentStatus::kSucceeded);
  EXPECT_EQ(ev->intent->amount, 2500);
  EXPECT_EQ(ev->intent->amount_received, 2500);
  EXPECT_EQ(ev->intent->amount_refunded, 1000);
  EXPECT_EQ(ev->intent->currency, "EUR");
  EXPECT_TRUE(ev->intent->payment_id.empty());  // Stripe's charge has no copy of the intent's metadata

  // A failed charge: the intent needs another payment method.
  charge["status"] = "failed";
  charge["captured"] = false;
  charge["amount_captured"] = 0;
  charge["amount_refunded"] = 0;
  charge["failure_code"] = "card_declined";
  charge["failure_message"] = "Your card was declined.";
  auto failed = Deliver(EventToJson("evt_3", "charge.failed", kCreated, charge));
  ASSERT_TRUE(failed.ok()) << failed.error().message;
  ASSERT_TRUE(failed->intent.has_value());
  EXPECT_EQ(failed->intent->status, IntentStatus::kRequiresPaymentMethod);
  EXPECT_EQ(failed->intent->failure_code, "card_declined");

  // A charge of no payment intent (the legacy Charges API) is nothing to apply.
  charge.erase("payment_intent");
  auto legacy = Deliver(EventToJson("evt_4", "charge.refunded", kCreated, charge));
  ASSERT_TRUE(legacy.ok()) << legacy.error().message;
  EXPECT_FALSE(legacy->intent.has_value());
}

TEST_F(StripeWebhookTest, OtherObjectsAndUnnamedStatusesAreAcknowledgedWithoutIntent) {
  auto dispute = Deliver(EventToJson("evt_5", "charge.dispute.created", kCreated,
                                     boost::json::object{{"id", "dp_1"}, {"object", "dispute"}, {"amount", 2500}}));
  ASSERT_TRUE(dispute.ok()) << dispute.error().message;
  EXPECT_EQ(dispute->type, "charge.dispute.created");
  EXPECT_FALSE(dispute->intent.has_value());

  auto created = Deliver(IntentEvent("payment_intent.created", "requires_confirmation"));
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->id, "evt_1");
  EXPECT_FALSE(created->intent.has_value());
}

}  // namespace
}  // namespace agora::payments
