#include "services/orders/api/handlers.h"

#include <boost/json.hpp>

#include "core/clock.h"
#include "core/http/json_body.h"
#include "core/http/problem.h"
#include "core/log.h"

namespace agora::orders {
namespace {

using http::Request;
using http::Response;

std::string Rfc3339Ms(int64_t ms) { return FormatRfc3339(TimePoint(std::chrono::milliseconds(ms))); }

boost::json::object MoneyJson(const catalog::Money& m) { return {{"amount", m.amount}, {"currency", m.currency}}; }

boost::json::object CartJson(const CartView& view) {
  boost::json::array items;
  for (const auto& p : view.lines) {
    boost::json::object o{{"id", p.line.id},
                          {"product_id", p.line.listing_id},
                          {"quantity", p.line.quantity},
                          {"status", LineStatusName(p.status)},
                          {"added_at", Rfc3339Ms(p.line.added_at_ms)},
                          {"updated_at", Rfc3339Ms(p.line.updated_at_ms)}};
    if (p.listing) {
      o["seller_id"] = p.listing->seller_id;
      o["title"] = p.listing->title;
      o["price"] = MoneyJson(p.listing->price);
      o["available"] = p.listing->quantity;
      o["subtotal"] = MoneyJson(*p.subtotal);
    } else {
      o["seller_id"] = nullptr;
      o["title"] = nullptr;
      o["price"] = nullptr;
      o["available"] = 0;
      o["subtotal"] = nullptr;
    }
    items.push_back(std::move(o));
  }
  boost::json::array totals;
  for (const auto& [currency, amount] : view.totals) totals.push_back({{"currency", currency}, {"amount", amount}});
  boost::json::object cart{{"items", std::move(items)}, {"totals", std::move(totals)}, {"item_count", view.item_count}};
  if (view.updated_at_ms) {
    cart["updated_at"] = Rfc3339Ms(*view.updated_at_ms);
  } else {
    cart["updated_at"] = nullptr;
  }
  return cart;
}

Response ServiceProblem(const Request& req, const Error& error) {
  return http::ServiceProblem(req, error, "orders");
}

// The cart after a change, as the answer to it.
Response CartAnswer(const Request& req, CartService& carts, int status) {
  auto view = carts.View(req.principal->user_id);
  if (!view.ok()) return ServiceProblem(req, view.error());
  Response r = Response::Json(status, CartJson(*view));
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

http::Route Authed(http::Method m, std::string pattern, http::Handler h) {
  http::Route r = http::MakeRoute(m, std::move(pattern), http::Execution::kBlocking, std::move(h));
  r.authenticated = true;
  return r;
}

}  // namespace

void AddRoutes(http::App& app, CartService& carts) {
  app.Add(Authed(http::Method::kGet, "/v1/cart", [&carts](Request& req) { return CartAnswer(req, carts, 200); }));

  app.Add(Authed(http::Method::kPost, "/v1/cart/items", [&carts](Request& req) {
    std::optional<std::string> product;
    std::optional<int64_t> quantity;
    if (auto bad = http::ReadJsonBody(req, [&](json::FieldReader& r) {
          product = r.String("product_id", true, 1, 64);
          quantity = r.Int("quantity", true, 1, CartLimits::kLineQuantityMax);
        })) {
      return *bad;
    }
    auto added = carts.Add(req.principal->user_id, *product, *quantity);
    if (!added.ok()) return ServiceProblem(req, added.error());
    Response r = CartAnswer(req, carts, added->created ? 201 : 200);
    if (r.status < 300) r.headers.Set("Location", "/v1/cart/items/" + added->line.id);
    return r;
  }));

  app.Add(Authed(http::Method::kPatch, "/v1/cart/items/{id}", [&carts](Request& req) {
    std::optional<int64_t> quantity;
    if (auto bad = http::ReadJsonBody(
            req, [&](json::FieldReader& r) { quantity = r.Int("quantity", true, 1, CartLimits::kLineQuantityMax); })) {
      return *bad;
    }
    auto line = carts.SetQuantity(req.principal->user_id, req.PathParam("id"), *quantity);
    if (!line.ok()) return ServiceProblem(req, line.error());
    return CartAnswer(req, carts, 200);
  }));

  app.Add(Authed(http::Method::kDelete, "/v1/cart/items/{id}", [&carts](Request& req) {
    Status s = carts.Remove(req.principal->user_id, req.PathParam("id"));
    if (!s.ok()) return ServiceProblem(req, s.error());
    return Response::Empty(204);
  }));
}

}  // namespace agora::orders
