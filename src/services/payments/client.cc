#include "services/payments/client.h"

namespace agora::payments {

const char* PaymentStatusName(PaymentStatus s) {
  switch (s) {
    case PaymentStatus::kCreated: return "created";
    case PaymentStatus::kProcessing: return "processing";
    case PaymentStatus::kRequiresAction: return "requires_action";
    case PaymentStatus::kAuthorized: return "authorized";
    case PaymentStatus::kSucceeded: return "succeeded";
    case PaymentStatus::kFailed: return "failed";
    case PaymentStatus::kCanceled: return "canceled";
  }
  return "processing";
}

std::optional<PaymentStatus> ParsePaymentStatus(std::string_view s) {
  for (auto st : {PaymentStatus::kCreated, PaymentStatus::kProcessing, PaymentStatus::kRequiresAction,
                  PaymentStatus::kAuthorized, PaymentStatus::kSucceeded, PaymentStatus::kFailed,
                  PaymentStatus::kCanceled}) {
    if (s == PaymentStatusName(st)) return st;
  }
  return std::nullopt;
}

}  // namespace agora::payments
