#include "services/payments/provider/webhook_signature.h"

#include <gtest/gtest.h>

#include "core/crypto/encoding.h"
#include "core/crypto/hash.h"

namespace agora::payments {
namespace {

constexpr std::string_view kSecret = "whsec_test_secret";
constexpr std::string_view kBody = R"({"id":"evt_1","object":"event"})";
constexpr int64_t kT = 1'800'000'000;

TimePoint At(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }

void ExpectRefused(const Status& s, std::string_view type) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(s.error().type, type);
}

TEST(SignWebhook, IsStripesScheme) {
  // t=<t>,v1=hex(HMAC-SHA256(secret, "<t>.<body>"))
  std::string expected = "t=1800000000,v1=" + crypto::HexEncode(crypto::HmacSha256(
                                                   kSecret, "1800000000." + std::string(kBody)));
  EXPECT_EQ(SignWebhook(kSecret, kT, kBody), expected);
}

TEST(VerifyWebhook, AcceptsItsOwnSignature) {
  EXPECT_TRUE(VerifyWebhook(kSecret, SignWebhook(kSecret, kT, kBody), kBody, At(kT)).ok());
  // Spaces after commas, as some proxies rewrite headers.
  std::string header = SignWebhook(kSecret, kT, kBody);
  size_t comma = header.find(',');
  std::string spaced = header.substr(0, comma + 1) + " " + header.substr(comma + 1);
  EXPECT_TRUE(VerifyWebhook(kSecret, spaced, kBody, At(kT)).ok());
}

TEST(VerifyWebhook, RefusesAForgedBody) {
  ExpectRefused(VerifyWebhook(kSecret, SignWebhook(kSecret, kT, kBody), R"({"id":"evt_2","object":"event"})", At(kT)),
                "webhook-signature-invalid");
}

TEST(VerifyWebhook, RefusesAnotherSecret) {
  ExpectRefused(VerifyWebhook(kSecret, SignWebhook("whsec_other", kT, kBody), kBody, At(kT)),
                "webhook-signature-invalid");
}

TEST(VerifyWebhook, RefusesAnEmptySecret) {
  ExpectRefused(VerifyWebhook("", SignWebhook("", kT, kBody), kBody, At(kT)), "webhook-signature-invalid");
}

TEST(VerifyWebhook, RefusesAChangedTimestamp) {
  std::string header = SignWebhook(kSecret, kT, kBody);
  header.replace(0, std::string("t=1800000000").size(), "t=1800000001");
  ExpectRefused(VerifyWebhook(kSecret, header, kBody, At(kT)), "webhook-signature-invalid");
}

TEST(VerifyWebhook, OneMatchingV1AmongSeveralIsEnough) {
  std::string good = SignWebhook(kSecret, kT, kBody);
  std::string good_v1 = good.substr(good.find("v1="));
  std::string other_v1 = SignWebhook("whsec_old", kT, kBody).substr(good.find("v1="));
  EXPECT_TRUE(VerifyWebhook(kSecret, "t=1800000000," + other_v1 + "," + good_v1, kBody, At(kT)).ok());
  EXPECT_TRUE(VerifyWebhook(kSecret, "t=1800000000," + good_v1 + "," + other_v1 + ",v0=abc", kBody, At(kT)).ok());
  ExpectRefused(VerifyWebhook(kSecret, "t=1800000000," + other_v1 + "," + other_v1, kBody, At(kT)),
                "webhook-signature-invalid");
}

TEST(VerifyWebhook, RefusesAMissingTimestampOrSignature) {
  std::string good = SignWebhook(kSecret, kT, kBody);
  std::string v1_only = good.substr(good.find("v1="));
  ExpectRefused(VerifyWebhook(kSecret, v1_only, kBody, At(kT)), "webhook-signature-invalid");
  ExpectRefused(VerifyWebhook(kSecret, "t=1800000000", kBody, At(kT)), "webhook-signature-invalid");
  ExpectRefused(VerifyWebhook(kSecret, "t=1800000000,v0=" + v1_only.substr(3), kBody, At(kT)),
                "webhook-signature-invalid");
}

TEST(VerifyWebhook, RefusesMalformedHeaders) {
  std::string good = SignWebhook(kSecret, kT, kBody);
  std::string v1 = good.substr(good.find("v1="));
  for (const std::string& header : std::vector<std::string>{
           "",
           ",",
           "garbage",
           "t=,"+ v1,
           "t=abc," + v1,
           "t=18e8," + v1,
           "t=-5," + v1,
           "t=99999999999999999999999," + v1,
           "t=1800000000,t=1800000000," + v1,
           "t=1800000000,=x," + v1,
           "t=1800000000;" + v1,
       }) {
    ExpectRefused(VerifyWebhook(kSecret, header, kBody, At(kT)), "webhook-signature-invalid");
  }
}

TEST(VerifyWebhook, RefusesStaleAndFutureTimestamps) {
  std::string header = SignWebhook(kSecret, kT, kBody);
  // The edges of the window are inside it.
  EXPECT_TRUE(VerifyWebhook(kSecret, header, kBody, At(kT + 300)).ok());
  EXPECT_TRUE(VerifyWebhook(kSecret, header, kBody, At(kT - 300)).ok());
  ExpectRefused(VerifyWebhook(kSecret, header, kBody, At(kT + 301)), "webhook-timestamp-stale");
  ExpectRefused(VerifyWebhook(kSecret, header, kBody, At(kT - 301)), "webhook-timestamp-stale");
  // A custom tolerance.
  EXPECT_TRUE(VerifyWebhook(kSecret, header, kBody, At(kT + 3000), std::chrono::seconds(3600)).ok());
  ExpectRefused(VerifyWebhook(kSecret, header, kBody, At(kT + 11), std::chrono::seconds(10)),
                "webhook-timestamp-stale");
  // A stale forgery is reported as a bad signature, not as stale.
  ExpectRefused(VerifyWebhook(kSecret, SignWebhook("whsec_other", kT, kBody), kBody, At(kT + 3600)),
                "webhook-signature-invalid");
}

}  // namespace
}  // namespace agora::payments
