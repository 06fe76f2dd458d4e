// Events identity publishes through its outbox.
//
//   user.registered   {"user_id", "email", "display_name", "occurred_at"}
//   seller.onboarded  {"user_id", "seller_display_name", "occurred_at"}
//
// Payloads never carry passwords, tokens or payout details.
#pragma once

namespace agora::identity::events_out {

inline constexpr const char* kUserRegistered = "user.registered";
inline constexpr const char* kSellerOnboarded = "seller.onboarded";
inline constexpr const char* kSource = "identity";

}  // namespace agora::identity::events_out
