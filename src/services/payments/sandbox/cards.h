// The sandbox gateway's card rules: what a card number, expiry and CVC must
// look like, the card brand, and how Stripe's test cards behave. Pure; no
// I/O. The full card number and the CVC never leave this step: a token keeps
// brand, last four digits, expiry and the behaviour only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace agora::payments::sandbox {

// What a charge with the card does in the sandbox (Stripe's test cards).
enum class Behavior {
  kSucceed,             // 4242 4242 4242 4242 and any other valid number
  kDecline,             // 4000 0000 0000 0002: card_declined
  kInsufficientFunds,   // 4000 0000 0000 9995
  kRequiresAction,      // 4000 0025 0000 3155: an extra authentication step
  kNetworkError,        // 4000 0000 0000 0119: the provider fails to answer
};
const char* BehaviorName(Behavior b);
std::optional<Behavior> ParseBehavior(std::string_view s);

struct CardInput {
  std::string number;  // digits, optionally grouped by spaces or dashes
  int64_t exp_month = 0;
  int64_t exp_year = 0;  // four digits
  std::string cvc;
};

struct CardSummary {
  std::string brand;  // visa, mastercard, amex, discover, unknown
  std::string last4;
  int64_t exp_month = 0;
  int64_t exp_year = 0;
  Behavior behavior = Behavior::kSucceed;
};

// Checks `card` at `now_year`/`now_month` (UTC) and summarises it.
// kInvalidArgument (type "validation") naming each bad field: a number that
// is not 13-19 digits or fails the Luhn check, a month outside 1-12, an
// expiry in the past or more than 20 years ahead, a CVC that is not 3 digits
// (4 for American Express).
Result<CardSummary> CheckCard(const CardInput& card, int now_year, int now_month);

}  // namespace agora::payments::sandbox
