// The payments domain: charges through the provider, the payment state
// machine fed by the provider's answers and webhooks, refunds, escrow
// release and seller payouts, each money movement posted to the ledger in
// the same database transaction as the state change and its outbox event.
//
// Payment state machine (PaymentStatus; the provider is the truth about
// money, so every source of news, the synchronous answer, a webhook or a
// reconciliation, goes through one transition function and old news is
// ignored):
//   created    -> processing | requires_action | authorized | succeeded | failed
//   processing -> requires_action | authorized | succeeded | failed | canceled
//   requires_action -> authorized | succeeded | failed | canceled
//   authorized -> succeeded | failed | canceled
//   failed, canceled -> succeeded (the provider says the money moved after all)
//   succeeded: final (refunds are their own records)
//
// Ledger (ledger/ledger.h for the chart of accounts):
//   capture   buyer_payments -total, escrow:<order> +share (per order)
//   refund    escrow:<order> -amount, refunds +amount
//   release   escrow:<order> -rest, seller_payable:<seller> +(rest - commission),
//             platform_commission +commission
//   payout    seller_payable:<seller> -amount, provider_cash +amount
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/db/db.h"
#include "core/events/events.h"
#include "services/payments/client.h"
#include "services/payments/provider/provider.h"

namespace agora::payments {

// The payments, payment_allocations, refunds and payouts tables; applied
// with db.Migrate("payments.domain", DomainMigrations()).
std::span<const db::Migration> DomainMigrations();

struct PaymentOptions {
  // Authorize at checkout and capture once the authorization is confirmed,
  // instead of capturing at once.
  bool manual_capture = false;
};

struct Refund {
  std::string id;  // "ref_..."
  std::string payment_id;
  std::string order_id;
  int64_t amount = 0;
  std::string currency;
  std::string reason;
  std::string provider_refund_id;
  int64_t created_at_ms = 0;
};

enum class PayoutStatus { kPending, kPaid, kFailed };
const char* PayoutStatusName(PayoutStatus s);

struct Payout {
  std::string id;  // "po_..."
  std::string seller_id;
  int64_t amount = 0;
  std::string currency;
  PayoutStatus status = PayoutStatus::kPending;
  std::string provider_transfer_id;
  std::string failure;
  int64_t created_at_ms = 0;
  int64_t paid_at_ms = 0;  // 0 until paid
};

struct CurrencyAmount {
  std::string currency;
  int64_t amount = 0;
};

struct SellerBalance {
  // Payable now (released from escrow, not yet paid out or being paid out).
  std::vector<CurrencyAmount> available;
  // Still in escrow for the seller's paid orders.
  std::vector<CurrencyAmount> pending;
  // Paid out so far.
  std::vector<CurrencyAmount> paid_out;
};

class PaymentService final : public PaymentsClient {
 public:
  // The consumer name of the orders events this service applies.
  static constexpr std::string_view kOrdersConsumer = "payments.orders";

  PaymentService(db::Database& db, PaymentProvider& provider, const Clock& clock, PaymentOptions options = {});

  Result<Payment> Charge(const ChargeRequest& request) override;
  Result<Payment> PaymentForCheckout(std::string_view checkout_id) override;

  // A webhook from `provider_name`: verified by the provider, applied once
  // per event id. Returns true when it changed something. kNotFound type
  // "provider-not-found" for another provider's name; the provider's
  // verification errors otherwise (signature, stale timestamp, bad body).
  Result<bool> HandleWebhook(std::string_view provider_name, std::string_view signature_header,
                             std::string_view body);

  // Applies one orders event (order.refund_requested, order.completed; other
  // types are ignored), once per event id, saving the consumer position.
  // An error asks the bus to deliver it again later.
  Status ApplyOrderEvent(const events::Event& event);

  // Pays every seller's payable balance out through the provider, one
  // payout per seller and currency (pending payouts from an interrupted run
  // first, with their original provider idempotency key). Serialized.
  Result<std::vector<Payout>> RunPayouts();

  Result<SellerBalance> Balance(std::string_view seller_id);
  // Newest first; at most `limit`.
  Result<std::vector<Payout>> Payouts(std::string_view seller_id, int limit);
  Result<std::vector<Refund>> RefundsForOrder(std::string_view order_id);

  // Compares every payment the provider knows of with the ledger: the
  // provider's status, captured and refunded amounts against the payment
  // row, the capture posted to the ledger and the refunds posted. Problems
  // name the payment; at most ledger::kMaxProblems are listed.
  struct ReconcileReport {
    int64_t payments = 0;
    std::vector<std::string> problems;
    bool ok() const { return problems.empty(); }
  };
  Result<ReconcileReport> ReconcileWithProvider();

  // Called after a commit that appended outbox events (the relay's Notify).
  void SetOnEventsCommitted(std::function<void()> fn) { on_events_ = std::move(fn); }

 private:
  Result<Payment> Load(std::string_view checkout_id);
  Result<Payment> ApplyProviderAnswer(const Payment& payment, const ProviderIntent& intent);
  // `payment_token`: the payment's token when the caller has it (else read).
  Result<Payment> Reconcile(const Payment& payment, std::string_view payment_token = {});
  Status RefundOrder(const events::Event& event);
  Status ReleaseOrder(const events::Event& event);
  Status SkipOrderEvent(const events::Event& event);
  Result<Payout> PayOut(Payout payout);
  void Notify() const {
    if (on_events_) on_events_();
  }

  db::Database& db_;
  PaymentProvider& provider_;
  const Clock& clock_;
  const PaymentOptions options_;
  std::function<void()> on_events_;
  std::mutex payouts_mu_;
  std::atomic<int64_t> position_saved_{0};  // the last orders seq saved by SkipOrderEvent
};

}  // namespace agora::payments
