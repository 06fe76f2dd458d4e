// Checkout and order routes. Every answer is private to the caller
// (Cache-Control: no-store).
#include <boost/json.hpp>
#include <fmt/format.h>

#include <charconv>

#include "core/clock.h"
#include "core/crypto/encoding.h"
#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/http/query.h"
#include "core/idempotency/http.h"
#include "core/log.h"
#include "services/orders/api/handlers.h"

namespace agora::orders {
namespace {

using http::Request;
using http::Response;

boost::json::value Time(int64_t ms) {
  if (ms == 0) return nullptr;
  return boost::json::value(FormatRfc3339(TimePoint(std::chrono::milliseconds(ms))));
}

boost::json::object Money(int64_t amount, const std::string& currency) {
  return {{"amount", amount}, {"currency", currency}};
}

boost::json::object AddressJson(const ShippingAddress& a) {
  return {{"name", a.name},   {"line1", a.line1},           {"line2", a.line2},  {"city", a.city},
          {"postal_code", a.postal_code}, {"region", a.region}, {"country", a.country}};
}

// `o` as `viewer` may see it: the commission rate is the seller's and the
// platform's business, not the buyer's.
boost::json::object OrderJson(const Order& o, const Caller& viewer) {
  boost::json::array items;
  for (const auto& i : o.items) {
    items.push_back({{"product_id", i.listing_id},
                     {"title", i.title},
                     {"unit_price", Money(i.unit_price, o.currency)},
                     {"quantity", i.quantity},
                     {"subtotal", Money(i.unit_price * i.quantity, o.currency)}});
  }
  boost::json::value shipment = nullptr;
  if (o.shipped_at_ms > 0) {
    shipment = boost::json::object{
        {"carrier", o.carrier}, {"tracking_number", o.tracking_number}, {"shipped_at", Time(o.shipped_at_ms)}};
  }
  return {{"id", o.id},
          {"checkout_id", o.checkout_id},
          {"status", OrderStatusName(o.status)},
          {"buyer_id", o.buyer_id},
          {"seller_id", o.seller_id},
          {"items", std::move(items)},
          {"total", Money(o.subtotal, o.currency)},
          {"refunded", Money(o.refund_requested, o.currency)},
          {"shipment", std::move(shipment)},
          {"shipping_address", AddressJson(o.shipping_address)},
          {"cancel_reason", o.cancel_reason.empty() ? boost::json::value(nullptr) : boost::json::value(o.cancel_reason)},
          {"created_at", Time(o.created_at_ms)},
          {"updated_at", Time(o.updated_at_ms)},
          {"paid_at", Time(o.paid_at_ms)},
          {"delivered_at", Time(o.delivered_at_ms)},
          {"completed_at", Time(o.completed_at_ms)},
          {"cancelled_at", Time(o.cancelled_at_ms)},
          {"commission_rate_bps", viewer.admin || viewer.user_id == o.seller_id ? boost::json::value(o.commission_bps)
                                                                               : boost::json::value(nullptr)}};
}

boost::json::value PaymentJson(const std::optional<payments::Payment>& p) {
  if (!p) return nullptr;
  boost::json::value next = nullptr;
  if (p->status == payments::PaymentStatus::kRequiresAction && !p->next_action_url.empty()) {
    next = boost::json::object{{"type", "redirect_to_url"}, {"url", p->next_action_url}};
  }
  return boost::json::object{
      {"id", p->id},
      {"status", payments::PaymentStatusName(p->status)},
      {"amount", Money(p->amount, p->currency)},
      {"captured", Money(p->amount_captured, p->currency)},
      {"refunded", Money(p->amount_refunded, p->currency)},
      {"failure_code", p->failure_code.empty() ? boost::json::value(nullptr) : boost::json::value(p->failure_code)},
      {"failure_message",
       p->failure_message.empty() ? boost::json::value(nullptr) : boost::json::value(p->failure_message)},
      {"next_action", std::move(next)}};
}

boost::json::object CheckoutJson(const Checkout& c, const Caller& viewer) {
  boost::json::array orders;
  for (const auto& o : c.orders) orders.push_back(OrderJson(o, viewer));
  return {{"id", c.id},
          {"status", CheckoutStatusName(c.status)},
          {"buyer_id", c.buyer_id},
          {"total", Money(c.total, c.currency)},
          {"shipping_address", AddressJson(c.shipping_address)},
          {"orders", std::move(orders)},
          {"payment", PaymentJson(c.payment)},
          {"created_at", Time(c.created_at_ms)},
          {"expires_at", Time(c.expires_at_ms)}};
}

boost::json::object DisputeJson(const Dispute& d) {
  return {{"id", d.id},
          {"order_id", d.order_id},
          {"reason", d.reason},
          {"status", d.status},
          {"resolution", d.resolution.empty() ? boost::json::value(nullptr) : boost::json::value(d.resolution)},
          {"refund_amount", d.refund_amount},
          {"note", d.note},
          {"opened_at", Time(d.opened_at_ms)},
          {"resolved_at", Time(d.resolved_at_ms)}};
}

Response Private(Response r) {
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

Response ServiceProblem(const Request& req, const Error& error) {
  if (error.type == "refund-exceeds-captured") {
    return http::Problem(422, error.type, "Refund exceeds what was captured", error.message);
  }
  return http::ServiceProblem(req, error, "orders");
}

Caller CallerOf(const Request& req) { return Caller{req.principal->user_id, req.principal->HasRole("admin")}; }

http::Route Authed(http::Method m, std::string pattern, http::Handler h, std::vector<std::string> roles = {}) {
  http::Route r = http::MakeRoute(m, std::move(pattern), http::Execution::kBlocking, std::move(h));
  r.authenticated = true;
  r.roles = std::move(roles);
  return r;
}

// Reads an optional JSON object body: an empty body counts as {}.
template <class F>
std::optional<Response> ReadOptionalBody(const Request& req, F&& read) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) return std::nullopt;
  return http::ReadJsonBody(req, std::forward<F>(read));
}

std::string EncodeCursor(const Order& o) {
  return crypto::Base64UrlEncode(fmt::format("{}:{}", o.created_at_ms, o.id));
}

std::optional<std::pair<int64_t, std::string>> DecodeCursor(std::string_view text) {
  auto raw = crypto::Base64UrlDecode(text);
  if (!raw) return std::nullopt;
  const auto colon = raw->find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  int64_t ms = 0;
  auto [p, ec] = std::from_chars(raw->data(), raw->data() + colon, ms);
  if (ec != std::errc() || p != raw->data() + colon) return std::nullopt;
  std::string id = raw->substr(colon + 1);
  if (!id.starts_with("ord_") || id.size() > 64) return std::nullopt;
  return std::pair{ms, id};
}

Response OrderAnswer(const Request& req, const Result<Order>& o) {
  if (!o.ok()) return ServiceProblem(req, o.error());
  return Private(Response::Json(200, OrderJson(*o, CallerOf(req))));
}

}  // namespace

void AddOrderRoutes(http::App& app, OrderService& orders, idempotency::Store& keys) {
  using http::Method;

  app.Add(Authed(Method::kPost, "/v1/checkout", [&orders, &keys](Request& req) {
    return idempotency::RunOnce(keys, req, req.principal->user_id + ":POST /v1/checkout", true, [&] {
      std::string token;
      ShippingAddress a;
      if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
            token = r.String("payment_token", true, 1, 255).value_or("");
            if (const auto* obj = r.Object("shipping_address", true)) {
              json::FieldReader s(*obj, "shipping_address.");
              a.name = s.String("name", true, 1, 200).value_or("");
              a.line1 = s.String("line1", true, 1, 200).value_or("");
              a.line2 = s.String("line2", false, 0, 200).value_or("");
              a.city = s.String("city", true, 1, 100).value_or("");
              a.postal_code = s.String("postal_code", true, 1, 20).value_or("");
              a.region = s.String("region", false, 0, 100).value_or("");
              a.country = s.String("country", true, 2, 2).value_or("");
              if (a.country.size() == 2 && !(std::isupper(static_cast<unsigned char>(a.country[0])) &&
                                             std::isupper(static_cast<unsigned char>(a.country[1])))) {
                s.AddError(s.Name("country"), "an ISO 3166-1 alpha-2 code in capitals, such as DE");
              }
              s.FinishInto(r);
            }
          })) {
        return *bad;
      }
      auto c = orders.PlaceCheckout(CallerOf(req), *req.headers.Get(idempotency::kHeader), token, a);
      if (!c.ok()) return ServiceProblem(req, c.error());
      Response r = Private(Response::Json(201, CheckoutJson(*c, CallerOf(req))));
      r.headers.Set("Location", "/v1/checkouts/" + c->id);
      return r;
    });
  }));

  app.Add(Authed(Method::kGet, "/v1/checkouts/{id}", [&orders](Request& req) {
    auto c = orders.GetCheckout(CallerOf(req), req.PathParam("id"));
    if (!c.ok()) return ServiceProblem(req, c.error());
    return Private(Response::Json(200, CheckoutJson(*c, CallerOf(req))));
  }));

  app.Add(Authed(Method::kGet, "/v1/orders", [&orders](Request& req) {
    OrderFilter filter;
    const Caller caller = CallerOf(req);
    filter.role = caller.admin ? OrderRole::kAll : OrderRole::kMine;
    http::QueryReader q(req.query);
    if (auto role = q.String("role", 10)) {
      if (*role == "buyer") {
        filter.role = OrderRole::kBuyer;
      } else if (*role == "seller") {
        filter.role = OrderRole::kSeller;
      } else if (*role == "all") {
        filter.role = OrderRole::kAll;
      } else {
        q.AddError("role", "must be buyer, seller or all");
      }
    }
    if (auto status = q.String("status", 20)) {
      filter.status = ParseOrderStatus(*status);
      if (!filter.status) {
        q.AddError("status", "must be pending_payment, paid, shipped, delivered, completed, cancelled, disputed or refunded");
      }
    }
    filter.limit = static_cast<int>(q.Int("limit", 1, 100).value_or(20));
    if (auto cursor = q.String("cursor", 200)) {
      filter.before = DecodeCursor(*cursor);
      if (!filter.before) q.AddError("cursor", "not a cursor from a previous page");
    }
    if (Status s = q.Finish(); !s.ok()) return http::ProblemFrom(s.error());
    ++filter.limit;  // one more tells whether there is a next page
    auto list = orders.ListOrders(caller, filter);
    if (!list.ok()) return ServiceProblem(req, list.error());
    boost::json::array items;
    boost::json::value next = nullptr;
    for (size_t i = 0; i < list->size(); ++i) {
      if (static_cast<int>(i) == filter.limit - 1) {
        next = boost::json::value(EncodeCursor((*list)[i - 1]));
        break;
      }
      items.push_back(OrderJson((*list)[i], caller));
    }
    return Private(Response::Json(200, boost::json::object{{"data", std::move(items)}, {"next_cursor", next}}));
  }));

  app.Add(Authed(Method::kGet, "/v1/orders/{id}", [&orders](Request& req) {
    const Caller caller = CallerOf(req);
    auto o = orders.GetOrder(caller, req.PathParam("id"));
    if (!o.ok()) return ServiceProblem(req, o.error());
    auto history = orders.History(caller, o->id);
    if (!history.ok()) return ServiceProblem(req, history.error());
    boost::json::object body = OrderJson(*o, caller);
    boost::json::array h;
    for (const auto& t : *history) {
      h.push_back({{"from", t.from == t.to ? boost::json::value(nullptr) : boost::json::value(OrderStatusName(t.from))},
                   {"to", OrderStatusName(t.to)},
                   {"actor", t.actor},
                   {"reason", t.reason},
                   {"at", Time(t.at_ms)}});
    }
    if (!h.empty()) h[0].as_object()["from"] = nullptr;  // the first entry is the creation
    body["history"] = std::move(h);
    return Private(Response::Json(200, body));
  }));

  app.Add(Authed(Method::kPost, "/v1/orders/{id}/ship", [&orders](Request& req) {
    std::string carrier;
    std::string tracking;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          carrier = r.String("carrier", true, 1, 100).value_or("");
          tracking = r.String("tracking_number", true, 1, 100).value_or("");
        })) {
      return *bad;
    }
    return OrderAnswer(req, orders.Ship(CallerOf(req), req.PathParam("id"), carrier, tracking));
  }));

  app.Add(Authed(Method::kPost, "/v1/orders/{id}/confirm-delivery", [&orders](Request& req) {
    if (auto bad = ReadOptionalBody(req, [](json::FieldReader&) {})) return *bad;
    return OrderAnswer(req, orders.ConfirmDelivery(CallerOf(req), req.PathParam("id")));
  }));

  app.Add(Authed(Method::kPost, "/v1/orders/{id}/cancel", [&orders, &keys](Request& req) {
    const std::string scope = req.principal->user_id + ":POST /v1/orders/{id}/cancel";
    return idempotency::RunOnce(keys, req, scope, false, [&] {
      std::string reason;
      if (auto bad = ReadOptionalBody(req, [&](json::FieldReader& r) {
            reason = r.String("reason", false, 0, 500).value_or("");
          })) {
        return *bad;
      }
      return OrderAnswer(req, orders.Cancel(CallerOf(req), req.PathParam("id"), reason));
    });
  }));

  app.Add(Authed(Method::kPost, "/v1/orders/{id}/disputes", [&orders](Request& req) {
    std::string reason;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          reason = r.String("reason", true, 1, 2000).value_or("");
        })) {
      return *bad;
    }
    auto d = orders.OpenDispute(CallerOf(req), req.PathParam("id"), reason);
    if (!d.ok()) return ServiceProblem(req, d.error());
    Response r = Private(Response::Json(201, DisputeJson(*d)));
    r.headers.Set("Location", fmt::format("/v1/orders/{}/disputes/{}", d->order_id, d->id));
    return r;
  }));

  app.Add(Authed(Method::kGet, "/v1/orders/{id}/disputes", [&orders](Request& req) {
    auto list = orders.Disputes(CallerOf(req), req.PathParam("id"));
    if (!list.ok()) return ServiceProblem(req, list.error());
    boost::json::array items;
    for (const auto& d : *list) items.push_back(DisputeJson(d));
    return Private(Response::Json(200, boost::json::object{{"data", std::move(items)}}));
  }));

  app.Add(Authed(Method::kGet, "/v1/orders/{id}/disputes/{dispute_id}", [&orders](Request& req) {
    auto d = orders.GetDispute(CallerOf(req), req.PathParam("id"), req.PathParam("dispute_id"));
    if (!d.ok()) return ServiceProblem(req, d.error());
    return Private(Response::Json(200, DisputeJson(*d)));
  }));

  app.Add(Authed(
      Method::kPost, "/v1/orders/{id}/disputes/{dispute_id}/resolve",
      [&orders, &keys](Request& req) {
        const std::string scope = req.principal->user_id + ":POST /v1/orders/{id}/disputes/{dispute_id}/resolve";
        return idempotency::RunOnce(keys, req, scope, true, [&] {
          std::string resolution;
          int64_t amount = 0;
          std::string note;
          if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
                resolution = r.String("resolution", true, 1, 32).value_or("");
                if (!resolution.empty() && resolution != "refund" && resolution != "release" &&
                    resolution != "partial_refund") {
                  r.AddError("resolution", "must be refund, release or partial_refund");
                }
                auto refund = r.Int("refund_amount", false, 1, int64_t{1} << 52);
                if (resolution == "partial_refund" && !refund && !r.has_errors()) {
                  r.AddError("refund_amount", "required for a partial refund");
                } else if (resolution != "partial_refund" && refund) {
                  r.AddError("refund_amount", "only for a partial refund");
                }
                amount = refund.value_or(0);
                note = r.String("note", false, 0, 2000).value_or("");
              })) {
            return *bad;
          }
          auto d = orders.ResolveDispute(CallerOf(req), req.PathParam("id"), req.PathParam("dispute_id"), resolution,
                                         amount, note);
          if (!d.ok()) return ServiceProblem(req, d.error());
          return Private(Response::Json(200, DisputeJson(*d)));
        });
      },
      {"admin"}));
}

}  // namespace agora::orders
