#include "services/payments/sandbox/cards.h"

#include <algorithm>

#include "core/card_scan.h"

namespace agora::payments::sandbox {
namespace {

struct TestCard {
  std::string_view number;
  Behavior behavior;
};

constexpr TestCard kTestCards[] = {
    {"4000000000000002", Behavior::kDecline},
    {"4000000000009995", Behavior::kInsufficientFunds},
    {"4000002500003155", Behavior::kRequiresAction},
    {"4000000000000119", Behavior::kNetworkError},
};

bool StartsWithRange(std::string_view digits, int len, int lo, int hi) {
  if (static_cast<int>(digits.size()) < len) return false;
  int v = 0;
  for (int i = 0; i < len; ++i) v = v * 10 + (digits[i] - '0');
  return v >= lo && v <= hi;
}

std::string Brand(std::string_view d) {
  if (StartsWithRange(d, 1, 4, 4)) return "visa";
  if (StartsWithRange(d, 2, 51, 55) || StartsWithRange(d, 4, 2221, 2720)) return "mastercard";
  if (StartsWithRange(d, 2, 34, 34) || StartsWithRange(d, 2, 37, 37)) return "amex";
  if (StartsWithRange(d, 4, 6011, 6011) || StartsWithRange(d, 2, 65, 65)) return "discover";
  return "unknown";
}

}  // namespace

const char* BehaviorName(Behavior b) {
  switch (b) {
    case Behavior::kSucceed: return "succeed";
    case Behavior::kDecline: return "decline";
    case Behavior::kInsufficientFunds: return "insufficient_funds";
    case Behavior::kRequiresAction: return "requires_action";
    case Behavior::kNetworkError: return "network_error";
  }
  return "succeed";
}

std::optional<Behavior> ParseBehavior(std::string_view s) {
  for (Behavior b : {Behavior::kSucceed, Behavior::kDecline, Behavior::kInsufficientFunds, Behavior::kRequiresAction,
                     Behavior::kNetworkError}) {
    if (s == BehaviorName(b)) return b;
  }
  return std::nullopt;
}

Result<CardSummary> CheckCard(const CardInput& card, int now_year, int now_month) {
  std::vector<FieldError> errors;
  std::string digits;
  bool shape_ok = true;
  for (char c : card.number) {
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if (c != ' ' && c != '-') {
      shape_ok = false;
    }
  }
  const bool number_ok = shape_ok && digits.size() >= 13 && digits.size() <= 19 && LuhnValid(digits);
  if (!number_ok) errors.push_back({"card_number", "is not a valid card number"});
  if (card.exp_month < 1 || card.exp_month > 12) errors.push_back({"exp_month", "must be from 1 to 12"});
  if (card.exp_year < now_year || card.exp_year > now_year + 20) {
    errors.push_back({"exp_year", "must be this year or up to 20 years ahead"});
  } else if (card.exp_year == now_year && card.exp_month >= 1 && card.exp_month < now_month) {
    errors.push_back({"exp_month", "the card has expired"});
  }
  const std::string brand = number_ok ? Brand(digits) : "unknown";
  const size_t cvc_len = brand == "amex" ? 4 : 3;
  if (card.cvc.size() != cvc_len ||
      !std::all_of(card.cvc.begin(), card.cvc.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    errors.push_back({"cvc", cvc_len == 4 ? "must be 4 digits for this card" : "must be 3 digits"});
  }
  if (!errors.empty()) return Error::Validation(std::move(errors));
  CardSummary s{brand, digits.substr(digits.size() - 4), card.exp_month, card.exp_year, Behavior::kSucceed};
  for (const auto& t : kTestCards) {
    if (digits == t.number) s.behavior = t.behavior;
  }
  return s;
}

}  // namespace agora::payments::sandbox
