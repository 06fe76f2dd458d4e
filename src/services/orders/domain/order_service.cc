#include "services/orders/domain/order_service.h"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "core/id.h"
#include "core/log.h"

namespace agora::orders {
namespace {

constexpr db::Migration kMigrations[] = {
    {1, "checkouts_and_orders", R"sql(
CREATE TABLE checkouts (
  id TEXT PRIMARY KEY,
  buyer_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  status TEXT NOT NULL,
  currency TEXT NOT NULL,
  total BIGINT NOT NULL CHECK (total > 0),
  reservation_id TEXT NOT NULL,
  payment_token TEXT NOT NULL,
  shipping_address TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  UNIQUE (buyer_id, idempotency_key)
);
CREATE INDEX checkouts_status_expiry ON checkouts (status, expires_at_ms);
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  checkout_id TEXT NOT NULL REFERENCES checkouts (id),
  buyer_id TEXT NOT NULL,
  seller_id TEXT NOT NULL,
  status TEXT NOT NULL,
  currency TEXT NOT NULL,
  subtotal BIGINT NOT NULL CHECK (subtotal > 0),
  commission_bps BIGINT NOT NULL,
  refund_requested BIGINT NOT NULL DEFAULT 0 CHECK (refund_requested BETWEEN 0 AND subtotal),
  carrier TEXT NOT NULL DEFAULT '',
  tracking_number TEXT NOT NULL DEFAULT '',
  cancel_reason TEXT NOT NULL DEFAULT '',
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  paid_at_ms BIGINT NOT NULL DEFAULT 0,
  shipped_at_ms BIGINT NOT NULL DEFAULT 0,
  delivered_at_ms BIGINT NOT NULL DEFAULT 0,
  completed_at_ms BIGINT NOT NULL DEFAULT 0,
  cancelled_at_ms BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX orders_buyer ON orders (buyer_id, created_at_ms, id);
CREATE INDEX orders_seller ON orders (seller_id, created_at_ms, id);
CREATE INDEX orders_checkout ON orders (checkout_id);
CREATE INDEX orders_status ON orders (status, updated_at_ms);
CREATE TABLE order_items (
  order_id TEXT NOT NULL REFERENCES orders (id),
  listing_id TEXT NOT NULL,
  title TEXT NOT NULL,
  unit_price BIGINT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  category_id TEXT NOT NULL,
  PRIMARY KEY (order_id, listing_id)
);
-- Every status change, in order: the audit trail of an order.
CREATE TABLE order_transitions (
  order_id TEXT NOT NULL REFERENCES orders (id),
  seq BIGINT NOT NULL,
  from_status TEXT NOT NULL,
  to_status TEXT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  at_ms BIGINT NOT NULL,
  PRIMARY KEY (order_id, seq)
);
CREATE TABLE disputes (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL UNIQUE REFERENCES orders (id),
  reason TEXT NOT NULL,
  status TEXT NOT NULL,
  resolution TEXT NOT NULL DEFAULT '',
  refund_amount BIGINT NOT NULL DEFAULT 0,
  resolved_by TEXT NOT NULL DEFAULT '',
  note TEXT NOT NULL DEFAULT '',
  opened_at_ms BIGINT NOT NULL,
  resolved_at_ms BIGINT NOT NULL DEFAULT 0
);
)sql"},
    // stock_committed: the reservation of a paid checkout is sold (the
    // sweeper finishes what a crash interrupted). The shipping address is
    // copied onto each order for its seller.
    {2, "stock_committed_and_order_address", R"sql(
ALTER TABLE checkouts ADD COLUMN stock_committed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN shipping_address TEXT NOT NULL DEFAULT '';
UPDATE orders SET shipping_address = (SELECT c.shipping_address FROM checkouts c WHERE c.id = orders.checkout_id);
CREATE INDEX checkouts_unconfirmed_stock ON checkouts (stock_committed, status);
)sql"},
};

constexpr const char* kOrderCols =
    "id, checkout_id, buyer_id, seller_id, status, currency, subtotal, commission_bps, refund_requested, carrier, "
    "tracking_number, cancel_reason, created_at_ms, updated_at_ms, paid_at_ms, shipped_at_ms, delivered_at_ms, "
    "completed_at_ms, cancelled_at_ms, shipping_address";

ShippingAddress AddressFromJson(const std::string& text);

Order OrderFromRow(const db::Row& r) {
  Order o;
  o.id = r.Text(0);
  o.checkout_id = r.Text(1);
  o.buyer_id = r.Text(2);
  o.seller_id = r.Text(3);
  o.status = ParseOrderStatus(r.Text(4)).value_or(OrderStatus::kPendingPayment);
  o.currency = r.Text(5);
  o.subtotal = r.Int(6);
  o.commission_bps = r.Int(7);
  o.refund_requested = r.Int(8);
  o.carrier = r.Text(9);
  o.tracking_number = r.Text(10);
  o.cancel_reason = r.Text(11);
  o.created_at_ms = r.Int(12);
  o.updated_at_ms = r.Int(13);
  o.paid_at_ms = r.Int(14);
  o.shipped_at_ms = r.Int(15);
  o.delivered_at_ms = r.Int(16);
  o.completed_at_ms = r.Int(17);
  o.cancelled_at_ms = r.Int(18);
  o.shipping_address = AddressFromJson(r.Text(19));
  return o;
}

const char* ForUpdate(db::Tx& tx) { return tx.dialect() == db::Dialect::kPostgres ? " FOR UPDATE" : ""; }

Status LoadItems(db::Tx& tx, Order& o) {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, tx.Exec("orders.items",
                                                "SELECT listing_id, title, unit_price, quantity, category_id "
                                                "FROM order_items WHERE order_id = $1 ORDER BY listing_id",
                                                {o.id}));
  o.items.clear();
  for (const auto& r : rows) o.items.push_back({r.Text(0), r.Text(1), r.Int(2), r.Int(3), r.Text(4)});
  return Ok();
}

Result<std::vector<Order>> SelectOrders(db::Tx& tx, std::string_view where, std::vector<db::Value> params,
                                        bool lock, std::string_view suffix = " ORDER BY id") {
  AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                         tx.Exec(fmt::format("orders.select_{}", where.substr(0, where.find(' '))),
                                 fmt::format("SELECT {} FROM orders WHERE {}{}{}", kOrderCols, where, suffix,
                                             lock ? ForUpdate(tx) : ""),
                                 params));
  std::vector<Order> out;
  for (const auto& r : rows) out.push_back(OrderFromRow(r));
  if (out.size() == 1) {
    AGORA_RETURN_IF_ERROR(LoadItems(tx, out.front()));
  } else if (out.size() > 1) {
    // Every order's items in one statement, not one per order.
    boost::json::array ids;
    std::unordered_map<std::string, Order*> by_id;
    for (auto& o : out) {
      ids.push_back(boost::json::value(o.id));
      by_id[o.id] = &o;
    }
    AGORA_ASSIGN_OR_RETURN(db::Rows items,
                           tx.Exec("orders.items_of_orders",
                                   "SELECT order_id, listing_id, title, unit_price, quantity, category_id FROM "
                                   "order_items WHERE order_id IN (" +
                                       db::JsonArrayElements(tx.dialect(), "$1") + ") ORDER BY order_id, listing_id",
                                   {boost::json::serialize(ids)}));
    for (const auto& r : items) {
      if (auto it = by_id.find(r.Text(0)); it != by_id.end()) {
        it->second->items.push_back({r.Text(1), r.Text(2), r.Int(3), r.Int(4), r.Text(5)});
      }
    }
  }
  return out;
}

Error OrderNotFound() { return Error::NotFound("No such order").WithType("order-not-found"); }
Error CheckoutNotFound() { return Error::NotFound("No such checkout").WithType("checkout-not-found"); }

boost::json::object OrderPayload(const Order& o) {
  return {{"order_id", o.id},       {"checkout_id", o.checkout_id}, {"buyer_id", o.buyer_id},
          {"seller_id", o.seller_id}, {"status", OrderStatusName(o.status)}, {"amount", o.subtotal},
          {"currency", o.currency}};
}

Status Publish(db::Tx& tx, std::string type, const boost::json::object& payload, int64_t now_ms) {
  return events::AppendToOutbox(tx, events::Event{"", std::move(type), "orders", boost::json::serialize(payload),
                                                  now_ms});
}

// Asks payments for money back: the part of the order not refunded yet, or
// `amount` of it.
Status RequestRefund(db::Tx& tx, Order& o, int64_t amount, std::string_view reason, int64_t now_ms) {
  amount = std::min(amount, o.subtotal - o.refund_requested);
  if (amount <= 0) return Ok();
  o.refund_requested += amount;
  AGORA_RETURN_IF_ERROR(tx.Exec("orders.refund_requested",
                                "UPDATE orders SET refund_requested = $2 WHERE id = $1", {o.id, o.refund_requested}));
  boost::json::object payload = OrderPayload(o);
  payload["amount"] = amount;
  payload["reason"] = std::string(reason);
  return Publish(tx, "order.refund_requested", payload, now_ms);
}

// Moves `o` (locked in `tx`) to `to`: the status and its timestamp, the
// transition record and the order.<status> event; cancelling a paid order
// and refunding a disputed one also ask payments for the money back.
Status Apply(db::Tx& tx, Order& o, OrderStatus to, std::string_view actor, std::string_view reason, int64_t now_ms) {
  const OrderStatus from = o.status;
  o.status = to;
  o.updated_at_ms = now_ms;
  const char* time_col = nullptr;
  switch (to) {
    case OrderStatus::kPaid: o.paid_at_ms = now_ms; time_col = "paid_at_ms"; break;
    case OrderStatus::kShipped: o.shipped_at_ms = now_ms; time_col = "shipped_at_ms"; break;
    case OrderStatus::kDelivered: o.delivered_at_ms = now_ms; time_col = "delivered_at_ms"; break;
    case OrderStatus::kCompleted: o.completed_at_ms = now_ms; time_col = "completed_at_ms"; break;
    case OrderStatus::kCancelled:
    case OrderStatus::kRefunded: o.cancelled_at_ms = now_ms; time_col = "cancelled_at_ms"; break;
    default: time_col = nullptr; break;  // disputed: updated_at_ms only
  }
  if (to == OrderStatus::kCancelled) o.cancel_reason = std::string(reason);
  AGORA_RETURN_IF_ERROR(tx.Exec("orders.apply_status",
                                fmt::format("UPDATE orders SET status = $2, updated_at_ms = $3{}, "
                                            "carrier = $4, tracking_number = $5, cancel_reason = $6 WHERE id = $1",
                                            time_col ? fmt::format(", {} = $3", time_col) : std::string()),
                                {o.id, std::string(OrderStatusName(to)), now_ms, o.carrier, o.tracking_number,
                                 o.cancel_reason}));
  AGORA_RETURN_IF_ERROR(tx.Exec("orders.insert_transition",
                                "INSERT INTO order_transitions (order_id, seq, from_status, to_status, actor, reason, at_ms) "
                                "SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM order_transitions "
                                "WHERE order_id = $1",
                                {o.id, std::string(OrderStatusName(from)), std::string(OrderStatusName(to)),
                                 std::string(actor), std::string(reason), now_ms}));
  boost::json::object payload = OrderPayload(o);
  payload["from"] = OrderStatusName(from);
  payload["actor"] = std::string(actor);
  if (!reason.empty()) payload["reason"] = std::string(reason);
  if (to == OrderStatus::kShipped) {
    payload["carrier"] = o.carrier;
    payload["tracking_number"] = o.tracking_number;
  }
  AGORA_RETURN_IF_ERROR(Publish(tx, fmt::format("order.{}", OrderStatusName(to)), payload, now_ms));
  if ((to == OrderStatus::kCancelled && o.paid_at_ms > 0) || to == OrderStatus::kRefunded) {
    AGORA_RETURN_IF_ERROR(RequestRefund(tx, o, o.subtotal, to == OrderStatus::kRefunded ? "dispute" : "cancelled",
                                        now_ms));
  }
  return Ok();
}

std::string AddressJson(const ShippingAddress& a) {
  return boost::json::serialize(boost::json::object{{"name", a.name},
                                                    {"line1", a.line1},
                                                    {"line2", a.line2},
                                                    {"city", a.city},
                                                    {"postal_code", a.postal_code},
                                                    {"region", a.region},
                                                    {"country", a.country}});
}

ShippingAddress AddressFromJson(const std::string& text) {
  ShippingAddress a;
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return a;
  auto get = [&](const char* k) {
    auto* f = v.as_object().if_contains(k);
    return f && f->is_string() ? std::string(f->as_string()) : std::string();
  };
  return {get("name"), get("line1"), get("line2"), get("city"), get("postal_code"), get("region"), get("country")};
}

}  // namespace

std::span<const db::Migration> CheckoutMigrations() { return kMigrations; }

const char* CheckoutStatusName(CheckoutStatus s) {
  switch (s) {
    case CheckoutStatus::kPendingPayment: return "pending_payment";
    case CheckoutStatus::kPaid: return "paid";
    case CheckoutStatus::kPaymentFailed: return "payment_failed";
    case CheckoutStatus::kExpired: return "expired";
    case CheckoutStatus::kCancelled: return "cancelled";
  }
  return "pending_payment";
}

namespace {
CheckoutStatus ParseCheckoutStatus(std::string_view s) {
  for (auto st : {CheckoutStatus::kPendingPayment, CheckoutStatus::kPaid, CheckoutStatus::kPaymentFailed,
                  CheckoutStatus::kExpired, CheckoutStatus::kCancelled}) {
    if (s == CheckoutStatusName(st)) return st;
  }
  return CheckoutStatus::kPendingPayment;
}
}  // namespace

OrderService::OrderService(db::Database& db, CartStore& carts, catalog::CatalogClient& catalog,
                           payments::PaymentsClient& payments, const Clock& clock, OrderOptions options)
    : db_(db), carts_(carts), catalog_(catalog), payments_(payments), clock_(clock), options_(std::move(options)) {}

Result<Checkout> OrderService::LoadCheckout(std::string_view checkout_id) {
  return db_.Transact("orders.load_checkout", db::TxMode::kRead, [&](db::Tx& tx) -> Result<Checkout> {
    AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                           tx.Exec("orders.checkout",
                                   "SELECT id, buyer_id, status, currency, total, reservation_id, shipping_address, "
                                   "created_at_ms, expires_at_ms, stock_committed FROM checkouts WHERE id = $1",
                                   {std::string(checkout_id)}));
    if (rows.empty()) return CheckoutNotFound();
    const auto& r = rows[0];
    Checkout c;
    c.id = r.Text(0);
    c.buyer_id = r.Text(1);
    c.status = ParseCheckoutStatus(r.Text(2));
    c.currency = r.Text(3);
    c.total = r.Int(4);
    c.reservation_id = r.Text(5);
    c.shipping_address = AddressFromJson(r.Text(6));
    c.created_at_ms = r.Int(7);
    c.expires_at_ms = r.Int(8);
    c.stock_committed = r.Int(9) == 1;
    AGORA_ASSIGN_OR_RETURN(c.orders, SelectOrders(tx, "checkout_id = $1", {c.id}, false));
    return c;
  });
}

Result<Checkout> OrderService::PlaceCheckout(const Caller& buyer, std::string_view idempotency_key,
                                             std::string_view payment_token, const ShippingAddress& address) {
  AGORA_ASSIGN_OR_RETURN(db::Rows existing,
                         db_.Exec("orders.checkout_by_key",
                                  "SELECT id FROM checkouts WHERE buyer_id = $1 AND idempotency_key = $2",
                                  {buyer.user_id, std::string(idempotency_key)}));
  if (!existing.empty()) {
    AGORA_ASSIGN_OR_RETURN(Checkout c, LoadCheckout(existing[0].Text(0)));
    return FinishCheckout(std::move(c));
  }

  AGORA_ASSIGN_OR_RETURN(std::vector<CartLine> lines, carts_.Lines(buyer.user_id));
  if (lines.empty()) return Error::FailedPrecondition("The cart is empty").WithType("cart-empty");
  std::vector<CheckoutLine> priced;
  for (const auto& line : lines) {
    auto listing = catalog_.GetActiveListing(line.listing_id);
    if (!listing.ok()) {
      if (listing.error().code != ErrorCode::kNotFound) return std::move(listing).error();
      return Error::FailedPrecondition(
                 fmt::format("Product {} in the cart is no longer for sale; remove it first", line.listing_id))
          .WithType("cart-item-unavailable");
    }
    AGORA_RETURN_IF_ERROR(CheckLine(*listing, buyer.user_id, line.quantity));
    priced.push_back({std::move(*listing), line.quantity});
  }
  AGORA_ASSIGN_OR_RETURN(std::vector<PlannedOrder> plan, PlanOrders(priced, options_.commission));
  for (const auto& p : plan) {
    if (p.subtotal <= 0) {
      return Error::FailedPrecondition("Items without a price cannot be checked out; remove them from the cart")
          .WithType("order-amount-zero");
    }
  }

  const int64_t now_ms = clock_.NowMillis();
  Checkout c;
  c.id = NewId("chk_", clock_);
  c.buyer_id = buyer.user_id;
  c.currency = plan.front().currency;
  for (const auto& p : plan) c.total += p.subtotal;
  c.shipping_address = address;
  c.created_at_ms = now_ms;
  c.expires_at_ms = now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(options_.payment_timeout).count();

  std::vector<catalog::ReservationItem> items;
  for (const auto& line : lines) items.push_back({line.listing_id, line.quantity});
  // The hold outlives the payment timeout, so the sweeper, not the catalog,
  // decides when an unpaid checkout gives its stock back.
  auto reservation = catalog_.Reserve(c.id, items, options_.payment_timeout + std::chrono::minutes(10));
  if (!reservation.ok()) {
    if (reservation.error().code == ErrorCode::kNotFound) {
      return Error::FailedPrecondition("A product in the cart is no longer for sale; remove it first")
          .WithType("cart-item-unavailable");
    }
    return std::move(reservation).error();
  }
  c.reservation_id = reservation->id;

  auto written = db_.Transact("orders.place_checkout", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_RETURN_IF_ERROR(tx.Exec("orders.insert_checkout",
                                  "INSERT INTO checkouts (id, buyer_id, idempotency_key, status, currency, total, "
                                  "reservation_id, payment_token, shipping_address, created_at_ms, updated_at_ms, "
                                  "expires_at_ms) VALUES ($1, $2, $3, 'pending_payment', $4, $5, $6, $7, $8, $9, $9, $10)",
                                  {c.id, c.buyer_id, std::string(idempotency_key), c.currency, c.total, c.reservation_id,
                                   std::string(payment_token), AddressJson(address), now_ms, c.expires_at_ms}));
    for (const auto& p : plan) {
      Order o;
      o.id = NewId("ord_", clock_);
      o.checkout_id = c.id;
      o.buyer_id = c.buyer_id;
      o.seller_id = p.seller_id;
      o.currency = p.currency;
      o.subtotal = p.subtotal;
      o.commission_bps = p.commission_bps;
      o.items = p.items;
      o.created_at_ms = o.updated_at_ms = now_ms;
      AGORA_RETURN_IF_ERROR(tx.Exec("orders.insert_order",
                                    "INSERT INTO orders (id, checkout_id, buyer_id, seller_id, status, currency, "
                                    "subtotal, commission_bps, created_at_ms, updated_at_ms, shipping_address) "
                                    "VALUES ($1, $2, $3, $4, 'pending_payment', $5, $6, $7, $8, $8, $9)",
                                    {o.id, o.checkout_id, o.buyer_id, o.seller_id, o.currency, o.subtotal,
                                     o.commission_bps, now_ms, AddressJson(address)}));
      boost::json::array item_json;
      for (const auto& i : o.items) {
        AGORA_RETURN_IF_ERROR(tx.Exec("orders.insert_item",
                                      "INSERT INTO order_items (order_id, listing_id, title, unit_price, quantity, "
                                      "category_id) VALUES ($1, $2, $3, $4, $5, $6)",
                                      {o.id, i.listing_id, i.title, i.unit_price, i.quantity, i.category_id}));
        item_json.push_back({{"listing_id", i.listing_id}, {"quantity", i.quantity}, {"unit_price", i.unit_price}});
      }
      AGORA_RETURN_IF_ERROR(tx.Exec("orders.insert_transition",
                                    "INSERT INTO order_transitions (order_id, seq, from_status, to_status, actor, "
                                    "reason, at_ms) VALUES ($1, 1, '', 'pending_payment', 'buyer', 'checkout', $2)",
                                    {o.id, now_ms}));
      boost::json::object payload = OrderPayload(o);
      payload["items"] = std::move(item_json);
      AGORA_RETURN_IF_ERROR(Publish(tx, "order.created", payload, now_ms));
    }
    return Ok();
  });
  if (!written.ok()) {
    if (auto r = catalog_.ReleaseReservation(c.reservation_id); !r.ok()) {
      log::Warn("reservation not released after a failed checkout; it expires",
                {{"reservation_id", c.reservation_id}, {"error", r.error().message}});
    }
    if (written.error().code == ErrorCode::kConflict) {
      // The same key placed a checkout at the same moment: resume that one.
      return PlaceCheckout(buyer, idempotency_key, payment_token, address);
    }
    return std::move(written).error();
  }
  Notify();
  AGORA_ASSIGN_OR_RETURN(Checkout placed, LoadCheckout(c.id));
  return FinishCheckout(std::move(placed), payment_token);
}

Result<Checkout> OrderService::FinishCheckout(Checkout c, std::string_view payment_token) {
  if (c.status != CheckoutStatus::kPendingPayment) {
    auto p = payments_.PaymentForCheckout(c.id);
    if (p.ok()) c.payment = std::move(*p);
    return c;
  }
  payments::ChargeRequest charge;
  charge.checkout_id = c.id;
  charge.buyer_id = c.buyer_id;
  charge.currency = c.currency;
  if (payment_token.empty()) {  // a resumed checkout: the token it was placed with
    AGORA_ASSIGN_OR_RETURN(db::Rows token, db_.Exec("orders.checkout_token",
                                                    "SELECT payment_token FROM checkouts WHERE id = $1", {c.id}));
    if (token.empty()) return CheckoutNotFound();
    charge.payment_token = token[0].Text(0);
  } else {
    charge.payment_token = std::string(payment_token);
  }
  for (const auto& o : c.orders) charge.allocations.push_back({o.id, o.seller_id, o.subtotal, o.commission_bps});
  AGORA_ASSIGN_OR_RETURN(payments::Payment payment, payments_.Charge(charge));
  return SettlePayment(std::move(c), payment);
}

Result<Checkout> OrderService::SettlePayment(Checkout c, const payments::Payment& payment) {
  using payments::PaymentStatus;
  const int64_t now_ms = clock_.NowMillis();
  // Settled already (the checkout's own request did it before the event
  // arrived, or a redelivery): nothing to write.
  auto needs = [&](const Order& o) {
    if (o.status == OrderStatus::kPendingPayment) return true;
    return payment.status == PaymentStatus::kSucceeded && o.status == OrderStatus::kCancelled &&
           o.paid_at_ms == 0 && o.refund_requested == 0;
  };
  if (std::none_of(c.orders.begin(), c.orders.end(), needs)) {
    if (payment.status == PaymentStatus::kSucceeded) {
      AGORA_ASSIGN_OR_RETURN(bool cancelled, ConfirmStock(c.id, c.reservation_id, c.stock_committed));
      if (cancelled) {
        AGORA_ASSIGN_OR_RETURN(c, LoadCheckout(c.id));
      }
    }
    c.payment = payment;
    return c;
  }
  if (payment.status == PaymentStatus::kSucceeded) {
    // The orders are claimed for the payment first (pending -> paid), so a
    // timeout or a cancellation running at the same moment finds them paid;
    // then the stock is made sold (ConfirmStock). The transaction's own
    // reads (orders locked, the checkout's status) are the answer.
    bool changed = false;
    std::vector<Order> settled;
    CheckoutStatus status = CheckoutStatus::kPaid;
    AGORA_RETURN_IF_ERROR(db_.Transact("orders.settle_paid", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
      changed = false;
      AGORA_ASSIGN_OR_RETURN(settled, SelectOrders(tx, "checkout_id = $1", {c.id}, true));
      std::set<std::string> paid_listings;
      for (auto& o : settled) {
        if (o.status == OrderStatus::kPendingPayment) {
          AGORA_RETURN_IF_ERROR(Apply(tx, o, OrderStatus::kPaid, "system", "payment " + payment.id, now_ms));
          for (const auto& i : o.items) paid_listings.insert(i.listing_id);
          changed = true;
        } else if (o.status == OrderStatus::kCancelled && o.paid_at_ms == 0 && o.refund_requested == 0) {
          // Paid after the checkout had been given up: the money goes back.
          AGORA_RETURN_IF_ERROR(RequestRefund(tx, o, o.subtotal, "paid_after_cancellation", now_ms));
          changed = true;
        }
      }
      AGORA_ASSIGN_OR_RETURN(db::Rows paid, tx.Exec("orders.checkout_paid",
                                                    "UPDATE checkouts SET status = 'paid', updated_at_ms = $2 "
                                                    "WHERE id = $1 AND status = 'pending_payment'",
                                                    {c.id, now_ms}));
      status = CheckoutStatus::kPaid;
      if (paid.affected == 0) {  // paid by a concurrent settlement, or given up before
        AGORA_ASSIGN_OR_RETURN(db::Rows now, tx.Exec("orders.checkout_status",
                                                     "SELECT status FROM checkouts WHERE id = $1", {c.id}));
        if (now.empty()) return CheckoutNotFound();
        status = ParseCheckoutStatus(now[0].Text(0));
      }
      for (const auto& listing : paid_listings) {
        AGORA_RETURN_IF_ERROR(tx.Exec("orders.cart_remove_bought",
                                      "DELETE FROM cart_items WHERE buyer_id = $1 AND listing_id = $2",
                                      {c.buyer_id, listing}));
      }
      return Ok();
    }));
    if (changed) Notify();
    AGORA_ASSIGN_OR_RETURN(bool cancelled, ConfirmStock(c.id, c.reservation_id, c.stock_committed));
    if (cancelled) {
      AGORA_ASSIGN_OR_RETURN(c, LoadCheckout(c.id));
    } else {
      c.orders = std::move(settled);
      c.status = status;
      c.stock_committed = true;
    }
  } else if (payment.status == PaymentStatus::kFailed || payment.status == PaymentStatus::kCanceled) {
    bool changed = false;
    AGORA_RETURN_IF_ERROR(db_.Transact("orders.settle_failed", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
      changed = false;
      AGORA_ASSIGN_OR_RETURN(auto orders, SelectOrders(tx, "checkout_id = $1", {c.id}, true));
      for (auto& o : orders) {
        if (o.status != OrderStatus::kPendingPayment) continue;
        AGORA_RETURN_IF_ERROR(Apply(tx, o, OrderStatus::kCancelled, "system",
                                    "payment_failed: " + payment.failure_code, now_ms));
        changed = true;
      }
      return StatusOf(tx.Exec("orders.checkout_failed",
                     "UPDATE checkouts SET status = 'payment_failed', updated_at_ms = $2 WHERE id = $1 "
                     "AND status = 'pending_payment'",
                     {c.id, now_ms}));
    }));
    if (changed) Notify();
    if (auto r = catalog_.ReleaseReservation(c.reservation_id); !r.ok()) {
      log::Warn("reservation not released after a failed payment", {{"reservation_id", c.reservation_id},
                                                                     {"error", r.error().message}});
    }
    AGORA_ASSIGN_OR_RETURN(c, LoadCheckout(c.id));
  }
  // Any other status (processing, requires_action): nothing to settle yet.
  c.payment = payment;
  return c;
}

Result<bool> OrderService::ConfirmStock(const std::string& checkout_id, const std::string& reservation_id,
                                        bool known_committed) {
  // Not known to be sold: committing a committed reservation again is a
  // no-op, so a stale `false` costs a repeat, not a wrong answer.
  if (known_committed) return false;
  auto commit = catalog_.CommitReservation(reservation_id);
  const int64_t now_ms = clock_.NowMillis();
  if (!commit.ok() && commit.error().type != "reservation-not-held") return std::move(commit).error();
  const bool held = commit.ok();
  bool changed = false;
  AGORA_RETURN_IF_ERROR(db_.Transact("orders.confirm_stock", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    changed = false;
    if (!held) {
      // The hold is gone (it expired, or the checkout was given up first):
      // the paid orders cannot be filled; cancelling them refunds them.
      AGORA_ASSIGN_OR_RETURN(auto orders, SelectOrders(tx, "checkout_id = $1", {checkout_id}, true));
      for (auto& o : orders) {
        if (o.status != OrderStatus::kPaid) continue;
        AGORA_RETURN_IF_ERROR(Apply(tx, o, OrderStatus::kCancelled, "system", "stock_released", now_ms));
        changed = true;
      }
    }
    return StatusOf(tx.Exec("orders.mark_stock_committed",
                            "UPDATE checkouts SET stock_committed = 1, updated_at_ms = $2 WHERE id = $1",
                            {checkout_id, now_ms}));
  }));
  if (changed) Notify();
  return changed;
}

Result<Checkout> OrderService::GetCheckout(const Caller& caller, std::string_view checkout_id) {
  AGORA_ASSIGN_OR_RETURN(Checkout c, LoadCheckout(checkout_id));
  if (c.buyer_id != caller.user_id && !caller.admin) return CheckoutNotFound();
  auto p = payments_.PaymentForCheckout(c.id);
  if (p.ok()) {
    if (c.status == CheckoutStatus::kPendingPayment &&
        (p->status == payments::PaymentStatus::kSucceeded || p->status == payments::PaymentStatus::kFailed ||
         p->status == payments::PaymentStatus::kCanceled)) {
      return SettlePayment(std::move(c), *p);
    }
    c.payment = std::move(*p);
  }
  return c;
}

Result<std::vector<Order>> OrderService::ListOrders(const Caller& caller, const OrderFilter& filter) {
  std::string where;
  std::vector<db::Value> params;
  switch (filter.role) {
    case OrderRole::kMine:
      where = "(buyer_id = $1 OR seller_id = $1)";
      params.push_back(caller.user_id);
      break;
    case OrderRole::kBuyer: where = "buyer_id = $1"; params.push_back(caller.user_id); break;
    case OrderRole::kSeller: where = "seller_id = $1"; params.push_back(caller.user_id); break;
    case OrderRole::kAll:
      if (!caller.admin) return Error::PermissionDenied("Only admins see all orders");
      where = "1 = 1";
      break;
  }
  if (filter.status) {
    params.push_back(std::string(OrderStatusName(*filter.status)));
    where += fmt::format(" AND status = ${}", params.size());
  }
  if (filter.before) {
    params.push_back(filter.before->first);
    params.push_back(filter.before->second);
    where += fmt::format(" AND (created_at_ms < ${0} OR (created_at_ms = ${0} AND id < ${1}))", params.size() - 1,
                         params.size());
  }
  params.push_back(int64_t{filter.limit});
  const std::string suffix = fmt::format(" ORDER BY created_at_ms DESC, id DESC LIMIT ${}", params.size());
  return db_.Transact("orders.list", db::TxMode::kRead, [&](db::Tx& tx) {
    return SelectOrders(tx, where, params, false, suffix);
  });
}

Result<Order> OrderService::GetOrder(const Caller& caller, std::string_view order_id) {
  AGORA_ASSIGN_OR_RETURN(auto orders, db_.Transact("orders.get", db::TxMode::kRead, [&](db::Tx& tx) {
                           return SelectOrders(tx, "id = $1", {std::string(order_id)}, false);
                         }));
  if (orders.empty()) return OrderNotFound();
  const Order& o = orders[0];
  if (o.buyer_id != caller.user_id && o.seller_id != caller.user_id && !caller.admin) return OrderNotFound();
  return o;
}

Result<std::vector<Transition>> OrderService::History(const Caller& caller, std::string_view order_id) {
  AGORA_RETURN_IF_ERROR(GetOrder(caller, order_id));
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, db_.Exec("orders.history",
                                                 "SELECT from_status, to_status, actor, reason, at_ms FROM "
                                                 "order_transitions WHERE order_id = $1 ORDER BY seq",
                                                 {std::string(order_id)}));
  std::vector<Transition> out;
  for (const auto& r : rows) {
    out.push_back({ParseOrderStatus(r.Text(0)).value_or(OrderStatus::kPendingPayment),
                   ParseOrderStatus(r.Text(1)).value_or(OrderStatus::kPendingPayment), r.Text(2), r.Text(3),
                   r.Int(4)});
  }
  return out;
}

Result<Order> OrderService::Move(const Caller& caller, std::string_view order_id, OrderStatus to,
                                 std::string_view reason, const std::function<Status(db::Tx&, Order&)>& also) {
  const int64_t now_ms = clock_.NowMillis();
  AGORA_ASSIGN_OR_RETURN(Order o, db_.Transact("orders.move", db::TxMode::kWrite, [&](db::Tx& tx) -> Result<Order> {
    AGORA_ASSIGN_OR_RETURN(auto found, SelectOrders(tx, "id = $1", {std::string(order_id)}, true));
    if (found.empty()) return OrderNotFound();
    Order o = std::move(found[0]);
    Actor actor;
    if (caller.user_id.empty()) {
      actor = Actor::kSystem;
    } else if (caller.user_id == o.buyer_id) {
      actor = Actor::kBuyer;
    } else if (caller.user_id == o.seller_id) {
      actor = Actor::kSeller;
    } else if (caller.admin) {
      actor = Actor::kAdmin;
    } else {
      return OrderNotFound();
    }
    AGORA_RETURN_IF_ERROR(CheckTransition(o.status, to, actor));
    if (also) AGORA_RETURN_IF_ERROR(also(tx, o));
    AGORA_RETURN_IF_ERROR(Apply(tx, o, to, ActorName(actor), reason, now_ms));
    return o;
  }));
  Notify();
  return o;
}

Result<Order> OrderService::Ship(const Caller& caller, std::string_view order_id, std::string_view carrier,
                                 std::string_view tracking_number) {
  return Move(caller, order_id, OrderStatus::kShipped, "", [&](db::Tx&, Order& o) {
    o.carrier = std::string(carrier);
    o.tracking_number = std::string(tracking_number);
    return Ok();
  });
}

Result<Order> OrderService::ConfirmDelivery(const Caller& caller, std::string_view order_id) {
  AGORA_ASSIGN_OR_RETURN(Order o, Move(caller, order_id, OrderStatus::kDelivered, "confirmed"));
  if (options_.dispute_window.count() == 0) {
    // No dispute window: delivery completes the order (a crash here is
    // finished by the sweeper).
    return Move(Caller{}, order_id, OrderStatus::kCompleted, "delivered");
  }
  return o;
}

Result<Order> OrderService::Cancel(const Caller& caller, std::string_view order_id, std::string_view reason) {
  AGORA_ASSIGN_OR_RETURN(Order o, GetOrder(caller, order_id));
  if (o.status != OrderStatus::kPendingPayment) {
    return Move(caller, order_id, OrderStatus::kCancelled, reason.empty() ? "cancelled" : reason);
  }
  // Unpaid: the whole checkout goes, one payment covers all its orders.
  AGORA_ASSIGN_OR_RETURN(Checkout c, LoadCheckout(o.checkout_id));
  const int64_t now_ms = clock_.NowMillis();
  bool cancelled = false;
  AGORA_RETURN_IF_ERROR(db_.Transact("orders.cancel_checkout", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_ASSIGN_OR_RETURN(auto orders, SelectOrders(tx, "checkout_id = $1", {c.id}, true));
    for (auto& each : orders) {
      if (each.status != OrderStatus::kPendingPayment) continue;
      const Actor actor = caller.user_id == each.buyer_id ? Actor::kBuyer
                          : caller.admin                   ? Actor::kAdmin
                                                           : Actor::kSeller;
      AGORA_RETURN_IF_ERROR(CheckTransition(each.status, OrderStatus::kCancelled, actor));
      AGORA_RETURN_IF_ERROR(Apply(tx, each, OrderStatus::kCancelled, ActorName(actor),
                                  reason.empty() ? "cancelled" : reason, now_ms));
    }
    AGORA_ASSIGN_OR_RETURN(db::Rows r, tx.Exec("orders.checkout_cancelled",
                                               "UPDATE checkouts SET status = 'cancelled', updated_at_ms = $2 "
                                               "WHERE id = $1 AND status = 'pending_payment'",
                                               {c.id, now_ms}));
    cancelled = r.affected == 1;
    return Ok();
  }));
  Notify();
  if (!cancelled) {
    // Paid in the meantime: nothing to release; cancelled below as paid.
  } else if (auto r = catalog_.ReleaseReservation(c.reservation_id); !r.ok()) {
    log::Warn("reservation not released after a cancellation", {{"reservation_id", c.reservation_id},
                                                                 {"error", r.error().message}});
  }
  AGORA_ASSIGN_OR_RETURN(Order after, GetOrder(caller, order_id));
  if (after.status != OrderStatus::kCancelled) {
    // Paid in the meantime: cancel it as a paid order (a full refund).
    return Move(caller, order_id, OrderStatus::kCancelled, reason.empty() ? "cancelled" : reason);
  }
  return after;
}

namespace {

constexpr const char* kDisputeCols =
    "id, order_id, reason, status, resolution, refund_amount, resolved_by, note, opened_at_ms, resolved_at_ms";

Dispute DisputeFromRow(const db::Row& r) {
  return {r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Text(4), r.Int(5), r.Text(6), r.Text(7), r.Int(8), r.Int(9)};
}

}  // namespace

Result<Dispute> OrderService::OpenDispute(const Caller& caller, std::string_view order_id, std::string_view reason) {
  Dispute d;
  d.id = NewId("dsp_", clock_);
  d.order_id = std::string(order_id);
  d.reason = std::string(reason);
  d.status = "open";
  d.opened_at_ms = clock_.NowMillis();
  AGORA_RETURN_IF_ERROR(Move(caller, order_id, OrderStatus::kDisputed, reason, [&](db::Tx& tx, Order&) -> Status {
                          auto r = tx.Exec("orders.insert_dispute",
                                           "INSERT INTO disputes (id, order_id, reason, status, opened_at_ms) "
                                           "VALUES ($1, $2, $3, 'open', $4)",
                                           {d.id, d.order_id, d.reason, d.opened_at_ms});
                          if (!r.ok() && r.error().code == ErrorCode::kConflict) {
                            return Error::Conflict("This order has had a dispute already").WithType("dispute-exists");
                          }
                          return StatusOf(r);
                        }));
  return d;
}

Result<std::vector<Dispute>> OrderService::Disputes(const Caller& caller, std::string_view order_id) {
  AGORA_RETURN_IF_ERROR(GetOrder(caller, order_id));
  AGORA_ASSIGN_OR_RETURN(db::Rows rows, db_.Exec("orders.disputes",
                                                 fmt::format("SELECT {} FROM disputes WHERE order_id = $1", kDisputeCols),
                                                 {std::string(order_id)}));
  std::vector<Dispute> out;
  for (const auto& r : rows) out.push_back(DisputeFromRow(r));
  return out;
}

Result<Dispute> OrderService::GetDispute(const Caller& caller, std::string_view order_id,
                                         std::string_view dispute_id) {
  AGORA_ASSIGN_OR_RETURN(auto all, Disputes(caller, order_id));
  for (auto& d : all) {
    if (d.id == dispute_id) return std::move(d);
  }
  return Error::NotFound("No such dispute on this order").WithType("dispute-not-found");
}

Result<Dispute> OrderService::ResolveDispute(const Caller& admin, std::string_view order_id,
                                             std::string_view dispute_id, std::string_view resolution,
                                             int64_t refund_amount, std::string_view note) {
  if (!admin.admin) return Error::PermissionDenied("Only admins resolve disputes");
  const int64_t now_ms = clock_.NowMillis();
  AGORA_ASSIGN_OR_RETURN(Dispute d, db_.Transact("orders.resolve_dispute", db::TxMode::kWrite,
                                                 [&](db::Tx& tx) -> Result<Dispute> {
    AGORA_ASSIGN_OR_RETURN(auto found, SelectOrders(tx, "id = $1", {std::string(order_id)}, true));
    if (found.empty()) return OrderNotFound();
    Order& o = found[0];
    AGORA_ASSIGN_OR_RETURN(db::Rows rows,
                           tx.Exec("orders.dispute",
                                   fmt::format("SELECT {} FROM disputes WHERE id = $1 AND order_id = $2{}", kDisputeCols,
                                               ForUpdate(tx)),
                                   {std::string(dispute_id), o.id}));
    if (rows.empty()) return Error::NotFound("No such dispute on this order").WithType("dispute-not-found");
    Dispute d = DisputeFromRow(rows[0]);
    if (d.status != "open") return Error::Conflict("The dispute is resolved already").WithType("dispute-resolved");
    const int64_t left = o.subtotal - o.refund_requested;
    OrderStatus to = OrderStatus::kCompleted;
    if (resolution == "refund") {
      refund_amount = left;
      to = OrderStatus::kRefunded;
    } else if (resolution == "release") {
      refund_amount = 0;
    } else if (resolution == "partial_refund") {
      if (refund_amount > left) {
        return Error::FailedPrecondition(fmt::format("A refund of {} is more than the {} paid for this order and not "
                                                     "refunded yet",
                                                     refund_amount, left))
            .WithType("refund-exceeds-captured");
      }
      if (refund_amount == left) to = OrderStatus::kRefunded;
    }
    AGORA_RETURN_IF_ERROR(CheckTransition(o.status, to, Actor::kAdmin));
    // The refund first, then the completion that releases the rest: payments
    // applies them in this order.
    if (to == OrderStatus::kCompleted && refund_amount > 0) {
      AGORA_RETURN_IF_ERROR(RequestRefund(tx, o, refund_amount, "dispute", now_ms));
    }
    AGORA_RETURN_IF_ERROR(Apply(tx, o, to, "admin", "dispute " + d.id + ": " + std::string(resolution), now_ms));
    d.status = "resolved";
    d.resolution = std::string(resolution);
    d.refund_amount = refund_amount;
    d.resolved_by = admin.user_id;
    d.note = std::string(note);
    d.resolved_at_ms = now_ms;
    AGORA_RETURN_IF_ERROR(tx.Exec("orders.resolve",
                                  "UPDATE disputes SET status = 'resolved', resolution = $2, refund_amount = $3, "
                                  "resolved_by = $4, note = $5, resolved_at_ms = $6 WHERE id = $1",
                                  {d.id, d.resolution, d.refund_amount, d.resolved_by, d.note, now_ms}));
    boost::json::object payload = OrderPayload(o);
    payload["dispute_id"] = d.id;
    payload["resolution"] = d.resolution;
    payload["refund_amount"] = d.refund_amount;
    AGORA_RETURN_IF_ERROR(Publish(tx, "order.dispute_resolved", payload, now_ms));
    return d;
  }));
  Notify();
  return d;
}

Status OrderService::ApplyPaymentEvent(const events::Event& event) {
  const bool succeeded = event.type == "payment.succeeded";
  if (succeeded || event.type == "payment.failed") {
    boost::system::error_code ec;
    auto v = boost::json::parse(event.payload, ec);
    const auto* o = (!ec && v.is_object()) ? &v.as_object() : nullptr;
    const auto* checkout = o ? o->if_contains("checkout_id") : nullptr;
    if (checkout == nullptr || !checkout->is_string()) {
      log::Error("malformed payment event ignored", {{"event_id", event.id}});
    } else {
      payments::Payment p;
      p.checkout_id = std::string(checkout->as_string());
      if (auto* id = o->if_contains("payment_id"); id && id->is_string()) p.id = std::string(id->as_string());
      if (auto* code = o->if_contains("failure_code"); code && code->is_string()) {
        p.failure_code = std::string(code->as_string());
      }
      p.status = succeeded ? payments::PaymentStatus::kSucceeded : payments::PaymentStatus::kFailed;
      AGORA_ASSIGN_OR_RETURN(db::Rows state, db_.Exec("orders.checkout_settled",
                                                      "SELECT status FROM checkouts WHERE id = $1", {p.checkout_id}));
      // Most payment events find their checkout paid by its own request
      // already: one read, no write. That request makes the stock sold next
      // (or, if it died, the sweeper does: unconfirmed stock).
      const bool settled_already = !state.empty() && succeeded && state[0].Text(0) == "paid";
      if (!state.empty() && !settled_already) {
        auto c = LoadCheckout(p.checkout_id);
        if (c.ok()) c = SettlePayment(std::move(*c), p);
        if (!c.ok() && c.error().code != ErrorCode::kNotFound) return std::move(c).error();
      }
    }
  }
  // The position only bounds what a restart replays (settling is
  // idempotent), so it is saved every 64 events, not in a write of its own
  // per event.
  if (event.seq <= 0 || event.seq - position_saved_.load() < 64) return Ok();
  position_saved_ = event.seq;
  return db_.Transact("orders.payments_position", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    return events::SavePosition(tx, kPaymentsConsumer, event.seq);
  });
}

Status OrderService::ExpireCheckout(const std::string& id, int64_t now_ms, int& changed) {
  auto p = payments_.PaymentForCheckout(id);
  if (p.ok() && (p->status == payments::PaymentStatus::kSucceeded || p->status == payments::PaymentStatus::kFailed ||
                 p->status == payments::PaymentStatus::kCanceled)) {
    AGORA_ASSIGN_OR_RETURN(Checkout c, LoadCheckout(id));
    AGORA_RETURN_IF_ERROR(SettlePayment(std::move(c), *p));
    ++changed;
    return Ok();
  }
  // Unpaid in time: cancel and give the stock back. A payment that
  // succeeds later is refunded (SettlePayment).
  AGORA_ASSIGN_OR_RETURN(Checkout c, LoadCheckout(id));
  bool expired = false;
  AGORA_RETURN_IF_ERROR(db_.Transact("orders.expire_checkout", db::TxMode::kWrite, [&](db::Tx& tx) -> Status {
    AGORA_ASSIGN_OR_RETURN(auto orders, SelectOrders(tx, "checkout_id = $1", {id}, true));
    for (auto& o : orders) {
      if (o.status != OrderStatus::kPendingPayment) continue;
      AGORA_RETURN_IF_ERROR(Apply(tx, o, OrderStatus::kCancelled, "system", "payment_timeout", now_ms));
      ++changed;
    }
    AGORA_ASSIGN_OR_RETURN(db::Rows r, tx.Exec("orders.checkout_expired",
                                               "UPDATE checkouts SET status = 'expired', updated_at_ms = $2 "
                                               "WHERE id = $1 AND status = 'pending_payment'",
                                               {id, now_ms}));
    expired = r.affected == 1;
    return Ok();
  }));
  Notify();
  // Paid in the meantime (the settlement locked the orders first): its
  // stock is being sold, not released.
  if (!expired) return Ok();
  if (auto rel = catalog_.ReleaseReservation(c.reservation_id); !rel.ok()) {
    log::Warn("reservation not released at payment timeout", {{"reservation_id", c.reservation_id},
                                                               {"error", rel.error().message}});
  }
  return Ok();
}

Result<int> OrderService::Sweep() {
  const int64_t now_ms = clock_.NowMillis();
  int changed = 0;
  AGORA_ASSIGN_OR_RETURN(db::Rows expired, db_.Exec("orders.expired_checkouts",
                                                    "SELECT id FROM checkouts WHERE status = 'pending_payment' "
                                                    "AND expires_at_ms <= $1 ORDER BY expires_at_ms LIMIT 100",
                                                    {now_ms}));
  AGORA_ASSIGN_OR_RETURN(db::Rows unconfirmed,
                         db_.Exec("orders.unconfirmed_stock",
                                  "SELECT id, reservation_id FROM checkouts WHERE stock_committed = 0 "
                                  "AND status = 'paid' AND updated_at_ms <= $1 ORDER BY updated_at_ms LIMIT 100",
                                  {now_ms - 2000}));
  for (const auto& r : unconfirmed) {
    if (auto s = ConfirmStock(r.Text(0), r.Text(1), false); !s.ok()) {
      log::Warn("sold stock not confirmed yet", {{"checkout_id", r.Text(0)}, {"error", s.error().message}});
    }
  }
  for (const auto& r : expired) {
    const std::string id = r.Text(0);
    if (Status s = ExpireCheckout(id, now_ms, changed); !s.ok()) {
      log::Warn("checkout not expired yet", {{"checkout_id", id}, {"error", s.error().message}});
    }
  }
  const int64_t deliver_before = now_ms - options_.auto_delivery.count();
  AGORA_ASSIGN_OR_RETURN(db::Rows shipped, db_.Exec("orders.overdue_shipped",
                                                    "SELECT id FROM orders WHERE status = 'shipped' "
                                                    "AND shipped_at_ms <= $1 ORDER BY shipped_at_ms LIMIT 100",
                                                    {deliver_before}));
  for (const auto& r : shipped) {
    auto moved = Move(Caller{}, r.Text(0), OrderStatus::kDelivered, "auto_delivery");
    if (moved.ok()) ++changed;
  }
  const int64_t complete_before = now_ms - options_.dispute_window.count();
  AGORA_ASSIGN_OR_RETURN(db::Rows delivered, db_.Exec("orders.due_completion",
                                                      "SELECT id FROM orders WHERE status = 'delivered' "
                                                      "AND delivered_at_ms <= $1 ORDER BY delivered_at_ms LIMIT 100",
                                                      {complete_before}));
  for (const auto& r : delivered) {
    auto moved = Move(Caller{}, r.Text(0), OrderStatus::kCompleted, "dispute_window_passed");
    if (moved.ok()) ++changed;
  }
  return changed;
}

}  // namespace agora::orders
