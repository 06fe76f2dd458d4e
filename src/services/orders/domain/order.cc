#include "services/orders/domain/order.h"

#include <fmt/format.h>

#include <charconv>

#include "core/strings.h"

namespace agora::orders {

const char* OrderStatusName(OrderStatus s) {
  switch (s) {
    case OrderStatus::kPendingPayment: return "pending_payment";
    case OrderStatus::kPaid: return "paid";
    case OrderStatus::kShipped: return "shipped";
    case OrderStatus::kDelivered: return "delivered";
    case OrderStatus::kCompleted: return "completed";
    case OrderStatus::kCancelled: return "cancelled";
    case OrderStatus::kDisputed: return "disputed";
    case OrderStatus::kRefunded: return "refunded";
  }
  return "pending_payment";
}

std::optional<OrderStatus> ParseOrderStatus(std::string_view s) {
  for (auto st : {OrderStatus::kPendingPayment, OrderStatus::kPaid, OrderStatus::kShipped, OrderStatus::kDelivered,
                  OrderStatus::kCompleted, OrderStatus::kCancelled, OrderStatus::kDisputed, OrderStatus::kRefunded}) {
    if (s == OrderStatusName(st)) return st;
  }
  return std::nullopt;
}

const char* ActorName(Actor a) {
  switch (a) {
    case Actor::kBuyer: return "buyer";
    case Actor::kSeller: return "seller";
    case Actor::kAdmin: return "admin";
    case Actor::kSystem: return "system";
  }
  return "system";
}

namespace {

struct Edge {
  OrderStatus from;
  OrderStatus to;
  std::initializer_list<Actor> actors;
};

using S = OrderStatus;
using A = Actor;

const Edge kEdges[] = {
    {S::kPendingPayment, S::kPaid, {A::kSystem}},
    {S::kPendingPayment, S::kCancelled, {A::kBuyer, A::kAdmin, A::kSystem}},
    {S::kPaid, S::kShipped, {A::kSeller, A::kAdmin}},
    {S::kPaid, S::kCancelled, {A::kBuyer, A::kSeller, A::kAdmin, A::kSystem}},
    {S::kPaid, S::kDisputed, {A::kBuyer}},
    {S::kShipped, S::kDelivered, {A::kBuyer, A::kAdmin, A::kSystem}},
    {S::kShipped, S::kDisputed, {A::kBuyer}},
    {S::kDelivered, S::kCompleted, {A::kSystem, A::kAdmin}},
    {S::kDelivered, S::kDisputed, {A::kBuyer}},
    {S::kDisputed, S::kCompleted, {A::kAdmin}},
    {S::kDisputed, S::kRefunded, {A::kAdmin}},
};

const char* Verb(OrderStatus to) {
  switch (to) {
    case S::kPaid: return "pay";
    case S::kShipped: return "ship";
    case S::kDelivered: return "confirm delivery of";
    case S::kCompleted: return "complete";
    case S::kCancelled: return "cancel";
    case S::kDisputed: return "dispute";
    case S::kRefunded: return "refund";
    case S::kPendingPayment: return "reopen";
  }
  return "change";
}

}  // namespace

Status CheckTransition(OrderStatus from, OrderStatus to, Actor actor) {
  for (const Edge& e : kEdges) {
    if (e.from != from || e.to != to) continue;
    for (Actor a : e.actors) {
      if (a == actor) return Ok();
    }
    return Error::PermissionDenied(fmt::format("The {} of an order may not {} it", ActorName(actor), Verb(to)))
        .WithType("order-action-forbidden");
  }
  return Error::Conflict(fmt::format("Cannot {} an order that is {}", Verb(to), OrderStatusName(from)))
      .WithType("order-transition-not-allowed");
}

int64_t CommissionPolicy::RateFor(const std::vector<catalog::CategoryRef>& category_path,
                                  std::string_view category_id) const {
  if (auto it = category_bps.find(std::string(category_id)); it != category_bps.end()) return it->second;
  for (auto c = category_path.rbegin(); c != category_path.rend(); ++c) {
    if (auto it = category_bps.find(c->id); it != category_bps.end()) return it->second;
  }
  return default_bps;
}

int64_t CommissionPolicy::OrderRate(const std::vector<std::pair<int64_t, int64_t>>& subtotal_and_bps) const {
  __int128 weighted = 0;
  __int128 total = 0;
  for (const auto& [subtotal, bps] : subtotal_and_bps) {
    weighted += static_cast<__int128>(subtotal) * bps;
    total += subtotal;
  }
  if (total == 0) return default_bps;
  return static_cast<int64_t>((weighted + total / 2) / total);
}

Result<std::map<std::string, int64_t>> ParseCategoryRates(std::string_view text) {
  std::map<std::string, int64_t> out;
  for (std::string_view item : SplitList(text)) {
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const auto eq = item.find('=');
    int64_t bps = -1;
    if (eq != std::string_view::npos && eq > 0) {
      std::string_view num = item.substr(eq + 1);
      auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), bps);
      if (ec != std::errc() || p != num.data() + num.size()) bps = -1;
    }
    if (bps < 0 || bps > 10000) {
      return Error::InvalidArgument(
          fmt::format("commission rates are category_id=basis_points (0..10000), not \"{}\"", item));
    }
    out[std::string(item.substr(0, eq))] = bps;
  }
  return out;
}

Result<std::vector<PlannedOrder>> PlanOrders(const std::vector<CheckoutLine>& lines, const CommissionPolicy& policy) {
  std::vector<PlannedOrder> orders;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> rates;
  for (const auto& line : lines) {
    const auto& l = line.listing;
    if (!orders.empty() && l.price.currency != orders.front().currency) {
      return Error::FailedPrecondition(
                 fmt::format("A checkout pays in one currency; the cart holds {} and {}", orders.front().currency,
                             l.price.currency))
          .WithType("currency-mismatch");
    }
    size_t i = 0;
    while (i < orders.size() && orders[i].seller_id != l.seller_id) ++i;
    if (i == orders.size()) {
      orders.push_back(PlannedOrder{l.seller_id, l.price.currency, 0, 0, {}});
      rates.emplace_back();
    }
    const int64_t subtotal = l.price.amount * line.quantity;
    orders[i].subtotal += subtotal;
    orders[i].items.push_back(OrderItem{l.id, l.title, l.price.amount, line.quantity, l.category_id});
    rates[i].emplace_back(subtotal, policy.RateFor(l.category_path, l.category_id));
  }
  for (size_t i = 0; i < orders.size(); ++i) orders[i].commission_bps = policy.OrderRate(rates[i]);
  return orders;
}

}  // namespace agora::orders
