#include "services/payments/api/handlers.h"

#include <ctime>

#include <boost/json.hpp>

#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/id.h"
#include "core/log.h"

namespace agora::payments {

void AddSandboxRoutes(http::App& app, SandboxTokenStore& tokens, const Clock& clock) {
  http::Route route = http::MakeRoute(
      http::Method::kPost, "/sandbox/v1/tokens", http::Execution::kBlocking, [&tokens, &clock](http::Request& req) {
        sandbox::CardInput card;
        if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
              card.number = r.String("card_number", true, 1, 40).value_or("");
              card.exp_month = r.Int("exp_month", true, 1, 12).value_or(0);
              card.exp_year = r.Int("exp_year", true, 2000, 2200).value_or(0);
              card.cvc = r.String("cvc", true, 1, 8).value_or("");
            })) {
          return *bad;
        }
        const int64_t now_ms = clock.NowMillis();
        const std::time_t now_s = static_cast<std::time_t>(now_ms / 1000);
        std::tm utc{};
        gmtime_r(&now_s, &utc);
        auto summary = sandbox::CheckCard(card, utc.tm_year + 1900, utc.tm_mon + 1);
        if (!summary.ok()) return http::ProblemFrom(summary.error());
        SandboxToken token{NewId("tok_", clock), *summary, now_ms};
        if (Status s = tokens.Insert(token); !s.ok()) {
          log::Warn("sandbox token not saved", {{"request_id", req.request_id}, {"error", s.error().message}});
          return http::ProblemFrom(s.error());
        }
        // Stripe's token object, without the card number.
        return http::Response::Json(200, boost::json::object{
                                             {"id", token.id},
                                             {"object", "token"},
                                             {"type", "card"},
                                             {"card",
                                              {{"brand", token.card.brand},
                                               {"last4", token.card.last4},
                                               {"exp_month", token.card.exp_month},
                                               {"exp_year", token.card.exp_year}}},
                                             {"created", now_ms / 1000},
                                             {"livemode", false},
                                         });
      });
  route.accepts_card_data = true;
  route.summary = "Tokenize a card (sandbox gateway)";
  app.Add(std::move(route));
}

}  // namespace agora::payments
