// Stripe's webhook signature scheme, used by the sandbox gateway to sign
// and by both providers to verify: the header
//   Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// A header may carry several v1= values (during a secret rotation); one
// matching is enough. Comparison is constant-time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/result.h"

namespace agora::payments {

inline constexpr std::string_view kSignatureHeader = "Stripe-Signature";
inline constexpr std::chrono::seconds kDefaultWebhookTolerance{300};

// The header value for `body` signed at `timestamp` (Unix seconds).
std::string SignWebhook(std::string_view secret, int64_t timestamp, std::string_view body);

// Ok when `header` holds a t= within `tolerance` of `now` (either side) and
// a v1= matching the body. kUnauthenticated type "webhook-signature-invalid"
// (missing, malformed or no matching v1), "webhook-timestamp-stale"
// (signature good, timestamp outside the window).
[[nodiscard]] Status VerifyWebhook(std::string_view secret, std::string_view header, std::string_view body,
                                   TimePoint now, std::chrono::seconds tolerance = kDefaultWebhookTolerance);

}  // namespace agora::payments
