#include "services/payments/provider/provider.h"

namespace agora::payments {

const char* IntentStatusName(IntentStatus s) {
  switch (s) {
    case IntentStatus::kRequiresPaymentMethod: return "requires_payment_method";
    case IntentStatus::kRequiresAction: return "requires_action";
    case IntentStatus::kProcessing: return "processing";
    case IntentStatus::kRequiresCapture: return "requires_capture";
    case IntentStatus::kSucceeded: return "succeeded";
    case IntentStatus::kCanceled: return "canceled";
  }
  return "processing";
}

std::optional<IntentStatus> ParseIntentStatus(std::string_view s) {
  for (IntentStatus st : {IntentStatus::kRequiresPaymentMethod, IntentStatus::kRequiresAction,
                          IntentStatus::kProcessing, IntentStatus::kRequiresCapture, IntentStatus::kSucceeded,
                          IntentStatus::kCanceled}) {
    if (s == IntentStatusName(st)) return st;
  }
  // Stripe statuses the service never acts on ("requires_confirmation")
  // are not statuses of ProviderIntent.
  return std::nullopt;
}

}  // namespace agora::payments
