#include "services/gateway/jwt_authenticator.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/crypto/encoding.h"

namespace agora::gateway {
namespace {

class JwtAuthenticatorTest : public ::testing::Test {
 protected:
  JwtAuthenticatorTest()
      : keys_(crypto::KeyRing::InMemoryForTest(clock_)), auth_(keys_, "https://agora.test", "agora", clock_) {}

  std::string Token(int64_t ttl = 900, std::string iss = "https://agora.test", std::string aud = "agora") {
    int64_t now = clock_.NowSeconds();
    return keys_->SignJwt({{"iss", iss}, {"aud", aud}, {"sub", "usr_1"}, {"iat", now}, {"nbf", now},
                           {"exp", now + ttl}, {"jti", "at_1"}, {"roles", boost::json::array{"buyer", "seller"}}});
  }

  ManualClock clock_;
  std::shared_ptr<crypto::KeyRing> keys_;
  JwtAuthenticator auth_;
};

TEST_F(JwtAuthenticatorTest, ValidTokenGivesPrincipal) {
  auto p = auth_.Authenticate(Token());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->user_id, "usr_1");
  EXPECT_TRUE(p->HasRole("seller"));
  EXPECT_EQ(p->token_id, "at_1");
}

TEST_F(JwtAuthenticatorTest, ExpiredTokenIsRefusedEvenWhenCached) {
  std::string t = Token(60);
  ASSERT_TRUE(auth_.Authenticate(t).ok());
  clock_.Advance(std::chrono::seconds(120));
  auto r = auth_.Authenticate(t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(r.error().type, "token-expired");
}

TEST_F(JwtAuthenticatorTest, ExpiredTokenNeverSeenBeforeSaysExpired) {
  std::string t = Token(60);
  clock_.Advance(std::chrono::seconds(120));
  EXPECT_EQ(auth_.Authenticate(t).error().type, "token-expired");
}

TEST_F(JwtAuthenticatorTest, RefusalsDoNotSayWhichCheckFailed) {
  auto other = crypto::KeyRing::InMemoryForTest(clock_);
  int64_t now = clock_.NowSeconds();
  std::string foreign = other->SignJwt({{"iss", "https://agora.test"}, {"aud", "agora"}, {"sub", "usr_1"},
                                        {"iat", now}, {"exp", now + 900}, {"roles", boost::json::array{}}});
  auto a = auth_.Authenticate(foreign);
  auto b = auth_.Authenticate(Token(900, "https://evil.test"));
  auto c = auth_.Authenticate("garbage");
  EXPECT_EQ(a.error().message, b.error().message);
  EXPECT_EQ(b.error().message, c.error().message);
}

TEST_F(JwtAuthenticatorTest, WrongIssuerOrAudienceIsRefused) {
  EXPECT_FALSE(auth_.Authenticate(Token(900, "https://evil.test")).ok());
  EXPECT_FALSE(auth_.Authenticate(Token(900, "https://agora.test", "other")).ok());
}

TEST_F(JwtAuthenticatorTest, TokenFromAnotherKeyRingIsRefused) {
  auto other = crypto::KeyRing::InMemoryForTest(clock_);
  int64_t now = clock_.NowSeconds();
  std::string forged = other->SignJwt({{"iss", "https://agora.test"}, {"aud", "agora"}, {"sub", "usr_1"},
                                       {"iat", now}, {"exp", now + 900}, {"roles", boost::json::array{"admin"}}});
  EXPECT_EQ(auth_.Authenticate(forged).error().code, ErrorCode::kUnauthenticated);
}

TEST_F(JwtAuthenticatorTest, AlgNoneIsRefused) {
  std::string t = Token();
  std::string payload = t.substr(t.find('.') + 1, t.rfind('.') - t.find('.') - 1);
  std::string header = crypto::Base64UrlEncode(R"({"alg":"none","typ":"JWT"})");
  EXPECT_FALSE(auth_.Authenticate(header + "." + payload + ".").ok());
}

TEST_F(JwtAuthenticatorTest, TamperedPayloadIsRefused) {
  std::string t = Token();
  int64_t now = clock_.NowSeconds();
  std::string evil = crypto::Base64UrlEncode(boost::json::serialize(boost::json::object{
      {"iss", "https://agora.test"}, {"aud", "agora"}, {"sub", "usr_1"}, {"iat", now}, {"exp", now + 900},
      {"roles", boost::json::array{"admin"}}}));
  std::string tampered = t.substr(0, t.find('.') + 1) + evil + t.substr(t.rfind('.'));
  EXPECT_FALSE(auth_.Authenticate(tampered).ok());
}

TEST_F(JwtAuthenticatorTest, GarbageIsRefused) {
  EXPECT_FALSE(auth_.Authenticate("not-a-token").ok());
  EXPECT_FALSE(auth_.Authenticate(std::string(5000, 'a')).ok());
}

}  // namespace
}  // namespace agora::gateway
