// Checkout and the life of orders. Talks to the catalog (stock
// reservations) and to payments (the charge) through their client
// interfaces only; everything else between the services travels as events
// through the outbox (services/payments/client.h lists them).
//
// Checkout, a saga:
//   1. price the cart at the catalog's figures; one order per seller
//   2. reserve the stock (catalog), all or nothing, for the payment timeout
//   3. record the checkout and its orders (pending_payment) with the
//      snapshot of titles and prices, and order.created events
//   4. charge through payments (idempotent per checkout)
//   5. paid: commit the reservation, orders -> paid, the cart lines go;
//      failed: orders -> cancelled, the reservation is released;
//      unknown (provider timeout, extra authentication): the payment's
//      webhook decides later (payment.succeeded / payment.failed events),
//      or the payment timeout cancels and releases.
// A checkout is bound to the buyer's Idempotency-Key: running it again
// with the same key resumes that checkout instead of starting another, so
// a crash anywhere above is finished by the retry, never duplicated.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/db/db.h"
#include "core/events/events.h"
#include "services/catalog/client.h"
#include "services/orders/domain/order.h"
#include "services/orders/store/sql_store.h"
#include "services/payments/client.h"

namespace agora::orders {

// The checkouts, orders, order_items, order_transitions and disputes
// tables; applied with db.Migrate("orders.checkout", CheckoutMigrations()).
std::span<const db::Migration> CheckoutMigrations();

struct OrderOptions {
  CommissionPolicy commission;
  // A checkout not paid by then is cancelled and its stock released.
  std::chrono::seconds payment_timeout{900};
  // A shipped order counts as delivered this long after shipping unless
  // the buyer confirmed or disputed earlier.
  std::chrono::milliseconds auto_delivery{std::chrono::hours(24 * 14)};
  // A delivered order completes (escrow released) this long after delivery
  // unless disputed; 0 completes it at delivery.
  std::chrono::milliseconds dispute_window{std::chrono::hours(24 * 3)};
};


// kExpired: not paid in time; kCancelled: the buyer (or an admin) cancelled it unpaid.
enum class CheckoutStatus { kPendingPayment, kPaid, kPaymentFailed, kExpired, kCancelled };
const char* CheckoutStatusName(CheckoutStatus s);

struct Checkout {
  std::string id;  // "chk_..."
  std::string buyer_id;
  CheckoutStatus status = CheckoutStatus::kPendingPayment;
  std::string currency;
  int64_t total = 0;
  std::string reservation_id;
  ShippingAddress shipping_address;
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  bool stock_committed = false;  // its reserved stock is sold (internal; not shown)
  std::vector<Order> orders;
  std::optional<payments::Payment> payment;
};

struct Dispute {
  std::string id;  // "dsp_..."
  std::string order_id;
  std::string reason;
  std::string status;      // "open", "resolved"
  std::string resolution;  // "refund", "release", "partial_refund"
  int64_t refund_amount = 0;
  std::string resolved_by;
  std::string note;
  int64_t opened_at_ms = 0;
  int64_t resolved_at_ms = 0;
};

// Who is asking: the principal's user id and whether they are an admin.
struct Caller {
  std::string user_id;
  bool admin = false;
};

// kMine: where the caller is the buyer or the seller.
enum class OrderRole { kMine, kBuyer, kSeller, kAll };

struct OrderFilter {
  OrderRole role = OrderRole::kMine;
  std::optional<OrderStatus> status;
  int limit = 20;
  // Keyset: orders created before this (created_at_ms, id).
  std::optional<std::pair<int64_t, std::string>> before;
};

class OrderService {
 public:
  static constexpr std::string_view kPaymentsConsumer = "orders.payments";

  OrderService(db::Database& db, CartStore& carts, catalog::CatalogClient& catalog,
               payments::PaymentsClient& payments, const Clock& clock, OrderOptions options);

  // Checks the buyer's cart out. `idempotency_key` binds the checkout: the
  // same buyer and key resume the checkout made with them. Errors:
  // kFailedPrecondition "cart-empty", "cart-item-unavailable",
  // "currency-mismatch", "insufficient-stock" (nothing reserved, nothing
  // written); kConflict "own-listing".
  Result<Checkout> PlaceCheckout(const Caller& buyer, std::string_view idempotency_key,
                                 std::string_view payment_token, const ShippingAddress& address);
  // kNotFound "checkout-not-found" unless it is the caller's (or an admin).
  Result<Checkout> GetCheckout(const Caller& caller, std::string_view checkout_id);

  // The orders the caller may see with this filter (kMine: as buyer or
  // seller, kBuyer, kSeller, kAll: admins only, else kPermissionDenied),
  // newest first.
  Result<std::vector<Order>> ListOrders(const Caller& caller, const OrderFilter& filter);
  // kNotFound "order-not-found" unless the caller is its buyer, its seller
  // or an admin.
  Result<Order> GetOrder(const Caller& caller, std::string_view order_id);
  Result<std::vector<Transition>> History(const Caller& caller, std::string_view order_id);

  Result<Order> Ship(const Caller& caller, std::string_view order_id, std::string_view carrier,
                     std::string_view tracking_number);
  Result<Order> ConfirmDelivery(const Caller& caller, std::string_view order_id);
  // A pending_payment order cancels its whole checkout (one payment covers
  // it) and releases the stock; a paid one is refunded in full.
  Result<Order> Cancel(const Caller& caller, std::string_view order_id, std::string_view reason);
  Result<Dispute> OpenDispute(const Caller& caller, std::string_view order_id, std::string_view reason);
  Result<std::vector<Dispute>> Disputes(const Caller& caller, std::string_view order_id);
  Result<Dispute> GetDispute(const Caller& caller, std::string_view order_id, std::string_view dispute_id);
  // Admin: "refund" (all that is left), "release" (to the seller) or
  // "partial_refund" (refund_amount > 0, the rest released; the caller
  // checks the resolution's name). kFailedPrecondition
  // "refund-exceeds-captured" beyond what was paid and not refunded.
  Result<Dispute> ResolveDispute(const Caller& admin, std::string_view order_id, std::string_view dispute_id,
                                 std::string_view resolution, int64_t refund_amount, std::string_view note);

  // Applies one payments event (payment.succeeded, payment.failed) once.
  Status ApplyPaymentEvent(const events::Event& event);

  // The periodic work: cancels checkouts past their payment timeout (after
  // asking payments once more), marks shipped orders delivered after the
  // auto-delivery time, completes delivered orders after the dispute
  // window. Returns how many orders changed.
  Result<int> Sweep();

  void SetOnEventsCommitted(std::function<void()> fn) { on_events_ = std::move(fn); }

 private:
  Result<Checkout> LoadCheckout(std::string_view checkout_id);
  // Applies the payment's outcome to `checkout` (as its caller loaded it)
  // and returns the checkout as it then stands.
  Result<Checkout> SettlePayment(Checkout checkout, const payments::Payment& payment);
  // Charges a placed checkout (with `payment_token`, or the one it was
  // placed with when empty) and settles it.
  Result<Checkout> FinishCheckout(Checkout checkout, std::string_view payment_token = {});
  // Makes a paid checkout's reserved stock sold (nothing to do when
  // `known_committed`, as last read); if the hold is gone, cancels (and so
  // refunds) its paid orders and returns true.
  Result<bool> ConfirmStock(const std::string& checkout_id, const std::string& reservation_id, bool known_committed);
  // Cancels an unpaid checkout past its payment timeout (or settles it, if
  // payments has news) and releases its stock.
  Status ExpireCheckout(const std::string& checkout_id, int64_t now_ms, int& changed);
  Result<Order> Move(const Caller& caller, std::string_view order_id, OrderStatus to, std::string_view reason,
                     const std::function<Status(db::Tx&, Order&)>& also = {});
  void Notify() const {
    if (on_events_) on_events_();
  }

  db::Database& db_;
  CartStore& carts_;
  catalog::CatalogClient& catalog_;
  payments::PaymentsClient& payments_;
  const Clock& clock_;
  const OrderOptions options_;
  std::function<void()> on_events_;
  std::atomic<int64_t> position_saved_{0};  // the last payments seq saved (ApplyPaymentEvent)
};

}  // namespace agora::orders
