// Orders: one per seller within a checkout, their state machine, and the
// commission rate that applies to them. Pure; no I/O.
//
//   pending_payment -> paid        (the payment succeeded)
//   pending_payment -> cancelled   (payment failed or timed out; the buyer cancels)
//   paid            -> shipped     (the seller, with carrier and tracking number)
//   paid            -> cancelled   (buyer, seller or admin before shipment: full refund)
//   shipped         -> delivered   (the buyer confirms, or automatically after N days)
//   delivered       -> completed   (after the dispute window: escrow released)
//   paid | shipped | delivered -> disputed   (the buyer, before completion)
//   disputed        -> completed   (an admin releases to the seller, or refunds in part)
//   disputed        -> refunded    (an admin refunds in full)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "services/catalog/domain/types.h"

namespace agora::orders {

enum class OrderStatus { kPendingPayment, kPaid, kShipped, kDelivered, kCompleted, kCancelled, kDisputed, kRefunded };
const char* OrderStatusName(OrderStatus s);
std::optional<OrderStatus> ParseOrderStatus(std::string_view s);

// Who asks for a transition.
enum class Actor { kBuyer, kSeller, kAdmin, kSystem };
const char* ActorName(Actor a);

// Ok when `actor` may move an order from `from` to `to`; kConflict type
// "order-transition-not-allowed" when the move is not in the machine above
// ("cannot ship an order that is pending_payment"), kPermissionDenied when
// the move exists but is not this actor's to make.
Status CheckTransition(OrderStatus from, OrderStatus to, Actor actor);

struct OrderItem {
  std::string listing_id;
  std::string title;       // snapshot at checkout
  int64_t unit_price = 0;  // snapshot at checkout, minor units
  int64_t quantity = 0;
  std::string category_id;
};

struct ShippingAddress {
  std::string name;
  std::string line1;
  std::string line2;
  std::string city;
  std::string postal_code;
  std::string region;
  std::string country;  // ISO 3166-1 alpha-2
};

struct Order {
  std::string id;  // "ord_..."
  std::string checkout_id;
  std::string buyer_id;
  std::string seller_id;
  OrderStatus status = OrderStatus::kPendingPayment;
  std::string currency;
  int64_t subtotal = 0;
  int64_t commission_bps = 0;
  int64_t refund_requested = 0;  // sent to payments so far
  std::string carrier;
  std::string tracking_number;
  std::string cancel_reason;
  std::vector<OrderItem> items;
  ShippingAddress shipping_address;  // where the seller sends it
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t paid_at_ms = 0;  // 0: not yet
  int64_t shipped_at_ms = 0;
  int64_t delivered_at_ms = 0;
  int64_t completed_at_ms = 0;
  int64_t cancelled_at_ms = 0;
};

struct Transition {
  OrderStatus from;
  OrderStatus to;
  std::string actor;  // "buyer", "seller", "admin", "system"
  std::string reason;
  int64_t at_ms = 0;
};

// The platform's commission: a default rate and per-category rates (basis
// points; 1000 = 10 %). A listing's rate is its most specific category's
// (the category or its nearest ancestor with a rate), else the default.
struct CommissionPolicy {
  int64_t default_bps = 1000;
  std::map<std::string, int64_t> category_bps;  // category id -> bps

  int64_t RateFor(const std::vector<catalog::CategoryRef>& category_path, std::string_view category_id) const;
  // The rate of an order: the items' rates weighted by their subtotals,
  // rounded to the nearest basis point.
  int64_t OrderRate(const std::vector<std::pair<int64_t, int64_t>>& subtotal_and_bps) const;
};

// Parses "cat_a=500,cat_b=1200" (bps 0..10000). kInvalidArgument otherwise.
Result<std::map<std::string, int64_t>> ParseCategoryRates(std::string_view text);

// Groups priced lines into one order per seller, in first-seen order.
// kFailedPrecondition type "currency-mismatch" when the lines are in more
// than one currency (a checkout pays in one).
struct CheckoutLine {
  catalog::Listing listing;
  int64_t quantity = 0;
};
struct PlannedOrder {
  std::string seller_id;
  std::string currency;
  int64_t subtotal = 0;
  int64_t commission_bps = 0;
  std::vector<OrderItem> items;
};
Result<std::vector<PlannedOrder>> PlanOrders(const std::vector<CheckoutLine>& lines, const CommissionPolicy& policy);

}  // namespace agora::orders
