// What other services may ask of payments. In `agora serve` the in-process
// implementation is the PaymentService itself; a distributed deployment
// swaps in an HTTP implementation with the same interface. Everything else
// between orders and payments travels as events through the outbox:
//   payments -> orders: payment.succeeded, payment.failed (refund.created,
//                       refund.failed and payout.paid are informational)
//   orders -> payments: order.refund_requested (money back to the buyer),
//                       order.completed (escrow released to the seller)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace agora::payments {

// How much of a payment belongs to one order (one seller), and the platform
// commission rate on it (basis points, 1000 = 10 %).
struct Allocation {
  std::string order_id;
  std::string seller_id;
  int64_t amount = 0;
  int64_t commission_bps = 0;
};

struct ChargeRequest {
  std::string checkout_id;  // one payment per checkout: the charge's identity
  std::string buyer_id;
  std::string payment_token;  // from the provider's tokenization
  std::string currency;       // ISO 4217
  std::vector<Allocation> allocations;  // at least one; amounts > 0
};

enum class PaymentStatus {
  kCreated,         // recorded, the provider not asked yet
  kProcessing,      // the provider did not answer (timeout): its webhook decides
  kRequiresAction,  // the buyer must authenticate (next_action_url)
  kAuthorized,      // held, not yet captured (manual capture)
  kSucceeded,       // captured: the money is in escrow
  kFailed,          // declined or otherwise refused (failure_code)
  kCanceled,
};
const char* PaymentStatusName(PaymentStatus s);
std::optional<PaymentStatus> ParsePaymentStatus(std::string_view s);

struct Payment {
  std::string id;  // "pay_..."
  std::string checkout_id;
  std::string buyer_id;
  std::string provider;
  std::string provider_intent_id;
  PaymentStatus status = PaymentStatus::kCreated;
  int64_t amount = 0;
  std::string currency;
  int64_t amount_captured = 0;
  int64_t amount_refunded = 0;
  std::string failure_code;
  std::string failure_message;
  std::string next_action_url;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

class PaymentsClient {
 public:
  virtual ~PaymentsClient() = default;

  // Charges the buyer for a checkout through the provider. Idempotent per
  // checkout_id: a repeat returns the payment as it stands (and asks the
  // provider again, with the same provider idempotency key, while the
  // outcome is unknown). A declined card is a payment with status kFailed,
  // not an error. kInvalidArgument for a bad request (no allocations, a
  // non-positive amount).
  virtual Result<Payment> Charge(const ChargeRequest& request) = 0;

  // The payment of a checkout (kNotFound "payment-not-found"). When the
  // provider's answer was lost (kProcessing) the provider is asked first,
  // with the charge's own key; an authorized payment whose capture failed
  // is captured.
  virtual Result<Payment> PaymentForCheckout(std::string_view checkout_id) = 0;
};

}  // namespace agora::payments
