#include <boost/json.hpp>

#include "core/clock.h"
#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/http/query.h"
#include "core/idempotency/http.h"
#include "core/log.h"
#include "services/payments/api/handlers.h"
#include "services/payments/provider/webhook_signature.h"

namespace agora::payments {
namespace {

using http::Request;
using http::Response;

boost::json::value Time(int64_t ms) {
  if (ms == 0) return nullptr;
  return boost::json::value(FormatRfc3339(TimePoint(std::chrono::milliseconds(ms))));
}

boost::json::array Amounts(const std::vector<CurrencyAmount>& list) {
  boost::json::array out;
  for (const auto& a : list) out.push_back({{"amount", a.amount}, {"currency", a.currency}});
  return out;
}

boost::json::object PayoutJson(const Payout& p) {
  return {{"id", p.id},
          {"seller_id", p.seller_id},
          {"amount", {{"amount", p.amount}, {"currency", p.currency}}},
          {"status", PayoutStatusName(p.status)},
          {"provider_transfer_id",
           p.provider_transfer_id.empty() ? boost::json::value(nullptr) : boost::json::value(p.provider_transfer_id)},
          {"failure", p.failure.empty() ? boost::json::value(nullptr) : boost::json::value(p.failure)},
          {"created_at", Time(p.created_at_ms)},
          {"paid_at", Time(p.paid_at_ms)}};
}

Response Private(Response r) {
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

Response ServiceProblem(const Request& req, const Error& error) {
  return http::ServiceProblem(req, error, "payments");
}

http::Route Authed(http::Method m, std::string pattern, http::Handler h, std::vector<std::string> roles) {
  http::Route r = http::MakeRoute(m, std::move(pattern), http::Execution::kBlocking, std::move(h));
  r.authenticated = true;
  r.roles = std::move(roles);
  return r;
}

}  // namespace

void AddPaymentRoutes(http::App& app, PaymentService& payments, idempotency::Store& keys) {
  using http::Method;

  // The provider calls this; it proves itself with the signature, not a token.
  http::Route webhook = http::MakeRoute(
      Method::kPost, "/v1/payments/webhooks/{provider}", http::Execution::kBlocking, [&payments](Request& req) {
        const std::string signature(req.headers.Get(kSignatureHeader).value_or(""));
        auto applied = payments.HandleWebhook(req.PathParam("provider"), signature, req.body);
        if (!applied.ok()) {
          const Error& e = applied.error();
          if (e.code == ErrorCode::kUnauthenticated || e.code == ErrorCode::kInvalidArgument) {
            log::Warn("webhook refused", {{"request_id", req.request_id}, {"type", e.type}});
            const bool signature = e.code == ErrorCode::kUnauthenticated;
            return http::Problem(400, signature ? e.type : "webhook-malformed",
                                 signature ? "Webhook signature refused" : "Webhook body is not an event", e.message);
          }
          return ServiceProblem(req, e);
        }
        return Response::Json(200, boost::json::object{{"received", true}, {"applied", *applied}});
      });
  webhook.summary = "Receive a payment provider's signed webhook";
  app.Add(std::move(webhook));

  app.Add(Authed(
      Method::kGet, "/v1/sellers/me/balance",
      [&payments](Request& req) {
        auto b = payments.Balance(req.principal->user_id);
        if (!b.ok()) return ServiceProblem(req, b.error());
        return Private(Response::Json(200, boost::json::object{{"available", Amounts(b->available)},
                                                               {"pending", Amounts(b->pending)},
                                                               {"paid_out", Amounts(b->paid_out)}}));
      },
      {"seller"}));

  app.Add(Authed(
      Method::kGet, "/v1/sellers/me/payouts",
      [&payments](Request& req) {
        http::QueryReader q(req.query);
        const int limit = static_cast<int>(q.Int("limit", 1, 100).value_or(20));
        if (Status s = q.Finish(); !s.ok()) return http::ProblemFrom(s.error());
        auto list = payments.Payouts(req.principal->user_id, limit);
        if (!list.ok()) return ServiceProblem(req, list.error());
        boost::json::array items;
        for (const auto& p : *list) items.push_back(PayoutJson(p));
        return Private(Response::Json(200, boost::json::object{{"data", std::move(items)}}));
      },
      {"seller"}));

  app.Add(Authed(
      Method::kPost, "/v1/admin/payouts",
      [&payments, &keys](Request& req) {
        return idempotency::RunOnce(keys, req, req.principal->user_id + ":POST /v1/admin/payouts", true, [&] {
          // No parameters: an empty body or an empty object.
          if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
            if (auto bad = http::ReadJsonBody(req, [](json::FieldReader&) {})) return *bad;
          }
          auto paid = payments.RunPayouts();
          if (!paid.ok()) return ServiceProblem(req, paid.error());
          boost::json::array items;
          for (const auto& p : *paid) items.push_back(PayoutJson(p));
          return Private(Response::Json(200, boost::json::object{{"data", std::move(items)}}));
        });
      },
      {"admin"}));
}

}  // namespace agora::payments
