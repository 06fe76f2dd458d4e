#include "services/payments/provider/webhook_signature.h"

#include <charconv>
#include <optional>
#include <vector>

#include "core/crypto/encoding.h"
#include "core/crypto/hash.h"

namespace agora::payments {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// What the MAC covers: the timestamp exactly as the header spells it, a dot,
// the raw body.
std::string Expected(std::string_view secret, std::string_view t, std::string_view body) {
  std::string payload;
  payload.reserve(t.size() + 1 + body.size());
  payload.append(t).append(".").append(body);
  return crypto::HexEncode(crypto::HmacSha256(secret, payload));
}

Error Invalid(std::string msg) {
  return Error::Unauthenticated(std::move(msg)).WithType("webhook-signature-invalid");
}

}  // namespace

std::string SignWebhook(std::string_view secret, int64_t timestamp, std::string_view body) {
  std::string t = std::to_string(timestamp);
  return "t=" + t + ",v1=" + Expected(secret, t, body);
}

Status VerifyWebhook(std::string_view secret, std::string_view header, std::string_view body, TimePoint now,
                     std::chrono::seconds tolerance) {
  // An empty secret would let anyone sign; treat it as "nothing verifies".
  if (secret.empty()) return Invalid("No webhook secret is configured");

  // "t=...,v1=...,v1=...,v0=...": one t, any number of v1; other schemes
  // (v0, Stripe's test scheme) are ignored.
  std::optional<std::string_view> t;
  std::vector<std::string_view> v1;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) return Invalid("The signature header is malformed");
    std::string_view key = item.substr(0, eq);
    std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      if (t) return Invalid("The signature header is malformed");  // two timestamps: which one was signed?
      t = value;
    } else if (key == "v1") {
      v1.push_back(value);
    }
  }
  if (!t || v1.empty()) return Invalid("The signature header has no timestamp or no v1 signature");
  int64_t ts = 0;
  auto [end, ec] = std::from_chars(t->data(), t->data() + t->size(), ts);
  if (ec != std::errc() || end != t->data() + t->size() || t->empty()) {
    return Invalid("The signature header is malformed");
  }

  const std::string expected = Expected(secret, *t, body);
  bool match = false;
  for (std::string_view candidate : v1) {
    // Not short-circuited: every candidate is compared.
    match = crypto::ConstantTimeEquals(expected, candidate) || match;
  }
  if (!match) return Invalid("No signature matches the body");

  // Checked only once the signature is good, so a forged header learns nothing.
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (ts < 0 || (now_s > ts ? now_s - ts : ts - now_s) > tolerance.count()) {
    return Error::Unauthenticated("The webhook timestamp is outside the tolerance window")
        .WithType("webhook-timestamp-stale");
  }
  return Ok();
}

}  // namespace agora::payments
